"""Running ghz and hey: resolved scenario configs in, RunStats out."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.stack import ROOT
from bench.summary import RunStats, parse_ghz, parse_hey

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"
# {{env `NAME`}} or {{env `NAME` | default `VALUE`}} in a scenario file (sprig's env).
_ENV = re.compile(r"\{\{\s*env\s+`(\w+)`(?:\s*\|\s*default\s+`([^`]*)`)?\s*\}\}")
SYMBOL_NOT_FOUND = "Symbol not found"


def resolve(text: str, values: dict[str, str]) -> str:
    """Replace the env templates of a scenario file by ``values`` (JSON-escaped), so ghz
    does not evaluate them per call; names not in ``values`` take their default or ''."""

    def sub(match: re.Match[str]) -> str:
        value = values.get(match.group(1), match.group(2) or "")
        return json.dumps(value)[1:-1]

    return _ENV.sub(sub, text)


def load_scenario(file: str, values: dict[str, str]) -> dict[str, Any]:
    config: dict[str, Any] = json.loads(resolve((SCENARIO_DIR / file).read_text(), values))
    return config


@dataclass
class GhzOutcome:
    stats: RunStats | None
    error: str  # ghz itself failed (no report): why
    schema_missing: bool = False  # reflection could not resolve the method


class Ghz:
    def __init__(self, binary: Path, out_dir: Path) -> None:
        self.binary = binary
        self.out_dir = out_dir

    async def run(
        self,
        label: str,
        config: dict[str, Any],
        host: str,
        concurrency: int,
        duration_s: float | None = None,
        total: int | None = None,
        protoset: Path | None = None,  # used instead of server reflection when set
    ) -> GhzOutcome:
        cfg = dict(config)
        cfg.update(host=host, concurrency=concurrency, format="json", insecure=True)
        cfg["connections"] = 1
        cfg.pop("duration", None)
        cfg.pop("total", None)
        if duration_s is not None:
            cfg["duration"] = f"{duration_s:g}s"
            cfg["duration-stop"] = "wait"
        if total is not None:
            cfg["total"] = total
        if protoset is not None:
            cfg["protoset"] = str(protoset)
        path = self.out_dir / "configs" / f"{label}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(cfg, indent=1))
        proc = await asyncio.create_subprocess_exec(
            str(self.binary),
            "--config",
            str(path),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=ROOT,
        )
        out, err = await proc.communicate()
        text = (err.decode(errors="replace") + out.decode(errors="replace")[:500]).strip()
        if proc.returncode != 0 or not out.strip():
            return GhzOutcome(None, text[-600:], SYMBOL_NOT_FOUND in text)
        doc = json.loads(out)
        doc.pop("details", None)
        raw = self.out_dir / "raw" / f"{label}.json"
        raw.parent.mkdir(parents=True, exist_ok=True)
        raw.write_text(json.dumps(doc, indent=1))
        return GhzOutcome(parse_ghz(doc, concurrency), "")


class Hey:
    def __init__(self, binary: Path, out_dir: Path) -> None:
        self.binary = binary
        self.out_dir = out_dir

    async def run(
        self, label: str, request: dict[str, Any], base_url: str, concurrency: int, seconds: float
    ) -> GhzOutcome:
        argv = [str(self.binary), "-z", f"{seconds:g}s", "-c", str(concurrency)]
        argv += ["-m", request.get("method", "POST")]
        for name, value in request.get("headers", {}).items():
            if name.lower() == "content-type":
                argv += ["-T", value]
            else:
                argv += ["-H", f"{name}: {value}"]
        argv += ["-d", json.dumps(request["body"]), base_url + request["path"]]
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await proc.communicate()
        text = out.decode(errors="replace")
        raw = self.out_dir / "raw" / f"{label}.txt"
        raw.parent.mkdir(parents=True, exist_ok=True)
        raw.write_text(text + err.decode(errors="replace"))
        if proc.returncode != 0 or "Summary:" not in text:
            return GhzOutcome(None, (err.decode(errors="replace") or text)[-600:])
        return GhzOutcome(parse_hey(text, concurrency), "")


async def build_protoset(out: Path) -> str:
    """A descriptor set of the suite's and the echo's protos, imports included: what
    ghz uses when a server's reflection cannot resolve method names. '' or the error."""
    import grpc_tools  # type: ignore[import-untyped]

    include = Path(grpc_tools.__file__).parent / "_proto"
    protos = sorted(str(p.relative_to(ROOT / "protos")) for p in (ROOT / "protos").rglob("*.proto"))
    argv = [
        "-m",
        "grpc_tools.protoc",
        f"-I{ROOT / 'protos'}",
        f"-I{ROOT / 'bench' / 'protos'}",
        f"-I{include}",
        "--include_imports",
        f"--descriptor_set_out={out}",
        *protos,
        "echo.proto",
    ]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *argv, stderr=asyncio.subprocess.PIPE, cwd=ROOT
    )
    _, err = await proc.communicate()
    return "" if proc.returncode == 0 else err.decode(errors="replace")[-400:]
