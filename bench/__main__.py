"""``python -m bench``: run the workload suite on every available device and print a table.

Example: ``python -m bench --sizes small --workloads sum_xy,mlp_step --json results.json``;
``python -m bench --workloads none --distributed 2`` runs only the data-parallel benchmark
(``bench.distributed``, over 2 local MPI ranks).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys

import numpy as np

import gputape as gt

from .memory import peak_bytes
from .peers import PEERS, installed, time_peer
from .report import compare, format_table, plot
from .timing import measure
from .workloads import SIZES, WORKLOADS


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--devices", default="all",
                        help="comma-separated device names (cpu, gpu:0, ...) or 'all'")
    parser.add_argument("--sizes", type=_sizes, default="medium",
                        help="element counts for the sized workloads: "
                             + ", ".join(sorted(SIZES)) + ", or numbers such as 2e6,1e7")
    parser.add_argument("--repeat", type=int, default=7, help="timed samples per measurement")
    parser.add_argument("--workloads", default="all",
                        help="comma-separated workload names or 'all': "
                             + ", ".join(w.name for w in WORKLOADS))
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--plot", metavar="PATH", help="also draw time vs size (PNG, log-log)")
    parser.add_argument("--peers", nargs="?", const="all", default=None, metavar="NAMES",
                        help="also run the workloads in PyTorch, JAX and TensorFlow when "
                             "installed (or only the comma-separated NAMES: torch,jax,tensorflow)")
    parser.add_argument("--memory", action="store_true",
                        help="also measure the peak memory of one call on the CPU (Linux; one "
                             "fresh process per workload and framework)")
    parser.add_argument("--distributed", type=int, default=0, metavar="RANKS",
                        help="also run bench.distributed (allreduce and a data-parallel step) "
                             "over RANKS local MPI ranks with mpiexec; its results go under "
                             "'distributed' in the JSON (skipped, saying why, without mpi4py or "
                             "mpiexec)")
    parser.add_argument("--compare", metavar="PATH",
                        help="compare with an earlier --json file; exit 1 on a >10%% regression")
    args = parser.parse_args(argv)
    if args.distributed < 0:
        parser.error(f"--distributed {args.distributed}: give a number of ranks (0: off)")
    return args


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


def _devices(spec: str) -> "list[str]":
    available = [d.name for d in gt.list_devices()]
    if spec == "all":
        return available
    chosen = []
    for name in (s.strip() for s in spec.split(",") if s.strip()):
        if gt.Device(name) in [gt.Device(a) for a in available]:
            chosen.append(gt.Device(name).name)
        elif name.startswith("gpu"):
            print(f"bench: {name}: no GPU found, skipped")
        else:
            raise SystemExit(f"bench: unknown device {name!r}; available: {available}")
    return chosen


def run(args) -> dict:
    devices = _devices(args.devices)
    has_gpu = any(d.startswith("gpu") for d in devices)
    chosen = [w for w in WORKLOADS
              if args.workloads == "all" or w.name in args.workloads.split(",")]
    rng = np.random.default_rng(0)
    plan = [(w, size, device) for w in chosen
            for size in (args.sizes if w.sized else [w.fixed_size]) for device in devices]
    rows = []
    for workload, size, device in _progress(plan):
        timing = measure(workload.build(size, device, rng), device, repeat=args.repeat)
        rows.append(_row(workload, size, device, "gputape", timing.median_s, timing.spread_s,
                         timing.repeats))
    for name in installed(args.peers) if args.peers else []:
        triples = [(w.name, size, device) for w, size, device in plan]
        for timed in time_peer(name, triples, args.repeat):
            workload = next(w for w in chosen if w.name == timed["workload"])
            rows.append(_row(workload, timed["size"], timed["device"], name, timed["median_s"],
                             timed["spread_s"], timed["repeats"]))
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
    meta = _meta(has_gpu)
    if args.peers:
        meta["peers"] = _versions(installed(args.peers))
    report = {"meta": meta, "results": rows}
    if getattr(args, "distributed", 0):
        from .distributed import spawn

        report["distributed"] = spawn(args.distributed, repeat=args.repeat)
    return report


def _row(workload, size, device, framework, median_s, spread_s, repeats) -> dict:
    row = {"workload": workload.name, "size": size, "device": device, "framework": framework,
           "median_s": median_s, "spread_s": spread_s, "repeats": repeats,
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
    return tqdm(plan, desc="bench", unit="run", leave=False)


def _commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=10, cwd=os.path.dirname(os.path.abspath(__file__)))
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _versions(names: "list[str]") -> dict:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in names:
        for dist in (name, f"{name}-cpu"):
            try:
                found[name] = version(dist)
                break
            except PackageNotFoundError:
                continue
    return found


def _meta(has_gpu: bool) -> dict:
    meta = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "python": platform.python_version(), "numpy": np.__version__,
            "gputape": gt.__version__, "machine": platform.machine(),
            "cpu_count": os.cpu_count(), "cpu": _cpu_name(), "commit": _commit(),
            "gpu": "no GPU found"}
    if has_gpu:
        import cupy

        props = cupy.cuda.runtime.getDeviceProperties(0)
        meta["gpu"] = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
        meta["cupy"] = cupy.__version__
        meta["cuda_driver"] = cupy.cuda.runtime.driverGetVersion()
    return meta


def main(argv=None) -> int:
    args = parse_args(argv)
    report = run(args)
    print(f"gputape {report['meta']['gputape']} | GPU: {report['meta']['gpu']}")
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
    if args.compare:
        with open(args.compare) as fh:
            table, regressions = compare(report, json.load(fh))
        print(table)
        if regressions:
            print(f"{regressions} regression(s) over 10% against {args.compare}")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
