"""``reduce_mean``: one primitive on tensors (the sum as ``reduce_sum`` computes it, divided by
the count), TensorFlow's truncated means for integers."""

from __future__ import annotations

import numpy as np
import pytest

import gputape as gt


@pytest.mark.parametrize("axis", [None, 0, 1, (0, 1)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_float_mean_is_the_sum_divided_by_the_count(device, rng, axis, keepdims):
    host = rng.normal(size=(37, 5)).astype(np.float32)
    x = gt.constant(host, device=device)
    got = gt.reduce_mean(x, axis=axis, keepdims=keepdims)
    total = gt.reduce_sum(x, axis=axis, keepdims=keepdims).numpy()
    count = host.size // np.asarray(total).size
    assert got.shape == np.mean(host, axis=axis, keepdims=keepdims).shape
    np.testing.assert_array_equal(got.numpy(), np.asarray(total / np.float32(count)))


@pytest.mark.parametrize("axis", [None, 0, 1])
def test_gradient_spreads_one_over_the_count(device, rng, axis):
    x = gt.constant(rng.normal(size=(4, 6)), device=device)
    with gt.GradientTape() as tape:
        tape.watch(x)
        y = gt.reduce_sum(gt.reduce_mean(x, axis=axis) * 3.0)
    count = 24 if axis is None else x.shape[axis]
    np.testing.assert_allclose(tape.gradient(y, x).numpy(), np.full((4, 6), 3.0 / count))


@pytest.mark.parametrize("axis, want", [(None, -1), (1, [[-1], [2]])])
def test_integer_means_truncate_toward_zero(device, axis, want):
    x = gt.constant([[1, 2, -7], [3, 4, 0]] if axis is not None else [1, 2, -7],
                    dtype="int32", device=device)
    got = gt.reduce_mean(x, axis=axis, keepdims=axis is not None)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got.numpy(), np.asarray(want, np.int32))
    assert str(got).startswith("gt.Tensor(")  # a 0-d result is an array, as everywhere
