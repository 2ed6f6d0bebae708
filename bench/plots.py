"""PNG plots of a run: ``python -m bench.plots RESULTS_DIR`` (run with the bench venv,
which has matplotlib). Reads summary.json, writes latency.png and throughput.png and
prints their names, one a line."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

from bench.summary import PERCENTILES, Scenario


def _with_runs(summary: dict[str, Any]) -> list[Scenario]:
    scenarios = [Scenario.from_dict(s) for s in summary.get("scenarios", [])]
    return [s for s in scenarios if s.runs]


def _pyplot() -> Any:
    """matplotlib's pyplot, headless; matplotlib is in the bench venv only."""
    import matplotlib  # type: ignore[import-not-found]

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # type: ignore[import-not-found]

    return plt


def latency_plot(scenarios: list[Scenario], path: Path) -> None:
    plt = _pyplot()
    cols = 3
    rows = max(1, math.ceil(len(scenarios) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.4 * rows), squeeze=False)
    width = 0.27
    for ax, scenario in zip(axes.flat, scenarios, strict=False):
        xs = range(len(scenario.runs))
        for i, pct in enumerate(PERCENTILES):
            values = [r.latency_ms.get(pct, 0.0) for r in scenario.runs]
            ax.bar([x + (i - 1) * width for x in xs], values, width, label=pct)
        ax.set_xticks(list(xs), [f"c={r.concurrency}" for r in scenario.runs])
        ax.set_title(f"{scenario.title} [{scenario.status}]", fontsize=9)
        ax.set_ylabel("ms")
        ax.grid(axis="y", alpha=0.3)
    for ax in list(axes.flat)[len(scenarios) :]:
        ax.axis("off")
    if scenarios:
        axes.flat[0].legend(fontsize=8)
    fig.suptitle("Latency percentiles per scenario (ms)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def throughput_plot(scenarios: list[Scenario], path: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(11, 5.5))
    concurrencies: set[int] = set()
    for scenario in scenarios:
        runs = [r for r in scenario.runs if r.ok_rps > 0]
        concurrencies.update(r.concurrency for r in runs)
        if runs:
            style = "--" if scenario.tool == "hey" else "-"
            ax.plot(
                [r.concurrency for r in runs],
                [r.ok_rps for r in runs],
                style,
                marker="o",
                label=scenario.title,
            )
    ax.set_xscale("log", base=2)
    ticks = sorted(concurrencies)
    ax.set_xticks(ticks, [str(c) for c in ticks])
    ax.set_yscale("log")
    ax.set_xlabel("concurrency")
    ax.set_ylabel("successful requests/s (log)")
    ax.set_title("Throughput against concurrency")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main() -> None:
    folder = Path(sys.argv[1])
    summary = json.loads((folder / "summary.json").read_text())
    scenarios = _with_runs(summary)
    latency_plot(scenarios, folder / "latency.png")
    throughput_plot(scenarios, folder / "throughput.png")
    print("latency.png\nthroughput.png")


if __name__ == "__main__":
    main()
