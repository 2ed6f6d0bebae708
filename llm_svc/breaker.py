"""A circuit breaker per deployment: stop sending calls to a deployment that keeps failing,
and probe it again after a cooldown.

- closed: calls go through; it opens after ``consecutive_failures`` failures in a row, or
  when at least ``min_calls`` calls ended in the last ``window_seconds`` and the share of
  failures among them reached ``failure_ratio``;
- open: no call goes to it until ``cooldown_seconds`` have passed, then half-open;
- half-open: one probe at a time; its success closes the circuit, its failure opens it
  again for another cooldown.

Only failures that say the deployment is unwell count (connection errors, timeouts, 429,
5xx); a refusal of the request (4xx) is an answer, so it counts as a success. Each process
keeps its own breakers (no shared state: a replica learns on its own within a few calls).
``on_transition(deployment_id, old, new)`` hears every change of state (the system-event
emitter is wired to it at composition); it must not raise and must not block.
"""

from __future__ import annotations

import enum
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger("llm.breaker")


class State(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


Listener = Callable[[str, State, State], None]


@dataclass(frozen=True)
class BreakerSettings:
    consecutive_failures: int = 5
    failure_ratio: float = 0.5
    min_calls: int = 20
    window_seconds: float = 30.0
    cooldown_seconds: float = 10.0
    half_open_probe_seconds: float = 30.0  # a probe never heard of again frees its slot


@dataclass
class _Circuit:
    state: State = State.CLOSED
    consecutive: int = 0
    opened_at: float = 0.0
    probe_since: float | None = None  # a half-open probe is in flight since then
    outcomes: deque[tuple[float, bool]] = field(default_factory=deque)  # (when, failed)


def _quiet(deployment_id: str, old: State, new: State) -> None:
    return None


class Breakers:
    """Every deployment's circuit in this process (bounded: the least recently used go)."""

    def __init__(
        self,
        settings: BreakerSettings | None = None,
        on_transition: Listener = _quiet,
        clock: Callable[[], float] = time.monotonic,
        max_circuits: int = 10_000,
    ) -> None:
        self.settings = settings or BreakerSettings()
        self.on_transition = on_transition
        self._clock = clock
        self._max = max_circuits
        self._circuits: OrderedDict[str, _Circuit] = OrderedDict()

    def state(self, deployment_id: str) -> State:
        circuit = self._circuits.get(deployment_id)
        return circuit.state if circuit is not None else State.CLOSED

    def counts(self) -> dict[State, int]:
        """How many circuits are in each state (the gauge's values)."""
        out = dict.fromkeys(State, 0)
        for circuit in self._circuits.values():
            out[circuit.state] += 1
        return out

    def allows(self, deployment_id: str) -> bool:
        """May a call go to this deployment now? In half-open, True reserves the probe."""
        circuit = self._circuits.get(deployment_id)
        if circuit is None or circuit.state is State.CLOSED:
            return True
        now = self._clock()
        if circuit.state is State.OPEN:
            if now - circuit.opened_at < self.settings.cooldown_seconds:
                return False
            self._move(deployment_id, circuit, State.HALF_OPEN)
        stale = circuit.probe_since is not None and (
            now - circuit.probe_since > self.settings.half_open_probe_seconds
        )
        if circuit.probe_since is None or stale:
            circuit.probe_since = now
            return True
        return False

    def release(self, deployment_id: str) -> None:
        """A call that ended without a verdict (the caller left): free a half-open probe."""
        circuit = self._circuits.get(deployment_id)
        if circuit is not None and circuit.state is State.HALF_OPEN:
            circuit.probe_since = None

    def record(self, deployment_id: str, failed: bool) -> None:
        circuit = self._get(deployment_id)
        now = self._clock()
        if circuit.state is State.HALF_OPEN:
            circuit.probe_since = None
            if failed:
                self._open(deployment_id, circuit, now)
            else:
                self._move(deployment_id, circuit, State.CLOSED)
            return
        if circuit.state is State.OPEN:
            return  # a call sent before it opened: the cooldown decides
        circuit.consecutive = circuit.consecutive + 1 if failed else 0
        window = circuit.outcomes
        window.append((now, failed))
        while window and now - window[0][0] > self.settings.window_seconds:
            window.popleft()
        if circuit.consecutive >= self.settings.consecutive_failures or self._ratio_hit(window):
            self._open(deployment_id, circuit, now)

    def _ratio_hit(self, window: deque[tuple[float, bool]]) -> bool:
        if len(window) < self.settings.min_calls:
            return False
        failures = sum(1 for _, failed in window if failed)
        return failures / len(window) >= self.settings.failure_ratio

    def _open(self, deployment_id: str, circuit: _Circuit, now: float) -> None:
        circuit.opened_at = now
        self._move(deployment_id, circuit, State.OPEN)

    def _move(self, deployment_id: str, circuit: _Circuit, new: State) -> None:
        old = circuit.state
        circuit.state = new
        circuit.consecutive = 0
        circuit.outcomes.clear()
        circuit.probe_since = None
        if old is new:
            return
        log.info("circuit %s", new.value, extra={"deployment_id": deployment_id, "from": old.value})
        try:
            self.on_transition(deployment_id, old, new)
        except Exception:  # a listener's failure must never fail a call
            log.exception("circuit listener failed")

    def _get(self, deployment_id: str) -> _Circuit:
        circuit = self._circuits.get(deployment_id)
        if circuit is None:
            circuit = self._circuits[deployment_id] = _Circuit()
            while len(self._circuits) > self._max:
                self._circuits.popitem(last=False)
        self._circuits.move_to_end(deployment_id)
        return circuit
