"""Host matrix products: a batch of products against one matrix done as one product gives
NumPy's matmul (up to rounding), in every layout, and jacobians through it stay exact."""

from __future__ import annotations

import numpy as np
import pytest

import gputape as gt
from gputape.host import rows as host_rows
from gputape.host.rows import matmul as host_matmul

SHAPES = [
    ((6, 5), (4, 5, 1)),  # a matrix times a batch of vectors (jacobian's cotangents)
    ((6, 5), (2, 3, 5, 7)),  # two batch dimensions
    ((6, 5), (0, 5, 2)),  # an empty batch
    ((6, 5), (3, 5, 0)),  # empty products
    ((4, 1, 5), (5, 6)),  # a batch of rows times one matrix
    ((2, 3, 4, 5), (5, 6)),
    ((0, 4, 5), (5, 6)),
    ((6, 5), (5, 2)),  # no batch: NumPy as it is
    ((3, 6, 5), (3, 5, 2)),  # both batched: NumPy as it is
]


def _layouts(x):
    yield "contiguous", x
    yield "transposed", np.swapaxes(np.ascontiguousarray(np.swapaxes(x, -1, -2)), -1, -2)
    if x.ndim > 2 and x.shape[0] > 1:
        yield "broadcast", np.broadcast_to(x[:1], x.shape)
    yield "every-other", np.repeat(x, 2, axis=-1)[..., ::2]


@pytest.fixture(params=["threshold", "always"])
def shared_min_size(request, monkeypatch):
    """The default size threshold, and none (so small shapes take the one-product path)."""
    if request.param == "always":
        monkeypatch.setattr(host_rows, "SHARED_MIN_SIZE", 0)
    return request.param


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
@pytest.mark.parametrize("a_shape, b_shape", SHAPES, ids=[f"{a}@{b}" for a, b in SHAPES])
def test_same_as_numpy_matmul(a_shape, b_shape, dtype, shared_min_size):
    rng = np.random.default_rng(len(a_shape) * 10 + len(b_shape))
    a0 = (rng.normal(size=a_shape) * 4).astype(dtype)
    b0 = (rng.normal(size=b_shape) * 4).astype(dtype)
    for la, a in _layouts(a0):
        for lb, b in _layouts(b0):
            want = np.matmul(a, b)
            got = host_matmul(a, b)
            assert got.shape == want.shape and got.dtype == want.dtype, (la, lb)
            tol = {np.float32: 1e-5, np.float64: 1e-12}.get(dtype, 0)
            np.testing.assert_allclose(got, want, rtol=tol, atol=tol, err_msg=f"{la} @ {lb}")


def test_large_shared_matrix_takes_one_product():
    # Above the threshold the answer still matches (and the shapes that gain are these).
    rng = np.random.default_rng(1)
    a = rng.normal(size=(128, 128)).astype(np.float32)
    b = rng.normal(size=(64, 128, 1)).astype(np.float32)
    assert a.size >= host_rows.SHARED_MIN_SIZE
    np.testing.assert_allclose(host_matmul(a, b), np.matmul(a, b), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(host_matmul(np.swapaxes(b, 1, 2), a.T),
                               np.matmul(np.swapaxes(b, 1, 2), a.T), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("n", [8, 80])
def test_jacobian_through_a_shared_matrix(n):
    # jacobian's batched walk multiplies one matrix by a batch of cotangents: the case above.
    rng = np.random.default_rng(n)
    w = gt.constant(rng.normal(size=(n, n)))
    x = gt.constant(rng.normal(size=n))
    with gt.GradientTape() as tape:
        tape.watch(x)
        y = gt.tanh(w @ x) * x
    jac = tape.jacobian(y, x).numpy()
    w_, x_ = w.numpy(), x.numpy()
    t = np.tanh(w_ @ x_)
    want = np.diag(t) + (x_ * (1 - t * t))[:, None] * w_
    np.testing.assert_allclose(jac, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("transpose_a", [False, True])
@pytest.mark.parametrize("transpose_b", [False, True])
def test_jacobian_through_transposed_operands(transpose_a, transpose_b):
    """The batched cotangents of a jacobian take the same rules as one row at a time."""
    rng = np.random.default_rng(3)
    a = gt.constant(rng.standard_normal((3, 4) if transpose_a else (4, 3)))
    b = gt.constant(rng.standard_normal((5, 3) if transpose_b else (3, 5)))
    jacobians = []
    for vectorize in (True, False):
        with gt.GradientTape(persistent=True) as tape:
            tape.watch([a, b])
            y = gt.sin(gt.matmul(a, b, transpose_a=transpose_a, transpose_b=transpose_b))
        jacobians.append(tape.jacobian(y, [a, b], experimental_use_pfor=vectorize))
    op_a = a.numpy().T if transpose_a else a.numpy()
    op_b = b.numpy().T if transpose_b else b.numpy()
    d = np.cos(op_a @ op_b)  # (4, 5)
    for (ja, jb), label in zip(jacobians, ("vectorized", "row by row")):
        assert ja.shape == (4, 5) + a.shape and jb.shape == (4, 5) + b.shape, label
    np.testing.assert_allclose(jacobians[0][0].numpy(), jacobians[1][0].numpy(), rtol=1e-12)
    np.testing.assert_allclose(jacobians[0][1].numpy(), jacobians[1][1].numpy(), rtol=1e-12)
    # d y[i, j] / d op_a[i, k] = d[i, j] op_b[k, j]; d y[i, j] / d op_b[k, j] = d[i, j] op_a[i, k]
    ja = jacobians[0][0].numpy()
    jb = jacobians[0][1].numpy()
    if transpose_a:
        ja = ja.transpose(0, 1, 3, 2)
    if transpose_b:
        jb = jb.transpose(0, 1, 3, 2)
    for i in range(4):
        for j in range(5):
            expected_a = np.zeros((4, 3))
            expected_a[i] = d[i, j] * op_b[:, j]
            expected_b = np.zeros((3, 5))
            expected_b[:, j] = d[i, j] * op_a[i]
            np.testing.assert_allclose(ja[i, j], expected_a, rtol=1e-12, atol=1e-15)
            np.testing.assert_allclose(jb[i, j], expected_b, rtol=1e-12, atol=1e-15)
