"""Timing that is fair to both devices: warm-up excluded, the median of several repeats reported
with its spread. On a GPU each sample is timed with CUDA events recorded on the device's current
stream around the calls, and the device is synchronized after each sample so that no queued
work leaks into the next one. Also the copy ceiling: the bandwidth of a plain copy, the
yardstick for a workload's GB/s, and on a GPU the card's specified peak beside it.
"""

from __future__ import annotations

import re
import statistics
import time
from dataclasses import dataclass

import numpy as np

_now = time.perf_counter  # the host clock (a name of its own so that tests can replace it)

CPU_CEILING_MIN_BYTES = 64 * 2**20  # twice a 32 MiB last-level cache: a copy from memory
CPU_CEILING_MAX_BYTES = 2**30
GPU_CEILING_BYTES = 256 * 2**20
COPY_THREADS = 256  # threads per block of the copy kernel


@dataclass
class Timing:
    """One measurement: seconds per call (median over ``repeats`` samples), the spread, how
    many calls each sample made (``loops``), and which clock timed them."""

    median_s: float
    spread_s: float  # interquartile range (max - min below 4 samples)
    repeats: int
    loops: int = 1
    clock: str = "host"  # "host": perf_counter around a synchronize; "cuda-events"


def _cupy():
    import cupy  # only on a GPU path; tests put a stand-in in sys.modules

    return cupy


def _gpu_index(device_name: str) -> int:
    return int(device_name.partition(":")[2] or 0)


def synchronizer(device_name: str):
    """A function that waits until ``device_name`` has finished its queued work.

    Example: ``synchronizer("cpu")()`` returns at once (the host runs nothing in the background).
    """
    if device_name == "cpu":
        return lambda: None
    return _cupy().cuda.Device(_gpu_index(device_name)).synchronize


def measure(run, device_name: str, repeat: int = 7, warmup: int = 2,
            min_time_s: float = 0.05, sync=None) -> Timing:
    """Time ``run()``: ``warmup`` untimed calls (kernel compilation, caches), then ``repeat``
    samples; a sample loops ``run`` until it lasts ``min_time_s`` so tiny workloads are not
    dominated by the clock's resolution. Reports the median time per call.

    On a GPU (``"gpu:N"`` and no ``sync`` given) samples are timed with CUDA events; with a
    ``sync`` (a peer framework's own synchronize), or on the CPU, with the host clock around the
    calls and ``sync()``.

    Example: ``measure(lambda: sum(range(100)), "cpu", repeat=3).median_s`` is a few
    microseconds.
    """
    if repeat < 1:
        raise ValueError(f"measure: repeat={repeat}; hint: take at least one timed sample")
    take = Sampler(run, device_name, warmup, min_time_s, sync)
    return take.summary([take() for _ in range(repeat)])


class Sampler:
    """``run`` made ready to time (warmed up, its loop count chosen); each call takes one
    sample, in seconds per call. Samples of several frameworks can so alternate (A B A B), as
    the runner does with its peers: drift on a busy machine then hits them alike.

    Example: ``Sampler(lambda: sum(range(100)), "cpu")()`` is a few microseconds.
    """

    def __init__(self, run, device_name: str, warmup: int = 2, min_time_s: float = 0.05,
                 sync=None) -> None:
        self.run = run
        if device_name != "cpu" and sync is None:
            self.clock, self.index = "cuda-events", _gpu_index(device_name)
            cupy = _cupy()
            with cupy.cuda.Device(self.index) as device:
                for _ in range(warmup):
                    run()
                device.synchronize()
                self.loops = _loops(_event_seconds(cupy, run, 1), min_time_s)
                device.synchronize()
            return
        self.clock, self.sync = "host", sync or synchronizer(device_name)
        for _ in range(warmup):
            run()
        self.sync()
        start = _now()
        run()
        self.sync()
        self.loops = _loops(_now() - start, min_time_s)

    def __call__(self) -> float:
        run, loops = self.run, self.loops
        if self.clock == "cuda-events":
            cupy = _cupy()
            with cupy.cuda.Device(self.index) as device:
                seconds = _event_seconds(cupy, run, loops) / loops
                device.synchronize()  # work queued on other streams stays out of the next one
            return seconds
        start = _now()
        for _ in range(loops):
            run()
        self.sync()  # inside the timed region: queued work counts
        return (_now() - start) / loops

    def summary(self, samples: list) -> Timing:
        return _summary(samples, self.loops, self.clock)


def _event_seconds(cupy, run, loops: int) -> float:
    """Seconds between CUDA events recorded on the current stream before and after ``loops``
    calls of ``run``; the end event is waited for before its time is read."""
    stream = cupy.cuda.get_current_stream()
    start, end = cupy.cuda.Event(), cupy.cuda.Event()
    start.record(stream)
    for _ in range(loops):
        run()
    end.record(stream)
    end.synchronize()
    return cupy.cuda.get_elapsed_time(start, end) / 1e3  # milliseconds


def _loops(once_s: float, min_time_s: float) -> int:
    return max(1, int(min_time_s / max(once_s, 1e-7)))


def slower_p_value(before: list, now: list) -> float:
    """The one-sided p-value of the Mann-Whitney rank test that ``now``'s samples are larger
    than ``before``'s: the chance that samples of one distribution, shuffled between the two
    runs, would put ``now`` at least this far above. Exact (counting the arrangements), ties
    counted as half; for the few samples a row has (a few tens at most).

    Example: ``slower_p_value([1, 2, 3], [4, 5, 6]) == 0.05`` (1 arrangement in 20).
    """
    m, n = len(before), len(now)
    u = sum((b > a) + 0.5 * (b == a) for a in before for b in now)
    # counts[j][k]: arrangements of i "before" and j "now" samples with k (now > before) pairs;
    # a "now" sample placed above all i "before" ones adds i pairs
    counts = [[1] + [0] * (m * n) for _ in range(n + 1)]
    for i in range(1, m + 1):
        row = [[0] * (m * n + 1) for _ in range(n + 1)]
        row[0][0] = 1
        for j in range(1, n + 1):
            for k in range(m * n + 1):
                row[j][k] = counts[j][k] + (row[j - 1][k - i] if k >= i else 0)
        counts = row
    total = sum(counts[n])
    return sum(c for k, c in enumerate(counts[n]) if k >= u - 1e-9) / total


def summarize(samples: list, loops: int, clock: str) -> Timing:
    """The :class:`Timing` of ``samples`` (seconds per call): their median and interquartile
    range (max - min below 4 samples)."""
    return _summary(samples, loops, clock)


def _summary(samples: list, loops: int, clock: str) -> Timing:
    ordered = sorted(samples)
    if len(ordered) >= 4:
        q = statistics.quantiles(ordered, n=4)
        spread = q[2] - q[0]
    else:
        spread = ordered[-1] - ordered[0]
    return Timing(statistics.median(ordered), spread, len(ordered), loops, clock)


# -- the machine's own noise -------------------------------------------------------------

UNSTABLE = 0.10  # a row whose spread exceeds this share of its median is marked unstable
SLOW_SPELL = 0.15  # a CPU row whose reference task ran this much slower than the calmest
#                   of the run was measured in a slow spell and is taken again


def reference_task():
    """The fixed task the runner times beside the workloads: sorting the same 20,000 floats
    (one thread, no allocation to speak of). Its time tracks how fast the machine is right
    now; ``--compare`` divides each CPU row by it to cancel drift between runs.

    Example: ``reference_task()()`` sorts once.
    """
    data = np.random.default_rng(0).random(20000)
    return lambda: np.sort(data)


def machine_noise(samples: int = 15, task_s: float = 0.01) -> dict:
    """How steady this machine is right now: one fixed task (sorting the same random floats)
    timed ``samples`` times for about ``task_s`` each; its spread as a share of its median is
    the floor under which no difference between two rows can be read.

    Example: ``machine_noise(samples=5, task_s=0.001)["relative_spread"]`` is a few hundredths
    on a quiet machine.
    """
    take = Sampler(reference_task(), "cpu", min_time_s=task_s)
    timing = take.summary([take() for _ in range(samples)])
    return {"task": "np.sort of 20,000 floats", "median_s": timing.median_s,
            "spread_s": timing.spread_s, "samples": samples,
            "relative_spread": timing.spread_s / timing.median_s}


def unstable(row: dict) -> bool:
    """Whether a result row's spread (interquartile range) exceeds :data:`UNSTABLE` of its
    median: a number to read with care."""
    return row.get("spread_s", 0.0) > UNSTABLE * row["median_s"]


# -- the copy ceiling ---------------------------------------------------------------------


def cpu_ceiling_bytes(largest_elements: int) -> int:
    """Bytes of the buffer the CPU's copy ceiling is measured on: the largest float32 array of
    the run, but at least 64 MiB (out of the caches) and at most 1 GiB.

    Example: ``cpu_ceiling_bytes(10**5) == 64 * 2**20``.
    """
    return int(min(max(4 * largest_elements, CPU_CEILING_MIN_BYTES), CPU_CEILING_MAX_BYTES))


def gpu_ceiling_bytes(free_bytes: int) -> int:
    """Bytes of the buffer the GPU's copy ceiling is measured on: 256 MiB, or a quarter of the
    free memory when less is free.

    Example: ``gpu_ceiling_bytes(64 * 2**20) == 16 * 2**20``.
    """
    return int(min(GPU_CEILING_BYTES, free_bytes // 4))


# The GPU copy ceiling's own kernel, for CuPy's RawKernel (NVRTC, --std=c++17): a grid-stride
# loop in which each thread moves 16 bytes (one int4) a step, then the last nbytes % 16 bytes,
# one byte a thread. Its buffers come straight from CuPy's allocator, whose allocations are
# aligned to at least 256 bytes, so the int4 loads and stores are aligned.
COPY_KERNEL_NAME = "copy_ceiling"
COPY_KERNEL = r"""
extern "C" __global__ void copy_ceiling(const int4* __restrict__ src, int4* __restrict__ dst,
                                        unsigned long long nbytes)
{
    const unsigned long long stride = static_cast<unsigned long long>(gridDim.x) * blockDim.x;
    const unsigned long long first =
        static_cast<unsigned long long>(blockIdx.x) * blockDim.x + threadIdx.x;
    const unsigned long long vectors = nbytes / sizeof(int4);
    for (unsigned long long i = first; i < vectors; i += stride) {
        dst[i] = src[i];
    }
    const unsigned char* src_bytes = reinterpret_cast<const unsigned char*>(src);
    unsigned char* dst_bytes = reinterpret_cast<unsigned char*>(dst);
    for (unsigned long long i = vectors * sizeof(int4) + first; i < nbytes; i += stride) {
        dst_bytes[i] = src_bytes[i];
    }
}
"""


def copy_blocks(properties: dict, nbytes: int) -> int:
    """Blocks of ``COPY_THREADS`` threads for the copy kernel: as many as the GPU keeps resident
    at once (its multiprocessors times the blocks that fit on one), but no more than there are
    16-byte vectors to give each thread one, and at least one.

    Example: ``copy_blocks({"multiProcessorCount": 132, "maxThreadsPerMultiProcessor": 2048},
    2**28) == 1056``.
    """
    resident = properties["multiProcessorCount"] * max(
        1, properties["maxThreadsPerMultiProcessor"] // COPY_THREADS)
    needed = -(-(nbytes // 16) // COPY_THREADS)
    return int(max(1, min(resident, needed)))


@dataclass(frozen=True)
class Peak:
    """A card's memory bandwidth as its vendor specifies it, in GB/s (1e9 bytes per second)."""

    card: str
    gb_per_s: float
    source: str


_H100 = "NVIDIA H100 datasheet"
_H200 = "NVIDIA H200 datasheet"
_A100 = "NVIDIA A100 datasheet"
# Patterns match the device name as CUDA reports it, upper-cased with '-' and '_' read as spaces
# (e.g. "NVIDIA H100 80GB HBM3", "NVIDIA A100-SXM4-80GB"); the first match wins. Only variants
# whose name tells them apart are listed: any other card is "unknown".
PEAK_BANDWIDTH = (
    (r"\bH200\b", Peak("H200 (SXM or NVL)", 4800.0, _H200)),  # not GH200: no word break
    (r"\bH100\b.*\bNVL\b", Peak("H100 NVL", 3900.0, _H100)),
    (r"\bH100\b.*\bPCIE\b", Peak("H100 PCIe", 2000.0, _H100)),
    (r"\bH100\b(?=.*\bSXM5?\b|.*\bHBM3\b)(?=.*\b80GB\b)", Peak("H100 SXM5 80GB", 3350.0, _H100)),
    (r"\bA100\b(?=.*\bSXM4?\b)(?=.*\b80GB\b)", Peak("A100 SXM4 80GB", 2039.0, _A100)),
    (r"\bA100\b(?=.*\bSXM4?\b)(?=.*\b40GB\b)", Peak("A100 SXM4 40GB", 1555.0, _A100)),
    (r"\bA100\b(?=.*\bPCIE\b)(?=.*\b80GB\b)", Peak("A100 PCIe 80GB", 1935.0, _A100)),
    (r"\bA100\b(?=.*\bPCIE\b)(?=.*\b40GB\b)", Peak("A100 PCIe 40GB", 1555.0, _A100)),
    (r"\bL40S\b", Peak("L40S", 864.0, "NVIDIA L40S datasheet")),
    (r"\bL4\b", Peak("L4", 300.0, "NVIDIA L4 datasheet")),
)


def specified_peak(device_name: str) -> "Peak | None":
    """The vendor's peak memory bandwidth of the card CUDA names ``device_name``, or None when
    the card is not in ``PEAK_BANDWIDTH`` (or is a MIG slice of one, which has a share of it).

    Example: ``specified_peak("NVIDIA H100 80GB HBM3").gb_per_s == 3350.0``;
    ``specified_peak("NVIDIA GeForce RTX 4090") is None``.
    """
    name = " ".join(re.sub(r"[-_]", " ", device_name).upper().split())
    if re.search(r"\bMIG\b", name):
        return None
    for pattern, peak in PEAK_BANDWIDTH:
        if re.search(pattern, name):
            return peak
    return None


def gpu_name(index: int) -> str:
    """The name CUDA gives GPU ``index``, e.g. ``"NVIDIA H100 80GB HBM3"``."""
    return _name_of(_cupy().cuda.runtime.getDeviceProperties(index))


def copy_ceiling(device_name: str, nbytes: "int | None" = None, repeat: int = 5,
                 warmup: int = 2) -> dict:
    """The bandwidth of one plain copy on ``device_name``, in GB/s (1e9 bytes) counting the
    bytes read and the bytes written, over a source that holds no zeros. On the CPU
    ``np.copyto`` on one thread. On a GPU the higher of two copies, each timed with CUDA events
    after its warm-up: ``cupy.copyto`` (``cudaMemcpyAsync`` device to device) and
    ``COPY_KERNEL``; both figures are kept (``"memcpy"``, ``"kernel"``), ``"higher"`` names the
    one that gave ``"gb_per_s"``, and beside it the card's specified peak and the ceiling's
    fraction of it (None, and ``"peak": "unknown"``, for a card not in ``PEAK_BANDWIDTH``). The
    GPU buffer is 256 MiB, or a quarter of the free memory when less is free.

    Example: ``copy_ceiling("cpu", 2**20, repeat=3)["gb_per_s"]`` is some GB/s.
    """
    if repeat < 1:
        raise ValueError(f"copy_ceiling: repeat={repeat}; hint: take at least one sample")
    if device_name != "cpu":
        return _gpu_copy_ceiling(device_name, nbytes, repeat, warmup)
    nbytes = nbytes or CPU_CEILING_MIN_BYTES
    src = np.arange(1, nbytes // 4 + 1, dtype=np.uint32)
    dst = np.empty_like(src)
    timing = measure(lambda: np.copyto(dst, src), "cpu", repeat=repeat, warmup=warmup,
                     min_time_s=0.0)
    return {"gb_per_s": _gb_per_s(src.nbytes, timing), "buffer_bytes": int(src.nbytes),
            "median_s": timing.median_s, "repeats": timing.repeats,
            "method": f"np.copyto, one thread; {_COUNTED}"}


_COUNTED = "GB/s = (bytes read + bytes written) / median time"


def _gb_per_s(nbytes: int, timing: Timing) -> float:
    return 2 * nbytes / timing.median_s / 1e9  # read once, written once


def _gpu_copy_ceiling(device_name: str, nbytes: "int | None", repeat: int, warmup: int) -> dict:
    cupy = _cupy()
    index = _gpu_index(device_name)
    with cupy.cuda.Device(index):
        properties = cupy.cuda.runtime.getDeviceProperties(index)
        nbytes = nbytes or gpu_ceiling_bytes(cupy.cuda.runtime.memGetInfo()[0])
        src = cupy.arange(1, nbytes // 4 + 1, dtype=cupy.uint32)
        dst = cupy.zeros_like(src)
        kernel = cupy.RawKernel(COPY_KERNEL, COPY_KERNEL_NAME, options=("--std=c++17",))
        blocks, size = copy_blocks(properties, src.nbytes), np.uint64(src.nbytes)
        copies = {"memcpy": lambda: cupy.copyto(dst, src),
                  "kernel": lambda: kernel((blocks,), (COPY_THREADS,), (src, dst, size))}
        figures = {}
        for method, run in copies.items():
            dst.fill(0)
            timing = measure(run, device_name, repeat=repeat, warmup=warmup, min_time_s=0.0)
            if not bool(cupy.array_equal(dst, src)):
                raise RuntimeError(
                    f"copy_ceiling: on {device_name} the {method} copy left its destination "
                    f"different from its source, so its GB/s would mean nothing; hint: check "
                    f"the device, and for the kernel COPY_KERNEL and its launch in "
                    f"gputape.bench.timing")
            figures[method] = {"gb_per_s": _gb_per_s(src.nbytes, timing),
                               "median_s": timing.median_s, "spread_s": timing.spread_s}
    figures["memcpy"]["method"] = "cupy.copyto: cudaMemcpyAsync device to device"
    figures["kernel"].update(method=f"{COPY_KERNEL_NAME} kernel: grid-stride, 16-byte vectors",
                             blocks=blocks, threads=COPY_THREADS)
    higher = max(("memcpy", "kernel"), key=lambda m: figures[m]["gb_per_s"])
    name = _name_of(properties)
    peak = specified_peak(name)
    ceiling = figures[higher]["gb_per_s"]
    return {"gb_per_s": ceiling, "higher": higher, "memcpy": figures["memcpy"],
            "kernel": figures["kernel"], "buffer_bytes": int(src.nbytes),
            "median_s": figures[higher]["median_s"], "repeats": repeat,
            "method": f"the higher of cudaMemcpy and a copy kernel, CUDA events; {_COUNTED}",
            "device": name, "peak_gb_per_s": peak.gb_per_s if peak else None,
            "peak": f"{peak.card}, {peak.source}" if peak else "unknown",
            "fraction_of_peak": ceiling / peak.gb_per_s if peak else None}


def _name_of(properties: dict) -> str:
    name = properties["name"]  # bytes in CuPy
    return name.decode() if isinstance(name, bytes) else name
