"""Matrix products."""

from __future__ import annotations

from ..dispatch import apply
from ..errors import ShapeError
from ..registry import defvjp, primitive
from ._axes import as_tensor

# Batched and broadcasting over leading dimensions (the walker sums the cotangent back).
MATMUL = defvjp(primitive("matmul", lambda xp, a, b: xp.matmul(a, b), ("a", "b")),
                lambda g, ans, a, b: matmul(g, b, transpose_b=True),
                lambda g, ans, a, b: matmul(a, g, transpose_a=True))


def matmul(a, b, transpose_a=False, transpose_b=False):
    """Matrix product of the last two dimensions, batched and broadcast over the others.

    A 1-d operand is treated as a row (``a``) or column (``b``) vector and that dimension is
    dropped from the result, as NumPy's ``@`` does.

    >>> import gputape as gt
    >>> gt.matmul([[1.0, 2.0]], [[3.0], [4.0]]).numpy()
    array([[11.]], dtype=float32)
    """
    from .shape import expand_dims, matrix_transpose, squeeze

    a, b = as_tensor("matmul", "a", a), as_tensor("matmul", "b", b)
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
