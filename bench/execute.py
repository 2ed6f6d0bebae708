"""Running one scenario: probe (one call), warm-up, then each concurrency."""

from __future__ import annotations

import asyncio
import copy
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import cpu
from bench.catalog import Ctx, Spec
from bench.drivers import Ghz, GhzOutcome, Hey, load_scenario
from bench.profile import start_pyspy
from bench.summary import RunStats, Scenario, combine_pair

PROBE_SERVICE_DOWN = "service not running"


@dataclass
class Settings:
    duration: float
    warmup: float
    concurrencies: list[int]
    protoset: Path
    profile_with: Path | None = None  # py-spy binary: profile llm_svc during Chat
    profile_concurrency: int = 16
    # A probe call slower than this skips the sweep: c=64 such calls could swamp the shared
    # stores (64 concurrent 100,000-document sorts once took FerretDB to 23 GB and OOM).
    probe_max_ms: float = 2000.0


@dataclass
class Executor:
    ctx: Ctx
    ghz: Ghz
    hey: Hey
    settings: Settings
    down: dict[str, str]  # process -> why it is not running
    notes: list[str] = field(default_factory=list)
    profile_files: list[Path] = field(default_factory=list)
    cpu_roots: dict[str, int] = field(default_factory=dict)  # process name -> pid (a tree)
    _protoset_for: set[str] = field(default_factory=set)

    async def _measured(self, run: Any) -> GhzOutcome:
        """Await a load run (a ghz or hey coroutine), with the CPU each tracked process and
        the load generator spent during it on its stats."""
        before = cpu.snapshot(self.cpu_roots)
        out: GhzOutcome = await run
        if out.stats is not None:
            out.stats.cpu_ms = cpu.delta(before, cpu.snapshot(self.cpu_roots))
        return out

    def concurrencies(self, spec: Spec) -> list[int]:
        return list(spec.concurrencies) or self.settings.concurrencies

    # -- one ghz call, reflection first, protoset when reflection cannot resolve ------
    async def _ghz(
        self, scenario: Scenario, label: str, config: dict[str, Any], c: int, **kw: Any
    ) -> GhzOutcome:
        host = self.ctx.stack.target(scenario.service)
        use = self.settings.protoset if scenario.name in self._protoset_for else None
        out = await self.ghz.run(label, config, host, c, protoset=use, **kw)
        if out.schema_missing and use is None:
            self._protoset_for.add(scenario.name)
            scenario.notes.append(
                "ghz over server reflection failed (`Symbol not found`: the server's reflection "
                "cannot resolve method names); ran with a protoset built from protos/ instead"
            )
            out = await self.ghz.run(label, config, host, c, protoset=self.settings.protoset, **kw)
        return out

    def _config(self, spec: Spec, file: str, prefix: str) -> dict[str, Any]:
        values = {**spec.env(self.ctx), "BENCH_ID_PREFIX": prefix}
        config = load_scenario(file, values)
        if spec.spread:  # one message per user: ghz takes them round robin, in the same
            template = config["data"]  # order for the Reserve and the Settle of a pair
            data = []
            for user in self.ctx.seed.spread_users:
                item = copy.deepcopy(template)
                for part in (item, item.get("interaction")):
                    if isinstance(part, dict) and "user_id" in part:
                        part["user_id"] = user
                data.append(item)
            config["data"] = data
        return config

    def _count(self, spec: Spec, stats: RunStats | None) -> None:
        if spec.counts_as and stats is not None:
            self.ctx.expected[spec.counts_as] += stats.ok

    async def _one(
        self, spec: Spec, scenario: Scenario, label: str, c: int, measure: bool = False, **kw: Any
    ) -> tuple[GhzOutcome, GhzOutcome | None]:
        """A run of the scenario (Reserve then Settle on the same ids for a pair); with
        ``measure`` the CPU per process of each run is kept on its stats."""
        # Ids are UUIDs (history records a Settle's interaction under its request id):
        # 24 random characters, then the request number on 12 digits.
        prefix = str(uuid.uuid4())[:24]
        run = self._ghz(scenario, label, self._config(spec, spec.file, prefix), c, **kw)
        out = await (self._measured(run) if measure else run)
        self._count(spec, out.stats)
        if not spec.commit or out.stats is None:
            return out, None
        total = out.stats.count  # ids 0..count-1 were all tried
        run = self._ghz(
            scenario,
            label + "-commit",
            self._config(spec, spec.commit, prefix),
            c,
            total=max(total, 1),
        )
        return out, await (self._measured(run) if measure else run)

    # -- a whole scenario ------------------------------------------------------------
    async def run(self, spec: Spec) -> list[Scenario]:
        tool = spec.tool
        main = Scenario(spec.name, spec.title, spec.service, tool)
        main.allowed_errors = list(spec.allowed_errors)
        if not spec.commit:
            await self._sweep(spec, main)
            return [main]
        reserve = Scenario(spec.name + "_reserve", spec.title + " - Reserve", spec.service, tool)
        commit = Scenario(spec.name + "_settle", spec.title + " - Settle", spec.service, tool)
        pair = Scenario(
            "quota_pair_" + spec.name.split("_", 1)[1],
            spec.title + " (pairs/s)",
            spec.service,
            "derived",
        )
        await self._sweep(spec, reserve, commit)
        pair.status, pair.reason = reserve.status, reserve.reason
        if commit.status != "ok" and pair.status == "ok":
            pair.status, pair.reason = commit.status, commit.reason
        for r1 in reserve.runs:
            r2 = commit.run_at(r1.concurrency)
            if r2 is not None:
                pair.runs.append(combine_pair(r1, r2, ("Reserve", "Settle")))
        return [pair, reserve, commit]

    async def _sweep(self, spec: Spec, scenario: Scenario, commit: Scenario | None = None) -> None:
        blocked = self.down.get(spec.service) or self.ctx.seed.missing(*spec.needs)
        if blocked:
            for s in (scenario, commit):
                if s is not None:
                    s.status, s.reason = "blocked", blocked
            return
        if spec.tool == "hey":
            await self._sweep_http(spec, scenario)
            return
        probe, probe_commit = await self._one(spec, scenario, "probe-" + spec.name, 1, total=1)
        for s, out in ((scenario, probe), (commit, probe_commit)):
            if s is not None and not self._probe_ok(spec, s, out):
                if commit is not None:
                    for other in (scenario, commit):
                        if other.status == "ok":
                            other.status, other.reason = (
                                "blocked",
                                "the other half of the pair failed",
                            )
                return
        if self.settings.warmup > 0:
            c = min(4, max(self.concurrencies(spec)))
            await self._one(
                spec, scenario, f"warmup-{spec.name}", c, duration_s=self.settings.warmup
            )
        for c in self.concurrencies(spec):
            label = f"{spec.name}-c{c}"
            spies = self._profile(spec, c)
            out, out_commit = await self._one(
                spec, scenario, label, c, measure=True, duration_s=self.settings.duration
            )
            await asyncio.gather(*(asyncio.to_thread(p.wait) for p in spies))
            self._keep(scenario, out)
            if commit is not None:
                self._keep(commit, out_commit)

    def _probe_ok(self, spec: Spec, scenario: Scenario, out: GhzOutcome | None) -> bool:
        if out is None:
            return False
        if out.stats is None:
            scenario.status, scenario.reason = "failed", f"ghz failed: {out.error}"
            return False
        if set(out.stats.errors) - set(spec.allowed_errors):
            codes = ", ".join(sorted(out.stats.errors))
            unimplemented = "UNIMPLEMENTED" in out.stats.errors
            scenario.status = "unimplemented" if unimplemented else "failed"
            scenario.reason = f"probe call failed with {codes}: " + "; ".join(out.stats.messages)
            return False
        took = out.stats.latency_ms.get("mean", 0.0)
        if took > self.settings.probe_max_ms:
            scenario.status = "failed"
            scenario.reason = (
                f"too slow to sweep: the probe call took {took:.0f} ms "
                f"(> BENCH_PROBE_MAX_MS={self.settings.probe_max_ms:g}); skipped so the "
                "concurrent runs cannot overload the shared databases"
            )
            return False
        return True

    @staticmethod
    def _keep(scenario: Scenario, out: GhzOutcome | None) -> None:
        if out is None:
            return
        if out.stats is None:
            scenario.status = "failed"
            scenario.reason = (scenario.reason + f" ghz failed: {out.error}").strip()
            return
        scenario.runs.append(out.stats)

    def _profile(self, spec: Spec, c: int) -> list[Any]:
        binary = self.settings.profile_with
        if binary is None or spec.name != "chat" or c != self.settings.profile_concurrency:
            return []
        folder = self.ghz.out_dir / "profile"
        folder.mkdir(exist_ok=True)
        spies = []
        seconds = self.settings.duration
        for svc in ("llm", "identity", "quota", "history"):
            proc = self.ctx.stack.procs.get(svc)
            if proc is None or not proc.alive():
                continue
            raw = folder / f"{svc}-chat-c{c}.txt"
            spies.append(start_pyspy(binary, proc.popen.pid, raw, seconds, "raw"))
            self.profile_files.append(raw)
            if svc == "llm":
                svg = folder / f"llm-chat-c{c}.svg"
                spies.append(start_pyspy(binary, proc.popen.pid, svg, seconds, "flamegraph"))
                self.profile_files.append(svg)
        return spies

    async def _sweep_http(self, spec: Spec, scenario: Scenario) -> None:
        request = load_scenario(spec.file, spec.env(self.ctx))
        base = f"http://{self.ctx.stack.target(spec.service)}"
        probe = await self.hey.run("probe-" + spec.name, request, base, 1, 1)
        self._count(spec, probe.stats)
        if probe.stats is None or probe.stats.errors or not probe.stats.ok:
            why = probe.error or json.dumps(probe.stats.errors if probe.stats else {})
            refused = (
                probe.stats is not None
                and not probe.stats.ok
                and set(probe.stats.errors) <= {"CONNECTION_REFUSED", "HTTP_404"}
            )
            if spec.optional and refused:
                scenario.status, scenario.reason = "skipped", "HTTP door not answering"
            else:
                scenario.status, scenario.reason = "failed", f"probe failed: {why}"
            return
        if self.settings.warmup > 0:
            warm = await self.hey.run("warmup-" + spec.name, request, base, 4, self.settings.warmup)
            self._count(spec, warm.stats)
        for c in self.concurrencies(spec):
            run = self.hey.run(f"{spec.name}-c{c}", request, base, c, self.settings.duration)
            out = await self._measured(run)
            self._count(spec, out.stats)
            self._keep(scenario, out)
