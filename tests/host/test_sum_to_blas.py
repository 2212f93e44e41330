"""``sum_to`` over leading axes on the host, the un-broadcast that ends a bias's gradient: a
product of a vector of ones and the rows (BLAS), equal to NumPy's ``sum`` up to rounding."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gputape.ops import reduction

SPECIAL = [np.nan, np.inf, -np.inf, -0.0, 1e30]


@st.composite
def stacks(draw):
    lead = draw(st.sampled_from([(1,), (15,), (16,), (40,), (4, 5), (3, 1, 7)]))
    tail = draw(st.sampled_from([(1,), (3,), (10,), (2, 5)]))
    dtype = draw(st.sampled_from([np.float16, np.float32, np.float64]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal(lead + tail) * 10.0 ** rng.integers(-3, 4)
    for _ in range(draw(st.integers(0, 3))):
        x[tuple(rng.integers(0, s) for s in x.shape)] = SPECIAL[rng.integers(len(SPECIAL))]
    with np.errstate(over="ignore"):
        x = x.astype(dtype)
    if draw(st.booleans()):
        x = np.asfortranarray(x)
    return x, tail


@settings(max_examples=300, deadline=None)
@given(stacks())
def test_sum_of_leading_axes_equals_numpy_up_to_rounding(case):
    x, tail = case
    lead = x.ndim - len(tail)
    with np.errstate(invalid="ignore", over="ignore"):
        got = reduction.SUM_TO.host_forward(np, x, tail, 0)
        want = np.sum(x, axis=tuple(range(lead)))
        scale = np.sum(np.abs(x.astype(np.float64)), axis=tuple(range(lead)))
    assert got.shape == want.shape == tail and got.dtype == want.dtype
    assert np.array_equal(np.isnan(got), np.isnan(want))
    infinite = np.isinf(want)
    assert np.array_equal(got[infinite], want[infinite])
    finite = np.isfinite(want)
    rows = x.size // max(1, want.size)
    bound = 2 * rows * np.finfo(x.dtype).eps * scale[finite]
    assert np.all(np.abs(got[finite].astype(np.float64) - want[finite]) <= bound)


@pytest.mark.parametrize("shape, target, blas", [
    ((256, 10), (10,), True),
    ((256, 10), (1, 10), True),
    ((4, 8, 10), (10,), True),
    ((8, 10), (10,), False),  # too few rows to pay
    ((10, 256), (10, 1), False),  # the last axis: NumPy's own sum
])
def test_route(monkeypatch, shape, target, blas):
    calls = []
    matmul = np.matmul
    monkeypatch.setattr(np, "matmul", lambda *a, **k: calls.append(1) or matmul(*a, **k))
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    got = reduction.SUM_TO.host_forward(np, x, target, 0)
    axes = tuple(i for i in range(len(shape))
                 if i < len(shape) - len(target) or target[i - len(shape) + len(target)] == 1)
    np.testing.assert_allclose(got, np.sum(x, axis=axes).reshape(target), rtol=1e-5, atol=1e-5)
    assert bool(calls) is blas
