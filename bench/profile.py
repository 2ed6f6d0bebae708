"""py-spy during a scenario: start/stop the sampler and summarise its collapsed stacks."""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

_LINE = re.compile(r":\d+\)$")


def top_frames(
    collapsed: str, limit: int = 20, by: str = "self", only: tuple[str, ...] = ()
) -> list[dict[str, Any]]:
    """Functions by self and inclusive share of the samples in py-spy's ``--format raw``
    output (one ``frame;frame;...;leaf COUNT`` line per distinct stack), line numbers
    folded into their function. Sorted by ``by`` (self | total); ``only`` keeps functions
    whose file starts with one of those prefixes (e.g. our packages)."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_LINE.sub(")", f) for f in stack.split(";")]
        total += n
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    if not total:
        return []
    board = own if by == "self" else inclusive
    names = [f for f in inclusive if not only or f.rpartition("(")[2].startswith(only)]
    ranked = sorted(names, key=lambda f: (-board[f], f))[:limit]
    return [
        {
            "frame": frame,
            "self_pct": 100.0 * own[frame] / total,
            "total_pct": 100.0 * inclusive[frame] / total,
        }
        for frame in ranked
    ]


def start_pyspy(
    py_spy: Path, pid: int, out: Path, seconds: float, fmt: str
) -> subprocess.Popen[bytes]:
    """Sample ``pid`` for ``seconds`` without pausing it (needs ptrace: root or CAP_SYS_PTRACE)."""
    log = out.with_suffix(out.suffix + ".log").open("wb")
    return subprocess.Popen(
        [
            str(py_spy),
            "record",
            "--nonblocking",
            "--pid",
            str(pid),
            "--duration",
            str(max(1, round(seconds))),
            "--rate",
            "200",
            "--format",
            fmt,
            "--output",
            str(out),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
