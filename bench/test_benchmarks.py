"""pytest-benchmark suites over the runner's workloads, grouped by workload, device as a
parameter: ``pytest bench/ --benchmark-only`` (save and compare runs with pytest-benchmark's own
``--benchmark-autosave`` / ``--benchmark-compare``). Not part of ``make test``."""

from __future__ import annotations

import numpy as np
import pytest

import gputape as gt
from gputape.bench.timing import synchronizer
from gputape.bench.workloads import WORKLOADS

DEVICES = [d.name for d in gt.list_devices()]
SIZE = 10**5  # the sized workloads run at one representative size here; the runner sweeps


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("workload", WORKLOADS, ids=[w.name for w in WORKLOADS])
def test_workload(benchmark, workload, device):
    benchmark.group = workload.name
    run = workload.build(SIZE if workload.sized else workload.fixed_size, device,
                         np.random.default_rng(0))
    sync = synchronizer(device)
    run()  # warm-up: kernel compilation and caches stay out of the timings
    sync()

    def timed():
        result = run()
        sync()
        return result

    assert benchmark(timed) is not None
