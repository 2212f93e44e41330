"""Shape and indexing primitives. Their gradients only move, reshape or sum the cotangent."""

from __future__ import annotations

import math
import numbers

import numpy as np

from ..core.dispatch import apply
from ..core.errors import ArgumentError, ArgumentTypeError, ShapeError
from ..core.registry import defvjp, defvjp_any, implement, primitive
from ..core.state import recording
from ..core.tensor import Tensor
from ..host.views import broadcast_view
from ._axes import as_shape, as_tensor, lead, normalize_axes, normalize_axis
from .indexing import getitem

__all__ = [
    "broadcast_to", "concat", "copy_to_device", "expand_dims", "matrix_transpose", "reshape",
    "split", "squeeze", "stack", "transpose",
]

RESHAPE = defvjp(primitive("reshape", lambda xp, x, shape: xp.reshape(x, shape), ("tensor",),
                           unify=()),
                 lambda g, ans, x, shape: reshape(g, lead(g, ans) + x.shape))


def _transpose_vjp(g, ans, x, perm):
    batch = g.ndim - ans.ndim
    inverse = tuple(int(i) for i in np.argsort(perm))
    return transpose(g, tuple(range(batch)) + tuple(batch + i for i in inverse))


TRANSPOSE = defvjp(primitive("transpose", lambda xp, x, perm: xp.transpose(x, perm), ("a",),
                             unify=()),
                   _transpose_vjp)


# The walker sums the cotangent back to the input's shape: broadcast_to needs no rule body.
BROADCAST_TO = defvjp(primitive("broadcast_to", lambda xp, x, shape: xp.broadcast_to(x, shape),
                                ("input",), unify=()),
                      lambda g, ans, x, shape: g)
# On the host, the view made without NumPy's Python-level machinery (gputape.host.views).
implement(BROADCAST_TO, "numpy", lambda xp, x, shape: broadcast_view(x, shape))


def _concat_vjp(index, g, ans, *values, axis):
    start = sum(v.shape[axis] for v in values[:index])
    stop = start + values[index].shape[axis]
    prefix = (slice(None),) * (g.ndim - ans.ndim + axis)
    return g[prefix + (slice(start, stop),)]


CONCAT = defvjp_any(primitive("concat", lambda xp, *xs, axis: xp.concatenate(xs, axis=axis),
                              ("values",)),
                    _concat_vjp)
CONCAT.unify = ()  # checked in concat(), which knows how many values there are


def _copy_forward(xp, x, device):
    from ..core.device import Device, move

    return move(x, Device(device))


COPY_TO_DEVICE = defvjp(primitive("copy_to_device", _copy_forward, ("tensor",), unify=()),
                        lambda g, ans, x, device: copy_to_device(g, x.device.name))
COPY_TO_DEVICE.array_rules = False  # its cotangents change device: the walk keeps tensors
COPY_TO_DEVICE.refresh()


# == public functions ======================================================================


def reshape(tensor, shape):
    """The same values in a new ``shape`` (one entry may be -1).

    >>> import gputape as gt
    >>> gt.reshape(gt.range(6), (2, -1)).shape
    (2, 3)
    """
    if type(tensor) is np.ndarray and recording.arrays:
        return tensor.reshape(shape)  # a rule in backward's array mode: the walk's own shapes
    x = as_tensor("reshape", "tensor", tensor)
    shape = as_shape("reshape", shape, allow_unknown=True)
    unknown = [i for i, s in enumerate(shape) if s == -1]
    known = math.prod(s for s in shape if s != -1)
    if len(unknown) > 1 or any(s < -1 for s in shape):
        raise ShapeError(
            f"reshape: shape {shape} for a tensor of shape {x.shape} may hold at most one -1 and "
            f"no other negatives; hint: give every dimension but one explicitly"
        )
    if unknown:
        if known == 0 or x.size % known:
            raise ShapeError(
                f"reshape: cannot reshape a tensor of {x.size} elements (shape {x.shape}) into "
                f"{shape}; hint: the known dimensions must divide the size"
            )
        shape = shape[: unknown[0]] + (x.size // known,) + shape[unknown[0] + 1:]
    elif known != x.size:
        raise ShapeError(
            f"reshape: cannot reshape a tensor of {x.size} elements (shape {x.shape}) into "
            f"{shape} ({known} elements); hint: use -1 for one dimension to infer it"
        )
    # Always a new, recorded result, even to the same shape (as TF): never the input itself.
    return apply(RESHAPE, x, shape=shape)


def transpose(a, perm=None):
    """Permute the dimensions (default: reverse them).

    >>> import gputape as gt
    >>> gt.transpose(gt.zeros((2, 3, 4)), (2, 0, 1)).shape
    (4, 2, 3)
    """
    x = as_tensor("transpose", "a", a)
    if perm is None:
        perm = tuple(range(x.ndim - 1, -1, -1))
    perm = tuple(normalize_axis("transpose", p, x.ndim) for p in perm) if x.ndim else tuple(perm)
    if sorted(perm) != list(range(x.ndim)):
        raise ArgumentError(
            f"transpose: perm {perm} is not a permutation of the {x.ndim} axes of shape "
            f"{x.shape}; hint: list every axis 0..{x.ndim - 1} exactly once"
        )
    return apply(TRANSPOSE, x, perm=perm)


def matrix_transpose(a):
    """Swap the last two dimensions.

    >>> import gputape as gt
    >>> gt.matrix_transpose(gt.zeros((5, 2, 3))).shape
    (5, 3, 2)
    """
    x = as_tensor("matrix_transpose", "a", a)
    if x.ndim < 2:
        raise ShapeError(
            f"matrix_transpose: needs rank >= 2, got shape {x.shape}; hint: gt.expand_dims a "
            f"vector first, or use gt.transpose"
        )
    perm = tuple(range(x.ndim - 2)) + (x.ndim - 1, x.ndim - 2)
    return apply(TRANSPOSE, x, perm=perm)


def expand_dims(input, axis):  # noqa: A002 - TensorFlow's name
    """Insert a dimension of size 1 at ``axis``.

    >>> import gputape as gt
    >>> gt.expand_dims(gt.zeros((2, 3)), -1).shape
    (2, 3, 1)
    """
    x = as_tensor("expand_dims", "input", input)
    axis = normalize_axis("expand_dims", axis, x.ndim + 1)
    return reshape(x, x.shape[:axis] + (1,) + x.shape[axis:])


def squeeze(input, axis=None):  # noqa: A002 - TensorFlow's name
    """Remove dimensions of size 1 (all of them, or those in ``axis``).

    >>> import gputape as gt
    >>> gt.squeeze(gt.zeros((1, 3, 1))).shape
    (3,)
    """
    x = as_tensor("squeeze", "input", input)
    if axis is None:
        axes = tuple(i for i, s in enumerate(x.shape) if s == 1)
    else:
        axes = normalize_axes("squeeze", axis, x.ndim)
        bad = [a for a in axes if x.shape[a] != 1]
        if bad:
            raise ShapeError(
                f"squeeze: axis {bad[0]} of shape {x.shape} has size {x.shape[bad[0]]}, not 1; "
                f"hint: squeeze only axes of size 1 (or pass axis=None for all of them)"
            )
    return reshape(x, tuple(s for i, s in enumerate(x.shape) if i not in axes))


def broadcast_to(input, shape):  # noqa: A002 - TensorFlow's name
    """``input`` repeated along new or size-1 dimensions to ``shape`` (NumPy rules).

    >>> import gputape as gt
    >>> gt.broadcast_to([1.0, 2.0], (3, 2)).shape
    (3, 2)
    """
    if type(input) is np.ndarray and recording.arrays:  # as in reshape
        return input if input.shape == shape else broadcast_view(input, shape)
    x = as_tensor("broadcast_to", "input", input)
    shape = as_shape("broadcast_to", shape)
    return apply(BROADCAST_TO, x, shape=shape)  # a new, recorded result, as reshape


def concat(values, axis):
    """Join tensors along an existing ``axis``.

    >>> import gputape as gt
    >>> gt.concat([gt.zeros((2, 3)), gt.ones((1, 3))], axis=0).shape
    (3, 3)
    """
    tensors = _same_rank_tensors("concat", values)
    ndim = tensors[0].ndim
    if ndim == 0:
        raise ShapeError("concat: cannot concatenate 0-d tensors; hint: use gt.stack")
    axis = normalize_axis("concat", axis, ndim)
    def outside(shape):
        return shape[:axis] + shape[axis + 1:]

    for i, t in enumerate(tensors[1:], 1):
        if outside(t.shape) != outside(tensors[0].shape):
            raise ShapeError(
                f"concat: values[{i}] has shape {t.shape}, which differs from values[0] "
                f"{tensors[0].shape} outside axis {axis}; hint: only the size along axis "
                f"{axis} may differ"
            )
    _same_dtype("concat", tensors)
    if len(tensors) == 1:
        from .elementwise import identity

        return identity(tensors[0])
    return apply(CONCAT, *tensors, axis=axis)


def stack(values, axis=0):
    """Join tensors of equal shape along a new ``axis``.

    >>> import gputape as gt
    >>> gt.stack([gt.zeros(3), gt.ones(3)]).shape
    (2, 3)
    """
    tensors = _same_rank_tensors("stack", values)
    for i, t in enumerate(tensors[1:], 1):
        if t.shape != tensors[0].shape:
            raise ShapeError(
                f"stack: values[{i}] has shape {t.shape} but values[0] has {tensors[0].shape}; "
                f"hint: all must match (gt.concat joins tensors of different lengths)"
            )
    axis = normalize_axis("stack", axis, tensors[0].ndim + 1)
    return concat([expand_dims(t, axis) for t in tensors], axis)


def split(value, num_or_size_splits, axis=0):
    """Split along ``axis`` into ``num`` equal parts or parts of the given sizes (one may be -1).

    >>> import gputape as gt
    >>> [t.shape for t in gt.split(gt.zeros((5, 2)), [2, -1])]
    [(2, 2), (3, 2)]
    """
    x = as_tensor("split", "value", value)
    axis = normalize_axis("split", axis, x.ndim)
    length = x.shape[axis]
    if isinstance(num_or_size_splits, (bool, float)) or not isinstance(
            num_or_size_splits, (numbers.Integral, list, tuple, Tensor, np.ndarray)):
        raise ArgumentTypeError(
            f"split: num_or_size_splits must be an int or a list of ints, got "
            f"{type(num_or_size_splits).__name__} {num_or_size_splits!r:.40}; hint: e.g. 2 or "
            f"[1, -1]"
        )
    if isinstance(num_or_size_splits, numbers.Integral):
        n = int(num_or_size_splits)
        if n <= 0 or length % n:
            raise ShapeError(
                f"split: dimension {axis} of shape {x.shape} (size {length}) cannot be split "
                f"into {n} equal parts; hint: pass a list of sizes, e.g. [2, -1]"
            )
        sizes = [length // n] * n
    else:
        if isinstance(num_or_size_splits, Tensor):
            num_or_size_splits = num_or_size_splits.numpy().tolist()
        from ._axes import as_shape

        sizes = list(as_shape("split", list(num_or_size_splits), allow_unknown=True))
        if sizes.count(-1) == 1:
            sizes[sizes.index(-1)] = length - (sum(sizes) + 1)
        if sum(sizes) != length or any(s < 0 for s in sizes):
            raise ShapeError(
                f"split: sizes {list(num_or_size_splits)} do not add up to dimension {axis} of "
                f"shape {x.shape} (size {length}); hint: sizes must be >= 0 and sum to {length} "
                f"(one may be -1)"
            )
    prefix = (slice(None),) * axis
    starts = np.cumsum([0] + sizes[:-1])
    return [getitem(x, prefix + (slice(int(s), int(s) + n),)) for s, n in zip(starts, sizes)]


def copy_to_device(tensor, device):
    """A copy of ``tensor`` on ``device`` (differentiable)."""
    from ..core.device import Device

    x = as_tensor("copy_to_device", "tensor", tensor)
    target = Device(device)
    if target == x.device:
        return x
    return apply(COPY_TO_DEVICE, x, device=target.name)


# -- helpers ------------------------------------------------------------------------------


def _same_rank_tensors(op: str, values) -> list:
    if isinstance(values, Tensor) or not isinstance(values, (list, tuple)) or not values:
        got = (f"one tensor of shape {values.shape}" if isinstance(values, Tensor)
               else f"{type(values).__name__} {values!r:.40}")
        raise ArgumentTypeError(
            f"{op}: values must be a non-empty list of tensors, got {got}; hint: e.g. "
            f"gt.{op}([a, b], axis=0)"
        )
    tensors = [as_tensor(op, f"values[{i}]", v) for i, v in enumerate(values)]
    for i, t in enumerate(tensors[1:], 1):
        if t.ndim != tensors[0].ndim:
            raise ShapeError(
                f"{op}: values[{i}] has rank {t.ndim} (shape {t.shape}) but values[0] has rank "
                f"{tensors[0].ndim} (shape {tensors[0].shape}); hint: gt.reshape or "
                f"gt.expand_dims them to one rank"
            )
    return tensors


def _same_dtype(op: str, tensors: list) -> None:
    from ..core.errors import DTypeError

    for i, t in enumerate(tensors[1:], 1):
        if t.dtype != tensors[0].dtype:
            raise DTypeError(
                f"{op}: values[{i}] has dtype {t.dtype} but values[0] has {tensors[0].dtype}; "
                f"hint: gt.cast them to one dtype"
            )
