"""The row reductions inside softmax, log_softmax and the cross entropy, on a short last axis
of the host: the maximum column by column (the same values as NumPy's ``max``), the sum as a
product with a vector of ones (NumPy's ``sum`` up to rounding); NumPy's own otherwise."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gputape.host import rows as rows_module
from gputape.ops import nn as nn_ops

SPECIAL = [np.nan, np.inf, -np.inf, -0.0, 0.0, 1e30, -1e30]


@st.composite
def rows(draw):
    n = draw(st.integers(1, rows_module.SHORT_AXIS + 2))
    lead = draw(st.sampled_from([(), (3,), (2, 5)]))
    count = draw(st.integers(1, rows_module.ROWS_PER_COLUMN * n + 8))
    dtype = draw(st.sampled_from([np.float16, np.float32, np.float64]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal(lead + (count, n)) * 10.0 ** rng.integers(-3, 4)
    specials = draw(st.integers(0, 3))
    for _ in range(specials):
        x[tuple(rng.integers(0, s) for s in x.shape)] = SPECIAL[rng.integers(len(SPECIAL))]
    layout = draw(st.sampled_from(["contiguous", "fortran", "strided"]))
    with np.errstate(over="ignore"):  # 1e30 in float16 is inf
        x = x.astype(dtype)
    if layout == "fortran":
        x = np.asfortranarray(x)
    elif layout == "strided":
        x = np.repeat(x, 2, axis=-1)[..., ::2]
    return x


@settings(max_examples=300, deadline=None)
@given(rows())
def test_peak_equals_numpy_max(x):
    with np.errstate(invalid="ignore"):
        got = nn_ops._host_peak(np, x, -1)
        want = np.max(x, axis=-1, keepdims=True)
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)  # NaN where NumPy has NaN


def test_peak_takes_the_columns_on_many_short_rows(monkeypatch):
    x = np.random.default_rng(0).standard_normal((256, 10)).astype(np.float32)
    calls = []
    monkeypatch.setattr(rows_module, "SHORT_AXIS", 10)
    real_max = np.max
    monkeypatch.setattr(np, "max", lambda *a, **k: calls.append(a) or real_max(*a, **k))
    np.testing.assert_array_equal(nn_ops._host_peak(np, x, -1), real_max(x, -1, keepdims=True))
    assert calls == []  # the column-wise route, not NumPy's reduction
    nn_ops._host_peak(np, x.T.copy(), -1)  # 10 rows of 256: NumPy's reduction
    assert len(calls) == 1


@pytest.mark.parametrize("axis", [0, -2])
def test_peak_along_another_axis_is_numpy_max(axis):
    x = np.random.default_rng(1).standard_normal((300, 4))
    np.testing.assert_array_equal(nn_ops._host_peak(np, x, axis), np.max(x, axis, keepdims=True))


@settings(max_examples=300, deadline=None)
@given(rows())
def test_row_sum_equals_numpy_sum_up_to_rounding(x):
    with np.errstate(invalid="ignore", over="ignore"):
        got = nn_ops._host_row_sum(np, x, -1)
        want = np.sum(x, axis=-1, keepdims=True)
        scale = np.sum(np.abs(x.astype(np.float64)), axis=-1, keepdims=True)
    assert got.shape == want.shape and got.dtype == want.dtype
    assert np.array_equal(np.isnan(got), np.isnan(want))
    finite = np.isfinite(want)
    assert np.array_equal(got[~finite & ~np.isnan(want)], want[~finite & ~np.isnan(want)])
    bound = 2 * x.shape[-1] * np.finfo(x.dtype).eps * scale[finite]
    assert np.all(np.abs(got[finite].astype(np.float64) - want[finite]) <= bound)


@pytest.mark.parametrize("dtype, axis, blas", [
    (np.float32, -1, True), (np.float64, -1, True),
    (np.float16, -1, False),  # no BLAS for half precision
    (np.float32, -2, False),
])
def test_route(monkeypatch, dtype, axis, blas):
    calls = []
    matmul = np.matmul
    monkeypatch.setattr(np, "matmul", lambda *a, **k: calls.append(1) or matmul(*a, **k))
    x = np.random.default_rng(0).standard_normal((64, 10)).astype(dtype)
    got = nn_ops._host_row_sum(np, x, axis)
    np.testing.assert_allclose(got, np.sum(x, axis=axis, keepdims=True), rtol=1e-3)
    assert bool(calls) is blas
