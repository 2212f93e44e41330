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
    header = (f"{'workload':<18}{'size':>11}  {'device':<7}{'framework':<11}{'median':>11}"
              f"{'spread':>10}{'elem/s':>11}{'GB/s':>8}  {'GPU/CPU':>7}  {'peer/gputape':>12}"
              + (f"{'peak MB':>9}" if any("peak_bytes" in r for r in rows) else ""))
    lines = [header, "-" * len(header)]
    ours = {(r["workload"], r["size"], r["device"]): r["median_s"]
            for r in rows if r.get("framework", "gputape") == "gputape"}
    gpu_seen = any(r["device"] != "cpu" for r in rows)
    for r in rows:
        framework = r.get("framework", "gputape")
        speedup, ratio = "", ""
        cpu = ours.get((r["workload"], r["size"], "cpu"))
        if framework == "gputape" and r["device"] != "cpu" and cpu:
            speedup = f"{cpu / r['median_s']:.1f}x"
        elif framework == "gputape" and not gpu_seen:
            speedup = "no GPU found"
        mine = ours.get((r["workload"], r["size"], r["device"]))
        if framework != "gputape" and mine:
            ratio = f"{r['median_s'] / mine:.2f}"
        gbs = f"{r['gb_per_s']:.2f}" if "gb_per_s" in r else ""
        peak = f"{r['peak_bytes'] / 2**20:>9.1f}" if "peak_bytes" in r else ""
        lines.append(f"{r['workload']:<18}{r['size']:>11,}  {r['device']:<7}{framework:<11}"
                     f"{_seconds(r['median_s']):>11}{_seconds(r['spread_s']):>10}"
                     f"{r['elements_per_s']:>11.3g}{gbs:>8}  {speedup:>7}  {ratio:>12}{peak}")
    return "\n".join(lines)


def compare(report: dict, baseline: dict, threshold: float = REGRESSION) -> "tuple[str, int]":
    """A table of time ratios against ``baseline`` and the number of regressions (> threshold)."""
    def key_of(r):
        return r["workload"], r["size"], r["device"], r.get("framework", "gputape")

    old = {key_of(r): r["median_s"] for r in baseline["results"]}
    lines = [f"{'workload':<18}{'size':>11}  {'device':<7}{'before':>11}{'now':>11}{'change':>9}"]
    regressions = 0
    for r in report["results"]:
        key = key_of(r)
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
        lines = sorted({(r["device"], r.get("framework", "gputape")) for r in rows})
        for device, framework in lines:
            points = sorted((r["size"], r["median_s"]) for r in rows
                            if r["workload"] == name and r["device"] == device
                            and r.get("framework", "gputape") == framework)
            if points:
                label = device if framework == "gputape" else f"{framework} ({device})"
                ax.plot(*zip(*points), marker="o", label=label,
                        linestyle="-" if framework == "gputape" else "--")
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
