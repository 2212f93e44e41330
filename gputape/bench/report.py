"""Presenting results: the terminal table, comparison with an earlier run, and the plot."""

from __future__ import annotations

import io

from .timing import SLOW_SPELL, UNSTABLE, slower_p_value, unstable
from .workloads import WORKLOADS

REGRESSION = 0.15  # slower by more than this fraction counts as a regression (two runs of
#                   the same code differ by up to about 13 % on a quiet 2-core machine)
SIGNIFICANCE = 0.01  # the rank test's p-value under which a change is beyond the noise
NOISY_RUN = 0.15  # a run whose reference task varied more than this (IQR / median) is too noisy
#                  to compare with
INCONCLUSIVE = 3  # the runner's exit status when slower rows could not be judged


def _seconds(value: float) -> str:
    for unit, scale in (("s", 1), ("ms", 1e-3), ("us", 1e-6)):
        if value >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value / 1e-9:.3g} ns"


_COLUMNS = [("workload", "<18"), ("size", ">11"), ("", "2"), ("device", "<7"),
            ("framework", "<11"), ("median", ">11"), ("spread", ">10"), ("", "2"),
            ("throughput", ">18"),
            ("GB/s", ">8"), ("", "2"), ("GPU/CPU", ">12"), ("", "2"), ("peer/gputape", ">12")]
NO_GPU = "no GPU found"
_SIZED = frozenset(w.name for w in WORKLOADS if w.sized)


def format_table(report: dict) -> str:
    """One line per (workload, size, device, framework) with throughput, the GPU/CPU speed-up
    and a peer's time over gputape's; below it, once, why the GPU/CPU column is empty ("no GPU
    found", or the GPU left out), then each device's copy ceiling, when the report has one.

    Example: ``format_table({"results": []})`` is the header and its rule.
    """
    rows = report["results"]
    columns = _COLUMNS + ([("peak MB", ">9")] if any("peak_bytes" in r for r in rows) else [])
    lines = [_line(columns, [name for name, _ in columns])]
    lines.append("-" * len(lines[0]))
    ours = {(r["workload"], r["size"], r["device"]): r["median_s"]
            for r in rows if r.get("framework", "gputape") == "gputape"}
    gpu_seen = any(r["device"] != "cpu" for r in rows)
    for r in rows:
        framework = r.get("framework", "gputape")
        speedup, ratio = "", ""
        cpu = ours.get((r["workload"], r["size"], "cpu"))
        if framework == "gputape" and r["device"] != "cpu" and cpu:
            speedup = f"{cpu / r['median_s']:.1f}x"
        mine = ours.get((r["workload"], r["size"], r["device"]))
        if framework != "gputape" and mine:
            ratio = f"{r['median_s'] / mine:.2f}"
        rate = _throughput(r)
        cells = [r["workload"], f"{r['size']:,}", "", r["device"], framework,
                 _seconds(r["median_s"]), _seconds(r["spread_s"]), " !" if unstable(r) else "",
                 rate,
                 f"{r['gb_per_s']:.2f}" if "gb_per_s" in r else "", "", speedup, "", ratio]
        if len(columns) > len(_COLUMNS):
            cells.append(f"{r['peak_bytes'] / 2**20:.1f}" if "peak_bytes" in r else "")
        lines.append(_line(columns, cells))
    notes = []
    if rows and not gpu_seen:  # said once, under the table, not on every row
        no_gpu = report.get("meta", {}).get("gpu", NO_GPU) == NO_GPU
        notes.append("GPU/CPU: " + (f"{NO_GPU} (CuPy is not installed or sees no CUDA device)"
                                    if no_gpu else "not run (the GPU was left out: --devices)"))
    shaky = sum(unstable(r) for r in rows)
    if shaky:
        notes.append(f"! {shaky} row(s) unstable: spread over {UNSTABLE:.0%} of the median; read "
                     f"them with care (hint: a quieter machine, or more samples: --repeat 15)")
    retaken = sum(1 for r in rows if r.get("retakes"))
    if retaken:
        notes.append(f"{retaken} row(s) taken again: the machine was in a slow spell while they "
                     f"ran (their reference task over {SLOW_SPELL:.0%} slower than the calmest)")
    noise = report.get("meta", {}).get("noise")
    if noise:
        notes.append(f"machine noise: a fixed task ({noise['task']}) varied by "
                     f"{noise['relative_spread']:.1%} (interquartile range over "
                     f"{noise['samples']} samples); differences below that are not readable")
    return "\n".join(lines + notes + ceiling_lines(report.get("meta", {})))


def _throughput(row: dict) -> str:
    """Elements per second where the size is the element count; calls per second for a
    training step, a Hessian, a jacobian, whose "size" names the problem."""
    if row["workload"] in _SIZED:
        return f"{row['elements_per_s']:.3g} elem/s"
    return f"{1 / row['median_s']:.3g} calls/s"


def _line(columns, cells) -> str:
    return "".join(f"{cell:{align}}" for (_, align), cell in zip(columns, cells))


_COPIES = {"memcpy": "cudaMemcpy", "kernel": "copy kernel"}


def ceiling_lines(meta: dict) -> "list[str]":
    """The table's footer: each device's copy ceiling, the yardstick for the GB/s column. For a
    GPU measured both ways, both figures (the higher first: it is the ceiling), and below it the
    card's specified peak bandwidth with the ceiling's fraction of it, or "unknown".

    Example: a line ``gpu:0  2950.00 GB/s  (copy kernel 2950.00 > cudaMemcpy 2410.00 GB/s,
    256 MiB buffer)``, then ``specified peak 3350 GB/s (H100 SXM5 80GB, NVIDIA H100 datasheet):
    ceiling 88.1% of it``.
    """
    ceilings = meta.get("copy_ceiling") or {}
    if not ceilings:
        return []
    lines = ["copy ceiling (GB/s = (bytes read + bytes written) / median time of one copy):"]
    for device, c in ceilings.items():
        method = c.get("method", "").split(";")[0]
        if c.get("higher") in _COPIES:
            lower = "kernel" if c["higher"] == "memcpy" else "memcpy"
            sign = ">" if c[c["higher"]]["gb_per_s"] > c[lower]["gb_per_s"] else "="
            method = (f"{_COPIES[c['higher']]} {c[c['higher']]['gb_per_s']:.2f} {sign} "
                      f"{_COPIES[lower]} {c[lower]['gb_per_s']:.2f} GB/s")
        lines.append(f"  {device:<7}{c['gb_per_s']:>9.2f} GB/s  ({method}, "
                     f"{c['buffer_bytes'] / 2**20:.0f} MiB buffer)")
        if "peak" not in c:
            continue
        if c.get("peak_gb_per_s"):
            lines.append(f"{'':9}specified peak {c['peak_gb_per_s']:.0f} GB/s ({c['peak']}): "
                         f"ceiling {c['fraction_of_peak']:.1%} of it")
        else:
            lines.append(f"{'':9}specified peak: unknown (no entry for "
                         f"{c.get('device', 'this card')!r} in "
                         f"gputape.bench.timing.PEAK_BANDWIDTH)")
    return lines


def change_of(row: dict, before: dict, threshold: float = REGRESSION,
              machine: float = 0.0) -> dict:
    """How ``row`` compares with the same row of an earlier run: its ``change`` (a fraction,
    corrected for the machine's drift where both runs timed the reference task beside it), the
    ``noise`` (the two runs' interquartile ranges together, a share of the time before), the
    rank test's ``p`` where both rows kept their samples, the ``drift`` and a ``verdict``:

    - "ok": at most ``threshold`` slower;
    - "unsure": slower, but by no more than ``threshold + machine`` (``machine``: how much a
      busy machine's runs varied, which a change must clear as well);
    - "regression": slower than that, and beyond the noise: the samples' ranks say so (the
      one-sided Mann-Whitney test, p < :data:`SIGNIFICANCE`) or, for rows without samples,
      the change exceeds the noise;
    - "within noise": slower than that, but not beyond the noise.

    Where both runs timed the fixed reference task beside the row (CPU rows), each sample was
    divided by the reference sample taken right after it; the change is that of the medians
    of these ratios, and the rank test compares the ratios.

    Example: ``change_of({"median_s": 2.0}, {"median_s": 1.0})["verdict"] == "regression"``.
    """
    drift = 1.0
    if row.get("reference_s") and before.get("reference_s"):
        drift = row["reference_s"] / before["reference_s"]
    p = None
    if row.get("relative") and before.get("relative"):  # times in reference units
        change = row["relative"] / before["relative"] - 1
        noise = (before["relative_spread"] + row["relative_spread"]) / before["relative"]
        if row.get("samples_s") and before.get("samples_s"):
            p = slower_p_value(_ratios(before), _ratios(row))
    else:
        change = row["median_s"] / (before["median_s"] * drift) - 1
        noise = (before.get("spread_s", 0.0) + row.get("spread_s", 0.0)) / before["median_s"]
    beyond = p < SIGNIFICANCE if p is not None else change > noise
    if change <= threshold:
        verdict = "ok"
    elif change <= threshold + machine:
        verdict = "unsure"
    else:
        verdict = "regression" if beyond else "within noise"
    return {"change": change, "noise": noise, "p": p, "drift": drift, "verdict": verdict}


def _ratios(row: dict) -> list:
    return [t / r for t, r in zip(row["samples_s"], row["reference_samples_s"])]


def run_noise(report: dict) -> "float | None":
    """How much the reference task varied over a run (interquartile range over median, of all
    its samples beside the rows; the 15 samples before the run for an older file), or None
    when the run did not time it."""
    noise = report.get("meta", {}).get("noise") or {}
    return noise.get("run_spread", noise.get("relative_spread"))


def row_key(row: dict) -> tuple:
    """What identifies a row from one run to the next."""
    return row["workload"], row["size"], row["device"], row.get("framework", "gputape")


def compare(report: dict, baseline: dict, threshold: float = REGRESSION) -> "tuple[str, int]":
    """A table of time ratios against ``baseline`` and the number of regressions: rows more
    than ``threshold`` slower after the machine's drift, and beyond the noise (see
    :func:`change_of`); a slower row inside the noise is marked "within noise" and not
    counted. Rows the runner took again to confirm a change say how many times.

    When either run was noisy (its reference task varied by more than :data:`NOISY_RUN` over
    the run), a change must also clear both runs' variation of the reference task; the slower
    rows that do not are marked "unsure", and when there are such rows but no regression, the
    number returned is minus their count; a line says why.

    Example: ``compare({"results": []}, {"results": []})[1] == 0``.
    """
    noises = {"before": run_noise(baseline) or 0.0, "now": run_noise(report) or 0.0}
    noisy = [f"{name} {noise:.0%}" for name, noise in noises.items() if noise > NOISY_RUN]
    machine = sum(noises.values()) if noisy else 0.0
    old = {row_key(r): r for r in baseline["results"]}
    lines = [f"{'workload':<18}{'size':>11}  {'device':<7}{'before':>11}{'now':>11}{'drift':>8}"
             f"{'change':>9}{'noise':>9}{'p':>9}"]
    regressions = unsure = 0
    for r in report["results"]:
        before = old.get(row_key(r))
        if before is None:
            continue
        found = change_of(r, before, threshold, machine)
        regressions += found["verdict"] == "regression"
        unsure += found["verdict"] == "unsure"
        flag = {"ok": "", "regression": "  REGRESSION"}.get(found["verdict"],
                                                           f"  {found['verdict']}")
        if r.get("confirmations"):
            flag += f" (taken {r['confirmations'] + 1} times)"
        p = "" if found["p"] is None else f"{found['p']:.1g}"
        lines.append(f"{r['workload']:<18}{r['size']:>11,}  {r['device']:<7}"
                     f"{_seconds(before['median_s']):>11}{_seconds(r['median_s']):>11}"
                     f"{found['drift'] - 1:>+8.0%}{found['change']:>+9.1%}"
                     f"{found['noise']:>9.1%}{p:>9}{flag}")
    lines.append(f"(a regression: more than {threshold:.0%} slower after the machine's drift "
                 f"between the runs, in every take of the row, and beyond the noise: p, the "
                 f"rank test's chance of a change this large from noise alone, under "
                 f"{SIGNIFICANCE:g}; or, for rows without samples, more than the two runs' "
                 f"spreads together, the noise column)")
    if noisy:
        lines.append(f"a busy machine: the reference task varied by {' and '.join(noisy)} "
                     f"over the run (over {NOISY_RUN:.0%}); a change must clear that too, and "
                     f"slower rows that do not are marked unsure (hint: both runs on a quieter "
                     f"machine)")
        if unsure and not regressions:
            return "\n".join(lines), -unsure
    return "\n".join(lines), regressions


def plot(report: dict, path: str) -> None:
    """PNG, one column per sized workload: time against size on log-log axes, a line per device
    (and peer, dashed); below, for workloads whose bytes are defined, GB/s against size with each
    device's copy ceiling as a dotted horizontal line of the device's colour. The unsized
    workloads (a training step, a Hessian, ...) share a last column: time per call as bars, one
    per device and peer. Legends name each device (the CPU's or GPU's model).

    Example: ``plot(json.load(open("bench/results/latest.json")), "latest.png")``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report["results"]
    meta = report.get("meta", {})
    sized = sorted({r["workload"] for r in rows if r["workload"] in _SIZED})
    unsized = sorted({r["workload"] for r in rows if r["workload"] not in _SIZED})
    with_bytes = any("gb_per_s" in r for r in rows if r["workload"] in sized)
    columns = max(1, len(sized) + (1 if unsized else 0))
    fig, axes = plt.subplots(2 if with_bytes else 1, columns,
                             figsize=(max(4.2 * columns, 6), 7.4 if with_bytes else 4),
                             squeeze=False)
    lines = sorted({(r["device"], r.get("framework", "gputape")) for r in rows})
    colours = {line: f"C{i}" for i, line in enumerate(lines)}
    ceilings = meta.get("copy_ceiling") or {}
    devices = meta.get("devices") or {}

    def label_of(device: str, framework: str) -> str:
        name = devices.get(device)
        where = f"{device}: {name[:28]}" if name else device
        return where if framework == "gputape" else f"{framework} ({where})"

    for col, name in enumerate(sized):
        for (device, framework), colour in colours.items():
            mine = sorted((r["size"], r["median_s"], r.get("gb_per_s")) for r in rows
                          if r["workload"] == name and r["device"] == device
                          and r.get("framework", "gputape") == framework)
            if not mine:
                continue
            style = {"marker": "o", "color": colour, "label": label_of(device, framework),
                     "linestyle": "-" if framework == "gputape" else "--"}
            axes[0][col].plot([p[0] for p in mine], [p[1] for p in mine], **style)
            if with_bytes and mine[0][2] is not None:
                axes[1][col].plot([p[0] for p in mine], [p[2] for p in mine], **style)
        axes[0][col].set_title(name)
        axes[0][col].set_ylabel("median time (s)")
        if with_bytes:
            for device, ceiling in ceilings.items():
                colour = colours.get((device, "gputape"), "k")
                axes[1][col].axhline(ceiling["gb_per_s"], color=colour, linestyle=":",
                                     label=f"{device} copy ceiling "
                                           f"{ceiling['gb_per_s']:.3g} GB/s")
            axes[1][col].set_ylabel("GB/s (minimal bytes / time)")
        for ax in axes[:, col]:
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("elements")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize="small")
    if unsized:
        _bars(axes[0][-1], rows, unsized, colours, label_of)
        if with_bytes:
            axes[1][-1].axis("off")
    names = [f"{d}: {n}" for d, n in devices.items()]
    if not any(d.startswith("gpu") for d in devices):
        names.append(f"GPU: {meta.get('gpu', NO_GPU)}")
    fig.suptitle(f"gputape {meta.get('gputape', '')} | {meta.get('date', '')[:10]} | commit "
                 f"{meta.get('commit', '?')}\n" + " | ".join(names), fontsize="medium")
    fig.tight_layout()
    drawn = io.BytesIO()
    fig.savefig(drawn, format="png", dpi=80)
    plt.close(fig)
    from PIL import Image  # matplotlib's own dependency

    # a palette of 128 colours: a third of the bytes, the same picture
    drawn.seek(0)
    Image.open(drawn).convert("RGB").quantize(colors=128).save(path, format="PNG", optimize=True)


def _bars(ax, rows: list, names: list, colours: dict, label_of) -> None:
    """Time per call of each unsized workload in ``names``: a group of bars per workload, a bar
    per (device, framework) in its line's colour, on a log axis."""
    width = 0.8 / max(1, len(colours))
    for i, ((device, framework), colour) in enumerate(colours.items()):
        times = {r["workload"]: r["median_s"] for r in rows if r["workload"] in names
                 and r["device"] == device and r.get("framework", "gputape") == framework}
        if not times:
            continue
        at = [k + i * width for k, name in enumerate(names) if name in times]
        ax.bar(at, [times[name] for name in names if name in times], width=width,
               color=colour, label=label_of(device, framework),
               hatch=None if framework == "gputape" else "//")
    ax.set_xticks([k + 0.4 - width / 2 for k in range(len(names))])
    ax.set_xticklabels(names, rotation=20, fontsize="small")
    ax.set_yscale("log")
    ax.set_ylabel("median time per call (s)")
    ax.set_title("unsized workloads")
    ax.grid(True, axis="y", which="both", alpha=0.3)
    ax.legend(fontsize="small")
