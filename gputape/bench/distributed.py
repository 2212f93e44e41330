"""Data-parallel costs over local MPI ranks: allreduce bandwidth and a data-parallel step.

Workloads: the allreduce of one large tensor and of many small tensors (bucketed, unbucketed,
and raw mpi4py calls as the floor), and a data-parallel MLP step against the single-process
step on the full batch and on one rank's shard.

Usage: ``mpiexec -n 2 python -m gputape.bench.distributed [--json PATH] [--repeat N]
[--quick]``; rank 0 prints the table and writes the JSON. The runner starts it with
``gputape-bench --distributed 2`` (see :func:`spawn`), skipping, with the reason, without
mpi4py or mpiexec.

Timing: warm-up calls excluded; a barrier before every timed repeat; a repeat loops the call
until it lasts ``--min-time`` (the same loop count on every rank) and is timed with
``time.perf_counter``; the time of a repeat is the slowest rank's; the median and interquartile
range over repeats are reported. Bandwidth: ``gb_per_s`` is the algorithm bandwidth, tensor
bytes / time; ``bus_gb_per_s`` is NCCL-tests' bus bandwidth, 2(n-1)/n x bytes / time (what
each rank's link carries in a ring allreduce); GB = 1e9 bytes.

Single-process rows run on rank 0 while the other ranks sleep (not spin) in a non-blocking
barrier. The BLAS (OpenBLAS through NumPy, controlled with ctypes where found) runs with its
default thread count in the full-batch single-process step, and with cores / ranks-on-this-host
threads per rank in the data-parallel steps and the half-batch step, so that every
configuration uses the whole machine and none oversubscribes it (but the last row,
``data_parallel_default_threads``: every rank with the default threads, what oversubscribing
costs).
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import importlib.util
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

import gputape as gt
import gputape.training.distributed as dist

from .report import _seconds

LARGE_ELEMENTS = 1_048_576  # one float32 tensor of 4 MiB (4,194,304 bytes)
SMALL_TENSORS, SMALL_ELEMENTS = 100, 10_000  # 100 float32 tensors of 40 kB
MLP_BATCH, MLP_HIDDEN = 256, 512  # global batch of the 784-512-10 MLP
QUICK = {"large": 65_536, "tensors": 10, "small": 1_000, "batch": 32, "hidden": 64}
DEFAULT_REPEAT = 7
SUMMARY_KEYS = ("bucketing_gain", "large_vs_mpi4py", "dp_speedup_vs_single_full",
                "dp_overhead_vs_single_half_s", "dp_allreduce_overhead_s")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="mpiexec -n 2 python -m gputape.bench.distributed",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--json", metavar="PATH", help="rank 0 also writes the results as JSON")
    parser.add_argument("--repeat", type=_positive, default=None,
                        help=f"timed repeats per measurement (default {DEFAULT_REPEAT}; "
                             f"3 with --quick)")
    parser.add_argument("--min-time", type=float, default=None, metavar="SECONDS",
                        help="a repeat loops the call until it lasts this long (default 0.05; "
                             "0 with --quick)")
    parser.add_argument("--bucket-bytes", type=int, default=dist.DEFAULT_BUCKET_BYTES,
                        help="bucket size of the bucketed rows (default: the library's, "
                             f"{dist.DEFAULT_BUCKET_BYTES:,})")
    parser.add_argument("--threads-per-rank", type=int, default=0, metavar="N",
                        help="BLAS threads per rank in the data-parallel and half-batch steps "
                             "(default 0: cores / ranks on this host)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes and few repeats: a smoke test of the benchmark, not "
                             "a measurement")
    return parser.parse_args(argv)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give a positive number")
    return value


# -- the processes ------------------------------------------------------------------------


class World:
    """The processes of this run: mpi4py's ``COMM_WORLD`` under ``mpiexec``, else a group of
    one. Used only to organise the timing (barriers, agreeing on loop counts, gathering the
    samples); what is measured goes through ``gputape.distributed``."""

    def __init__(self, solo: bool = False) -> None:
        self.comm = None
        self.rank, self.size, self.local_size = 0, 1, 1
        if not solo and dist.size() > 1:
            from mpi4py import MPI

            self.MPI = MPI
            self.comm = MPI.COMM_WORLD
            self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
            if (self.rank, self.size) != (dist.rank(), dist.size()):
                raise SystemExit("gputape.bench.distributed: gputape's group is not MPI's "
                                 "COMM_WORLD")
            self.local_size = self.comm.Split_type(MPI.COMM_TYPE_SHARED).Get_size()

    def barrier(self) -> None:
        if self.comm is not None:
            self.comm.Barrier()

    def max(self, value: float) -> float:
        return self.comm.allreduce(value, op=self.MPI.MAX) if self.comm is not None else value

    def gather(self, obj) -> "list | None":
        return self.comm.gather(obj, root=0) if self.comm is not None else [obj]

    def sleep_until_all_arrive(self) -> None:
        """A barrier that sleeps instead of spinning: the other ranks wait here while rank 0
        times a single-process step, and must not take its cores."""
        if self.comm is None:
            return
        request = self.comm.Ibarrier()
        while not request.Test():
            time.sleep(1e-3)

    def abort(self) -> None:
        if self.comm is not None:
            self.comm.Abort(1)


class Blas:
    """Get and set the BLAS thread count (OpenBLAS as bundled with NumPy, through ctypes);
    ``threads`` is None where no OpenBLAS is found, and setting it then does nothing."""

    NAMES = [("scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_"),
             ("scipy_openblas_get_num_threads", "scipy_openblas_set_num_threads"),
             ("openblas_get_num_threads64_", "openblas_set_num_threads64_"),
             ("openblas_get_num_threads", "openblas_set_num_threads")]

    def __init__(self) -> None:
        self._get = self._set = None
        self.library = None
        try:
            with open("/proc/self/maps") as fh:
                paths = {line.split()[-1] for line in fh
                         if "openblas" in line.lower() and ".so" in line}
        except OSError:
            return
        for path in sorted(paths):
            try:
                lib = ctypes.CDLL(path)
            except OSError:
                continue
            for get, put in self.NAMES:
                if hasattr(lib, get) and hasattr(lib, put):
                    self._get, self._set = getattr(lib, get), getattr(lib, put)
                    self._set.argtypes = [ctypes.c_int]
                    self.library = os.path.basename(path)
                    return

    @property
    def threads(self) -> "int | None":
        return int(self._get()) if self._get is not None else None

    def set(self, n: int) -> None:
        if self._set is not None:
            self._set(int(n))


class OtherLoad:
    """How much CPU processes other than the ranks took during the run (Linux, all ranks on
    one host): the busy time ``/proc/stat`` counts minus the ranks' own ``getrusage`` time. A
    benchmark on a shared machine says how much of it it had."""

    def __init__(self, world: World) -> None:
        self.world = world
        world.barrier()
        self.start = self._sample()

    def _sample(self):
        import resource

        usage = resource.getrusage(resource.RUSAGE_SELF)
        busy = steal = None
        if self.world.rank == 0:
            try:
                with open("/proc/stat") as fh:
                    ticks = [int(v) for v in fh.readline().split()[1:9]]
                user, nice, system, _idle, _iowait, irq, softirq, steal = ticks
                busy = user + nice + system + irq + softirq
            except (OSError, ValueError):
                pass
        return time.perf_counter(), usage.ru_utime + usage.ru_stime, busy, steal

    def finish(self) -> "dict | None":
        self.world.barrier()
        end = self._sample()
        ranks_cpu = self.world.gather(end[1] - self.start[1])
        if (self.world.rank != 0 or end[2] is None or self.start[2] is None
                or self.world.local_size != self.world.size):
            return None
        tick = os.sysconf("SC_CLK_TCK")
        wall = end[0] - self.start[0]
        other = max(0.0, (end[2] - self.start[2]) / tick - sum(ranks_cpu))
        return {"wall_s": wall, "ranks_cpu_s": sum(ranks_cpu), "other_cpu_s": other,
                "other_cpu_fraction": other / (wall * _cores()),
                "steal_s": (end[3] - self.start[3]) / tick}


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


# -- timing -------------------------------------------------------------------------------


def time_call(world: World, run, repeat: int, min_time_s: float, warmup: int = 2) -> dict:
    """Time ``run()`` on every rank of ``world``; rank 0 gets the summary over repeats of the
    slowest rank's time per call (other ranks get None)."""
    for _ in range(warmup):
        run()
    world.barrier()
    start = time.perf_counter()
    run()
    once = world.max(max(time.perf_counter() - start, 1e-7))
    loops = max(1, int(min_time_s / once))
    samples = []
    for _ in range(repeat):
        world.barrier()
        start = time.perf_counter()
        for _ in range(loops):
            run()
        samples.append((time.perf_counter() - start) / loops)
    per_rank = world.gather(samples)
    if world.rank != 0:
        return None
    worst = sorted(max(rank_samples[i] for rank_samples in per_rank) for i in range(repeat))
    if len(worst) >= 4:
        q = statistics.quantiles(worst, n=4)
        spread = q[2] - q[0]
    else:
        spread = worst[-1] - worst[0]
    return {"median_s": statistics.median(worst), "spread_s": spread, "min_s": worst[0],
            "repeats": repeat, "loops": loops}


def time_on_rank0(world: World, run, repeat: int, min_time_s: float) -> "dict | None":
    """Time ``run()`` in rank 0 alone while the other ranks sleep."""
    result = None
    if world.rank == 0:
        result = time_call(World(solo=True), run, repeat, min_time_s)
    world.sleep_until_all_arrive()
    return result


# -- allreduce ----------------------------------------------------------------------------


def _sent(rank: int, count: int, elements: int) -> "list[np.ndarray]":
    """What rank ``rank`` sends: random, never zero, seeded by the rank."""
    rng = np.random.default_rng(rank)
    return [rng.uniform(0.5, 1.5, elements).astype(np.float32) for _ in range(count)]


def _check_mean(world: World, got: "list[np.ndarray]", count: int, elements: int,
                what: str) -> None:
    """``got`` must be the NumPy mean of what every rank sent."""
    everyone = [_sent(r, count, elements) for r in range(world.size)]
    for i, array in enumerate(got):
        expected = np.mean(np.stack([sent[i] for sent in everyone]), axis=0)
        if not np.allclose(array, expected, rtol=1e-6, atol=0):
            worst = float(np.max(np.abs(array - expected)))
            raise AssertionError(f"{what}: tensor {i} on rank {world.rank} differs from the "
                                 f"NumPy mean of the ranks' inputs (max error {worst:g})")


def allreduce_rows(world: World, args, count: int, elements: int, name: str,
                   variants: "list[str]") -> list:
    arrays = _sent(world.rank, count, elements)
    tensors = [gt.constant(a, device="cpu") for a in arrays]
    nbytes = count * elements * 4
    runs = {}
    if "bucketed" in variants:
        runs["bucketed"] = ("gputape", args.bucket_bytes,
                            lambda: dist.allreduce(tensors, bucket_bytes=args.bucket_bytes))
    if "unbucketed" in variants:
        runs["unbucketed"] = ("gputape", 0, lambda: dist.allreduce(tensors, bucket_bytes=0))
    if world.comm is not None and "mpi4py" in variants:
        # The floor: MPI's own allreduce of the same NumPy buffers, one call per tensor into
        # preallocated outputs divided in place: no signature exchange, no copy, no packing.
        outs = [np.empty_like(a) for a in arrays]
        sum_op = world.MPI.SUM

        def raw():
            for a, out in zip(arrays, outs):
                world.comm.Allreduce(a, out, op=sum_op)
            for out in outs:
                out /= world.size
            return outs

        runs["mpi4py"] = ("mpi4py", None, raw)
    rows = []
    for variant, (framework, bucket_bytes, run) in runs.items():
        result = run()
        got = [t.numpy() if isinstance(t, gt.Tensor) else t for t in result]
        _check_mean(world, got, count, elements, f"{name} {variant}")
        timing = time_call(world, run, args.repeat, args.min_time)
        if timing is None:
            continue
        row = {"workload": name, "variant": variant, "framework": framework, "device": "cpu",
               "ranks": world.size, "size": count * elements, "tensors": count,
               "elements_per_tensor": elements, "bytes": nbytes, **timing,
               "gb_per_s": nbytes / timing["median_s"] / 1e9, "checked": True}
        if world.size > 1:
            row["bus_gb_per_s"] = (2 * (world.size - 1) / world.size * nbytes
                                   / timing["median_s"] / 1e9)
        if bucket_bytes is not None:
            row["bucket_bytes"] = bucket_bytes
        rows.append(row)
    return rows


# -- the data-parallel step ---------------------------------------------------------------


def _mlp(hidden: int, seed: int) -> list:
    rng = np.random.default_rng(seed)
    return [gt.Variable(rng.normal(0, 0.05, (784, hidden)).astype(np.float32), device="cpu"),
            gt.Variable(np.full(hidden, 0.01, np.float32), device="cpu"),
            gt.Variable(rng.normal(0, 0.05, (hidden, 10)).astype(np.float32), device="cpu"),
            gt.Variable(np.full(10, 0.01, np.float32), device="cpu")]


def _batch(global_batch: int):
    rng = np.random.default_rng(1234)  # the same global batch on every rank
    images = rng.uniform(0.0, 1.0, (global_batch, 784)).astype(np.float32)
    labels = np.eye(10, dtype=np.float32)[rng.integers(0, 10, global_batch)]
    return images, labels


def _loss(params, images, labels):
    w1, b1, w2, b2 = params
    logits = gt.relu(images @ w1 + b1) @ w2 + b2
    return gt.reduce_mean(gt.nn.softmax_cross_entropy_with_logits(labels, logits))


def _step(params, images, labels, distributed: bool, bucket_bytes: int):
    images = gt.constant(images, device="cpu")
    labels = gt.constant(labels, device="cpu")
    opt = gt.optimizers.SGD(learning_rate=0.01)

    def run():
        tape = gt.GradientTape()
        if distributed:
            tape = dist.DistributedGradientTape(tape, bucket_bytes=bucket_bytes)
        with tape:
            loss = _loss(params, images, labels)
        opt.apply_gradients(zip(tape.gradient(loss, params), params))
        return loss

    return run


def _digest(params) -> str:
    h = hashlib.blake2b(digest_size=8)
    for p in params:
        h.update(p.numpy().tobytes())
    return h.hexdigest()


def _check_dp_gradient(world: World, hidden: int, images, labels, shard, bucket_bytes) -> None:
    """Replicas start identical after ``broadcast_variables``, the averaged shard gradients
    equal the full-batch gradient, and the replicas stay identical after a step."""
    params = _mlp(hidden, seed=100 + world.rank)  # different on every rank until broadcast
    dist.broadcast_variables(params)
    digests = world.gather(_digest(params))
    if world.rank == 0 and len(set(digests)) != 1:
        raise AssertionError(f"broadcast_variables left the replicas different: {digests}")
    with dist.DistributedGradientTape(bucket_bytes=bucket_bytes) as tape:
        loss = _loss(params, gt.constant(images[shard]), gt.constant(labels[shard]))
    averaged = tape.gradient(loss, params)
    with gt.GradientTape() as tape:
        loss = _loss(params, gt.constant(images), gt.constant(labels))
    full = tape.gradient(loss, params)
    for i, (a, f) in enumerate(zip(averaged, full)):
        if not np.allclose(a.numpy(), f.numpy(), rtol=1e-4, atol=1e-6):
            worst = float(np.max(np.abs(a.numpy() - f.numpy())))
            raise AssertionError(f"DistributedGradientTape: gradient {i} on rank {world.rank} "
                                 f"is not the full-batch gradient (max error {worst:g})")
    gt.optimizers.SGD(learning_rate=0.01).apply_gradients(zip(averaged, params))
    digests = world.gather(_digest(params))
    if world.rank == 0 and len(set(digests)) != 1:
        raise AssertionError(f"the replicas differ after one data-parallel step: {digests}")


def mlp_rows(world: World, args, blas: Blas, rank_threads: int, hidden: int,
             global_batch: int) -> list:
    per_rank = global_batch // world.size
    global_batch = per_rank * world.size  # equal shards: the mean of means is the mean
    images, labels = _batch(global_batch)
    shard = slice(world.rank * per_rank, (world.rank + 1) * per_rank)
    default_threads = blas.threads
    grad_bytes = sum(p.numpy().nbytes for p in _mlp(hidden, 0))
    common = {"workload": f"mlp_step_784_{hidden}_10", "framework": "gputape", "device": "cpu",
              "tensors": 4, "bytes": grad_bytes}
    rows = []

    blas.set(rank_threads)
    _check_dp_gradient(world, hidden, images, labels, shard, args.bucket_bytes)
    params = _mlp(hidden, seed=0)
    dist.broadcast_variables(params)
    plan = [("data_parallel", True, world.size, shard, "DistributedGradientTape, "
             "gradients averaged"),
            ("data_parallel_no_allreduce", False, world.size, shard,
             "the same ranks and shards, local gradients (no communication)")]
    for variant, distributed, ranks, rows_of, note in plan:
        run = _step(params, images[rows_of], labels[rows_of], distributed, args.bucket_bytes)
        timing = time_call(world, run, args.repeat, args.min_time)
        if timing is not None:
            rows.append({**common, "variant": variant, "ranks": ranks, "size": global_batch,
                         "batch_per_rank": per_rank, "blas_threads": blas.threads, **timing,
                         "checked": distributed, "note": note})
    run = _step(_mlp(hidden, 0), images[:per_rank], labels[:per_rank], False, 0)
    timing = time_on_rank0(world, run, args.repeat, args.min_time)
    if timing is not None:
        rows.append({**common, "variant": "single_half_batch", "ranks": 1, "size": per_rank,
                     "batch_per_rank": per_rank, "blas_threads": blas.threads, **timing,
                     "checked": False, "note": "one process, one rank's shard, the rank's "
                                               "BLAS threads"})
    if default_threads is not None:
        blas.set(default_threads)
    run = _step(_mlp(hidden, 0), images, labels, False, 0)
    timing = time_on_rank0(world, run, args.repeat, args.min_time)
    if timing is not None:
        rows.append({**common, "variant": "single_full_batch", "ranks": 1,
                     "size": global_batch, "batch_per_rank": global_batch,
                     "blas_threads": blas.threads, **timing, "checked": False,
                     "note": "one process, the whole batch, the BLAS's default threads"})
    if world.size > 1 and default_threads is not None and default_threads > rank_threads:
        # What a plain `mpiexec -n 2` gets when nobody sets OMP/OPENBLAS_NUM_THREADS.
        run = _step(params, images[shard], labels[shard], True, args.bucket_bytes)
        timing = time_call(world, run, args.repeat, args.min_time)
        if timing is not None:
            rows.append({**common, "variant": "data_parallel_default_threads",
                         "ranks": world.size, "size": global_batch, "batch_per_rank": per_rank,
                         "blas_threads": default_threads, **timing, "checked": False,
                         "note": "as data_parallel, every rank with the BLAS's default "
                                 "threads (oversubscribed)"})
    for row in rows:
        row["elements_per_s"] = row["size"] / row["median_s"]
    return rows


# -- the report ---------------------------------------------------------------------------


def summarize(rows: list) -> dict:
    """Ratios the table's rows are for (keys of ``SUMMARY_KEYS``; those that apply)."""
    def median(workload_prefix, variant):
        for r in rows:
            if r["workload"].startswith(workload_prefix) and r["variant"] == variant:
                return r["median_s"]
        return None

    out = {}
    bucketed, unbucketed = (median("allreduce_many", "bucketed"),
                            median("allreduce_many", "unbucketed"))
    if bucketed and unbucketed:
        out["bucketing_gain"] = unbucketed / bucketed
    large, raw = median("allreduce_one", "bucketed"), median("allreduce_one", "mpi4py")
    if large and raw:
        out["large_vs_mpi4py"] = large / raw
    dp, local = median("mlp_step", "data_parallel"), median("mlp_step",
                                                            "data_parallel_no_allreduce")
    full, half = median("mlp_step", "single_full_batch"), median("mlp_step", "single_half_batch")
    if dp and full:
        out["dp_speedup_vs_single_full"] = full / dp
    if dp and half:
        out["dp_overhead_vs_single_half_s"] = dp - half
    if dp and local:
        out["dp_allreduce_overhead_s"] = dp - local
    return out


def format_report(report: dict) -> str:
    meta = report["meta"]
    threads = meta.get("blas_threads", {})
    lines = [f"gputape {meta['gputape']} | {meta['ranks']} rank(s) on {meta['cpu_count']} "
             f"cores ({meta['cpu']}) | {meta['mpi']} | BLAS threads: "
             f"{threads.get('default')} default, {threads.get('per_rank')} per rank"]
    header = (f"{'workload':<24}{'variant':<42}{'ranks':>5}{'tensors':>8}{'bytes':>11}"
              f"{'median':>10}{'spread':>10}{'GB/s':>7}{'bus GB/s':>9}")
    lines += [header, "-" * len(header)]
    for r in report["results"]:
        gbs = f"{r['gb_per_s']:.2f}" if "gb_per_s" in r else ""
        bus = f"{r['bus_gb_per_s']:.2f}" if "bus_gb_per_s" in r else ""
        variant = r["variant"] + (f" (batch {r['batch_per_rank']})" if "batch_per_rank" in r
                                  else "")
        lines.append(f"{r['workload']:<24}{variant:<42}{r['ranks']:>5}{r['tensors']:>8}"
                     f"{r['bytes']:>11,}{_seconds(r['median_s']):>10}"
                     f"{_seconds(r['spread_s']):>10}{gbs:>7}{bus:>9}")
    s = report.get("summary", {})
    if "bucketing_gain" in s:
        lines.append(f"bucketing gain (many small tensors): unbucketed / bucketed = "
                     f"{s['bucketing_gain']:.2f}x")
    if "large_vs_mpi4py" in s:
        lines.append(f"one large tensor: gputape / raw mpi4py Allreduce = "
                     f"{s['large_vs_mpi4py']:.2f}x")
    if "dp_speedup_vs_single_full" in s:
        lines.append(f"data-parallel step: {s['dp_speedup_vs_single_full']:.2f}x the speed of "
                     f"one process on the full batch")
    if "dp_overhead_vs_single_half_s" in s:
        lines.append(f"data-parallel step - one process on a rank's shard = "
                     f"{_seconds(s['dp_overhead_vs_single_half_s'])}"
                     + (f" (of which the gradient allreduce: "
                        f"{_seconds(s['dp_allreduce_overhead_s'])})"
                        if "dp_allreduce_overhead_s" in s else ""))
    other = meta.get("other_load") or {}
    if other.get("other_cpu_fraction", 0) > 0.05:
        lines.append(f"warning: other processes took {other['other_cpu_fraction']:.0%} of the "
                     f"CPUs during the run: these are not a quiet machine's times")
    lines.append("GB/s = tensor bytes / time; bus GB/s = 2(n-1)/n x bytes / time (GB = 1e9); "
                 "times: median over repeats of the slowest rank; mlp rows: tensors and bytes "
                 "= the gradients a step averages")
    return "\n".join(lines)


def _meta(world: World, args, blas: Blas, default_threads, rank_threads) -> dict:
    from importlib.metadata import PackageNotFoundError, version

    from .meta import meta as runner_meta

    meta = runner_meta(has_gpu=False)
    meta["gputape_matches_commit"] = _library_clean()
    meta["load_average_1m_at_start"] = args.load_at_start
    meta["ranks"] = world.size
    meta["ranks_on_host"] = world.local_size
    meta["mpi"] = "none (one process)"
    if world.comm is not None:
        meta["mpi"] = " ".join(world.MPI.Get_library_version().splitlines()[0].split())
        meta["mpi4py"] = version("mpi4py")
        try:
            meta["mpich_wheel"] = version("mpich")
        except PackageNotFoundError:
            pass
    meta["blas"] = blas.library or "unknown (thread count not controlled)"
    meta["blas_threads"] = {"default": default_threads, "per_rank": rank_threads}
    meta["bucket_bytes"] = args.bucket_bytes
    meta["repeat"] = args.repeat
    meta["min_time_s"] = args.min_time
    meta["quick"] = args.quick
    meta["timing"] = ("warm-up excluded; barrier before each repeat; a repeat loops the call "
                      "until min_time_s; per repeat the slowest rank's time per call; median "
                      "and interquartile range over repeats")
    meta["bandwidth"] = ("gb_per_s = tensor bytes / time (algorithm bandwidth); bus_gb_per_s = "
                         "2(n-1)/n x tensor bytes / time (NCCL-tests' bus bandwidth); GB = 1e9")
    return meta


def _library_clean() -> "bool | None":
    """Whether the measured library (``gputape/``) has no uncommitted changes."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    try:
        out = subprocess.run(["git", "status", "--porcelain", "--", "gputape"],
                             capture_output=True, text=True, timeout=10, cwd=root)
    except (OSError, subprocess.SubprocessError):
        return None
    return not out.stdout.strip() if out.returncode == 0 else None


def run(args, world: "World | None" = None) -> "dict | None":
    if args.repeat is None:
        args.repeat = 3 if args.quick else DEFAULT_REPEAT
    if args.min_time is None:
        args.min_time = 0.0 if args.quick else 0.05
    sizes = QUICK if args.quick else {"large": LARGE_ELEMENTS, "tensors": SMALL_TENSORS,
                                      "small": SMALL_ELEMENTS, "batch": MLP_BATCH,
                                      "hidden": MLP_HIDDEN}
    args.load_at_start = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    world = world or World()
    blas = Blas()
    default_threads = blas.threads
    rank_threads = args.threads_per_rank or max(1, _cores() // world.local_size)
    watch = OtherLoad(world)
    rows = []
    rows += allreduce_rows(world, args, 1, sizes["large"], "allreduce_one_tensor",
                           ["bucketed", "mpi4py"])
    rows += allreduce_rows(world, args, sizes["tensors"], sizes["small"],
                           "allreduce_many_tensors", ["bucketed", "unbucketed", "mpi4py"])
    rows += mlp_rows(world, args, blas, rank_threads, sizes["hidden"], sizes["batch"])
    if default_threads is not None:
        blas.set(default_threads)
    other_load = watch.finish()
    if world.rank != 0:
        return None
    meta = _meta(world, args, blas, default_threads, rank_threads)
    meta["other_load"] = other_load
    return {"meta": meta, "results": rows, "summary": summarize(rows)}


def main(argv=None) -> int:
    args = parse_args(argv)
    world = None
    try:
        world = World()
        report = run(args, world)
    except BaseException:
        if world is not None and world.size > 1:
            import traceback

            traceback.print_exc()
            sys.stderr.flush()
            world.abort()  # the other ranks would wait for this one forever
        raise
    if report is None:
        return 0
    print(format_report(report))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=2)
        print(f"wrote {args.json}")
    return 0


# -- the runner's side: starting the ranks ------------------------------------------------


def find_mpiexec() -> "str | None":
    """``mpiexec`` next to this Python (a virtual environment with the mpich wheel), else on
    PATH."""
    beside = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    if os.path.isfile(beside) and os.access(beside, os.X_OK):
        return beside
    return shutil.which("mpiexec")


def local_launch_args(mpiexec: str) -> "list[str]":
    """The arguments that keep ``mpiexec`` to processes on this machine over the loopback
    interface: MPICH's Hydra otherwise may reach for ssh and the first network interface.

    Examples
    --------
    >>> local_launch_args("/no/such/mpiexec")  # not MPICH's Hydra: nothing to add
    []
    """
    try:
        version = subprocess.run([mpiexec, "--version"], capture_output=True, text=True,
                                 timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return ["-launcher", "fork", "-iface", "lo"] if "HYDRA" in version else []


def missing() -> "str | None":
    """Why the distributed benchmark cannot run here, or None."""
    if importlib.util.find_spec("mpi4py") is None:
        return "mpi4py is not installed (pip install 'gputape[dist]' or mpi4py mpich)"
    if find_mpiexec() is None:
        return (f"no mpiexec next to {sys.executable} or on PATH (pip install mpich, or your "
                f"MPI's launcher)")
    return None


def spawn(ranks: int = 2, repeat: "int | None" = None, quick: bool = False,
          timeout_s: float = 600, extra_args: "list[str] | tuple" = ()) -> dict:
    """Run ``mpiexec -n RANKS python -m gputape.bench.distributed`` and return its report, or
    ``{"skipped": reason}`` when it cannot run (mpi4py or mpiexec missing, a failure, a
    timeout); the reason is printed."""
    from .children import child_env

    reason = missing()
    if reason is None:
        root, env = child_env()
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "distributed.json")
            mpiexec = find_mpiexec()
            command = [mpiexec, *local_launch_args(mpiexec), "-n", str(ranks), sys.executable,
                       "-m", "gputape.bench.distributed", "--json", path, *extra_args]
            if repeat is not None:
                command += ["--repeat", str(repeat)]
            if quick:
                command.append("--quick")
            reason = _run_group(command, env, root, timeout_s)
            if reason is None:
                with open(path) as fh:
                    return json.load(fh)
    print(f"bench: distributed benchmark skipped: {reason}")
    return {"skipped": reason}


def _run_group(command: list, env: dict, cwd: str, timeout_s: float) -> "str | None":
    # A session of its own, so that a timeout ends mpiexec and every rank it started.
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=cwd, start_new_session=True)
    try:
        _, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return f"mpiexec did not finish in {timeout_s:g} s"
    if proc.returncode != 0:
        tail = " | ".join(err.strip().splitlines()[-3:]) or "no output"
        return f"mpiexec exited with {proc.returncode}: {tail}"
    return None


if __name__ == "__main__":
    sys.exit(main())
