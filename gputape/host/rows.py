"""What NumPy does row by row, done in one call on the host.

NumPy reduces the leading axes, or a short last axis, one row at a time, and multiplies a batch
of matrices against one shared matrix one BLAS call per batch element. The functions here do
the same work in one call (``xp`` is NumPy, or NumPy with pooled results): sums as a product
with a vector of ones, products with the batch stacked into one matrix, maxima of short rows
column by column (bench/NOTES.md, sections 14 and 15). Each returns ``None`` where its trick
does not apply; the caller then runs NumPy's own. Sums may round differently from NumPy's
(BLAS adds in another order); maxima are identical.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["sum_leading", "peak", "row_sum", "matmul"]

# Leading-axis sums: from this many rows on, one product with ones is faster (18 -> 7 us over
# 256 rows of 512 and 5 -> 1 us over 256 rows of 10).
BLAS_ROWS = 16
# NumPy reduces a short last axis row by row, about 45 ns a row for ``max`` over 10 values: with
# many rows, one ``maximum`` per column is faster.
SHORT_AXIS = 32
ROWS_PER_COLUMN = 16
# A batch of products against one matrix re-reads that matrix once per product: from this many
# elements of the shared matrix on, one product over the whole batch is faster.
SHARED_MIN_SIZE = 4096


def sum_leading(xp, x: np.ndarray, count: int, out_shape: tuple) -> "np.ndarray | None":
    """The sum of ``x`` over its first ``count`` axes, reshaped to ``out_shape``, as one BLAS
    product; None where that does not apply (not float32/float64, not C-contiguous, few rows).

    >>> import numpy as np
    >>> sum_leading(np, np.ones((32, 3)), 1, (3,))
    array([32., 32., 32.])
    """
    if x.dtype.char not in "fd" or not x.flags.c_contiguous or not x.size:
        return None
    rows = math.prod(x.shape[:count])
    if rows < BLAS_ROWS:
        return None
    ones = xp.ones(rows, x.dtype)
    return xp.matmul(ones, x.reshape(rows, x.size // rows)).reshape(out_shape)


def peak(xp, x: np.ndarray, axis: int) -> "np.ndarray | None":
    """The maximum of ``x`` along ``axis`` kept as a dimension of size 1, column by column for
    a short last axis of many rows; None otherwise (NumPy's ``max`` is as fast).

    >>> import numpy as np
    >>> peak(np, np.arange(512.0).reshape(256, 2), -1)[:2]
    array([[1.],
           [3.]])
    """
    n = x.shape[axis] if x.ndim else 0
    if axis != -1 or not 1 < n <= SHORT_AXIS or x.size < ROWS_PER_COLUMN * n * n:
        return None
    out = xp.maximum(x[..., 0:1], x[..., 1:2])
    for j in range(2, n):
        xp.maximum(out, x[..., j:j + 1], out=out)
    return out


def row_sum(xp, x: np.ndarray, axis: int) -> "np.ndarray | None":
    """The sum of ``x`` along a short last ``axis`` kept as a dimension of size 1, as a product
    with a vector of ones (NumPy sums row by row: 7 us over 256 rows of 10 against 1 us); None
    otherwise.

    >>> import numpy as np
    >>> row_sum(np, np.ones((2, 3)), -1)
    array([[3.],
           [3.]])
    """
    n = x.shape[axis] if x.ndim else 0
    if axis != -1 or not 1 < n <= SHORT_AXIS or x.ndim < 2 or x.dtype.char not in "fd":
        return None
    return xp.matmul(x, xp.ones(n, x.dtype))[..., None]


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``np.matmul(a, b)``, with a batch of products against one 2-d operand done as one product.

    ``a[i] @ b`` for every ``i`` is the rows of all ``a[i]`` stacked, times ``b``; and ``a @ b[i]``
    is the same with both sides transposed (``(b[i]^T @ a^T)^T``). One BLAS call then reads the
    shared matrix once instead of once per batch element: a (256, 256) matrix times 256 vectors
    takes 0.2 ms instead of 0.64.

    >>> import numpy as np
    >>> a, b = np.ones((64, 64)), np.ones((3, 64, 1))
    >>> bool((matmul(a, b) == np.matmul(a, b)).all())
    True
    """
    if a.ndim == 2 and b.ndim > 2 and a.size >= SHARED_MIN_SIZE:
        stacked = _stacked_product(np.swapaxes(b, -1, -2), a.T)
        return np.matmul(a, b) if stacked is None else np.swapaxes(stacked, -1, -2)
    if b.ndim == 2 and a.ndim > 2 and b.size >= SHARED_MIN_SIZE:
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
