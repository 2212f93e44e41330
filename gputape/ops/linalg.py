"""Matrix products."""

from __future__ import annotations

import functools

from ..core.dispatch import apply
from ..core.errors import ShapeError
from ..core.registry import defvjp, implement, primitive
from ..host import rows
from ._axes import as_tensor

__all__ = [
    "matmul",
]


def _matmul_forward(xp, a, b, transpose_a=False, transpose_b=False, product=None):
    if transpose_a:
        a = xp.swapaxes(a, -1, -2)
    if transpose_b:
        b = xp.swapaxes(b, -1, -2)
    return (product or xp.matmul)(a, b)


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
# On the host, a batch of products against one matrix is one BLAS call (gputape.host.rows).
implement(MATMUL, "numpy", functools.partial(_matmul_forward, product=rows.matmul))


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
