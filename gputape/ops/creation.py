"""Tensors made from nothing (or from another tensor's shape): not differentiable."""

from __future__ import annotations

import numpy as np

from ..core import dtypes
from ..core.device import Device, default_device
from ..core.errors import ArgumentError, ArgumentTypeError
from ..core.tensor import Tensor, _holds_tensor, _to_array, convert_to_tensor
from ._axes import as_count, as_number, as_shape

__all__ = [
    "convert_like", "eye", "fill", "lin_space", "linspace", "ones", "ones_like", "range", "zeros",
    "zeros_like",
]


def _xp_and_device(device):
    dev = Device(device) if device is not None else default_device()
    return dev.xp, dev


def _made(array, dev: Device) -> Tensor:
    if dev.kind == "gpu":
        with dev.xp.cuda.Device(dev.index):
            return Tensor._wrap(array())
    return Tensor._wrap(array())


def zeros(shape, dtype=dtypes.float32, device=None) -> Tensor:
    """A tensor of zeros.

    >>> import gputape as gt
    >>> gt.zeros((2, 3)).shape
    (2, 3)
    """
    xp, dev = _xp_and_device(device)
    shape, dtype = as_shape("zeros", shape), dtypes.as_dtype(dtype)
    return _made(lambda: xp.zeros(shape, dtype), dev)


def ones(shape, dtype=dtypes.float32, device=None) -> Tensor:
    """A tensor of ones.

    >>> import gputape as gt
    >>> gt.ones(2).numpy()
    array([1., 1.], dtype=float32)
    """
    xp, dev = _xp_and_device(device)
    shape, dtype = as_shape("ones", shape), dtypes.as_dtype(dtype)
    return _made(lambda: xp.ones(shape, dtype), dev)


def fill(dims, value, device=None) -> Tensor:
    """A tensor of shape ``dims`` filled with ``value`` (Python floats give float32).

    >>> import gputape as gt
    >>> gt.fill((2,), 7).numpy()
    array([7, 7], dtype=int32)
    """
    if isinstance(value, Tensor):
        dtype, value = value.dtype, value.numpy()
    elif dtypes.is_weak(value):
        dtype = dtypes.weak_dtype([value])
    else:
        raise ArgumentTypeError(
            f"fill: value must be a number or a one-element tensor, got {type(value).__name__} "
            f"{value!r:.40}; hint: e.g. gt.fill((2, 3), 0.5)"
        )
    xp, dev = _xp_and_device(device)
    shape = as_shape("fill", dims)
    return _made(lambda: xp.full(shape, value, dtype=dtype), dev)


def eye(num_rows, num_columns=None, dtype=dtypes.float32, device=None) -> Tensor:
    """An identity matrix.

    >>> import gputape as gt
    >>> gt.eye(2).numpy()
    array([[1., 0.],
           [0., 1.]], dtype=float32)
    """
    xp, dev = _xp_and_device(device)
    dtype = dtypes.as_dtype(dtype)
    rows = as_count("eye", "num_rows", num_rows)
    cols = rows if num_columns is None else as_count("eye", "num_columns", num_columns)
    return _made(lambda: xp.eye(rows, cols, dtype=dtype), dev)


def _like(op: str, x, dtype, device):
    if not isinstance(x, Tensor):
        x = Tensor._wrap(_to_array(x, None, device, op, "input"))
    dev = Device(device) if device is not None else x.device
    dtype = x.dtype if dtype is None else dtypes.as_dtype(dtype)
    return dev, x.shape, dtype


def zeros_like(input, dtype=None, device=None) -> Tensor:  # noqa: A002 - TensorFlow's name
    """Zeros with the shape (and by default the dtype and device) of ``input``.

    >>> import gputape as gt
    >>> gt.zeros_like(gt.ones((2,), gt.float64)).numpy()
    array([0., 0.])
    """
    dev, shape, dtype = _like("zeros_like", input, dtype, device)
    return zeros(shape, dtype, dev)


def ones_like(input, dtype=None, device=None) -> Tensor:  # noqa: A002 - TensorFlow's name
    """Ones with the shape (and by default the dtype and device) of ``input``.

    >>> import gputape as gt
    >>> gt.ones_like([[1, 2]]).numpy()
    array([[1, 1]], dtype=int32)
    """
    dev, shape, dtype = _like("ones_like", input, dtype, device)
    return ones(shape, dtype, dev)


def linspace(start, stop, num, device=None) -> Tensor:
    """``num`` evenly spaced values from ``start`` to ``stop`` inclusive (float32 for Python
    numbers).

    >>> import gputape as gt
    >>> gt.linspace(0.0, 1.0, 5).numpy()
    array([0.  , 0.25, 0.5 , 0.75, 1.  ], dtype=float32)
    """
    dtype = _float_dtype_of(start, stop)
    num = as_count("linspace", "num", num)
    start = float(as_number("linspace", "start", start))
    stop = float(as_number("linspace", "stop", stop))
    xp, dev = _xp_and_device(device)
    return _made(lambda: xp.linspace(start, stop, num, dtype=np.float64).astype(dtype), dev)


lin_space = linspace


def range(start, limit=None, delta=1, dtype=None, device=None) -> Tensor:  # noqa: A001
    """Values from ``start`` (inclusive) to ``limit`` (exclusive) in steps of ``delta``; with
    one argument, from 0 to ``start``. Python ints give int32, floats float32.

    >>> import gputape as gt
    >>> gt.range(3).numpy()
    array([0, 1, 2], dtype=int32)
    """
    if limit is None:
        start, limit = 0, start
    values = [as_number("range", name, v)
              for name, v in (("start", start), ("limit", limit), ("delta", delta))]
    if values[2] == 0:
        raise ArgumentError(
            f"range: delta must not be 0 (start={values[0]!r}, limit={values[1]!r}); hint: use "
            f"a positive delta to count up, a negative one to count down"
        )
    dtype = dtypes.as_dtype(dtype) if dtype is not None else dtypes.weak_dtype(values)
    xp, dev = _xp_and_device(device)
    return _made(lambda: xp.arange(*values).astype(dtype), dev)


def _float_dtype_of(*values) -> np.dtype:
    for v in values:
        if isinstance(v, Tensor) and v.dtype.kind == "f":
            return v.dtype
    return dtypes.float32


def convert_like(value, like: Tensor, what: str) -> Tensor:
    """``value`` as a tensor on ``like``'s device, keeping tensors as they are. ``what`` names
    the argument in errors (``"op.argument"``, or just the argument)."""
    if isinstance(value, Tensor):
        return value
    dtype = like.dtype if dtypes.is_weak(value) or isinstance(value, (list, tuple)) else None
    if isinstance(value, (list, tuple)) and _holds_tensor(value):
        return convert_to_tensor(value, dtype=dtype, device=like.device)
    op, _, arg = what.rpartition(".")
    return Tensor._wrap(_to_array(value, dtype, like.device, op or "convert_like", arg))

