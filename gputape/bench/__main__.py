"""``gputape-bench``: run the workload suite on every available device and print a table.

Also ``python -m gputape.bench``, and ``python -m bench`` in a checkout.
Example: ``gputape-bench --sizes small --workloads sum_xy,mlp_step --json results.json``;
``gputape-bench --workloads none --distributed 2`` runs only the data-parallel benchmark
(``gputape.bench.distributed``, over 2 local MPI ranks).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import sys

import numpy as np

import gputape as gt

from .memory import peak_bytes
from .meta import meta as run_meta
from .meta import versions
from .peers import PEERS, PeerProcess, installed, requested
from .report import INCONCLUSIVE, REGRESSION, change_of, compare, format_table, plot, row_key
from .timing import (
    SLOW_SPELL,
    Sampler,
    copy_ceiling,
    cpu_ceiling_bytes,
    machine_noise,
    reference_task,
    summarize,
    unstable,
)
from .workloads import SIZES, WORKLOADS


def parse_args(argv=None) -> argparse.Namespace:
    """The runner's options, checked: a bad value ends in argparse's usage error (exit 2) that
    names the option, the value and what would do. ``--compare``'s file is read here and the
    folders of ``--json`` and ``--plot`` are made, so that nothing fails after a long run.

    Example: ``parse_args(["--sizes", "small"]).repeat == 7``.
    """
    parser = argparse.ArgumentParser(prog="gputape-bench", description=__doc__.splitlines()[0])
    parser.add_argument("--devices", default="all",
                        help="comma-separated device names (cpu, gpu:0, ...) or 'all'")
    parser.add_argument("--sizes", type=_sizes, default="medium",
                        help="element counts for the sized workloads: "
                             + ", ".join(sorted(SIZES)) + ", or numbers such as 2e6,1e7")
    parser.add_argument("--repeat", type=_repeat, default=7,
                        help="timed samples per measurement (at least 1; default 7)")
    parser.add_argument("--workloads", default="all",
                        help="comma-separated workload names, 'all' or 'none': "
                             + ", ".join(w.name for w in WORKLOADS))
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--plot", metavar="PATH",
                        help="also draw time and GB/s against size (PNG, log-log; needs "
                             "matplotlib)")
    parser.add_argument("--peers", nargs="?", const="all", default=None, metavar="NAMES",
                        help="also run the workloads in PyTorch, JAX, TensorFlow and HIPS "
                             "autograd when installed (or only the comma-separated NAMES: "
                             + ",".join(PEERS) + ")")
    parser.add_argument("--memory", action="store_true",
                        help="also measure the peak memory of one call on the CPU (Linux; one "
                             "fresh process per workload and framework)")
    parser.add_argument("--distributed", type=int, default=0, metavar="RANKS",
                        help="also run gputape.bench.distributed (allreduce and a data-parallel "
                             "step) over RANKS local MPI ranks with mpiexec; its results go under "
                             "'distributed' in the JSON (skipped, saying why, without mpi4py or "
                             "mpiexec)")
    parser.add_argument("--compare", metavar="PATH",
                        help="compare with an earlier --json file; exit 1 on a regression "
                             "(>15%% slower in every take, and beyond the noise by a rank "
                             "test), 3 when slower rows could not be judged (a noisy run)")
    args = parser.parse_args(argv)
    if args.distributed < 0:
        parser.error(f"--distributed {args.distributed}: give a number of ranks (0: off)")
    args.workloads = _workload_names(args.workloads, parser)
    args.devices = _device_names(args.devices, parser)
    if args.peers:
        try:
            requested(args.peers)
        except SystemExit as exc:
            parser.error(f"--peers {args.peers}: {str(exc).removeprefix('bench: ')}")
    if args.plot and importlib.util.find_spec("matplotlib") is None:
        parser.error(f"--plot {args.plot}: needs matplotlib; hint: pip install 'gputape[bench]'")
    args.baseline = _baseline(args.compare, parser) if args.compare else None
    if args.plot and not args.workloads:
        parser.error(f"--plot {args.plot}: nothing to draw with --workloads none; hint: name "
                     f"a workload, or leave --plot out")
    _check_memory(args, parser)
    for option, path in (("--json", args.json), ("--plot", args.plot)):
        folder = os.path.dirname(os.path.abspath(path)) if path else None
        try:
            if folder:
                os.makedirs(folder, exist_ok=True)
        except OSError as exc:
            parser.error(f"{option} {path}: cannot make its folder {folder} ({exc.strerror})")
        if path:
            _check_writable(option, path, parser)
    return args


# The most bytes per element a sized workload holds at once (inputs, results, gradients and
# their temporaries in float32), with room to spare: the check refuses sizes that cannot fit.
_PEAK_BYTES_PER_ELEMENT = 64


def _check_memory(args, parser) -> None:
    """Refuse sizes whose arrays cannot fit in the memory free now, before anything runs."""
    sized = [w for w in WORKLOADS if w.name in args.workloads and w.sized]
    if not sized:
        return
    largest = max(args.sizes)
    need = largest * _PEAK_BYTES_PER_ELEMENT
    free = _free_host_memory()
    if free is not None and need > free:
        parser.error(
            f"--sizes {largest:.3g}: the sized workloads need about {need / 2**30:.1f} GiB "
            f"({_PEAK_BYTES_PER_ELEMENT} bytes per element), and {free / 2**30:.1f} GiB of "
            f"memory is free; hint: at most --sizes {free // _PEAK_BYTES_PER_ELEMENT:.2g}")


def _free_host_memory() -> "int | None":
    """Bytes of memory available now (Linux's MemAvailable), or None where unknown."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _check_writable(option: str, path: str, parser) -> None:
    """Refuse an output path that cannot be written, before the run rather than after it."""
    existed = os.path.exists(path)
    try:
        with open(path, "a"):
            pass
    except OSError as exc:
        parser.error(f"{option} {path}: cannot write it ({exc.strerror}); hint: give a path "
                     f"in a folder you can write to")
    if not existed:
        with contextlib.suppress(OSError):
            os.remove(path)


def _sizes(spec: str) -> "list[int]":
    if spec in SIZES:
        return SIZES[spec]
    try:
        sizes = [int(float(part)) for part in spec.split(",") if part.strip()]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(
            f"{spec!r}: give one of {', '.join(sorted(SIZES))} or positive element counts "
            f"such as 2e6,1e7")
    return sizes


def _repeat(spec: str) -> int:
    try:
        value = int(spec)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{spec!r}: give a whole number of samples, at least 1")
    return value


def _workload_names(spec: str, parser) -> "list[str]":
    if spec == "all":
        return [w.name for w in WORKLOADS]
    if spec == "none":
        return []
    names = [part.strip() for part in spec.split(",") if part.strip()]
    known = [w.name for w in WORKLOADS]
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        parser.error(f"--workloads {spec}: no workload named {', '.join(unknown) or spec!r}; "
                     f"choose from {', '.join(known)} (or 'all', 'none')")
    return names


def _device_names(spec: str, parser) -> "list[str]":
    if spec == "all":
        return ["all"]
    names = []
    for part in (s.strip() for s in spec.split(",") if s.strip()):
        try:
            names.append(gt.Device(part).name)
        except gt.DeviceError:
            parser.error(f"--devices {spec}: no device kind {part!r}; give cpu, gpu, gpu:N or "
                         f"all (this machine: {', '.join(d.name for d in gt.list_devices())})")
    if not names:
        parser.error(f"--devices {spec!r}: give cpu, gpu, gpu:N or all")
    return names


def _baseline(path: str, parser) -> dict:
    try:
        with open(path) as fh:
            baseline = json.load(fh)
    except OSError as exc:
        parser.error(f"--compare {path}: cannot read it ({exc.strerror}); give a file that an "
                     f"earlier run wrote with --json")
    except ValueError as exc:
        parser.error(f"--compare {path}: not JSON ({exc}); give a file that an earlier run "
                     f"wrote with --json")
    if not isinstance(baseline, dict) or not isinstance(baseline.get("results"), list):
        parser.error(f"--compare {path}: no 'results' list in it; give a file that an earlier "
                     f"run wrote with --json")
    return baseline


def _note(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr)


def _devices(names: "list[str]") -> "list[str]":
    """The devices to run on: those of ``names`` that exist here (a note for each that does
    not); every one for ``["all"]``."""
    available = [d.name for d in gt.list_devices()]
    if names == ["all"]:
        return available
    chosen = []
    for name in names:
        if name in available:
            if name not in chosen:
                chosen.append(name)
        elif name.startswith("gpu") and not any(a.startswith("gpu") for a in available):
            _note(f"{name}: no GPU found (CuPy is not installed or sees no CUDA device); "
                  f"skipped, available: {', '.join(available)}")
        else:
            _note(f"{name}: no such device here; skipped, available: {', '.join(available)}")
    return chosen


def run(args) -> dict:
    """Measure what ``args`` asks for; the report that ``--json`` writes.

    Example: ``run(parse_args(["--workloads", "none"]))["results"] == []``.
    """
    chosen = [w for w in WORKLOADS if w.name in args.workloads]
    devices = _devices(args.devices)
    if chosen and not devices:
        raise SystemExit(f"bench: none of the requested devices ({', '.join(args.devices)}) is "
                         f"available here, nothing to run; available: "
                         f"{', '.join(d.name for d in gt.list_devices())}")
    rng = np.random.default_rng(0)
    plan = [(w, size, device) for w in chosen
            for size in (args.sizes if w.sized else [w.fixed_size]) for device in devices]
    meta = run_meta(any(d.name.startswith("gpu") for d in gt.list_devices()), devices)
    if plan:  # first, so that the workloads' GB/s can be read against it
        meta["noise"] = machine_noise()
        largest = max([size for w, size, _ in plan if w.sized], default=0)
        meta["copy_ceiling"] = {
            device: copy_ceiling(device, cpu_ceiling_bytes(largest) if device == "cpu" else None,
                                 repeat=args.repeat)
            for device in devices}
    rows = []
    peers = _peers(args.peers) if args.peers else []
    processes = [PeerProcess(name) for name in peers]
    reference = Sampler(reference_task(), "cpu", min_time_s=0.002) if plan else None
    try:
        taken = [_interleaved(*item, rng, args.repeat, processes, reference)
                 for item in _progress(plan)]
        _second_takes(plan, taken, rng, args.repeat, processes, reference)
        _retake_slow_spells(plan, taken, rng, args.repeat, processes, reference)
        if getattr(args, "baseline", None) is not None:
            _confirm_changes(plan, taken, args.baseline, rng, args.repeat, processes, reference)
        rows = [row for found in taken for row in found]
    finally:
        for process in processes:
            process.close()
    order = {(w.name, size, device): i for i, (w, size, device) in enumerate(plan)}
    frameworks = ["gputape", *PEERS]
    rows.sort(key=lambda r: (order[(r["workload"], r["size"], r["device"])],
                             frameworks.index(r["framework"])))
    if args.memory:
        for row in rows:
            if row["device"] == "cpu":
                peak = peak_bytes(row["framework"], row["workload"], row["size"])
                if peak is not None:
                    row["peak_bytes"] = peak
    for row in rows:  # (the table marks them; so does the JSON)
        row["unstable"] = unstable(row)
    if args.peers:
        meta["peers"] = versions(peers)
    references = [t for row in rows for t in row.get("reference_samples_s", ())]
    if len(references) >= 4:  # how steady the machine was over the whole run
        run_noise = summarize(references, 1, "host")
        meta["noise"]["run_spread"] = run_noise.spread_s / run_noise.median_s
    report = {"meta": meta, "results": rows}
    if getattr(args, "distributed", 0):
        from .distributed import spawn

        report["distributed"] = spawn(args.distributed, repeat=args.repeat)
    return report


RETAKES = 2  # at most this many more attempts at a row measured in a slow spell


def _second_takes(plan: list, taken: list, rng, repeat: int, processes: list,
                  reference) -> None:
    """Every CPU row taken a second time once the whole plan has run, keeping, in place, the
    take with the lower relative time (the row's samples over the reference beside them): the
    two takes lie the length of a run apart, so a spell of the machine that slowed the
    workload more than the reference (which the relative time cannot cancel) rarely hits both.
    Both runs of a comparison keep their better take, so neither is favoured."""
    for i, item in enumerate(plan):
        if taken[i][0].get("relative") is None:
            continue  # (a GPU row: CUDA events time it, and no reference runs beside it)
        again = _interleaved(*item, rng, repeat, processes, reference)
        if again[0]["relative"] < taken[i][0]["relative"]:
            taken[i] = again


def _retake_slow_spells(plan: list, taken: list, rng, repeat: int, processes: list,
                        reference) -> None:
    """Take again, in place, the CPU rows of ``taken`` (the rows of each ``(workload, size,
    device)`` of ``plan``) whose reference task ran more than :data:`SLOW_SPELL` slower than
    the calmest reference of the run: they were measured in a slow spell of the machine, which
    would hide a regression from a later ``--compare`` (a spell need not slow the reference as
    much as the workload). At most :data:`RETAKES` rounds, once the run's calm level is known;
    each row keeps its attempt with the fastest reference and says in ``retakes`` how many it
    took."""
    def reference_of(i):
        return taken[i][0].get("reference_s") or 0.0

    for _ in range(RETAKES):
        known = [reference_of(i) for i in range(len(plan)) if reference_of(i)]
        if not known:
            return
        calm = min(known)
        slow = [i for i in range(len(plan)) if reference_of(i) > calm * (1 + SLOW_SPELL)]
        if not slow:
            return
        for i in slow:
            again = _interleaved(*plan[i], rng, repeat, processes, reference)
            again[0]["retakes"] = taken[i][0].get("retakes", 0) + 1
            if reference_of(i) <= again[0]["reference_s"]:  # the first attempt was calmer
                taken[i][0]["retakes"] = again[0]["retakes"]
            else:
                taken[i] = again


def _confirm_changes(plan: list, taken: list, baseline: dict, rng, repeat: int,
                     processes: list, reference) -> None:
    """Take again (at most :data:`RETAKES` times) each row that is slower than the same row of
    ``baseline`` (a regression, or a change within the noise), in place: a row is a regression
    only when no take of it comes out "ok". The row kept is the first take found "ok", else
    the regression (or, failing that, the change within the noise) of the smallest change;
    ``confirmations`` says how many more takes it had."""
    before = {row_key(r): r for r in baseline["results"]}
    rank = {"ok": 0, "regression": 1, "unsure": 2, "within noise": 3}
    for i, item in enumerate(plan):
        old = before.get(row_key(taken[i][0]))
        if old is None:
            continue
        best = change_of(taken[i][0], old)
        confirmations = 0
        while best["verdict"] != "ok" and confirmations < RETAKES:
            again = _interleaved(*item, rng, repeat, processes, reference)
            confirmations += 1
            found = change_of(again[0], old)
            if (rank[found["verdict"]], found["change"]) < (rank[best["verdict"]], best["change"]):
                best, taken[i] = found, again
        if confirmations:
            taken[i][0]["confirmations"] = confirmations


def _interleaved(workload, size: int, device: str, rng, repeat: int, processes: list,
                 reference=None) -> list:
    """One row for gputape and one per peer: their samples taken in turn (A B A B), so that a
    machine growing busier or quieter during the row shifts them all alike. On the CPU a
    sample of the fixed ``reference`` task goes with each (the row's ``reference_s``: how fast
    the machine was during the row); the median of each sample over its reference sample is the
    row's ``relative`` time (its spread ``relative_spread``), which ``--compare`` compares."""
    take = Sampler(workload.build(size, device, rng), device)
    ours: list = []
    references: list = []
    theirs: dict = {process.name: [] for process in processes}
    loops: dict = {}
    for _ in range(repeat):
        ours.append(take())
        if reference is not None and device == "cpu":
            references.append(reference())
        for process in processes:
            found = process.sample(workload.name, size, device)
            if found is not None:
                theirs[process.name].append(found[0])
                loops[process.name] = found[1]
    timing = take.summary(ours)
    rows = [_row(workload, size, device, "gputape", timing.median_s, timing.spread_s,
                 timing.repeats, timing.loops)]
    if references:  # each sample over the reference taken right after it: drift cancels
        rows[0]["reference_s"] = summarize(references, reference.loops, "host").median_s
        relative = summarize([t / r for t, r in zip(ours, references)], 1, "host")
        rows[0]["samples_s"], rows[0]["reference_samples_s"] = ours, references
        rows[0]["relative"], rows[0]["relative_spread"] = relative.median_s, relative.spread_s
    for name, samples in theirs.items():
        if samples:
            peer = summarize(samples, loops[name], "host")
            rows.append(_row(workload, size, device, name, peer.median_s, peer.spread_s,
                             peer.repeats, peer.loops))
    return rows


def _peers(names: str) -> "list[str]":
    """The requested peers that are installed; one note names those that are not."""
    have = installed(names)
    missing = [name for name in requested(names) if name not in have]
    if missing:
        _note(f"not installed, skipped: {', '.join(missing)} "
              f"(pip install {' '.join(PEERS[n][0] for n in missing)})")
    return have


def _row(workload, size, device, framework, median_s, spread_s, repeats, loops) -> dict:
    row = {"workload": workload.name, "size": size, "device": device, "framework": framework,
           "median_s": median_s, "spread_s": spread_s, "repeats": repeats, "loops": loops,
           "elements_per_s": size / median_s}
    if workload.bytes_per_element:
        row["gb_per_s"] = size * workload.bytes_per_element / median_s / 1e9
    return row


def _progress(plan: list):
    """``plan`` wrapped in a progress bar on a terminal (tqdm, when installed); plain otherwise."""
    if not sys.stderr.isatty():
        return plan
    try:
        from tqdm import tqdm
    except ImportError:
        return plan
    bar = tqdm(plan, desc="bench", unit="run", leave=False, file=sys.stderr)

    def named():  # the bar names what runs now: "bench sum_xy 1,000,000 gpu:0"
        for item in bar:
            bar.set_description(f"bench {_label(item)}", refresh=True)
            yield item

    return named()


def _label(item) -> str:
    parts = item if isinstance(item, tuple) else (item,)
    return " ".join(getattr(p, "name", f"{p:,}" if isinstance(p, int) else str(p))
                    for p in parts)



def main(argv=None) -> int:
    """Run the benchmark from the command line; 1 when ``--compare`` finds a regression, 3
    when it finds slower rows that a machine this noisy does not let it judge.

    Example: ``main(["--workloads", "sum_xy", "--sizes", "1e3", "--devices", "cpu"])`` prints
    a table and returns 0.
    """
    args = parse_args(argv)
    report = run(args)
    meta = report["meta"]
    print(f"gputape {meta['gputape']} | CPU: {meta['cpu']} | GPU: {meta['gpu']} | "
          f"{meta['date']} | commit {meta['commit']}")
    print(format_table(report))
    if "results" in report.get("distributed", {}):
        from .distributed import format_report

        print(format_report(report["distributed"]))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=2)
        print(f"wrote {args.json}")
    if args.plot:
        plot(report, args.plot)
        print(f"wrote {args.plot}")
    if args.baseline is not None:
        table, regressions = compare(report, args.baseline)
        print(table)
        if regressions > 0:
            print(f"{regressions} regression(s) over {REGRESSION:.0%} and beyond the noise "
                  f"against {args.compare}")
            return 1
        if regressions < 0:
            print(f"{-regressions} row(s) slower than in {args.compare} could not be judged "
                  f"on a machine this busy")
            return INCONCLUSIVE
    return 0


if __name__ == "__main__":
    sys.exit(main())
