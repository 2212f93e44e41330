"""Fused path against the generic one: the same inputs, with fusion on and with GPUTAPE_FUSED=0.

On ``gpu:0`` the fused side runs the CUDA kernels of ``kernels/``; on ``cpu-fused`` it runs the
same route (fused gradient primitives, pending results, pattern sums) on NumPy; on ``cpu`` both
sides are the generic path. Values must agree to summation-order rounding, NaN and inf included.
"""

from __future__ import annotations

import numpy as np
import pytest
from fused_helpers import (
    EDGE_X,
    EXPONENTS,
    VIEWS,
    assert_same,
    fused_and_generic,
    route_on,
    value_and_grads,
)
from helpers import count_calls

import gputape as gt
from gputape.cuda import fused, pending

BROADCASTS = [
    ((3, 4), (3, 4)), ((3, 4), (4,)), ((4,), (3, 4)), ((3, 1), (1, 4)), ((2, 3, 4), (3, 1)),
    ((), (5,)), ((0, 3), (3,)), ((1001,), (1001,)), ((257, 33), (33,)), ((33, 257), (33, 1)),
    ((2, 1, 5), (1, 3, 1)),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shapes", BROADCASTS, ids=str)
def test_multiply_gradients_fused_equal_generic(device, rng, monkeypatch, shapes, dtype):
    arrays = [rng.standard_normal(s).astype(dtype) for s in shapes]
    both = fused_and_generic(monkeypatch, value_and_grads(lambda x, y: x * y * 1.5), *arrays)
    assert_same(*both, dtype)
    both = fused_and_generic(monkeypatch, value_and_grads(lambda x, y: gt.reduce_sum(x * y)),
                             *arrays)
    assert_same(*both, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("p", EXPONENTS)
def test_pow_gradients_fused_equal_generic_at_edges(device, monkeypatch, p, dtype):
    x = EDGE_X.astype(dtype)
    for fn in (lambda x, p: gt.pow(x, p) * 2.0, lambda x, p: gt.reduce_sum(gt.pow(x, p))):
        both = fused_and_generic(monkeypatch, value_and_grads(fn), x, np.asarray(p, dtype))
        assert_same(*both, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pow_with_elementwise_exponents_and_broadcast(device, rng, monkeypatch, dtype):
    x = rng.uniform(0.1, 2.0, (4, 1, 5)).astype(dtype)
    p = rng.choice(np.array(EXPONENTS, dtype), (3, 1))
    fn = value_and_grads(lambda x, p: gt.reduce_sum(gt.pow(x, p), axis=(0, 2)))
    both = fused_and_generic(monkeypatch, fn, x, p)
    assert_same(*both, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(), (7,), (3, 5), (0,), (2049,)], ids=str)
def test_square_gradients_fused_equal_generic(device, rng, monkeypatch, shape, dtype):
    x = rng.standard_normal(shape).astype(dtype)
    for fn in (lambda x: gt.square(x) * 3.0, lambda x: gt.reduce_sum(gt.square(x))):
        assert_same(*fused_and_generic(monkeypatch, value_and_grads(fn), x), dtype)


AXES = [None, 0, 1, -1, (0, 2), (1, 2), (0, 1, 2)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", AXES, ids=str)
def test_reduction_patterns_fused_equal_generic(device, rng, monkeypatch, pattern_forwards,
                                                axis, keepdims, dtype):
    """Recorded under two tapes, so each pending result is summed by its pattern forward (on
    the GPU, the sum_product, sum_square and sum_power kernels) over any axes, full sums
    included (one tape would take the one-pass route for those: test_fused_one_pass.py)."""
    x = rng.standard_normal((6, 1, 300)).astype(dtype) * np.ones((1, 5, 1), dtype)
    y = rng.standard_normal((5, 300)).astype(dtype)

    def patterns(x, y):
        with gt.GradientTape() as outer:
            outer.watch([x, y])
            with gt.GradientTape() as inner:
                inner.watch([x, y])
                sums = [gt.reduce_sum(x * y, axis=axis, keepdims=keepdims),
                        gt.reduce_sum(gt.square(x), axis=axis, keepdims=keepdims),
                        gt.reduce_sum(gt.pow(gt.abs(x), 2.5), axis=axis, keepdims=keepdims),
                        gt.reduce_sum(x, axis=axis, keepdims=keepdims)]
                total = sum(gt.reduce_sum(s) for s in sums)
            grads = inner.gradient(total, [x, y])
        return [*sums, *grads]

    fused_out, generic_out = fused_and_generic(monkeypatch, patterns, x, y)
    assert_same(fused_out, generic_out, dtype)
    assert sorted(pattern_forwards) == (["multiply", "pow", "square"] if route_on() else [])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("p", [3.0, 2.0, 0.5, -1.0, 0.0])
@pytest.mark.parametrize("view", list(VIEWS))
def test_non_contiguous_inputs_fused_equal_generic(device, rng, monkeypatch, view, p, dtype):
    """Strided, transposed, reversed and broadcast reads of x and y by the multiply, square
    and pow kernels (gradients with and without a reduction, and the pattern sums)."""
    def views(base, other):
        x, y = VIEWS[view](base), other[::-1]
        return value_and_grads(lambda x, y: gt.reduce_sum(x * y) + gt.reduce_sum(x ** p * y)
                      + gt.reduce_sum(gt.square(x) * 0.5 + gt.pow(x, p) * 2.0 + x * y * 1.5)
                      + gt.reduce_sum(gt.reduce_sum(gt.square(y), axis=0) * x[0]))(x, y)

    base = rng.uniform(0.5, 2.0, (8, 10)) * rng.choice([-1.0, 1.0], (8, 10))  # x ** -1 bounded
    other = rng.standard_normal((8, 5))
    both = fused_and_generic(monkeypatch, views, base.astype(dtype), other.astype(dtype))
    assert_same(*both, dtype)


def test_large_full_reduction_splits_the_work(device, rng, monkeypatch):
    """Long enough that the kernels split the reduction across many blocks and finish it."""
    x = rng.standard_normal(3 * 2**18 + 7)
    y = rng.standard_normal(3 * 2**18 + 7)
    assert_same(*fused_and_generic(monkeypatch, value_and_grads(lambda x, y: gt.reduce_sum(x * y)),
                                   x, y),
                np.float64)


def test_second_order_through_fused_rules_keeps_none(device, monkeypatch):
    """d/dx of dz/dy where dz/dy does not involve y, and TF's None for an unconnected pair."""

    def second(x, y):
        with gt.GradientTape(persistent=True) as outer:
            outer.watch([x, y])
            with gt.GradientTape() as inner:
                inner.watch([x, y])
                z = gt.reduce_sum(x * y + gt.pow(x, 3.0))
            gx, gy = inner.gradient(z, [x, y])
        return [gx, gy, *outer.gradient(gx, [x, y]), *outer.gradient(gy, [x, y])]

    x = np.array([0.5, -1.0, 2.0])
    y = np.array([1.5, 2.0, -0.5])
    fused_out, generic_out = fused_and_generic(monkeypatch, second, x, y)
    assert_same(fused_out, generic_out, np.float64)
    assert generic_out[5] is None  # d(dz/dy)/dy: dz/dy = x does not depend on y


# -- the route itself, on NumPy (runs everywhere) ---------------------------------------------


def _count_calls(monkeypatch, prim):
    return count_calls(monkeypatch, prim, "forward")


def test_reduce_sum_of_a_product_never_computes_the_product(numpy_route, monkeypatch):
    product_calls = _count_calls(monkeypatch, gt.ops.elementwise.MULTIPLY)
    x, y = gt.constant([1.0, 2.0, 3.0]), gt.constant([4.0, 5.0, 6.0])
    with gt.GradientTape() as tape:
        tape.watch([x, y])
        p = x * y
        s = gt.reduce_sum(p)
    assert pending.pending_inputs(p) is not None
    gx, gy = tape.gradient(s, [x, y])
    assert float(s) == 32.0
    np.testing.assert_array_equal(gx.numpy(), [4.0, 5.0, 6.0])
    np.testing.assert_array_equal(gy.numpy(), [1.0, 2.0, 3.0])
    assert product_calls == [] and pending.pending_inputs(p) is not None


def test_a_pending_result_is_computed_on_any_other_read(numpy_route):
    x = gt.constant([1.0, -2.0])
    with gt.GradientTape() as tape:
        tape.watch(x)
        p = x ** 2.0
        assert type(p) is pending.PendingTensor and p.shape == (2,) and p.dtype == np.float32
        q = gt.exp(p)  # an ordinary op reads it
    assert type(p) is gt.Tensor
    np.testing.assert_allclose(p.numpy(), [1.0, 4.0])
    np.testing.assert_allclose(tape.gradient(q, x).numpy(), 2 * np.array([1.0, -2.0]) *
                               np.exp([1.0, 4.0]), rtol=1e-6)


def test_gradient_with_respect_to_a_pending_tensor(numpy_route):
    x = gt.constant([[1.0, 2.0], [3.0, 4.0]])
    with gt.GradientTape() as tape:
        tape.watch(x)
        p = gt.square(x)
        s = gt.reduce_sum(p, axis=0)
    gp, gx = tape.gradient(s, [p, x])
    np.testing.assert_array_equal(gp.numpy(), np.ones((2, 2)))
    np.testing.assert_array_equal(gx.numpy(), 2 * x.numpy())


def test_first_order_uses_the_fused_pair_and_nested_tapes_do_not(numpy_route, monkeypatch):
    pair_calls = _count_calls(monkeypatch, fused.MUL_GRAD_PAIR)
    single_calls = _count_calls(monkeypatch, fused.MUL_GRAD)
    x, y = gt.constant([1.0, 2.0]), gt.constant([3.0, 4.0])
    with gt.GradientTape() as tape:
        tape.watch([x, y])
        z = x * y
    tape.gradient(z, [x, y])
    assert (len(pair_calls), len(single_calls)) == (1, 0)
    with gt.GradientTape() as outer:
        outer.watch([x, y])
        with gt.GradientTape() as inner:
            inner.watch([x, y])
            z = x * y
        inner.gradient(z, [x, y])
    assert (len(pair_calls), len(single_calls)) == (1, 2)


def test_fused_off_switches_the_whole_route_off(numpy_route, monkeypatch):
    monkeypatch.setenv("GPUTAPE_FUSED", "0")
    calls = _count_calls(monkeypatch, fused.MUL_GRAD_PAIR)
    x = gt.constant([1.0, 2.0])
    with gt.GradientTape() as tape:
        tape.watch(x)
        p = x * x
        s = gt.reduce_sum(p)
    assert type(p) is gt.Tensor
    np.testing.assert_array_equal(tape.gradient(s, x).numpy(), [2.0, 4.0])
    assert calls == []


def test_without_a_recording_tape_nothing_is_deferred(numpy_route):
    x = gt.constant([1.0, 2.0])
    assert type(x * x) is gt.Tensor
    with gt.GradientTape() as tape:
        p = x * x  # x is not watched
    assert type(p) is gt.Tensor and tape.gradient(p, x) is None
