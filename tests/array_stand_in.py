"""A GPU stood in for by NumPy arrays behind a ``cupy.ndarray`` of their own, for the tests of
what a tape on ``"gpu:0"`` does without a GPU (``tests/cuda_backend/test_fused_launches.py``).

``FakeArray`` is a GPU array as gputape sees one (NumPy inside, CuPy's ways where they differ
from NumPy's), ``cupy_module()`` a stand-in CuPy of such arrays, and ``use_gpu_stand_in`` makes
``"gpu:0"`` of them for a test, its kernels those of ``kernel_stand_in`` (each call checked
against the kernel's C signature, then done in NumPy). ``CUPY`` is the installed CuPy's Python
layer (it imports without a GPU), or None.
"""

from __future__ import annotations

import contextlib
import sys
import types

import numpy as np
from kernel_stand_in import Kernel

import gputape as gt
from gputape.cuda import loader

_DEVICE_MODULE = sys.modules["gputape.core.device"]  # gt.device is the context manager


def _unwrap(value):
    if isinstance(value, FakeArray):
        return value.host
    if isinstance(value, (list, tuple)):
        return type(value)(_unwrap(v) for v in value)
    return value


def _wrap(value):
    if isinstance(value, (np.ndarray, np.generic)):  # CuPy's reductions give 0-d arrays
        return FakeArray(np.asarray(value))
    if isinstance(value, (list, tuple)):
        return type(value)(_wrap(v) for v in value)
    return value


def _on_arrays(fn):
    def call(*args, **kwargs):
        return _wrap(fn(*_unwrap(args), **{k: _unwrap(v) for k, v in kwargs.items()}))

    return call


class _Device:
    def __init__(self, device_id: int = 0) -> None:
        self.id = device_id

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> bool:
        return False


def _real_cupy():
    """CuPy's Python layer where installed (it imports without a GPU), to ask what it has."""
    try:
        import cupy

        return cupy if hasattr(cupy, "RawModule") else None
    except Exception:  # noqa: BLE001 - not installed, or broken: use NumPy's names
        return None


CUPY = _real_cupy()


def cupy_lacks(func) -> bool:
    """True when CuPy has no function of ``func``'s name (``numpy.linalg.x``: cupy.linalg.x),
    so that its ``__array_function__`` returns NotImplemented and NumPy raises TypeError.
    Without CuPy installed, every NumPy function passes."""
    if CUPY is None:
        return False
    module = CUPY
    for part in func.__module__.split(".")[1:]:
        module = getattr(module, part, None)
        if module is None:
            return True
    return not hasattr(module, func.__name__)


def _wrap_indices(host: np.ndarray, key):
    """``key`` with its integer index arrays taken modulo the size of the dimension each
    indexes: CuPy wraps out-of-range integer array indices around instead of raising."""
    items = key if isinstance(key, tuple) else (key,)
    if not any(isinstance(k, np.ndarray) and k.dtype.kind in "iu" for k in items):
        return key
    used = sum(k.ndim if isinstance(k, np.ndarray) and k.dtype.kind == "b" else 1
               for k in items if k is not None and k is not Ellipsis)
    out, dim = [], 0
    for k in items:
        if k is Ellipsis:
            dim += host.ndim - used
        elif isinstance(k, np.ndarray) and k.dtype.kind in "iu":
            k = np.mod(k, host.shape[dim]) if host.shape[dim] else k
            dim += 1
        elif k is not None:
            dim += k.ndim if isinstance(k, np.ndarray) else 1
        out.append(k)
    return tuple(out)


class _Flags:
    """CuPy's ``ndarray.flags``: the contiguity and ownership, no ``writeable``."""

    def __init__(self, host: np.ndarray) -> None:
        self.c_contiguous = host.flags.c_contiguous
        self.f_contiguous = host.flags.f_contiguous
        self.owndata = host.flags.owndata


class FakeArray:
    """A GPU array as gputape sees one: NumPy inside, and CuPy's ways where they differ from
    NumPy's: no implicit conversion to the host, out-of-range integer index arrays wrapped
    around, ``flags`` without ``writeable``, NumPy functions CuPy lacks refused."""

    __module__ = "cupy"  # how gputape tells a CuPy array from another value
    __array_priority__ = 1000
    __hash__ = None

    def __init__(self, array: np.ndarray) -> None:
        self.host = array

    device = property(lambda self: _Device(0))
    shape = property(lambda self: self.host.shape)
    dtype = property(lambda self: self.host.dtype)
    strides = property(lambda self: self.host.strides)
    itemsize = property(lambda self: self.host.itemsize)
    ndim = property(lambda self: self.host.ndim)
    size = property(lambda self: self.host.size)
    nbytes = property(lambda self: self.host.nbytes)
    flags = property(lambda self: _Flags(self.host))
    T = property(lambda self: FakeArray(self.host.T))

    def get(self) -> np.ndarray:
        return np.array(self.host)

    def __array__(self, *args, **kwargs):
        raise TypeError("implicit conversion of a GPU array to a NumPy array")

    def __getattr__(self, name: str):
        if name.startswith("__"):  # no __array_interface__ (a silent host conversion), ...
            raise AttributeError(f"'cupy.ndarray' object has no attribute {name!r}")
        value = getattr(self.host, name)
        return _on_arrays(value) if callable(value) else _wrap(value)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        kwargs = {k: _unwrap(v) for k, v in kwargs.items()}
        return _wrap(getattr(ufunc, method)(*_unwrap(inputs), **kwargs))

    def __array_function__(self, func, types, args, kwargs):
        if cupy_lacks(func):
            return NotImplemented
        return _wrap(func(*_unwrap(args), **{k: _unwrap(v) for k, v in kwargs.items()}))

    def __getitem__(self, key):
        key = _wrap_indices(self.host, _unwrap(key))
        out = self.host[key]
        if isinstance(out, np.generic):  # NumPy gives a copy of one element, CuPy a 0-d view
            out = self.host[(key if isinstance(key, tuple) else (key,)) + (Ellipsis,)]
        return FakeArray(out)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __setitem__(self, key, value) -> None:
        self.host[_unwrap(key)] = _unwrap(value)

    def __len__(self) -> int:
        return len(self.host)

    def __bool__(self) -> bool:
        return bool(self.host)

    def __float__(self) -> float:
        return float(self.host)

    def __int__(self) -> int:
        return int(self.host)

    def __neg__(self):
        return np.negative(self)

    def __abs__(self):
        return np.absolute(self)


def _binary(ufunc):
    return (lambda self, other: ufunc(self, other)), (lambda self, other: ufunc(other, self))


for _name, _ufunc in [("add", np.add), ("sub", np.subtract), ("mul", np.multiply),
                      ("truediv", np.true_divide), ("pow", np.power), ("matmul", np.matmul),
                      ("lt", np.less), ("le", np.less_equal), ("gt", np.greater),
                      ("ge", np.greater_equal), ("eq", np.equal), ("ne", np.not_equal)]:
    _forward, _reflected = _binary(_ufunc)
    setattr(FakeArray, f"__{_name}__", _forward)
    setattr(FakeArray, f"__r{_name}__", _reflected)


def cupy_module() -> types.ModuleType:
    cupy = types.ModuleType("cupy")
    cupy.ndarray = FakeArray

    def namespace(name: str):
        value = getattr(np, name)  # NumPy's functions on the arrays inside; types as they are
        return _on_arrays(value) if callable(value) and not isinstance(value, type) else value

    def asarray(a, dtype=None):
        if isinstance(a, FakeArray) and (dtype is None or np.dtype(dtype) == a.dtype):
            return a
        return FakeArray(np.array(_unwrap(a), dtype=dtype))  # a copy, as to a GPU

    cupy.__getattr__ = namespace
    cupy.asarray = asarray
    cupy.asnumpy = lambda a: np.array(_unwrap(a))
    cupy.empty = lambda shape, dtype=np.float64: FakeArray(np.full(shape, np.nan, dtype))
    cupy.cuda = types.SimpleNamespace(
        Device=_Device, runtime=types.SimpleNamespace(getDeviceCount=lambda: 1))
    return cupy


def _kernel(module: str, name: str, device_id: int):
    kernel = Kernel(module, name)

    def launch(grid: tuple, block: tuple, args: tuple) -> None:
        for i, arg in enumerate(args):  # a kernel reads GPU memory, never a host array
            assert not isinstance(arg, np.ndarray), f"{name} argument {i}: a host array"
        kernel(grid, block, tuple(_unwrap(a) for a in args))

    return launch


@contextlib.contextmanager
def use_gpu_stand_in(monkeypatch):
    """A stand-in "gpu:0" (the default device) until the block ends and ``monkeypatch`` undoes
    the rest; yields the names of the kernels launched."""
    cupy = cupy_module()
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    monkeypatch.setitem(_DEVICE_MODULE._CUPY_STATE, "module", cupy)
    monkeypatch.setattr(_DEVICE_MODULE, "_RESOLVED_DEFAULT", {})
    monkeypatch.setattr(loader, "function", _kernel)
    monkeypatch.setattr(loader, "multiprocessors", lambda device_id: 4)
    Kernel.calls = []
    with gt.device("gpu:0"):
        yield Kernel.calls
