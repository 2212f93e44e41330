"""dtype rules: what a Python value becomes, and which dtype an op's operands share.

Python numbers are *weakly typed*: next to a tensor they take the tensor's dtype (``3 * x``
keeps float32); alone, a Python float becomes float32, an int int32 (int64 when it does not
fit), a complex complex128 (as TensorFlow). NumPy arrays keep their dtype.
"""

from __future__ import annotations

import numbers

import numpy as np

from .errors import ArgumentTypeError, DTypeError

__all__ = [
    "bool_", "float16", "float32", "float64", "int8", "int16", "int32", "int64",
    "uint8", "complex64", "complex128", "as_dtype", "is_floating",
]

bool_ = np.dtype("bool")
float16 = np.dtype("float16")
float32 = np.dtype("float32")
float64 = np.dtype("float64")
int8 = np.dtype("int8")
int16 = np.dtype("int16")
int32 = np.dtype("int32")
int64 = np.dtype("int64")
uint8 = np.dtype("uint8")
complex64 = np.dtype("complex64")
complex128 = np.dtype("complex128")

_INT32 = np.iinfo(np.int32)


def as_dtype(dtype) -> np.dtype:
    """Normalise anything NumPy understands as a dtype (``"float32"``, ``np.float64``,
    ``gt.float16``) to a :class:`numpy.dtype`, refusing those gputape cannot compute with.

    Examples
    --------
    >>> import gputape as gt
    >>> gt.as_dtype("float64")
    dtype('float64')
    """
    if dtype is None:
        raise DTypeError("dtype: None is not a dtype; hint: use gt.float32, gt.int32, ...")
    try:
        result = np.dtype(dtype)
    except TypeError as exc:
        raise DTypeError(
            f"dtype: {dtype!r} is not a dtype; hint: use gt.float32 or 'float64'"
        ) from exc
    if result.kind not in "biufc":
        raise DTypeError(
            f"dtype: {result} is not supported; use a bool, integer, float or complex dtype"
        )
    return result


def is_floating(dtype: np.dtype) -> bool:
    """True for the float and complex dtypes, the only ones gradients flow through."""
    return dtype.kind in "fc"


def is_weak(value) -> bool:
    """A Python (or NumPy) scalar number, which takes its dtype from the tensors beside it."""
    return isinstance(value, (numbers.Number, np.generic)) and not isinstance(value, np.ndarray)


def weak_dtype(values) -> np.dtype:
    """The dtype a group of weak scalars takes when no tensor gives one."""
    kinds = {_python_kind(v) for v in values}
    for kind, dtype in (("c", complex128), ("f", float32), ("i", int32)):
        if kind in kinds:
            if kind == "i" and not all(_fits_int32(v) for v in values):
                return int64
            return dtype
    return bool_


def _python_kind(value) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "b"
    if isinstance(value, (numbers.Integral, np.integer)):
        return "i"
    if isinstance(value, (numbers.Real, np.floating)):
        return "f"
    return "c"


def _fits_int32(value) -> bool:
    return not isinstance(value, numbers.Integral) or _INT32.min <= value <= _INT32.max


def cast_weak(value, dtype: np.dtype, op: str, arg: str):
    """Check that weak scalar ``value`` can take ``dtype`` without losing meaning."""
    kind = _python_kind(value)
    order = "biufc"
    if dtype.kind == "b" and kind != "b":
        raise DTypeError(
            f"{op}: argument {arg!r} is the Python number {value!r}, which cannot join a bool "
            f"tensor; hint: compare first or gt.cast the tensor"
        )
    if kind in "fc" and order.index(kind) > order.index(dtype.kind):
        raise DTypeError(
            f"{op}: argument {arg!r} is the Python {type(value).__name__} {value!r}, which cannot "
            f"join a {dtype} tensor without losing its fraction; hint: gt.cast the tensor to a "
            f"float dtype first"
        )
    if kind in "bi" and dtype.kind in "iu" and not isinstance(value, (bool, np.bool_)):
        info = np.iinfo(dtype)
        if not info.min <= int(value) <= info.max:
            raise DTypeError(
                f"{op}: argument {arg!r} is the Python int {value!r}, which does not fit the "
                f"{dtype} tensor beside it (range {info.min}..{info.max}); hint: gt.cast the "
                f"tensor to a wider dtype"
            )
    return value


def infer_host_array(value, dtype=None, op: str = "constant", arg: str = "value") -> np.ndarray:
    """Turn Python data or a NumPy array into a NumPy array with gputape's dtype rules."""
    if isinstance(value, np.ndarray):
        array = np.array(value, copy=True)  # tensors are immutable: never share the caller's
    else:
        if value is None or isinstance(value, (str, bytes)):
            raise _not_a_tensor(value, op, arg)
        try:
            array = np.asarray(value)
        except (ValueError, TypeError) as exc:
            raise ArgumentTypeError(
                f"{op}: argument {arg!r} cannot become a tensor ({exc}); hint: pass numbers, "
                f"nested lists of numbers of equal lengths, or arrays"
            ) from exc
        if dtype is None and not isinstance(value, np.generic):
            array = _narrow_python_default(array)
    if array.dtype.kind not in "biufc":
        raise _not_a_tensor(value, op, arg)
    if dtype is not None:
        dtype = as_dtype(dtype)
        if dtype != array.dtype:
            if dtype.kind in "biu" and array.dtype.kind in "fc" and array.size:
                if not np.all(np.isfinite(array)) or not np.all(np.round(array) == array):
                    raise DTypeError(
                        f"{op}: {arg!r} holds non-integer values that cannot become {dtype} "
                        f"without rounding; hint: round them first or use a float dtype"
                    )
            array = array.astype(dtype)
    return array


def _narrow_python_default(array: np.ndarray) -> np.ndarray:
    if array.dtype == np.float64:
        return array.astype(np.float32)
    if array.dtype.kind == "i" and array.dtype != np.int32:
        if array.size == 0 or (array.min() >= _INT32.min and array.max() <= _INT32.max):
            return array.astype(np.int32)
    return array


def _not_a_tensor(value, op: str, arg: str) -> ArgumentTypeError:
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return ArgumentTypeError(
        f"{op}: argument {arg!r} is a {type(value).__name__} ({shown}), which cannot become a "
        f"tensor; hint: pass a gt.Tensor, a Python number, a list of numbers or a NumPy array"
    )
