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


# -- transforms: forward vs reverse (bench/NOTES.md, section 27) ------------------------------


def _hvp_case(rng):
    x = gt.constant(rng.uniform(-1, 1, 64).astype(np.float32))
    a = gt.constant(rng.uniform(-1, 1, (64, 64)).astype(np.float32))
    v = gt.constant(rng.standard_normal(64).astype(np.float32))
    return x, v, lambda u: gt.reduce_sum(gt.sin(a @ u) * u)


def _forward_over_reverse(x, v, f):
    with gt.autodiff.ForwardAccumulator(x, v) as acc:
        with gt.GradientTape() as tape:
            tape.watch(x)
            y = f(x)
        g = tape.gradient(y, x)
    return acc.jvp(g)


def _reverse_over_reverse(x, v, f):
    with gt.GradientTape() as outer:
        outer.watch(x)
        with gt.GradientTape() as inner:
            inner.watch(x)
            y = f(x)
        g = gt.reduce_sum(inner.gradient(y, x) * v)
    return outer.gradient(g, x)


@pytest.mark.parametrize("mode", [_forward_over_reverse, _reverse_over_reverse],
                         ids=["forward_over_reverse", "reverse_over_reverse"])
def test_hessian_vector_product(benchmark, mode):
    benchmark.group = "hvp_64"
    x, v, f = _hvp_case(np.random.default_rng(0))
    assert benchmark(mode, x, v, f) is not None


@pytest.mark.parametrize("transform", [gt.jacfwd, gt.jacobian], ids=["jacfwd", "jacrev"])
def test_jacobian_256_to_4(benchmark, transform):
    benchmark.group = "jacobian_256x4"
    rng = np.random.default_rng(0)
    w = gt.constant(rng.uniform(-1, 1, (4, 256)).astype(np.float32) / 16)
    x = gt.constant(rng.uniform(-1, 1, 256).astype(np.float32))
    assert benchmark(transform(lambda u: gt.tanh(w @ u) * gt.reduce_sum(u)), x).shape == (4, 256)


@pytest.mark.parametrize("rows", [None, 1, 300], ids=["budget", "one_row", "all_rows"])
def test_pair_energy_hessian_300(benchmark, rows):
    benchmark.group = "hessian_300x300"

    def energy(p):
        d = gt.expand_dims(p, 1) - gt.expand_dims(p, 0)
        return 0.5 * gt.reduce_sum(1.0 / (gt.reduce_sum(d * d, axis=-1) + 1.0))

    p = gt.constant(np.random.default_rng(0).standard_normal((100, 3)))
    hessian = gt.hessian(energy, parallel_iterations=rows)
    assert benchmark.pedantic(hessian, (p,), rounds=3).shape == (100, 3, 100, 3)
