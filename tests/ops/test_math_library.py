"""tf.math's reductions, scans, sorting and special functions: values and the choices TF makes
(defaults, ties, edges), each expected value derived by hand or from Python's math module.
The gradients are checked against finite differences in test_gradients.py."""

from __future__ import annotations

import math

import numpy as np
import pytest

import gputape as gt

M = [[1.0, 4.0, 2.0], [3.0, 0.0, 5.0]]


def test_variance_std_and_euclidean_norm(device):
    """Variance divides by the count (TF's, not NumPy's ddof=1 choice of statistics)."""
    assert float(gt.reduce_variance(M)) == pytest.approx(np.var(M))
    np.testing.assert_allclose(gt.reduce_variance(M, axis=0).numpy(), [1.0, 4.0, 2.25])
    np.testing.assert_allclose(gt.reduce_std(M, axis=1, keepdims=True).numpy(),
                               np.sqrt([[14 / 9], [38 / 9]]), rtol=1e-6)
    assert float(gt.reduce_euclidean_norm([[3.0, 4.0]])) == 5.0
    np.testing.assert_allclose(gt.reduce_euclidean_norm(M, axis=1).numpy(),
                               [math.sqrt(21.0), math.sqrt(34.0)], rtol=1e-6)


def test_the_variance_gradient_flows_through_the_mean(device):
    """d/dx_i of mean((x - mean x)^2) is 2 (x_i - mean) / n (the mean's share sums to 0)."""
    x = gt.constant([1.0, 2.0, 6.0])
    with gt.GradientTape() as tape:
        tape.watch(x)
        v = gt.reduce_variance(x)
    np.testing.assert_allclose(tape.gradient(v, x).numpy(), [-4 / 3, -2 / 3, 2.0], rtol=1e-6)


def test_any_and_all(device):
    b = [[True, False], [False, False]]
    assert gt.reduce_any(b).numpy() and not gt.reduce_all(b).numpy()
    assert gt.reduce_any(b, axis=0).numpy().tolist() == [True, False]
    assert gt.reduce_all(b, axis=1, keepdims=True).numpy().tolist() == [[False], [False]]


@pytest.mark.parametrize("call, error, words", [
    (lambda: gt.reduce_any([1.0, 0.0]), TypeError, ["reduce_any", "bool", "float32", "hint"]),
    (lambda: gt.reduce_variance([1, 2]), TypeError, ["reduce_variance", "int32", "hint"]),
    (lambda: gt.argmax([1.0, 2.0], output_type=gt.float32), ValueError, ["output_type"]),
    (lambda: gt.sort([1.0], direction="up"), ValueError, ["'ASCENDING'", "'up'"]),
    (lambda: gt.top_k([1.0, 2.0], k=3), ValueError, ["k=3", "0..2", "hint"]),
    (lambda: gt.cumsum(1.0), ValueError, ["cumsum", "0-d", "hint"]),
    (lambda: gt.argmax([[1.0]], axis=2), ValueError, ["argmax", "axis 2", "rank 2"]),
])
def test_bad_arguments_are_refused(call, error, words):
    with pytest.raises(error) as info:
        call()
    for word in words:
        assert word in str(info.value), str(info.value)


def test_argmax_and_argmin_follow_tf(device):
    """axis=None means axis 0 (TF, not NumPy's flattening); int64 unless asked; ties: the
    first index."""
    found = gt.argmax(M)
    assert found.dtype == gt.int64 and found.numpy().tolist() == [1, 0, 1]
    assert gt.argmin(M, axis=1, output_type=gt.int32).numpy().tolist() == [0, 1]
    assert int(gt.argmax([2.0, 7.0, 7.0])) == 1 and int(gt.argmin([3.0, 1.0, 1.0])) == 1


def test_sort_argsort_and_ties(device):
    x = [3.0, 1.0, 3.0, 2.0]
    assert gt.sort(x).numpy().tolist() == [1.0, 2.0, 3.0, 3.0]
    assert gt.argsort(x).numpy().tolist() == [1, 3, 0, 2]
    assert gt.argsort(x, direction="DESCENDING").numpy().tolist() == [0, 2, 3, 1]
    assert gt.argsort(x).dtype == gt.int32
    np.testing.assert_array_equal(gt.sort(M, axis=0).numpy(), [[1.0, 0.0, 2.0],
                                                                [3.0, 4.0, 5.0]])


def test_top_k_values_indices_and_gradient(device):
    """The k largest along the last axis, largest first, lower index first on ties; the
    gradient of their sum is 1 at the chosen positions."""
    x = gt.constant([[1.0, 5.0, 3.0, 5.0], [0.0, -1.0, 2.0, 1.0]])
    with gt.GradientTape() as tape:
        tape.watch(x)
        values, indices = gt.top_k(x, k=2)
        total = gt.reduce_sum(values * gt.constant([1.0, 10.0]))
    assert values.numpy().tolist() == [[5.0, 5.0], [2.0, 1.0]]
    assert indices.numpy().tolist() == [[1, 3], [2, 3]] and indices.dtype == gt.int32
    assert tape.gradient(total, x).numpy().tolist() == [[0, 1, 0, 10], [0, 0, 1, 10]]


def test_sort_gradient_goes_back_to_each_values_position(device):
    x = gt.constant([3.0, 1.0, 2.0])
    with gt.GradientTape() as tape:
        tape.watch(x)
        y = gt.reduce_sum(gt.sort(x) * gt.constant([1.0, 2.0, 3.0]))  # weights by rank
    assert tape.gradient(y, x).numpy().tolist() == [3.0, 1.0, 2.0]


def test_cumsum_and_cumprod_options(device):
    v = [1.0, 2.0, 3.0, 4.0]
    assert gt.cumsum(v).numpy().tolist() == [1, 3, 6, 10]
    assert gt.cumsum(v, exclusive=True).numpy().tolist() == [0, 1, 3, 6]
    assert gt.cumsum(v, reverse=True).numpy().tolist() == [10, 9, 7, 4]
    assert gt.cumsum(v, exclusive=True, reverse=True).numpy().tolist() == [9, 7, 4, 0]
    assert gt.cumprod(v, exclusive=True).numpy().tolist() == [1, 1, 2, 6]
    assert gt.cumprod(v, reverse=True).numpy().tolist() == [24, 24, 12, 4]
    np.testing.assert_array_equal(gt.cumsum(M, axis=1).numpy(), [[1, 5, 7], [3, 3, 8]])
    assert gt.cumsum([1, 2, 3]).dtype == gt.int32  # an integer sum keeps its dtype


def test_special_functions_values(device):
    points = [-2.0, -0.5, 0.0, 0.3, 1.5]
    x = gt.constant(points, dtype=gt.float64)
    np.testing.assert_allclose(gt.erf(x).numpy(), [math.erf(p) for p in points], rtol=1e-15)
    np.testing.assert_allclose(gt.erfc(x).numpy(), [math.erfc(p) for p in points],
                               rtol=1e-15)
    np.testing.assert_allclose(gt.log_sigmoid(gt.constant([-100.0, 0.0, 100.0])).numpy(),
                               [-100.0, -math.log(2), 0.0], atol=1e-6)


def test_safe_divisions_at_zero(device):
    """divide_no_nan: 0 where y = 0, and so are its gradients (TF); xlogy and xdivy: 0 where
    x = 0, whatever y."""
    x, y = gt.constant([1.0, 0.0, 6.0]), gt.constant([0.0, 0.0, 3.0])
    with gt.GradientTape() as tape:
        tape.watch([x, y])
        q = gt.divide_no_nan(x, y)
    assert q.numpy().tolist() == [0.0, 0.0, 2.0]
    gx, gy = tape.gradient(q, [x, y])
    np.testing.assert_allclose(gx.numpy(), [0.0, 0.0, 1 / 3], rtol=1e-6)
    np.testing.assert_allclose(gy.numpy(), [0.0, 0.0, -6 / 9], rtol=1e-6)
    assert gt.xlogy([0.0, 2.0], [0.0, math.e]).numpy().tolist() == pytest.approx([0.0, 2.0])
    assert gt.xdivy([0.0, 3.0], [0.0, 2.0]).numpy().tolist() == [0.0, 1.5]


def test_float_floor_division_is_tfs_floor_of_the_quotient(device):
    """TF 2.21: tf.math.floordiv(1.0, 0.1) is 10 (floor(x / y)); NumPy's // gives 9 (it
    rounds (x - fmod(x, y)) / y); -5 // inf is -0 in TF, -1 in NumPy."""
    assert gt.floordiv([1.0, 1.0, -5.0], [0.1, 0.2, math.inf]).numpy().tolist() == [10, 5, 0]


def test_the_operators_floordiv_and_mod(device):
    x = gt.constant([7.0, -7.0])
    assert (x // 2.0).numpy().tolist() == [3, -4] and (x % 3.0).numpy().tolist() == [1, 2]
    assert (15.0 // gt.constant(4.0)).numpy() == 3 and (15.0 % gt.constant(4.0)).numpy() == 3


def test_floor_division_and_modulo_take_the_divisors_sign(device):
    assert gt.floordiv([7.0, -7.0, 7.0], [2.0, 2.0, -2.0]).numpy().tolist() == [3, -4, -4]
    assert gt.floormod([7.0, -7.0, 7.0], [3.0, 3.0, -3.0]).numpy().tolist() == [1, 2, -2]
    assert gt.floormod([7, -7], 3).numpy().tolist() == [1, 2]


def test_nan_and_inf_tests(device):
    x = gt.constant([1.0, math.nan, math.inf, -math.inf])
    assert gt.is_nan(x).numpy().tolist() == [False, True, False, False]
    assert gt.is_inf(x).numpy().tolist() == [False, False, True, True]
    assert gt.is_finite(x).numpy().tolist() == [True, False, False, False]


# -- cases found comparing with TensorFlow 2.21 side by side (its values copied here) ---------


def test_descending_order_of_unsigned_and_minimum_integers_is_tfs():
    """TF 2.21: sort(DESCENDING) of uint8 [[3,1,0,2,3],[1,1,1,0,7]] is [[3,3,2,1,0],
    [7,1,1,1,0]], argsort [[0,4,3,1,2],[4,0,1,2,3]]; int32 keeps its minimum last (a negation
    would wrap around)."""
    x = np.array([[3, 1, 0, 2, 3], [1, 1, 1, 0, 7]], np.uint8)
    assert gt.sort(x, direction="DESCENDING").numpy().tolist() == [[3, 3, 2, 1, 0],
                                                                   [7, 1, 1, 1, 0]]
    assert gt.argsort(x, direction="DESCENDING").numpy().tolist() == [[0, 4, 3, 1, 2],
                                                                      [4, 0, 1, 2, 3]]
    assert gt.top_k(x, 3).indices.numpy().tolist() == [[0, 4, 3], [4, 0, 1]]
    low = -2**31
    y = np.array([0, low, 2**31 - 1, -1, 5, low], np.int32)
    assert gt.sort(y, direction="DESCENDING").numpy().tolist() == [2**31 - 1, 5, 0, -1, low, low]


def test_argmax_and_argmin_skip_nan_as_tf():
    """TF 2.21's CPU kernels: argmax([1, nan, 3, 2]) = 2, argmin([inf, nan, -inf, 1]) = 2, and
    0 when every value is NaN (NumPy would return the first NaN)."""
    assert int(gt.argmax([1.0, math.nan, 3.0, 2.0])) == 2
    assert int(gt.argmin([math.inf, math.nan, -math.inf, 1.0])) == 2
    assert int(gt.argmax([math.nan, math.nan])) == 0


def test_cumprod_gradient_is_zero_where_x_is_zero_as_tf():
    """TF 2.21 divides with div_no_nan: at x = [2, 0, 3, 4] the gradient of sum(cumprod(x))
    is [1, 0, 0, 0] (the true one, 2 + 6 + 24 = 32 at the zero, is beyond its formula)."""
    x = gt.constant([2.0, 0.0, 3.0, 4.0])
    with gt.GradientTape() as tape:
        tape.watch(x)
        y = gt.reduce_sum(gt.cumprod(x))
    assert tape.gradient(y, x).numpy().tolist() == [1.0, 0.0, 0.0, 0.0]


def test_top_k_takes_numpy_and_tensor_ints_and_an_index_type():
    found = gt.top_k([1.0, 5.0, 3.0], k=np.int64(2), index_type=gt.int64)
    assert found.indices.dtype == gt.int64 and found.indices.numpy().tolist() == [1, 2]
    assert gt.top_k([1.0, 5.0, 3.0], k=gt.constant(1)).values.numpy().tolist() == [5.0]


def test_reciprocal_no_nan_and_xlog1py(device):
    """TF's: 1/x with 0 (and a 0 gradient) at x = 0; x log1p(y) with 0 where x = 0."""
    x = gt.constant([0.0, 4.0])
    with gt.GradientTape() as tape:
        tape.watch(x)
        r = gt.reciprocal_no_nan(x)
    assert r.numpy().tolist() == [0.0, 0.25]
    assert tape.gradient(r, x).numpy().tolist() == [0.0, -1 / 16]
    assert gt.xlog1py([0.0, 2.0], [-1.0, math.e - 1]).numpy().tolist() == pytest.approx([0, 2])
    gt.testing.check_gradients(gt.xlog1py, np.array([0.5, -1.5]), np.array([0.3, 2.0]),
                               order=2, rtol=1e-6, atol=1e-8)
    assert gt.math.mod is gt.floormod
