"""Presenting results: the terminal table, comparison with an earlier run, and the plot."""

from __future__ import annotations

REGRESSION = 0.10  # slower by more than this fraction counts as a regression


def _seconds(value: float) -> str:
    for unit, scale in (("s", 1), ("ms", 1e-3), ("us", 1e-6)):
        if value >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value / 1e-9:.3g} ns"


def format_table(report: dict) -> str:
    """One line per (workload, size, device) with throughput and the GPU/CPU speed-up."""
    rows = report["results"]
    header = (f"{'workload':<18}{'size':>11}  {'device':<7}{'median':>11}{'spread':>10}"
              f"{'elem/s':>11}{'GB/s':>8}{'GPU/CPU':>9}")
    lines = [header, "-" * len(header)]
    cpu_time = {(r["workload"], r["size"]): r["median_s"] for r in rows if r["device"] == "cpu"}
    gpu_seen = any(r["device"] != "cpu" for r in rows)
    for r in rows:
        speedup = ""
        if r["device"] != "cpu" and (r["workload"], r["size"]) in cpu_time:
            speedup = f"{cpu_time[(r['workload'], r['size'])] / r['median_s']:.1f}x"
        elif r["device"] == "cpu" and not gpu_seen:
            speedup = "no GPU found"
        gbs = f"{r['gb_per_s']:.2f}" if "gb_per_s" in r else ""
        lines.append(f"{r['workload']:<18}{r['size']:>11,}  {r['device']:<7}"
                     f"{_seconds(r['median_s']):>11}{_seconds(r['spread_s']):>10}"
                     f"{r['elements_per_s']:>11.3g}{gbs:>8}  {speedup:>7}")
    return "\n".join(lines)


def compare(report: dict, baseline: dict, threshold: float = REGRESSION) -> "tuple[str, int]":
    """A table of time ratios against ``baseline`` and the number of regressions (> threshold)."""
    old = {(r["workload"], r["size"], r["device"]): r["median_s"] for r in baseline["results"]}
    lines = [f"{'workload':<18}{'size':>11}  {'device':<7}{'before':>11}{'now':>11}{'change':>9}"]
    regressions = 0
    for r in report["results"]:
        key = (r["workload"], r["size"], r["device"])
        if key not in old:
            continue
        change = r["median_s"] / old[key] - 1
        flag = ""
        if change > threshold:
            regressions += 1
            flag = "  REGRESSION"
        lines.append(f"{r['workload']:<18}{r['size']:>11,}  {r['device']:<7}"
                     f"{_seconds(old[key]):>11}{_seconds(r['median_s']):>11}"
                     f"{change:>+9.1%}{flag}")
    return "\n".join(lines), regressions


def plot(report: dict, path: str) -> None:
    """PNG: time against size on log-log axes, one panel per sized workload, a line per device."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report["results"]
    sized = sorted({r["workload"] for r in rows
                    if len({x["size"] for x in rows if x["workload"] == r["workload"]}) > 1})
    if not sized:
        sized = sorted({r["workload"] for r in rows})
    fig, axes = plt.subplots(1, len(sized), figsize=(4.5 * len(sized), 3.8), squeeze=False)
    for ax, name in zip(axes[0], sized):
        for device in sorted({r["device"] for r in rows}):
            points = sorted((r["size"], r["median_s"]) for r in rows
                            if r["workload"] == name and r["device"] == device)
            if points:
                ax.plot(*zip(*points), marker="o", label=device)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(name)
        ax.set_xlabel("elements")
        ax.set_ylabel("median time (s)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.suptitle(f"gputape {report['meta'].get('gputape', '')} | GPU: {report['meta']['gpu']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
