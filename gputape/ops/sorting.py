"""Order along an axis: ``argmax``/``argmin``, ``sort``/``argsort`` and ``top_k``, with
TensorFlow's defaults and tie order (ties keep their index order). The values of a sort or a
top_k are taken from the input by index, so their gradient goes back to the positions they
came from."""

from __future__ import annotations

import numbers
from typing import NamedTuple

import numpy as np

from ..core import dtypes
from ..core.dispatch import apply
from ..core.errors import ArgumentError
from ..core.registry import defvjp, primitive
from ..core.tensor import Tensor
from ._axes import as_tensor, normalize_axis

__all__ = ["argmax", "argmin", "argsort", "sort", "top_k"]

def _extreme_index(name: str, skip_nan_as: float):
    def forward(xp, x, axis, dtype):
        if x.dtype.kind in "fc":  # TF skips NaN (all NaN: index 0); NumPy would pick the NaN
            x = xp.where(xp.isnan(x), skip_nan_as, x)
        return getattr(xp, name)(x, axis=axis).astype(dtype)

    return forward


ARGMAX = primitive("argmax", _extreme_index("argmax", -np.inf), ("input",),
                   differentiable=False)
ARGMIN = primitive("argmin", _extreme_index("argmin", np.inf), ("input",),
                   differentiable=False)


def _argsort_forward(xp, x, axis, descending):
    """Stable, so tied values keep their index order (TF's). Descending floats sort -x (NaN
    stays last); integers, whose negation wraps (unsigned, the minimum), sort the reversed
    axis ascending and reverse back."""
    if x.dtype.kind == "b":
        x = x.astype(np.int8)
    if not descending:
        return xp.argsort(x, axis=axis, kind="stable").astype(dtypes.int32)
    if x.dtype.kind in "fc":
        return xp.argsort(-x, axis=axis, kind="stable").astype(dtypes.int32)
    n = x.shape[axis]
    order = xp.argsort(xp.flip(x, axis), axis=axis, kind="stable")
    return (n - 1 - xp.flip(order, axis)).astype(dtypes.int32)


ARGSORT = primitive("argsort", _argsort_forward, ("values",), differentiable=False)

# Values taken by index along the (negative) axis, and the transpose: each cotangent put back
# where its value came from. The indices (an array parameter, like getitem's index) are distinct
# along the axis (a permutation or its head), so nothing is summed.
TAKE = primitive("take_along_axis", lambda xp, x, indices, axis: xp.take_along_axis(
    x, indices, axis=axis), ("x",), unify=(), batchable=False)


def _put(xp, g, indices, axis, shape):
    out = xp.zeros(shape, g.dtype)
    xp.put_along_axis(out, indices, g, axis=axis)
    return out


PUT = primitive("put_along_axis", _put, ("g",), unify=(), batchable=False)
defvjp(TAKE, lambda g, ans, x, indices, axis: apply(PUT, g, indices=indices, axis=axis,
                                                    shape=x.shape))
defvjp(PUT, lambda g, ans, c, indices, axis, shape: apply(TAKE, g, indices=indices, axis=axis))


class TopK(NamedTuple):
    """What :func:`top_k` returns: the ``values`` and their ``indices`` (as TF's result)."""

    values: object
    indices: object


def _one_axis(op: str, value, axis, arg: str = "input"):
    x = as_tensor(op, arg, value)
    if x.ndim == 0:
        raise ArgumentError(f"{op}: {arg} is 0-d (a scalar) and has no axis; hint: pass a "
                            f"tensor of rank 1 or more")
    return x, normalize_axis(op, axis, x.ndim)


def _output_type(op: str, output_type, arg: str = "output_type"):
    dtype = dtypes.as_dtype(output_type)
    if dtype not in (dtypes.int16, dtypes.int32, dtypes.int64):
        raise ArgumentError(f"{op}: {arg} must be gt.int16, gt.int32 or gt.int64, got "
                            f"{dtype}; hint: {arg}=gt.int64")
    return dtype


def argmax(input, axis=None, output_type=dtypes.int64):  # noqa: A002 - TensorFlow's name
    """The index of the largest value along ``axis`` (0 when None, as TensorFlow); the first
    one on a tie.

    >>> import gputape as gt
    >>> gt.argmax([[1.0, 5.0], [7.0, 2.0]], axis=1).numpy()
    array([1, 0])
    """
    x, axis = _one_axis("argmax", input, 0 if axis is None else axis)
    return apply(ARGMAX, x, axis=axis, dtype=_output_type("argmax", output_type))


def argmin(input, axis=None, output_type=dtypes.int64):  # noqa: A002 - TensorFlow's name
    """The index of the smallest value along ``axis`` (0 when None, as TensorFlow); the first
    one on a tie.

    >>> import gputape as gt
    >>> gt.argmin([3.0, 1.0, 1.0]).numpy()
    np.int64(1)
    """
    x, axis = _one_axis("argmin", input, 0 if axis is None else axis)
    return apply(ARGMIN, x, axis=axis, dtype=_output_type("argmin", output_type))


def _direction(op: str, direction: str) -> bool:
    if direction not in ("ASCENDING", "DESCENDING"):
        raise ArgumentError(f"{op}: direction must be 'ASCENDING' or 'DESCENDING', got "
                            f"{direction!r}; hint: TF's spelling, in capitals")
    return direction == "DESCENDING"


def argsort(values, axis=-1, direction="ASCENDING", stable=False, name=None):
    """The indices that sort ``values`` along ``axis`` (int32); ties keep their index order
    (a stable sort, whatever ``stable`` says).

    >>> import gputape as gt
    >>> gt.argsort([3.0, 1.0, 2.0]).numpy()
    array([1, 2, 0], dtype=int32)
    """
    x, axis = _one_axis("argsort", values, axis, "values")
    return apply(ARGSORT, x, axis=axis, descending=_direction("argsort", direction))


def sort(values, axis=-1, direction="ASCENDING", name=None):
    """``values`` sorted along ``axis``; the gradient goes back to each value's position.

    >>> import gputape as gt
    >>> gt.sort([3.0, 1.0, 2.0], direction="DESCENDING").numpy()
    array([3., 2., 1.], dtype=float32)
    """
    x, axis = _one_axis("sort", values, axis, "values")
    order = apply(ARGSORT, x, axis=axis, descending=_direction("sort", direction))
    return apply(TAKE, x, indices=order._data, axis=axis - x.ndim)


def top_k(input, k=1, sorted=True, index_type=dtypes.int32, name=None):  # noqa: A002 - TF's
    """The ``k`` largest entries along the last axis and their indices (``index_type``),
    largest first (also with ``sorted=False``, whose order TF leaves unspecified); on ties
    the lower index first. Returns ``(values, indices)`` (also as attributes, as TF's
    result).

    >>> import gputape as gt
    >>> gt.top_k([1.0, 5.0, 3.0, 5.0], k=2).indices.numpy()
    array([1, 3], dtype=int32)
    """
    x, axis = _one_axis("top_k", input, -1)
    n = x.shape[-1]
    if isinstance(k, Tensor) and k.ndim == 0 and k.dtype.kind in "iu":
        k = int(k.numpy())
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or not 0 <= k <= n:
        raise ArgumentError(f"top_k: k={k!r} must be an int in 0..{n} (the last axis of "
                            f"input, shape {x.shape}); hint: k <= input.shape[-1]")
    order = apply(ARGSORT, x, axis=axis, descending=True)
    indices = order[..., :int(k)]
    values = apply(TAKE, x, indices=indices._data, axis=-1)
    index_type = _output_type("top_k", index_type, "index_type")
    return TopK(values, indices if index_type == dtypes.int32 else Tensor._wrap(
        indices._data.astype(index_type)))
