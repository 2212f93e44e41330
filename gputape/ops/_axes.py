"""Axis and shape argument checks shared by the op families."""

from __future__ import annotations

import numbers

from ..errors import ArgumentError, ArgumentTypeError


def normalize_axes(op: str, axis, ndim: int) -> "tuple[int, ...]":
    """``axis`` (None, an int, or a sequence of ints) as sorted non-negative axes of ``ndim``."""
    if axis is None:
        return tuple(range(ndim))
    items = list(axis) if isinstance(axis, (list, tuple)) else [axis]
    result = []
    for a in items:
        a = _as_int(op, "axis", a)
        if not -ndim <= a < max(ndim, 1) or (ndim == 0 and a not in (0, -1)):
            raise ArgumentError(
                f"{op}: axis {a} is out of range for a tensor of rank {ndim}; hint: valid axes "
                f"are {-ndim}..{ndim - 1}"
            )
        result.append(a % ndim if ndim else 0)
    if len(set(result)) != len(result):
        raise ArgumentError(f"{op}: axis {axis!r} names the same dimension twice")
    return tuple(sorted(result)) if ndim else ()


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
            f"{value!r}"
        )
    return int(value)


def as_shape(op: str, shape) -> "tuple[int, ...]":
    """A shape argument (tuple, list, int, or 1-d int tensor) as a tuple of ints."""
    if hasattr(shape, "numpy"):
        shape = shape.numpy().tolist()
    if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
        return (int(shape),)
    if not isinstance(shape, (list, tuple)):
        raise ArgumentTypeError(
            f"{op}: shape must be a tuple or list of ints, got {type(shape).__name__} {shape!r}"
        )
    return tuple(_as_int(op, "shape", s) for s in shape)


def lead(g, ans) -> tuple:
    """The extra leading (batch) dimensions a cotangent carries beyond the op's output."""
    return g.shape[: g.ndim - ans.ndim]
