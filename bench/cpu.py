"""CPU time per process during a run, read from /proc (utime + stime), and the pure
arithmetic on it: CPU ms per request by process, and that cost in echo calls.

A tracked process is a tree: the process and its live descendants, each with the CPU of
its reaped children (cutime + cstime), so PostgreSQL is the postmaster and all its
backends, LiteLLM its workers. The load generator (ghz, hey) is a child of the bench
itself: its CPU is the bench's RUSAGE_CHILDREN over the run.
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass, field
from pathlib import Path

TICK_MS = 1000.0 / os.sysconf("SC_CLK_TCK")
LOADGEN = "load generator"
TOTAL = "total"
# Report order; processes not listed come after, alphabetically.
ORDER = (
    "llm",
    "quota",
    "history",
    "identity",
    "PostgreSQL",
    "FerretDB",
    "fake",
    "echo",
    "litellm",
    "portkey",
    LOADGEN,
)


@dataclass(frozen=True)
class _Stat:
    ppid: int
    own: int  # utime + stime, ticks
    reaped: int  # cutime + cstime, ticks


def _read_stats(proc: Path = Path("/proc")) -> dict[int, _Stat]:
    stats: dict[int, _Stat] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        fields = text.rpartition(")")[2].split()  # after the command, which may hold spaces
        stats[int(entry.name)] = _Stat(
            int(fields[1]), int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14])
        )
    return stats


def _tree_ticks(root: int, stats: dict[int, _Stat], children: dict[int, list[int]]) -> int:
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        stat = stats.get(pid)
        if stat is None:
            continue
        total += stat.own + stat.reaped
        todo += children.get(pid, [])
    return total


def machine_busy_ms() -> float:
    """CPU time all cores spent busy since boot (not idle, not waiting on I/O), ms."""
    first = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    ticks = [int(x) for x in first[:8]]  # user nice system idle iowait irq softirq steal
    return (sum(ticks) - ticks[3] - ticks[4]) * TICK_MS


def snapshot(roots: dict[str, int]) -> dict[str, float]:
    """CPU ms so far of each named process tree, the bench's reaped children (the load
    generators) and the whole machine (key ``machine``)."""
    stats = _read_stats()
    children: dict[int, list[int]] = {}
    for pid, stat in stats.items():
        children.setdefault(stat.ppid, []).append(pid)
    out = {name: _tree_ticks(pid, stats, children) * TICK_MS for name, pid in roots.items()}
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    out[LOADGEN] = (usage.ru_utime + usage.ru_stime) * 1000.0
    out["machine"] = machine_busy_ms()
    return out


def delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU ms spent between two snapshots (a process missing from either is left out;
    a tree that lost a child to another reaper cannot go below 0)."""
    return {k: round(max(0.0, after[k] - v), 1) for k, v in before.items() if k in after}


def listener_pid(port: int, proc: Path = Path("/proc")) -> int | None:
    """The pid of the process listening on TCP ``port`` (ours: same user), or None."""
    inodes: set[str] = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (proc / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{parts[9]}]")
    if not inodes:
        return None
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            for fd in (entry / "fd").iterdir():
                if os.readlink(fd) in inodes:
                    return int(entry.name)
        except OSError:
            continue
    return None


# -- pure: per request, in echo calls ----------------------------------------------------
@dataclass
class CpuCost:
    """CPU ms per successful request by process, and the total in echo calls."""

    per_request_ms: dict[str, float] = field(default_factory=dict)
    echo_calls: float | None = None  # total / echo's total per call, same concurrency
    echo_calls_by_process: dict[str, float] = field(default_factory=dict)
    cores_busy: float = 0.0  # tracked CPU / wall time: 2.0 = two cores fully used
    machine_other_ms: float = 0.0  # machine busy time not in any tracked process


def per_request(
    cpu_ms: dict[str, float], ok: int, seconds: float, echo_total: float | None
) -> CpuCost:
    """``cpu_ms`` of one run (a :func:`delta`), its successful calls and wall time;
    ``echo_total`` = CPU ms per echo call (server + load generator) at the same concurrency."""
    tracked = {k: v for k, v in cpu_ms.items() if k != "machine"}
    if ok <= 0:
        return CpuCost()
    per = {k: v / ok for k, v in tracked.items() if v > 0}
    per[TOTAL] = sum(tracked.values()) / ok
    cost = CpuCost(per_request_ms={k: round(v, 3) for k, v in per.items()})
    if echo_total:
        cost.echo_calls = round(per[TOTAL] / echo_total, 2)
        cost.echo_calls_by_process = {k: round(v / echo_total, 2) for k, v in per.items()}
    if seconds > 0:
        cost.cores_busy = round(sum(tracked.values()) / 1000.0 / seconds, 2)
    if "machine" in cpu_ms:
        cost.machine_other_ms = round(max(0.0, cpu_ms["machine"] - sum(tracked.values())), 1)
    return cost


def ordered(names: set[str] | list[str]) -> list[str]:
    rank = {n: i for i, n in enumerate(ORDER)}
    return sorted((n for n in names if n != TOTAL), key=lambda n: (rank.get(n, len(rank)), n))
