"""Edge points of the fused kernels against the generic rules: 0, -0, negatives, NaN and +-inf,
empty sizes, broadcast and non-contiguous operands, float32 and float64.

Every test runs on each device of the ``device`` fixture: on ``gpu:0`` the fused side is the
CUDA kernels, on ``cpu-fused`` the same route on NumPy, on ``cpu`` both sides are generic. The
other side always runs with ``GPUTAPE_FUSED=0``; see ``tests/fused_helpers.py`` for the
helpers.
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

import gputape as gt

DTYPES = [np.float32, np.float64]


def _watched(fn, watch: tuple):
    """Like ``value_and_grads``, with gradients for the inputs ``watch`` only (the others
    constants)."""
    def run(*tensors):
        sources = [tensors[i] for i in watch]
        with gt.GradientTape() as tape:
            tape.watch(sources)
            y = fn(*tensors)
        return [y, *tape.gradient(y, sources)]

    return run


POW_FORMS = {
    "elementwise": lambda x, p: gt.pow(x, p) * 2.0,
    "full sum": lambda x, p: gt.reduce_sum(gt.pow(x, p)),
    "rows": lambda x, p: gt.reduce_sum(gt.pow(x, p), axis=-1),
    "columns kept": lambda x, p: gt.reduce_sum(gt.pow(x, p), axis=0, keepdims=True),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shapes", [((0,), ()), ((0, 3), (3,)), ((3, 0), (3, 1)),
                                    ((4, 0), ())], ids=str)
@pytest.mark.parametrize("form", list(POW_FORMS))
def test_pow_of_empty_inputs_fused_equal_generic(device, monkeypatch, form, shapes, dtype):
    x, p = np.ones(shapes[0], dtype), np.full(shapes[1], 2.5, dtype)
    for watch in [(0, 1), (0,), (1,)]:
        assert_same(*fused_and_generic(monkeypatch, _watched(POW_FORMS[form], watch), x, p), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("form", list(POW_FORMS))
def test_pow_at_edge_x_with_broadcast_exponents(device, monkeypatch, form, dtype):
    """Every edge x against every exponent: x of shape (11,) and p of shape (7, 1), so both
    gradients are un-broadcast (summed over p's rows for x, over x's columns for p)."""
    x = EDGE_X.astype(dtype)
    p = np.array(EXPONENTS, dtype).reshape(-1, 1)
    for watch in [(0, 1), (0,), (1,)]:
        assert_same(*fused_and_generic(monkeypatch, _watched(POW_FORMS[form], watch), x, p), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p", EXPONENTS)
def test_pow_pattern_sum_at_edge_x_under_a_tape(device, monkeypatch, pattern_forwards, p,
                                                dtype):
    """reduce_sum(x ** p) of a recorded, hence pending, power: the sum_power kernel on the GPU
    reads the edge x itself. Over rows, over everything with keepdims, and (under an outer
    tape, where no one-pass gradients are kept) over everything."""
    x = np.stack([EDGE_X, EDGE_X[::-1]]).astype(dtype)

    def sums(x, p):
        with gt.GradientTape(persistent=True) as outer:
            outer.watch([x, p])
            with gt.GradientTape(persistent=True) as inner:
                inner.watch([x, p])
                rows = gt.reduce_sum(gt.pow(x, p), axis=1)
                kept = gt.reduce_sum(gt.pow(x, p), axis=(0, 1), keepdims=True)
                total = gt.reduce_sum(gt.pow(x, p))
            grads = [inner.gradient(t, [x, p]) for t in (rows, kept, total)]
        return [rows, kept, total, *(g for pair in grads for g in pair)]

    assert_same(*fused_and_generic(monkeypatch, sums, x, np.asarray(p, dtype)), dtype)
    assert pattern_forwards == (["pow"] * 3 if route_on() else [])


MULTIPLY_EDGES = {  # x, y: every pair of edge values meets in the broadcast one
    "same shape": (EDGE_X, np.roll(EDGE_X, 4)),
    "broadcast": (EDGE_X.reshape(-1, 1), EDGE_X),
    "row": (np.stack([EDGE_X, -EDGE_X]), EDGE_X[::-1].copy()),
}
MULTIPLY_FORMS = {
    "elementwise": lambda x, y: x * y * 1.5,
    "full sum": lambda x, y: gt.reduce_sum(x * y),
    "columns": lambda x, y: gt.reduce_sum(x * y, axis=0),
    "rows kept": lambda x, y: gt.reduce_sum(x * y, axis=-1, keepdims=True),
    # a cotangent with zeros: 0 * inf and 0 * NaN in the gradients give NaN, as the rules do
    "zero cotangents": lambda x, y: gt.reduce_sum(
        x * y * gt.constant(np.arange(11) % 3 == 0, dtype=x.dtype)),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("form", list(MULTIPLY_FORMS))
@pytest.mark.parametrize("case", list(MULTIPLY_EDGES))
def test_multiply_at_zero_nan_and_inf_fused_equal_generic(device, monkeypatch, case, form,
                                                          dtype):
    x, y = (a.astype(dtype) for a in MULTIPLY_EDGES[case])
    if form == "columns" and x.ndim == 1 and y.ndim == 1:
        x = np.stack([x, y])
    for watch in [(0, 1), (0,), (1,)]:
        assert_same(*fused_and_generic(monkeypatch, _watched(MULTIPLY_FORMS[form], watch), x, y),
                    dtype)


SQUARE_FORMS = {
    "elementwise": lambda x: gt.square(x) * 3.0,
    "full sum": lambda x: gt.reduce_sum(gt.square(x)),
    "columns kept": lambda x: gt.reduce_sum(gt.square(x), axis=0, keepdims=True),
    "un-broadcast": lambda x: gt.square(x) * gt.ones((3, 1, 1), x.dtype),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("form", list(SQUARE_FORMS))
def test_square_at_nan_and_inf_fused_equal_generic(device, monkeypatch, form, dtype):
    x = np.stack([EDGE_X, EDGE_X[::-1]]).astype(dtype)
    assert_same(*fused_and_generic(monkeypatch, value_and_grads(SQUARE_FORMS[form]), x), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("form", list(SQUARE_FORMS))
@pytest.mark.parametrize("view", list(VIEWS))
def test_square_of_non_contiguous_inputs_fused_equal_generic(device, rng, monkeypatch, view,
                                                             form, dtype):
    base = rng.standard_normal((8, 10)).astype(dtype)
    fn = SQUARE_FORMS[form]
    assert_same(*fused_and_generic(monkeypatch, lambda b: value_and_grads(fn)(VIEWS[view](b)),
                                   base), dtype)
