"""TensorFlow's rearranging and scattering ops, composed from indexing, gather, concat and the
scatter-add primitive, so that their gradients need no rules of their own: ``pad`` (constant,
reflect, symmetric), ``reverse``, ``roll``, ``repeat``, ``meshgrid``, ``unstack``, ``slice``,
``strided_slice``, ``boolean_mask``, ``gather_nd``, ``scatter_nd``,
``tensor_scatter_nd_add``/``_update`` and the segment reductions.
"""

from __future__ import annotations

import builtins
import numbers

import numpy as np

from ..core.dispatch import apply
from ..core.errors import ArgumentError, IndexOutOfRangeError, ShapeError
from ..core.tensor import Tensor
from ._axes import as_tensor, normalize_axis
from .creation import fill
from .elementwise import cast, equal, greater, where
from .indexing import SCATTER, gather
from .shape import broadcast_to, concat, reshape

__all__ = [
    "boolean_mask", "gather_nd", "meshgrid", "pad", "repeat", "reverse", "roll", "scatter_nd",
    "segment_sum", "slice", "strided_slice", "tensor_scatter_nd_add",
    "tensor_scatter_nd_update", "unsorted_segment_max", "unsorted_segment_mean",
    "unsorted_segment_sum", "unstack",
]


def _host_ints(op: str, arg: str, value) -> np.ndarray:
    if isinstance(value, Tensor):
        value = value.numpy()
    array = np.asarray(value)
    if array.dtype.kind not in "iu":
        raise ArgumentError(f"{op}: {arg} must be integers, got {array.dtype}")
    return array.astype(np.int64)


def pad(tensor, paddings, mode="CONSTANT", constant_values=0):
    """``tensor`` padded by ``paddings[i] = (before, after)`` along each axis: with
    ``constant_values`` (``"CONSTANT"``), or mirrored without (``"REFLECT"``) or with
    (``"SYMMETRIC"``) the edge, as TF's.

    >>> import gputape as gt
    >>> gt.pad([1.0, 2.0, 3.0], [[2, 1]], mode="REFLECT").numpy()
    array([3., 2., 1., 2., 3., 2.], dtype=float32)
    """
    x = as_tensor("pad", "tensor", tensor)
    widths = _host_ints("pad", "paddings", paddings)
    if widths.shape != (x.ndim, 2) or (widths < 0).any():
        raise ArgumentError(f"pad: paddings must be {x.ndim} pairs of non-negative ints (one "
                            f"per axis of shape {x.shape}), got {widths.tolist()}")
    mode = str(mode).upper()
    if mode not in ("CONSTANT", "REFLECT", "SYMMETRIC"):
        raise ArgumentError(f"pad: mode must be 'CONSTANT', 'REFLECT' or 'SYMMETRIC', got "
                            f"{mode!r}")
    for axis, (before, after) in enumerate(widths.tolist()):
        if not before and not after:
            continue
        n = x.shape[axis]
        if mode == "CONSTANT":
            parts = [x]
            for count, at in ((before, 0), (after, 1)):
                if count:
                    shape = x.shape[:axis] + (count,) + x.shape[axis + 1:]
                    block = cast(fill(shape, constant_values, device=x.device), x.dtype)
                    parts.insert(0 if at == 0 else len(parts), block)
            x = concat(parts, axis)
            continue
        limit = n - 1 if mode == "REFLECT" else n
        if before > limit or after > limit:
            raise ArgumentError(f"pad: {mode} padding of ({before}, {after}) along axis "
                                f"{axis} of size {n} must be at most {limit} on each side")
        index = np.pad(np.arange(n), (before, after), mode=mode.lower() if mode == "REFLECT"
                       else "symmetric")
        x = gather(x, index, axis=axis)
    return x


def reverse(tensor, axis):
    """``tensor`` with the order of the given axes reversed.

    >>> import gputape as gt
    >>> gt.reverse([[1.0, 2.0], [3.0, 4.0]], [1]).numpy()
    array([[2., 1.],
           [4., 3.]], dtype=float32)
    """
    x = as_tensor("reverse", "tensor", tensor)
    axes = [axis] if isinstance(axis, numbers.Integral) else list(axis)
    index = [builtins.slice(None)] * x.ndim
    for a in axes:
        index[normalize_axis("reverse", a, x.ndim)] = builtins.slice(None, None, -1)
    return x[tuple(index)]



def roll(input, shift, axis):  # noqa: A002 - TensorFlow's name
    """Elements shifted along ``axis`` by ``shift``, those past the end coming round (ints or
    equal-length lists).

    >>> import gputape as gt
    >>> gt.roll([1.0, 2.0, 3.0, 4.0], shift=1, axis=0).numpy()
    array([4., 1., 2., 3.], dtype=float32)
    """
    x = as_tensor("roll", "input", input)
    shifts = [shift] if isinstance(shift, numbers.Integral) else list(shift)
    axes = [axis] if isinstance(axis, numbers.Integral) else list(axis)
    if len(shifts) != len(axes):
        raise ArgumentError(f"roll: {len(shifts)} shift(s) for {len(axes)} axis (axes)")
    for s, a in zip(shifts, axes):
        a = normalize_axis("roll", a, x.ndim)
        n = x.shape[a]
        if n:
            x = gather(x, (np.arange(n) - int(s)) % n, axis=a)
    return x


def repeat(input, repeats, axis=None):  # noqa: A002 - TensorFlow's name
    """Each element (along ``axis``; of the flattened tensor when None) repeated ``repeats``
    times (an int, or one count per element).

    >>> import gputape as gt
    >>> gt.repeat([1.0, 2.0], 2).numpy()
    array([1., 1., 2., 2.], dtype=float32)
    """
    x = as_tensor("repeat", "input", input)
    if axis is None:
        x, axis = reshape(x, (-1,)), 0
    axis = normalize_axis("repeat", axis, x.ndim)
    counts = _host_ints("repeat", "repeats", repeats)
    index = np.repeat(np.arange(x.shape[axis]), counts)
    return gather(x, index, axis=axis)


def meshgrid(*args, indexing="xy"):
    """Coordinate grids from 1-d tensors (``'xy'``: the first two axes swapped, as NumPy's and
    TF's default; ``'ij'``: matrix indexing).

    >>> import gputape as gt
    >>> [g.shape for g in gt.meshgrid([1.0, 2.0, 3.0], [4.0, 5.0])]
    [(2, 3), (2, 3)]
    """
    if indexing not in ("xy", "ij"):
        raise ArgumentError(f"meshgrid: indexing must be 'xy' or 'ij', got {indexing!r}")
    vectors = [reshape(as_tensor("meshgrid", "args", v), (-1,)) for v in args]
    shape = [v.shape[0] for v in vectors]
    if indexing == "xy" and len(vectors) >= 2:
        shape[0], shape[1] = shape[1], shape[0]
    out = []
    for i, v in enumerate(vectors):
        position = i if indexing == "ij" or len(vectors) < 2 or i > 1 else 1 - i
        kept = [1] * len(vectors)
        kept[position] = v.shape[0]
        out.append(broadcast_to(reshape(v, kept), tuple(shape)))
    return out


def unstack(value, num=None, axis=0):
    """The slices of ``value`` along ``axis``, as a list.

    >>> import gputape as gt
    >>> [t.numpy().tolist() for t in gt.unstack([[1.0, 2.0], [3.0, 4.0]])]
    [[1.0, 2.0], [3.0, 4.0]]
    """
    x = as_tensor("unstack", "value", value)
    axis = normalize_axis("unstack", axis, x.ndim)
    n = x.shape[axis]
    if num is not None and num != n:
        raise ShapeError(f"unstack: num={num} but axis {axis} of shape {x.shape} has {n}")
    lead = (builtins.slice(None),) * axis
    return [x[lead + (i,)] for i in range(n)]


def slice(input_, begin, size):  # noqa: A001 - TensorFlow's name
    """The block starting at ``begin`` of ``size`` (-1: to the end) along each axis.

    >>> import gputape as gt
    >>> gt.slice([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], [0, 1], [2, -1]).numpy()
    array([[2., 3.],
           [5., 6.]], dtype=float32)
    """
    x = as_tensor("slice", "input_", input_)
    begin, size = _host_ints("slice", "begin", begin), _host_ints("slice", "size", size)
    if begin.shape != (x.ndim,) or size.shape != (x.ndim,):
        raise ArgumentError(f"slice: begin and size need {x.ndim} entries (shape {x.shape})")
    index = []
    for b, s, n in zip(begin.tolist(), size.tolist(), x.shape):
        end = n if s == -1 else b + s
        if not 0 <= b <= end <= n:
            raise IndexOutOfRangeError(f"slice: begin {b} with size {s} leaves an axis of "
                                       f"size {n}; hint: begin + size <= the axis' size")
        index.append(builtins.slice(b, end))
    return x[tuple(index)]


def strided_slice(input_, begin, end, strides=None):
    """``input_[begin:end:strides]`` along each axis (TF's masks not supported: use Python
    indexing, ``x[1:, ::2, None]``, for those).

    >>> import gputape as gt
    >>> gt.strided_slice([0.0, 1.0, 2.0, 3.0, 4.0], [1], [5], [2]).numpy()
    array([1., 3.], dtype=float32)
    """
    x = as_tensor("strided_slice", "input_", input_)
    begin, end = _host_ints("strided_slice", "begin", begin), _host_ints(
        "strided_slice", "end", end)
    strides = np.ones_like(begin) if strides is None else _host_ints(
        "strided_slice", "strides", strides)
    if not len(begin) == len(end) == len(strides) <= x.ndim:
        raise ArgumentError("strided_slice: begin, end and strides need one entry per sliced "
                            f"axis (at most {x.ndim})")
    return x[tuple(builtins.slice(b, e, s) for b, e, s in zip(begin.tolist(), end.tolist(),
                                                               strides.tolist()))]


def boolean_mask(tensor, mask, axis=0):
    """The entries of ``tensor`` where ``mask`` (covering axes ``axis`` .. ``axis + mask.ndim
    - 1``) is true, those axes flattened into one.

    >>> import gputape as gt
    >>> gt.boolean_mask([1.0, 2.0, 3.0], [True, False, True]).numpy()
    array([1., 3.], dtype=float32)
    """
    x = as_tensor("boolean_mask", "tensor", tensor)
    mask = np.asarray(mask.numpy() if isinstance(mask, Tensor) else mask)
    axis = normalize_axis("boolean_mask", axis, x.ndim)
    if mask.dtype != bool or x.shape[axis:axis + mask.ndim] != mask.shape:
        raise ShapeError(f"boolean_mask: mask (a {mask.dtype} of shape {mask.shape}) must be "
                         f"bool and cover the axes of {x.shape} from axis {axis}")
    return x[(builtins.slice(None),) * axis + (mask,)]


def _nd_index(op: str, indices, shape: tuple) -> tuple:
    idx = _host_ints(op, "indices", indices)
    depth = idx.shape[-1] if idx.ndim else 0
    if idx.ndim == 0 or depth > len(shape):
        raise ShapeError(f"{op}: indices of shape {idx.shape} need a last dimension of at "
                         f"most {len(shape)} (the indexed tensor's rank)")
    bound = np.asarray(shape[:depth])
    if idx.size and ((idx < 0) | (idx >= bound)).any():
        raise IndexOutOfRangeError(f"{op}: indices outside the shape {shape[:depth]}; hint: "
                                   f"each index in 0..size-1")
    return tuple(idx[..., i] for i in range(depth))


def gather_nd(params, indices):
    """The slices of ``params`` at the coordinates in ``indices``' last dimension.

    >>> import gputape as gt
    >>> gt.gather_nd([[1.0, 2.0], [3.0, 4.0]], [[0, 1], [1, 0]]).numpy()
    array([2., 3.], dtype=float32)
    """
    x = as_tensor("gather_nd", "params", params)
    return x[_nd_index("gather_nd", indices, x.shape)]


def scatter_nd(indices, updates, shape):
    """A tensor of ``shape``, zeros but for ``updates`` added at ``indices`` (repeated
    indices add up, as TF's).

    >>> import gputape as gt
    >>> gt.scatter_nd([[1], [3], [1]], [1.0, 2.0, 5.0], [4]).numpy()
    array([0., 6., 0., 2.], dtype=float32)
    """
    shape = tuple(int(s) for s in _host_ints("scatter_nd", "shape", shape).tolist())
    u = as_tensor("scatter_nd", "updates", updates)
    index = _nd_index("scatter_nd", indices, shape)
    expected = index[0].shape + shape[len(index):] if index else shape
    if u.shape != expected:
        raise ShapeError(f"scatter_nd: updates of shape {u.shape} do not fit indices and "
                         f"shape {shape}: expected {expected}")
    return apply(SCATTER, u, index=index, shape=shape, out_ndim=len(shape))


def tensor_scatter_nd_add(tensor, indices, updates):
    """``tensor`` with ``updates`` added at ``indices``.

    >>> import gputape as gt
    >>> gt.tensor_scatter_nd_add([1.0, 1.0], [[0]], [5.0]).numpy()
    array([6., 1.], dtype=float32)
    """
    x = as_tensor("tensor_scatter_nd_add", "tensor", tensor)
    return x + scatter_nd(indices, updates, x.shape)


def tensor_scatter_nd_update(tensor, indices, updates):
    """``tensor`` with the entries at ``indices`` replaced by ``updates`` (for a repeated
    index the updates add up, where TF keeps one of them).

    >>> import gputape as gt
    >>> gt.tensor_scatter_nd_update([1.0, 1.0], [[0]], [5.0]).numpy()
    array([5., 1.], dtype=float32)
    """
    x = as_tensor("tensor_scatter_nd_update", "tensor", tensor)
    u = as_tensor("tensor_scatter_nd_update", "updates", updates)
    hit = scatter_nd(indices, cast(fill(u.shape, 1, device=x.device), x.dtype), x.shape)
    return where(greater(hit, 0), 0.0, x) + scatter_nd(indices, u, x.shape)


def unsorted_segment_sum(data, segment_ids, num_segments):
    """Sums of the rows of ``data`` by segment id (``segment_ids`` over its leading axes);
    an empty segment sums to 0.

    >>> import gputape as gt
    >>> gt.unsorted_segment_sum([1.0, 2.0, 3.0], [1, 0, 1], 2).numpy()
    array([2., 4.], dtype=float32)
    """
    x = as_tensor("unsorted_segment_sum", "data", data)
    ids = _host_ints("unsorted_segment_sum", "segment_ids", segment_ids)
    if x.shape[:ids.ndim] != ids.shape:
        raise ShapeError(f"unsorted_segment_sum: segment_ids of shape {ids.shape} must cover "
                         f"data's leading axes (data {x.shape})")
    n = int(num_segments)
    if ids.size and (ids.min() < 0 or ids.max() >= n):
        raise IndexOutOfRangeError(f"unsorted_segment_sum: segment ids must be in 0..{n - 1}")
    return apply(SCATTER, x, index=(ids,), shape=(n,) + x.shape[ids.ndim:],
                 out_ndim=1 + x.ndim - ids.ndim)


def segment_sum(data, segment_ids):
    """Sums by sorted segment ids (as many segments as the largest id plus one).

    >>> import gputape as gt
    >>> gt.segment_sum([1.0, 2.0, 3.0], [0, 0, 1]).numpy()
    array([3., 3.], dtype=float32)
    """
    ids = _host_ints("segment_sum", "segment_ids", segment_ids)
    if ids.size and (np.diff(ids) < 0).any():
        raise ArgumentError("segment_sum: segment_ids must be sorted; hint: "
                            "gt.unsorted_segment_sum takes any order")
    return unsorted_segment_sum(data, ids, int(ids.max()) + 1 if ids.size else 0)


def _segment_counts(x, ids, n):
    counts = np.bincount(ids.ravel(), minlength=n).astype(x.dtype)
    return Tensor._wrap(x.device.xp.asarray(counts.reshape((n,) + (1,) * (x.ndim - ids.ndim))))


def unsorted_segment_mean(data, segment_ids, num_segments):
    """Means by segment id (0 for an empty segment).

    >>> import gputape as gt
    >>> gt.unsorted_segment_mean([1.0, 2.0, 3.0], [1, 0, 1], 2).numpy()
    array([2., 2.], dtype=float32)
    """
    x = as_tensor("unsorted_segment_mean", "data", data)
    ids = _host_ints("unsorted_segment_mean", "segment_ids", segment_ids)
    total = unsorted_segment_sum(x, ids, num_segments)
    counts = _segment_counts(x, ids, int(num_segments))
    return total / where(greater(counts, 0), counts, 1.0)


def unsorted_segment_max(data, segment_ids, num_segments):
    """Maxima by segment id (the dtype's lowest value for an empty segment, as TF's); the
    gradient goes to the maxima, shared equally between ties (TF's rule).

    >>> import gputape as gt
    >>> gt.unsorted_segment_max([1.0, 5.0, 3.0], [1, 0, 1], 2).numpy()
    array([5., 3.], dtype=float32)
    """
    x = as_tensor("unsorted_segment_max", "data", data)
    ids = _host_ints("unsorted_segment_max", "segment_ids", segment_ids)
    n = int(num_segments)
    xp = x.device.xp
    lowest = np.finfo(x.dtype).min if x.dtype.kind == "f" else np.iinfo(x.dtype).min
    peak = np.full((n,) + x.shape[ids.ndim:], lowest, dtype=x.dtype)
    np.maximum.at(peak, ids, x.numpy())
    peaks = Tensor._wrap(xp.asarray(peak))
    chosen = equal(x, gather(peaks, ids))  # the maxima of their segments
    shares = unsorted_segment_sum(cast(chosen, x.dtype), ids, n)
    weights = where(chosen, 1.0 / gather(where(greater(shares, 0), shares, 1.0), ids), 0.0)
    total = unsorted_segment_sum(x * weights, ids, n)
    return where(greater(shares, 0), total, peaks)

