"""Axis and shape argument checks shared by the op families."""

from __future__ import annotations

import numbers

import numpy as np

from ..core.errors import ArgumentError, ArgumentTypeError
from ..core.state import recording
from ..core.tensor import Tensor, _holds_tensor, _to_array, convert_to_tensor


def as_tensor(op: str, arg: str, value) -> Tensor:
    """``value`` as a tensor (itself if it is one); a value that cannot become one raises an
    error naming ``op`` and its argument ``arg``, not the Tensor constructor."""
    if isinstance(value, Tensor):
        return value
    if type(value) is np.ndarray and recording.arrays:
        return Tensor._wrap(value)  # the backward walk's own array: no defensive copy
    if isinstance(value, (list, tuple)) and _holds_tensor(value):
        return convert_to_tensor(value)
    return Tensor._wrap(_to_array(value, None, None, op, arg))


def normalize_axes(op: str, axis, ndim: int) -> "tuple[int, ...]":
    """``axis`` (None, an int, or a sequence of ints) as sorted non-negative axes of ``ndim``."""
    if axis is None:
        return tuple(range(ndim))
    items = list(axis) if isinstance(axis, (list, tuple)) else [axis]
    result = []
    for a in items:
        a = _as_int(op, "axis", a)
        if not -ndim <= a < ndim:  # a 0-d tensor has no axis at all (TF refuses 0 and -1)
            valid = f"valid axes are {-ndim}..{ndim - 1}" if ndim else (
                "a 0-d tensor has none: pass axis=None or axis=[]")
            raise ArgumentError(
                f"{op}: axis {a} is out of range for a tensor of rank {ndim}; hint: {valid}"
            )
        result.append(a % ndim)
    if len(set(result)) != len(result):
        raise ArgumentError(
            f"{op}: axis {axis!r} names the same dimension twice (rank {ndim}); hint: list "
            f"each axis once"
        )
    return tuple(sorted(result))


def normalize_axis(op: str, axis, ndim: int) -> int:
    """One axis of a rank-``ndim`` tensor, as a non-negative int."""
    axis = _as_int(op, "axis", axis)
    if not -ndim <= axis < ndim:
        raise ArgumentError(
            f"{op}: axis {axis} is out of range for a tensor of rank {ndim}; hint: valid axes "
            f"are {-ndim}..{ndim - 1}"
        )
    return axis % ndim


def _as_int(op: str, name: str, value) -> int:
    if hasattr(value, "dtype") and hasattr(value, "ndim") and value.ndim == 0:
        value = value.numpy() if hasattr(value, "numpy") else value
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ArgumentTypeError(
            f"{op}: {name} must be an int (or a tuple of ints), got {type(value).__name__} "
            f"{value!r:.40}; hint: pass Python ints (or a 0-d integer tensor)"
        )
    return int(value)


def as_shape(op: str, shape, allow_unknown: bool = False) -> "tuple[int, ...]":
    """A shape argument (tuple, list, int, or 1-d int tensor) as a tuple of ints >= 0 (or -1
    for one unknown dimension where ``allow_unknown``)."""
    if hasattr(shape, "numpy"):
        shape = shape.numpy().tolist()
    if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
        shape = (shape,)
    if not isinstance(shape, (list, tuple)):
        raise ArgumentTypeError(
            f"{op}: shape must be a tuple or list of ints, got {type(shape).__name__} "
            f"{shape!r:.40}; hint: e.g. (2, 3)"
        )
    dims = tuple(_as_int(op, "shape", s) for s in shape)
    if not allow_unknown and any(d < 0 for d in dims):
        raise ArgumentError(
            f"{op}: shape {dims} has a negative dimension; hint: dimensions must be >= 0"
        )
    return dims


def as_count(op: str, name: str, value) -> int:
    """A non-negative int argument (a size or a count)."""
    value = _as_int(op, name, value)
    if value < 0:
        raise ArgumentError(
            f"{op}: {name} must be >= 0, got {value}; hint: sizes and counts cannot be negative"
        )
    return value


def as_number(op: str, name: str, value):
    """A real number argument (Python, NumPy or a one-element tensor)."""
    if hasattr(value, "numpy"):
        value = value.numpy()
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, np.number)):
        raise ArgumentTypeError(
            f"{op}: {name} must be a real number, got {type(value).__name__} {value!r:.40}; "
            f"hint: pass a Python float or a one-element tensor"
        )
    return value


def lead(g, ans) -> tuple:
    """The extra leading (batch) dimensions a cotangent carries beyond the op's output."""
    return g.shape[: g.ndim - ans.ndim]
