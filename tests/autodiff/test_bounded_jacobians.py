"""Jacobians in chunks of rows: ``parallel_iterations`` (TF's argument) and the memory budget
(``GPUTAPE_JACOBIAN_BYTES``) bound what one backward walk holds, with the same result."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import gputape as gt
from gputape.autodiff.jacobian import BUDGET_VARIABLE, chunk_rows


def _energy(positions):
    """A pair energy of n particles (positions: n x 3): sum over pairs of 1 / (r^2 + 1)."""
    diff = gt.expand_dims(positions, 1) - gt.expand_dims(positions, 0)
    r2 = gt.reduce_sum(diff * diff, axis=-1)
    return 0.5 * gt.reduce_sum(1.0 / (r2 + 1.0))


def _positions(n, seed=0):
    return gt.constant(np.random.default_rng(seed).standard_normal((n, 3)))


def _hessian_by_hand(x):
    """The same Hessian from finite differences of the gradient (float64)."""
    flat = x.numpy().ravel()
    grad = gt.grad(lambda p: _energy(p))
    eps, columns = 1e-6, []
    for i in range(flat.size):
        step = np.zeros_like(flat)
        step[i] = eps
        up = grad(gt.constant((flat + step).reshape(x.shape))).numpy().ravel()
        down = grad(gt.constant((flat - step).reshape(x.shape))).numpy().ravel()
        columns.append((up - down) / (2 * eps))
    return np.stack(columns, axis=1)


@pytest.mark.parametrize("parallel_iterations", [None, 1, 7, 18, 1000])
def test_every_chunking_gives_the_same_hessian(device, parallel_iterations):
    x = _positions(6)
    h = gt.hessian(_energy, parallel_iterations=parallel_iterations)(x).numpy()
    np.testing.assert_allclose(h.reshape(18, 18), _hessian_by_hand(x), rtol=1e-5, atol=1e-6)


def test_the_tape_methods_take_parallel_iterations(device):
    x = gt.constant(np.random.default_rng(1).standard_normal((4, 3)))
    with gt.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = gt.sin(x) * gt.reduce_sum(x, axis=1, keepdims=True)  # example by example
    whole = tape.jacobian(y, x).numpy()
    np.testing.assert_allclose(tape.jacobian(y, x, parallel_iterations=5).numpy(), whole)
    per_example = tape.batch_jacobian(y, x).numpy()
    np.testing.assert_allclose(
        tape.batch_jacobian(y, x, parallel_iterations=2).numpy(), per_example)
    for b in range(4):  # and the per-example blocks are the jacobian's diagonal blocks
        np.testing.assert_allclose(per_example[b], whole[b, :, b, :])


def test_a_budget_bounds_the_memory_of_a_hessian(monkeypatch):
    """The Hessian of a 30-particle energy (90 x 90) holds a cotangent of every recorded
    result per row: all rows at once take about 12 MB; a 2 MB budget walks a few rows at a
    time and stays within a fraction of that, with the same Hessian."""
    x = _positions(30)

    def peak(budget):
        monkeypatch.setenv(BUDGET_VARIABLE, str(budget))
        tracemalloc.start()
        try:
            h = gt.hessian(_energy)(x).numpy()
            return h, tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    whole, whole_peak = peak(1 << 40)
    bounded, bounded_peak = peak(2 << 20)
    np.testing.assert_allclose(bounded, whole, rtol=1e-12)
    assert whole_peak > 8 << 20, whole_peak
    assert bounded_peak < whole_peak / 4, (bounded_peak, whole_peak)


def test_the_chunk_fits_the_budget():
    output = gt.zeros((1000,), dtype=gt.float64)  # 8 kB a row
    entries = [(None, (), {}, output, None, None)] * 4  # 32 kB a row
    assert chunk_rows(entries, 100) == 100  # 3.2 MB: under the default budget
    assert chunk_rows(entries, 100, parallel_iterations=3) == 3
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(BUDGET_VARIABLE, "65536")
        assert chunk_rows(entries, 100) == 2
        patch.setenv(BUDGET_VARIABLE, "1")
        assert chunk_rows(entries, 100) == 1  # one row at least


@pytest.mark.parametrize("bad", [0, -2, 2.5, True, "8"])
def test_bad_parallel_iterations_are_refused(bad):
    x = gt.constant([1.0, 2.0])
    with gt.GradientTape() as tape:
        tape.watch(x)
        y = x * x
    with pytest.raises(ValueError, match="parallel_iterations.*positive int") as info:
        tape.jacobian(y, x, parallel_iterations=bad)
    assert "hint" in str(info.value)


def test_a_bad_budget_is_refused(monkeypatch):
    monkeypatch.setenv(BUDGET_VARIABLE, "lots")
    with pytest.raises(ValueError, match=f"{BUDGET_VARIABLE}='lots'"):
        gt.hessian(_energy)(_positions(3))
