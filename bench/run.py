"""``python -m bench.run``: the whole benchmark (called by scripts/bench.sh / make bench).

Starts its own stack on free ports with fresh databases, seeds it, runs every
scenario, checks the quota counts, stops everything and writes
bench/results/<timestamp>/{report.md,summary.json,*.png}. Exit status 1 when any
scenario was not ok (errors, UNIMPLEMENTED, blocked) or the quota counts differ.
Knobs (env): see bench/README.md.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import grpc

from bench import cpu, report, settlement, targets
from bench.catalog import SPECS, Ctx
from bench.drivers import Ghz, Hey, build_protoset
from bench.execute import Executor, Settings
from bench.meta import load_average, machine, versions
from bench.profile import top_frames
from bench.seed import Seed, Seeder, store_interactions
from bench.stack import (
    MONGO_URL,
    PG_ADMIN_DSN,
    PG_PORT,
    ROOT,
    SERVICES,
    Stack,
    new_tag,
    wait_grpc,
    wait_http,
)
from bench.summary import Scenario, apply_cpu, apply_ratios, judge
from devtools import ferretdb_tune
from llmgw.quota.v1 import quota_pb2 as qpb
from llmgw.quota.v1 import quota_pb2_grpc as qgrpc

OUR_CODE = ("llm_svc/", "gateway_common/", "identity_svc/", "quota_svc/", "history_svc/")


# BENCH_QUICK=1: shorter runs and less seeded data (the defaults below), same scenarios.
QUICK = {"BENCH_DURATION": "4", "BENCH_USERS": "1000", "BENCH_INTERACTIONS": "20000"}
NOT_FAILURES = ("ok", "skipped")
PORTKEY_ENTRY = ".cache/portkey/node_modules/@portkey-ai/gateway/build/start-server.js"


def _env(name: str, default: str) -> str:
    if os.environ.get("BENCH_QUICK", "0") not in ("0", "") and name in QUICK:
        default = QUICK[name]
    return os.environ.get(name, "") or default


class Bench:
    def __init__(self) -> None:
        self.duration = float(_env("BENCH_DURATION", "10"))
        self.warmup = float(_env("BENCH_WARMUP", "1"))
        self.concurrencies = [int(c) for c in _env("BENCH_CONCURRENCY", "1,16,64").split(",")]
        self.users = int(_env("BENCH_USERS", "10000"))
        self.interactions = int(_env("BENCH_INTERACTIONS", "100000"))
        only = _env("BENCH_SCENARIOS", "")
        self.specs = [s for s in SPECS if not only or s.name in only.split(",") or s.name == "echo"]
        self.profile = _env("BENCH_PROFILE", "0") not in ("0", "false", "")
        self.keep = _env("BENCH_KEEP", "0") not in ("0", "false", "")
        self.ghz_bin = Path(_env("GHZ", str(ROOT / ".cache/bin/ghz")))
        self.hey_bin = Path(_env("HEY", str(ROOT / ".cache/bin/hey")))
        self.venv = Path(_env("BENCH_VENV", str(ROOT / ".cache/bench-venv")))
        self.portkey = Path(_env("BENCH_PORTKEY", str(ROOT / PORTKEY_ENTRY)))
        self.settlement: dict[str, Any] = {}
        tag = new_tag()
        self.out = Path(_env("BENCH_RESULTS", str(ROOT / "bench/results"))) / tag
        (self.out / "logs").mkdir(parents=True)
        self.stack = Stack(tag, self.out / "logs")
        self.down: dict[str, str] = {}
        self.notes: list[str] = []
        self.started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
        self.machine = machine()  # before the stack starts: the load average of others

    def needed(self) -> set[str]:
        return {s.service for s in self.specs}

    async def up(self) -> None:
        stack = self.stack
        stack.create_databases()
        fake = stack.start_fake()
        flaky = stack.start_fake_flaky()
        echo = stack.start_echo()
        for svc in ("identity", "quota"):
            why = await asyncio.to_thread(stack.migrate, svc)
            if why:
                self.down[svc] = why
        procs = {svc: stack.start_service(svc) for svc in SERVICES if svc not in self.down}
        waits = {name: wait_grpc(p, stack.target(name)) for name, p in procs.items()}
        waits["echo"] = wait_grpc(echo, stack.target("echo"))
        waits["fake"] = wait_http(fake, f"http://{stack.target('fake')}/health")
        waits["fake_flaky"] = wait_http(flaky, f"http://{stack.target('fake_flaky')}/health")
        results = await asyncio.gather(*waits.values())
        for name, why in zip(waits, results, strict=True):
            if why:
                self.down[name] = why
        if "fake" in self.down:  # no provider: chat and the peers cannot work
            for name in ("llm", "litellm", "portkey"):  # checked again when the peer starts
                self.down.setdefault(name, self.down["fake"])
        if "llm" in self.down:
            self.down["llm_http"] = self.down["llm"]

    def cpu_roots(self) -> dict[str, int]:
        """The processes whose CPU is accounted: ours by pid, the shared stores by the
        process listening on their port (PostgreSQL: the postmaster, whose children are
        all backends, FerretDB's included)."""
        roots = {n: p.popen.pid for n, p in self.stack.procs.items() if p.alive()}
        mongo_port = int(MONGO_URL.rsplit(":", 1)[1].split("/")[0])
        for name, port in (("PostgreSQL", PG_PORT), ("FerretDB", mongo_port)):
            pid = cpu.listener_pid(port)
            if pid is None:
                self.notes.append(f"CPU of {name} not accounted: nothing of ours on :{port}")
            else:
                roots[name] = pid
        return roots

    async def peer_up(self, name: str) -> int | None:
        """Start an HTTP peer for its own scenario only (LiteLLM's workers burn CPU while
        idle, which would land on every other scenario); its pid, or None when down."""
        if name in self.down:
            return None
        if name == "litellm":
            proc = self._start_litellm()
            url = f"http://{self.stack.target('litellm')}/health/liveliness"
        else:
            proc = self._start_portkey()
            url = f"http://{self.stack.target('portkey')}/"
        if proc is None:
            return None
        why = await wait_http(proc, url, timeout=180)
        if why:
            self.down[name] = why
            return None
        return int(proc.popen.pid)

    def peer_down(self, name: str) -> None:
        proc = self.stack.procs.get(name)
        if proc is not None:
            proc.stop()

    def _start_portkey(self) -> Any:
        if not self.portkey.exists():
            self.down["portkey"] = f"{self.portkey} missing (scripts/bench.sh installs it)"
            return None
        return self.stack.start_portkey(self.portkey)

    def _start_litellm(self) -> Any:
        if not (self.venv / "bin" / "litellm").exists():
            self.down["litellm"] = (
                f"litellm not installed in {self.venv} (scripts/bench.sh installs it)"
            )
            return None
        return self.stack.start_litellm(self.venv)

    async def seed(self) -> Seed:
        if "identity" in self.down or "quota" in self.down:
            seed = Seed()
            seed.errors["stack"] = "; ".join(
                f"{s} down" for s in ("identity", "quota") if s in self.down
            )
            return seed
        seed = await Seeder(self.stack, self.users, self.interactions).run()
        if any(s.name == "history_list" for s in self.specs) and "history" not in self.down:
            start = time.monotonic()
            try:
                await store_interactions(self.stack, seed, self.interactions)
                # FerretDB on PostgreSQL: the GIN index standing in for MongoDB's compound
                # index (a no-op against a real MongoDB: no such schema in PostgreSQL).
                await asyncio.to_thread(
                    ferretdb_tune.tune,
                    PG_ADMIN_DSN.rsplit("/", 1)[0] + "/ferretdb",
                    self.stack.mongo_db,
                )
            except Exception as exc:  # noqa: BLE001 - reported; only List needs it
                seed.errors["interactions"] = f"{type(exc).__name__}: {exc}"
            seed.seconds["interactions"] = time.monotonic() - start
        return seed

    async def quota_check(self, ctx: Ctx) -> dict[str, Any]:
        seed = ctx.seed
        if "quota" in self.down or not seed.tenant_id or not seed.hot_user:
            return {
                "status": "not run",
                "reason": seed.missing("tenant_id", "hot_user") or self.down.get("quota", ""),
            }
        md = (("authorization", f"Bearer {seed.admin_key}"),)
        subjects = [
            ("hot user (Reserve+Settle)", seed.hot_user, ctx.expected["hot"]),
            ("chat user (Chat + ChatStream)", seed.chat_user, ctx.expected["chat"]),
            ("whole tenant", "", sum(ctx.expected.values())),
        ]
        rows = []
        async with grpc.aio.insecure_channel(self.stack.target("quota")) as channel:
            stub = qgrpc.QuotaServiceStub(channel)
            for subject, user, expected in subjects:
                try:
                    reply = await stub.GetUsage(
                        qpb.GetUsageRequest(tenant_id=seed.tenant_id, user_id=user),
                        metadata=md,
                        timeout=60,
                    )
                except grpc.aio.AioRpcError as exc:
                    return {
                        "status": "not run",
                        "reason": f"GetUsage {exc.code().name}: {exc.details()}",
                    }
                rows.append(
                    {
                        "subject": subject,
                        "expected": expected,
                        "actual": reply.used,
                        "ok": reply.used == expected,
                    }
                )
        status = "exact" if all(r["ok"] for r in rows) else "MISMATCH"
        return {"status": status, "checks": rows}

    async def execute(self) -> dict[str, Any]:
        await self.up()
        seed = await self.seed()
        ctx = Ctx(self.stack, seed)
        protoset = self.out / "suite.protoset"
        why = await build_protoset(protoset)
        if why:
            self.notes.append(f"protoset build failed: {why}")
        py_spy = self.venv / "bin" / "py-spy"
        settings = Settings(
            self.duration,
            self.warmup,
            self.concurrencies,
            protoset,
            profile_with=py_spy if self.profile and py_spy.exists() else None,
            probe_max_ms=float(_env("BENCH_PROBE_MAX_MS", "2000")),
        )
        ex = Executor(
            ctx, Ghz(self.ghz_bin, self.out), Hey(self.hey_bin, self.out), settings, self.down
        )
        ex.cpu_roots = self.cpu_roots()
        scenarios: list[Scenario] = []
        for spec in self.specs:
            started = time.monotonic()
            quota_metrics = self.stack.metrics_url("quota")
            before = await settlement.scrape(quota_metrics) if spec.name == "chat" else ""
            peer = spec.service if spec.service in ("litellm", "portkey") else ""
            if peer:
                pid = await self.peer_up(peer)
                if pid is not None:
                    ex.cpu_roots[peer] = pid
            produced = await ex.run(spec)
            if peer:
                self.peer_down(peer)
                ex.cpu_roots.pop(peer, None)
            if spec.name == "chat":
                self.settlement = await settlement.after_run(
                    quota_metrics, before, self.out / "raw"
                )
            elif spec.commit or spec.counts_as:  # its records: delivered before the next
                _, left = await settlement.drained(quota_metrics, 60.0)
                if left:
                    self.notes.append(f"after {spec.name}: {left:g} outbox entries pending")
            scenarios += produced
            print(
                f"bench: {spec.name}: {produced[0].status} ({time.monotonic() - started:.0f}s)",
                flush=True,
            )
        check = await self.quota_check(ctx) if any(s.counts_as for s in self.specs) else {}
        return self.summary(scenarios, seed, check, ex.profile_files)

    def summary(
        self, scenarios: list[Scenario], seed: Seed, check: dict[str, Any], files: list[Path]
    ) -> dict[str, Any]:
        apply_ratios(scenarios)
        apply_cpu(scenarios)
        for s in scenarios:
            judge(s)
        failures = [
            f"{s.name}: {s.status} - {s.reason}" for s in scenarios if s.status not in NOT_FAILURES
        ]
        if check and check.get("status") != "exact":
            failures.append(f"quota counts: {check.get('status')} {check.get('reason', '')}")
        meta = {
            "started": self.started,
            **self.machine,
            "versions": versions(self.ghz_bin, self.hey_bin, self.venv),
            "duration_s": self.duration,
            "warmup_s": self.warmup,
            "concurrencies": self.concurrencies,
            "log_level": self.stack.log_level,
            "profile": self.profile,
            "quick": os.environ.get("BENCH_QUICK", "0") not in ("0", ""),
            "load_average_end": load_average(),
            "notes": self.notes + [f"{k} not running: {v}" for k, v in self.down.items()],
        }
        out: dict[str, Any] = {
            "meta": meta,
            "scenarios": [s.to_dict() for s in scenarios],
            "targets": [t.to_dict() for t in targets.evaluate(scenarios, self.concurrencies)],
            "quota_check": check,
            "settlement": self.settlement,
            "seed": seed.report(),
            "failures": failures,
        }
        if files:
            llm_raw = next(
                (f for f in files if f.name.startswith("llm-") and f.suffix == ".txt"), None
            )
            text = llm_raw.read_text() if llm_raw and llm_raw.exists() else ""
            out["profile"] = {
                "files": [str(f.relative_to(self.out)) for f in files],
                "top": top_frames(text, 15),
                "ours": top_frames(text, 15, by="total", only=OUR_CODE),
            }
        return out

    def write(self, summary: dict[str, Any]) -> None:
        (self.out / "summary.json").write_text(json.dumps(summary, indent=1))
        python = self.venv / "bin" / "python"
        if python.exists():
            self._plots(python, summary)
        (self.out / "summary.json").write_text(json.dumps(summary, indent=1))
        (self.out / "report.md").write_text(report.render(summary))

    def _plots(self, python: Path, summary: dict[str, Any]) -> None:
        notes = summary["meta"]["notes"]
        try:
            done = subprocess.run(
                [str(python), "-m", "bench.plots", str(self.out)],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=180,
            )
        except subprocess.TimeoutExpired:
            notes.append("plots: matplotlib did not finish in 180 s")
            return
        if done.returncode == 0:
            summary["plots"] = done.stdout.split()
        else:
            notes.append(f"plots failed: {done.stderr[-300:]}")

    def down_all(self) -> None:
        self.stack.stop_all()
        if not self.keep:
            try:
                self.stack.drop_databases()
            except Exception as exc:  # noqa: BLE001 - cleanup is best effort
                print(f"bench: dropping databases failed: {exc}", file=sys.stderr)


def main() -> None:
    bench = Bench()
    print(f"bench: results in {bench.out}", flush=True)
    try:
        summary = asyncio.run(bench.execute())
    finally:
        bench.down_all()
    bench.write(summary)
    print((bench.out / "report.md").read_text().split("## Scenarios")[0])
    print(f"bench: report {bench.out / 'report.md'}")
    sys.exit(1 if summary["failures"] else 0)


if __name__ == "__main__":
    main()
