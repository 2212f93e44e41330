"""Matrix products."""

from __future__ import annotations

import numpy as np

from ..core.dispatch import apply
from ..core.errors import ShapeError
from ..core.registry import defvjp, primitive
from ._axes import as_tensor


def _matmul_forward(xp, a, b, transpose_a=False, transpose_b=False):
    if transpose_a:
        a = xp.swapaxes(a, -1, -2)
    if transpose_b:
        b = xp.swapaxes(b, -1, -2)
    return host_matmul(a, b) if xp.__name__ == "numpy" else xp.matmul(a, b)


# A batch of products against one matrix re-reads that matrix once per product: NumPy calls BLAS
# once per batch element (a matrix-vector product each, for the batched cotangents of jacobian).
# From this many elements of the shared matrix on, one product over the whole batch is faster.
_SHARED_MIN_SIZE = 4096


def host_matmul(a, b):
    """``np.matmul(a, b)``, with a batch of products against one 2-d operand done as one product.

    ``a[i] @ b`` for every ``i`` is the rows of all ``a[i]`` stacked, times ``b``; and ``a @ b[i]``
    is the same with both sides transposed (``(b[i]^T @ a^T)^T``). One BLAS call then reads the
    shared matrix once instead of once per batch element: a (256, 256) matrix times 256 vectors
    takes 0.2 ms instead of 0.64 (bench/NOTES.md, section 14). The sums may round differently
    from NumPy's.

    Examples
    --------
    >>> import numpy as np
    >>> from gputape.ops.linalg import host_matmul
    >>> a, b = np.ones((64, 64)), np.ones((3, 64, 1))
    >>> bool((host_matmul(a, b) == np.matmul(a, b)).all())
    True
    """
    if a.ndim == 2 and b.ndim > 2 and a.size >= _SHARED_MIN_SIZE:
        stacked = _stacked_product(np.swapaxes(b, -1, -2), a.T)
        return np.matmul(a, b) if stacked is None else np.swapaxes(stacked, -1, -2)
    if b.ndim == 2 and a.ndim > 2 and b.size >= _SHARED_MIN_SIZE:
        stacked = _stacked_product(a, b)
        return np.matmul(a, b) if stacked is None else stacked
    return np.matmul(a, b)


def _stacked_product(a, b):
    """``a[i] @ b`` for every ``i`` as one product, or None when ``a`` is a broadcast (stacking
    its rows would copy the same rows again for every batch element)."""
    if not a.flags.c_contiguous and any(
            stride == 0 and size > 1 for stride, size in zip(a.strides[:-2], a.shape[:-2])):
        return None
    out = np.matmul(a.reshape(-1, a.shape[-1]), b)
    return out.reshape(a.shape[:-1] + (b.shape[1],))


def _product(a, b, transpose_a, transpose_b):
    """``MATMUL`` of operands of rank >= 2, the transposes as parameters only when set (a
    product without them takes the walk's plain call)."""
    if transpose_a or transpose_b:
        return apply(MATMUL, a, b, transpose_a=transpose_a, transpose_b=transpose_b)
    return apply(MATMUL, a, b)


# c = op(a) @ op(b), op a transpose of the last two dimensions where its flag is set (as
# TensorFlow's MatMul): d op(a) = g @ op(b)^T and d op(b) = op(a)^T @ g, each transposed back
# where its operand was. Batched and broadcasting over leading dimensions (the walk sums the
# cotangent back).
def _matmul_vjp_a(g, ans, a, b, transpose_a=False, transpose_b=False):
    if transpose_a:
        return _product(b, g, transpose_b, True)
    return _product(g, b, False, not transpose_b)


def _matmul_vjp_b(g, ans, a, b, transpose_a=False, transpose_b=False):
    if transpose_b:
        return _product(g, a, True, transpose_a)
    return _product(a, g, not transpose_a, False)


MATMUL = defvjp(primitive("matmul", _matmul_forward, ("a", "b")), _matmul_vjp_a, _matmul_vjp_b)


def matmul(a, b, transpose_a=False, transpose_b=False):
    """Matrix product of the last two dimensions, batched and broadcast over the others.

    A 1-d operand is treated as a row (``a``) or column (``b``) vector and that dimension is
    dropped from the result, as NumPy's ``@`` does.

    >>> import gputape as gt
    >>> gt.matmul([[1.0, 2.0]], [[3.0], [4.0]]).numpy()
    array([[11.]], dtype=float32)
    """
    a, b = as_tensor("matmul", "a", a), as_tensor("matmul", "b", b)
    a_shape, b_shape = a.shape, b.shape
    if len(a_shape) >= 2 and len(b_shape) >= 2:  # the common case: no vector to expand
        k_a = a_shape[-2] if transpose_a else a_shape[-1]
        k_b = b_shape[-1] if transpose_b else b_shape[-2]
        if k_a == k_b:
            return _product(a, b, transpose_a, transpose_b)
    return _matmul_of_vectors(a, b, transpose_a, transpose_b)


def _matmul_of_vectors(a, b, transpose_a, transpose_b):
    """:func:`matmul` with a 1-d operand (a row or column for the product, dropped after it)
    or operands that do not fit: the errors."""
    from .shape import expand_dims, matrix_transpose, squeeze

    if a.ndim == 0 or b.ndim == 0:
        raise ShapeError(
            f"matmul: operands must have rank >= 1, got shapes {a.shape} and {b.shape}; hint: "
            f"use gt.multiply for scalars"
        )
    if transpose_a:
        a = matrix_transpose(a)
    if transpose_b:
        b = matrix_transpose(b)
    squeeze_axes = []
    if a.ndim == 1:
        a = expand_dims(a, 0)
        squeeze_axes.append(-2)
    if b.ndim == 1:
        b = expand_dims(b, -1)
        squeeze_axes.append(-1)
    if a.shape[-1] != b.shape[-2]:
        raise ShapeError(
            f"matmul: inner dimensions differ: a has shape {a.shape} (k={a.shape[-1]}), b has "
            f"shape {b.shape} (k={b.shape[-2]}); hint: transpose_a/transpose_b or gt.transpose"
        )
    out = apply(MATMUL, a, b)
    if squeeze_axes:
        out = squeeze(out, [out.ndim + ax for ax in squeeze_axes])
    return out
