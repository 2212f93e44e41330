"""gt.linalg: values against NumPy's, TensorFlow's conventions (norm's ord and axes,
band_part's -1, slogdet's pair), gradients that matrix calculus gives in closed form, and the
errors. The registry-wide finite-difference checks are in test_gradients.py."""

from __future__ import annotations

import numpy as np
import pytest

import gputape as gt

A = np.array([[4.0, 1.0, 0.5], [1.0, 3.0, 0.2], [0.5, 0.2, 2.0]])


def test_values_match_numpy(device):
    a = gt.constant(A, dtype=gt.float64)
    b = gt.constant([[1.0], [2.0], [3.0]], dtype=gt.float64)
    np.testing.assert_allclose(gt.linalg.inv(a).numpy(), np.linalg.inv(A), rtol=1e-12)
    np.testing.assert_allclose(gt.linalg.solve(a, b).numpy(),
                               np.linalg.solve(A, [[1.0], [2.0], [3.0]]), rtol=1e-12)
    assert float(gt.linalg.det(a)) == pytest.approx(np.linalg.det(A))
    sign, logabs = gt.linalg.slogdet(-a)
    assert float(sign) == -1.0 and float(logabs) == pytest.approx(np.log(np.linalg.det(A)))
    np.testing.assert_allclose(gt.linalg.cholesky(a).numpy(), np.linalg.cholesky(A), rtol=1e-12)
    assert float(gt.linalg.logdet(a)) == pytest.approx(np.log(np.linalg.det(A)))
    np.testing.assert_allclose(gt.linalg.cholesky_solve(gt.linalg.cholesky(a), b).numpy(),
                               np.linalg.solve(A, [[1.0], [2.0], [3.0]]), rtol=1e-12)
    assert float(gt.linalg.trace(a)) == 9.0


def test_triangular_solve_reads_one_triangle(device):
    a = gt.constant([[2.0, 99.0], [1.0, 4.0]], dtype=gt.float64)
    x = gt.linalg.triangular_solve(a, gt.constant([[2.0], [5.0]], dtype=gt.float64))
    np.testing.assert_allclose(x.numpy(), [[1.0], [1.0]])
    upper = gt.linalg.triangular_solve(a, gt.constant([[101.0], [4.0]], dtype=gt.float64),
                                       lower=False)
    np.testing.assert_allclose(upper.numpy(), [[1.0], [1.0]])


def test_closed_form_gradients(device):
    """d det / dA = det A^-T; d log|det| / dA = A^-T; d sum(A^-1) / dA = -A^-T 1 1^T A^-T."""
    a = gt.constant(A, dtype=gt.float64)
    with gt.GradientTape(persistent=True) as tape:
        tape.watch(a)
        d = gt.linalg.det(a)
        logabs = gt.linalg.slogdet(a)[1]
        total = gt.reduce_sum(gt.linalg.inv(a))
    inv_t = np.linalg.inv(A).T
    np.testing.assert_allclose(tape.gradient(d, a).numpy(), np.linalg.det(A) * inv_t,
                               rtol=1e-10)
    np.testing.assert_allclose(tape.gradient(logabs, a).numpy(), inv_t, rtol=1e-10)
    ones = np.ones((3, 3))
    np.testing.assert_allclose(tape.gradient(total, a).numpy(), -inv_t @ ones @ inv_t,
                               rtol=1e-10)


def test_einsum_and_tensordot(device):
    x = np.arange(6.0).reshape(2, 3)
    y = np.arange(12.0).reshape(3, 4)
    np.testing.assert_allclose(gt.einsum("ij,jk->ik", x, y).numpy(), x @ y)
    np.testing.assert_allclose(gt.einsum("ij,jk", x, y).numpy(), x @ y)  # implicit output
    np.testing.assert_allclose(gt.einsum("ij->j", x).numpy(), x.sum(0))
    np.testing.assert_allclose(gt.tensordot(x, y, 1).numpy(), x @ y)
    np.testing.assert_allclose(gt.tensordot(x, x, [[0, 1], [0, 1]]).numpy(), (x * x).sum())


def test_norms_as_tf():
    x = gt.constant([[3.0, -4.0], [1.0, 2.0]])
    assert float(gt.norm(x)) == pytest.approx(np.sqrt(30.0))
    np.testing.assert_allclose(gt.norm(x, axis=1).numpy(), [5.0, np.sqrt(5.0)], rtol=1e-6)
    np.testing.assert_allclose(gt.norm(x, ord=1, axis=0).numpy(), [4.0, 6.0])
    assert float(gt.norm(x, ord=np.inf)) == 4.0
    assert float(gt.norm(x, ord="fro", axis=(0, 1))) == pytest.approx(np.sqrt(30.0))
    assert float(gt.norm(x, ord=1, axis=(0, 1))) == 6.0  # the largest column sum
    assert float(gt.norm(x, ord=np.inf, axis=[-2, -1])) == 7.0  # the largest row sum
    assert gt.norm(x, axis=1, keepdims=True).shape == (2, 1)
    assert gt.norm(x, keepdims=True).shape == (1, 1)


def test_diagonals_and_bands():
    m = gt.constant(np.arange(1.0, 10.0).reshape(3, 3))
    assert gt.linalg.diag_part(m).numpy().tolist() == [1, 5, 9]
    assert gt.linalg.band_part(m, 1, 0).numpy().tolist() == [[1, 0, 0], [4, 5, 0], [0, 8, 9]]
    assert gt.linalg.diag([1.0, 2.0]).numpy().tolist() == [[1, 0], [0, 2]]


@pytest.mark.parametrize("call, error, words", [
    (lambda: gt.linalg.inv(gt.ones((2, 3))), ValueError, ["inv", "square", "(2, 3)", "hint"]),
    (lambda: gt.linalg.solve(gt.eye(2), gt.ones((3, 1))), ValueError, ["solve", "rows", "hint"]),
    (lambda: gt.einsum("ij,jk->ik", gt.ones((2, 3))), ValueError, ["2 operand", "1 were"]),
    (lambda: gt.einsum("ii->i", gt.eye(2)), ValueError, ["repeated", "hint"]),
    (lambda: gt.einsum("ijk->i", gt.ones((2, 3))), ValueError, ["'ijk'", "(2, 3)", "hint"]),
    (lambda: gt.norm(gt.ones(3), ord=-1), ValueError, ["ord=-1", "hint"]),
    (lambda: gt.linalg.inv(gt.constant([[1, 0], [0, 1]])), TypeError, ["inv", "int32"]),
])
def test_bad_arguments_are_refused(call, error, words):
    with pytest.raises(error) as info:
        call()
    for word in words:
        assert word in str(info.value), str(info.value)


# -- cases found comparing with TensorFlow 2.21 side by side ----------------------------------


@pytest.mark.parametrize("call", [
    lambda: gt.tensordot(gt.ones((2, 3)), gt.ones((3, 4)), -1),
    lambda: gt.tensordot(gt.ones((2, 3)), gt.ones((3, 3)), ([1], [0, 1])),
    lambda: gt.tensordot(gt.ones((2, 3)), gt.ones((3, 4)), ([1, 1], [0, 0])),
    lambda: gt.tensordot(gt.ones((2, 3)), gt.ones((3, 4)), ([5], [0])),
    lambda: gt.norm(gt.ones((3, 4)), axis=5),
    lambda: gt.norm(gt.ones((3, 4)), axis=(0, 5)),
    lambda: gt.norm(gt.ones(3), axis=1),
])
def test_invalid_axes_are_refused_as_tf(call):
    """TF 2.21 raises for each (gputape computed a wrong result silently before)."""
    with pytest.raises(ValueError):
        call()


def test_band_part_zeroes_inf_and_nan_outside_the_band():
    """TF 2.21: band_part([[1, inf], [nan, 2]], 0, 0) is [[1, 0], [0, 2]]."""
    x = gt.constant([[1.0, np.inf], [np.nan, 2.0]])
    assert gt.linalg.band_part(x, 0, 0).numpy().tolist() == [[1.0, 0.0], [0.0, 2.0]]
    assert gt.linalg.band_part(x, gt.constant(-1), gt.constant(0)).numpy()[1, 0] != 0
