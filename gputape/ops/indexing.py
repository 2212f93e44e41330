"""Indexing: ``x[index]`` and ``gather``, whose gradient scatters the cotangent back."""

from __future__ import annotations

import numbers

import numpy as np

from ..core import device
from ..core.device import _CPU as CPU
from ..core.device import namespace_of
from ..core.dispatch import apply
from ..core.errors import ArgumentError, ArgumentTypeError, IndexOutOfRangeError
from ..core.registry import defvjp, primitive
from ..core.tensor import Tensor
from ._axes import as_tensor, normalize_axis

__all__ = [
    "gather", "getitem",
]


def _getitem_vjp(g, ans, x, index):
    return apply(SCATTER, g, index=index, shape=x.shape, out_ndim=ans.ndim)


def _advanced_adjacent(params) -> bool:
    """Batched cotangents keep their place only if the array indices sit side by side."""
    positions = [i for i, k in enumerate(params["index"]) if _is_array(k)]
    return not positions or positions[-1] - positions[0] == len(positions) - 1


GETITEM = defvjp(primitive("getitem", lambda xp, x, index: x[index], ("tensor",), unify=(),
                           batchable=_advanced_adjacent),
                 _getitem_vjp)


def _scatter_forward(xp, g, index, shape, out_ndim):
    batch = g.shape[: g.ndim - out_ndim]
    out = xp.zeros(batch + tuple(shape), dtype=g.dtype)
    full = (slice(None),) * len(batch) + index
    if any(_is_array(k) for k in index):
        if isinstance(out, np.ndarray):  # xp may be the pooled NumPy namespace
            np.add.at(out, full, g)
        else:
            import cupyx

            cupyx.scatter_add(out, full, g)
    else:
        out[full] = g
    return out


def _scatter_vjp(g, ans, x, index, shape, out_ndim):
    return g[(slice(None),) * (g.ndim - len(shape)) + index]


SCATTER = defvjp(primitive("scatter", _scatter_forward, ("updates",), unify=(),
                           batchable=_advanced_adjacent),
                 _scatter_vjp)


def _is_array(key) -> bool:
    return hasattr(key, "dtype") and hasattr(key, "shape")


# == public functions ======================================================================


def getitem(tensor, index):
    """``tensor[index]`` with NumPy basic and integer-array (or bool mask) indexing.

    >>> import gputape as gt
    >>> x = gt.reshape(gt.range(6), (2, 3))
    >>> x[1, ::2].numpy()
    array([3, 5], dtype=int32)
    """
    x = as_tensor("getitem", "tensor", tensor)
    return apply(GETITEM, x, index=_normalize_index(x, index))


def gather(params, indices, axis=0, batch_dims=0):
    """Slices of ``params`` along ``axis`` picked by integer ``indices``.

    >>> import gputape as gt
    >>> gt.gather([10.0, 20.0, 30.0], [2, 0]).numpy()
    array([30., 10.], dtype=float32)
    """
    if batch_dims != 0:
        raise ArgumentError(
            f"gather: batch_dims={batch_dims!r} is not supported yet; hint: use batch_dims=0 "
            f"(gt.stack per-example gathers for batched indices)"
        )
    x = as_tensor("gather", "params", params)
    axis = normalize_axis("gather", axis, x.ndim)
    ids = indices if isinstance(indices, Tensor) else np.asarray(indices)
    if ids.dtype.kind not in "iu":
        raise ArgumentTypeError(
            f"gather: indices must be integers, got dtype {ids.dtype} (shape {ids.shape}); "
            f"hint: gt.cast(indices, gt.int32)"
        )
    array = ids._data if isinstance(ids, Tensor) else ids
    size = x.shape[axis]
    bad = _out_of_range(array, size, lowest=0)  # TF's gather takes no negative index
    if bad is not None:
        raise IndexOutOfRangeError(
            f"gather: index {bad} is out of range for axis {axis} of size {size} (params shape "
            f"{x.shape}, indices shape {array.shape}); hint: valid indices are 0..{size - 1} "
            f"(gather counts from the front only; x[..., -1] indexing takes negative ones)"
        )
    return getitem(x, (slice(None),) * axis + (ids,))


# -- helpers ------------------------------------------------------------------------------


def _normalize_index(x: Tensor, index) -> tuple:
    """A tuple of slices, ints, None, Ellipsis and integer arrays on ``x``'s device."""
    from ..core.device import move

    items = index if isinstance(index, tuple) else (index,)
    out = []
    for position, key in enumerate(items):
        if key is None or key is Ellipsis or isinstance(key, slice):
            if isinstance(key, slice):
                key = slice(*(_index_int(x, v) if v is not None else None
                              for v in (key.start, key.stop, key.step)))
            out.append(key)
            continue
        if isinstance(key, (bool, np.bool_)):
            raise ArgumentTypeError(
                f"getitem: a bare bool {key!r} is not an index (shape {x.shape}); hint: use a "
                f"bool mask array, or gt.where"
            )
        if isinstance(key, (numbers.Integral, np.integer)):
            out.append(int(key))
            continue
        if isinstance(key, Tensor):
            array = key._data
        elif isinstance(key, (list, np.ndarray)) or hasattr(key, "__cuda_array_interface__"):
            array = key if hasattr(key, "dtype") else np.asarray(key)
            if array.size == 0 and array.dtype.kind == "f":  # [] is an empty integer index
                array = array.astype(np.intp)
        else:
            raise ArgumentTypeError(
                f"getitem: index {key!r:.40} of type {type(key).__name__} is not supported "
                f"(shape {x.shape}); hint: use ints, slices, None, ..., integer arrays or bool "
                f"masks"
            )
        if array.dtype.kind == "b":
            _check_mask(x, items, position, array.shape)
            host = np.asarray(array) if isinstance(array, np.ndarray) else array.get()
            out.extend(move(a, x.device) for a in np.nonzero(host))
            continue
        if array.dtype.kind not in "iu":
            raise ArgumentTypeError(
                f"getitem: index arrays must hold integers or bools, got dtype {array.dtype} "
                f"(shape {array.shape}); hint: gt.cast(index, gt.int32)"
            )
        out.append(int(array) if array.ndim == 0 else array)
    # Checked before the index arrays move to x's device: CuPy wraps out-of-range integer
    # indices around instead of raising (a silent wrong value).
    _check_bounds(x, out)
    return tuple(move(k, x.device) if _is_array(k) else k for k in out)


def _out_of_range(indices, size: int, lowest: "int | None" = None):
    """The first index of ``indices`` outside ``lowest..size-1`` (``lowest`` defaults to
    ``-size``), or None. A GPU array's range is read back (one small copy that waits for the
    GPU): CuPy would wrap such an index around."""
    if indices.size == 0:
        return None
    lowest = -size if lowest is None else lowest
    xp = namespace_of(indices)
    low, high = (int(v) for v in device.move(xp.stack([indices.min(), indices.max()]), CPU))
    if low >= lowest and high < size:
        return None
    host = indices if type(indices) is np.ndarray else indices.get()
    return host[(host < lowest) | (host >= size)].flat[0]


def _dims_used(key) -> int:
    if key is None:
        return 0
    if hasattr(key, "dtype") and key.dtype.kind == "b":
        return key.ndim
    return 1


def _check_mask(x: Tensor, items: tuple, position: int, mask_shape: tuple) -> None:
    """A bool mask must match the dimensions it covers exactly (as NumPy requires)."""
    if any(k is Ellipsis for k in items[:position]):
        start = x.ndim - sum(_dims_used(k) for k in items[position:] if k is not Ellipsis)
    else:
        start = sum(_dims_used(k) for k in items[:position])
    covered = x.shape[start:start + len(mask_shape)]
    if start < 0 or covered != tuple(mask_shape):
        raise IndexOutOfRangeError(
            f"getitem: bool mask of shape {tuple(mask_shape)} does not match the dimensions "
            f"{covered} it indexes (from dimension {start} of shape {x.shape}); hint: a mask "
            f"must have the shape of the dimensions it selects from"
        )


def _index_int(x: Tensor, value) -> int:
    if isinstance(value, Tensor):
        value = value.numpy()
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Integral, np.integer)):
        raise ArgumentTypeError(
            f"getitem: slice bounds must be ints, got {type(value).__name__} {value!r:.40} "
            f"(shape {x.shape}); hint: int(...) the bound"
        )
    return int(value)


def _check_bounds(x: Tensor, keys: list) -> None:
    used = sum(1 for k in keys if k is not None and k is not Ellipsis)
    if used > x.ndim:
        raise IndexOutOfRangeError(
            f"getitem: too many indices ({used}) for a tensor of shape {x.shape}; hint: index "
            f"at most {x.ndim} dimension(s)"
        )
    dim = 0
    for key in keys:
        if key is Ellipsis:
            dim = x.ndim - sum(1 for k in keys[keys.index(key) + 1:] if k is not None)
            continue
        if key is None:
            continue
        if isinstance(key, int):
            size = x.shape[dim]
            if not -size <= key < size:
                raise IndexOutOfRangeError(
                    f"getitem: index {key} is out of range for dimension {dim} of size {size} "
                    f"(shape {x.shape}); hint: valid indices are {-size}..{size - 1}"
                )
        elif _is_array(key):
            size = x.shape[dim]
            bad = _out_of_range(key, size)
            if bad is not None:
                raise IndexOutOfRangeError(
                    f"getitem: index {bad} is out of range for dimension {dim} of size {size} "
                    f"(shape {x.shape}, index array shape {key.shape}); hint: valid indices are "
                    f"{-size}..{size - 1}"
                )
        dim += 1
