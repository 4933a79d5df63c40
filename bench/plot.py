"""The run's picture (``bench.png``): end-to-end authorization latency percentiles per rate, and
answered payments per second over time at each rate, with the targets drawn in.

matplotlib with the headless ``Agg`` backend (no display needed); imported only when a run
writes its plot.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

PERCENTILES = (("p50_ms", "p50"), ("p95_ms", "p95"), ("p99_ms", "p99"), ("max_ms", "max"))


def plot(endtoend: dict[str, Any] | None, path: Path, title: str) -> None:
    """Write the PNG; without end-to-end figures it says so instead of plotting."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (latency_axes, rate_axes) = plt.subplots(1, 2, figsize=(13, 5))
    figure.suptitle(title, fontsize=10)
    steps = (endtoend or {}).get("steps") or []
    if not steps:
        for axes in (latency_axes, rate_axes):
            axes.text(0.5, 0.5, "end-to-end benchmark not in this run", ha="center",
                      va="center", transform=axes.transAxes)
            axes.set_axis_off()
    else:
        _latency(latency_axes, steps)
        _throughput(rate_axes, steps)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _latency(axes: Any, steps: list[dict[str, Any]]) -> None:
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    rates = [step["rate_per_second"] for step in steps]
    for key, label in PERCENTILES:
        values = [step["latency"].get(key) for step in steps]
        points = [(r, v) for r, v in zip(rates, values, strict=True) if v is not None]
        if points:
            axes.plot(*zip(*points, strict=True), marker="o", label=label)
    axes.axhline(250, color="green", linestyle=":", label="250 ms target")
    axes.axhline(2000, color="red", linestyle=":", label="2 s target")
    axes.set_yscale("log")
    axes.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _position: f"{value:,.0f}"))
    axes.yaxis.set_minor_formatter(NullFormatter())
    axes.set_xticks(rates)
    axes.set_xlabel("offered rate (payments/s, open loop)")
    axes.set_ylabel("authorization latency (ms, from scheduled send)")
    axes.set_title("Authorization latency per rate")
    axes.legend(fontsize=8)
    axes.grid(True, which="both", alpha=0.3)


def _throughput(axes: Any, steps: list[dict[str, Any]]) -> None:
    for step in steps:
        series = step["answered_per_second_series"]
        line = axes.plot(range(len(series)), series,
                         label=f"{step['rate_per_second']:g}/s offered: 201/202")[0]
        refused = step.get("shed_or_failed_per_second_series") or []
        if any(refused):
            axes.plot(range(len(refused)), refused, color=line.get_color(), linestyle="--",
                      linewidth=0.8, label=f"{step['rate_per_second']:g}/s: shed or failed")
        axes.axhline(step["rate_per_second"], color=line.get_color(), linestyle=":",
                     alpha=0.6)
    axes.set_xlabel("seconds from the start of the rate's schedule")
    axes.set_ylabel("answers per second (dotted: offered rate)")
    axes.set_title("Throughput over time")
    axes.legend(fontsize=8)
    axes.grid(True, alpha=0.3)
