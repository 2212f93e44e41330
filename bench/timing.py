"""Timing that is fair to both devices: warm-up excluded, the GPU synchronized inside the timed
region, the median of several repeats reported with its spread."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass


@dataclass
class Timing:
    median_s: float
    spread_s: float  # interquartile range
    repeats: int


def synchronizer(device_name: str):
    """A function that waits until ``device_name`` has finished its queued work."""
    if device_name == "cpu":
        return lambda: None
    import cupy

    index = int(device_name.partition(":")[2] or 0)
    dev = cupy.cuda.Device(index)
    return dev.synchronize


def measure(run, device_name: str, repeat: int = 7, warmup: int = 2,
            min_time_s: float = 0.05, sync=None) -> Timing:
    """Time ``run()``: ``warmup`` untimed calls (kernel compilation, caches), then ``repeat``
    samples; a sample loops ``run`` until it lasts ``min_time_s`` so tiny workloads are not
    dominated by the clock's resolution."""
    sync = sync or synchronizer(device_name)
    for _ in range(warmup):
        run()
    sync()
    start = time.perf_counter()
    run()
    sync()
    once = max(time.perf_counter() - start, 1e-7)
    loops = max(1, int(min_time_s / once))
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(loops):
            run()
        sync()
        samples.append((time.perf_counter() - start) / loops)
    samples.sort()
    if len(samples) >= 4:
        q = statistics.quantiles(samples, n=4)
        spread = q[2] - q[0]
    else:
        spread = samples[-1] - samples[0]
    return Timing(statistics.median(samples), spread, repeat)
