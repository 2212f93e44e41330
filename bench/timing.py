"""Timing that is fair to both devices: warm-up excluded, the median of several repeats reported
with its spread. On a GPU each sample is timed with CUDA events recorded on the device's current
stream around the calls, and the device is synchronized after each sample so that no queued
work leaks into the next one. Also the copy ceiling: the bandwidth of a plain copy, the
yardstick for a workload's GB/s.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import numpy as np

_now = time.perf_counter  # the host clock (a name of its own so that tests can replace it)

CPU_CEILING_MIN_BYTES = 64 * 2**20  # twice a 32 MiB last-level cache: a copy from memory
CPU_CEILING_MAX_BYTES = 2**30
GPU_CEILING_BYTES = 256 * 2**20


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
    if device_name != "cpu" and sync is None:
        return _measure_events(run, _gpu_index(device_name), repeat, warmup, min_time_s)
    sync = sync or synchronizer(device_name)
    for _ in range(warmup):
        run()
    sync()
    start = _now()
    run()
    sync()
    loops = _loops(_now() - start, min_time_s)
    samples = []
    for _ in range(repeat):
        start = _now()
        for _ in range(loops):
            run()
        sync()  # inside the timed region: queued work counts
        samples.append((_now() - start) / loops)
    return _summary(samples, loops, "host")


def _measure_events(run, index: int, repeat: int, warmup: int, min_time_s: float) -> Timing:
    cupy = _cupy()
    device = cupy.cuda.Device(index)
    with device:
        for _ in range(warmup):
            run()
        device.synchronize()
        loops = _loops(_event_seconds(cupy, run, 1), min_time_s)
        device.synchronize()
        samples = []
        for _ in range(repeat):
            samples.append(_event_seconds(cupy, run, loops) / loops)
            device.synchronize()  # work queued on other streams stays out of the next sample
    return _summary(samples, loops, "cuda-events")


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


def _summary(samples: list, loops: int, clock: str) -> Timing:
    ordered = sorted(samples)
    if len(ordered) >= 4:
        q = statistics.quantiles(ordered, n=4)
        spread = q[2] - q[0]
    else:
        spread = ordered[-1] - ordered[0]
    return Timing(statistics.median(ordered), spread, len(ordered), loops, clock)


# -- the copy ceiling ---------------------------------------------------------------------


def cpu_ceiling_bytes(largest_elements: int) -> int:
    """Bytes of the buffer the CPU's copy ceiling is measured on: the largest float32 array of
    the run, but at least 64 MiB (out of the caches) and at most 1 GiB.

    Example: ``cpu_ceiling_bytes(10**5) == 64 * 2**20``.
    """
    return int(min(max(4 * largest_elements, CPU_CEILING_MIN_BYTES), CPU_CEILING_MAX_BYTES))


def copy_ceiling(device_name: str, nbytes: "int | None" = None, repeat: int = 5,
                 warmup: int = 2) -> dict:
    """The bandwidth of one plain copy on ``device_name``, in GB/s (1e9 bytes) counting the
    bytes read and the bytes written: on the CPU ``np.copyto`` on one thread, on a GPU a
    device-to-device ``cupy.copyto`` timed with CUDA events. The source holds no zeros. The GPU
    buffer is 256 MiB, or a quarter of the free memory when less is free.

    Example: ``copy_ceiling("cpu", 2**20, repeat=3)["gb_per_s"]`` is some GB/s.
    """
    if repeat < 1:
        raise ValueError(f"copy_ceiling: repeat={repeat}; hint: take at least one sample")
    if device_name == "cpu":
        nbytes = nbytes or CPU_CEILING_MIN_BYTES
        src = np.arange(1, nbytes // 4 + 1, dtype=np.uint32)
        dst = np.empty_like(src)
        timing = measure(lambda: np.copyto(dst, src), "cpu", repeat=repeat, warmup=warmup,
                         min_time_s=0.0)
        method = "np.copyto, one thread"
    else:
        cupy = _cupy()
        with cupy.cuda.Device(_gpu_index(device_name)):
            free, _ = cupy.cuda.runtime.memGetInfo()
            nbytes = nbytes or min(GPU_CEILING_BYTES, free // 4)
            src = cupy.arange(1, nbytes // 4 + 1, dtype=cupy.uint32)
            dst = cupy.empty_like(src)
            timing = measure(lambda: cupy.copyto(dst, src), device_name, repeat=repeat,
                             warmup=warmup, min_time_s=0.0)
        method = "cupy.copyto device to device, CUDA events"
    moved = 2 * src.nbytes  # read once, written once
    return {"gb_per_s": moved / timing.median_s / 1e9, "buffer_bytes": int(src.nbytes),
            "median_s": timing.median_s, "repeats": timing.repeats,
            "method": f"{method}; GB/s = (bytes read + bytes written) / median time"}
