"""The machine and the versions a run used, for the top of the report."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path

from bench.stack import PG_ADMIN_DSN, ROOT


def machine() -> dict[str, object]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": model or platform.processor(),
        "platform": f"{platform.system()} {platform.release()}",
        "load_average": load_average(),
    }


def load_average() -> str:
    """1/5/15-minute load: above ~0.5 before a run, something else is using the CPUs."""
    try:
        return "/".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def _out(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=ROOT)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return (done.stdout or done.stderr).strip() or "?"


def _pg() -> str:
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_DSN) as conn:
            row = conn.execute("show server_version").fetchone()
            return str(row[0]) if row else "?"
    except Exception:  # noqa: BLE001 - informative only
        return "?"


def _portkey() -> str:
    import json

    package = ROOT / ".cache/portkey/node_modules/@portkey-ai/gateway/package.json"
    try:
        return str(json.loads(package.read_text())["version"])
    except (OSError, ValueError, KeyError):
        return "-"


def versions(ghz: Path, hey: Path, venv: Path) -> dict[str, str]:
    pkgs = {p: importlib.metadata.version(p) for p in ("grpcio", "protobuf")}
    bench_py = venv / "bin" / "python"
    script = (
        "import importlib.metadata as m\n"
        "for p in ('litellm','matplotlib','py-spy'):\n"
        "    try: print(p, m.version(p))\n"
        "    except Exception: print(p, '-')"
    )
    venv_versions = _out([str(bench_py), "-c", script]) if bench_py.exists() else ""
    out = {
        "suite": _out(["git", "rev-parse", "--short", "HEAD"]),
        "python": platform.python_version(),
        **pkgs,
        "ghz": _out([str(ghz), "--version"]),
        "hey": _out(["cat", str(hey.with_name("hey.version"))]) if hey.exists() else "-",
        "node": _out(["node", "--version"]),
        "portkey": _portkey(),
        "PostgreSQL": _pg(),
        "FerretDB": _out(
            [
                "cat",
                str(Path(os.environ.get("TOOLS_BIN", ROOT / ".cache/bin")) / "ferretdb.version"),
            ]
        ).split(" ")[0],
    }
    for line in venv_versions.splitlines():
        name, _, version = line.partition(" ")
        out[name] = version
    return out
