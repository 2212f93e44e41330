"""Reused host buffers for large NumPy results.

A forward and gradient at a few million elements makes a dozen arrays of a few MB each, frees
them, and makes them again on the next step. glibc's malloc hands such blocks back to the kernel
when they are freed (or trims the top of its heap), so every step faults the same memory in
again, page by page: at 2e6 float32 elements that was half the time of a gradient (measured in
bench/NOTES.md). Frameworks keep their own allocator for this reason; gputape keeps a small pool
of large host buffers and gives it to the forwards of elementwise primitives: for large
operands they receive :data:`pooled_numpy`, a NumPy namespace whose float ufuncs write their
result into a free pooled buffer.

A buffer is free when nothing refers to it: every array made from it, views included, holds a
reference to the buffer (NumPy points a view's ``base`` at the array that owns the memory), so
its reference count tells. The pool holds at most ``GPUTAPE_HOST_POOL_MB`` MB (default 512; ``0``
turns it off); beyond that, idle buffers are dropped first, then results are allocated as usual.
:func:`release` drops every idle buffer now.
"""

from __future__ import annotations

import math
import os
import sys
import threading

import numpy as np

from . import threads as hostthreads

__all__ = ["MIN_BYTES", "HostPool", "POOL", "pooled_numpy", "release", "stats", "zeros_operand"]

MIN_BYTES = 1 << 18  # smaller arrays come from malloc's own free lists without faults


def _references(buffers: list, i: int) -> int:
    # The list, this frame's local and getrefcount's argument: the same count for every call,
    # whatever the interpreter's conventions, since calibration goes through here too.
    buffer = buffers[i]
    return sys.getrefcount(buffer)


def _idle_count() -> int:
    return _references([np.empty(1, np.uint8)], 0)


def _supported() -> bool:
    """Reference counts tell whether a buffer is free only on CPython with the GIL."""
    gil = getattr(sys, "_is_gil_enabled", lambda: True)()
    return sys.implementation.name == "cpython" and gil


class HostPool:
    """Large host buffers, handed out as arrays and taken back once nothing refers to them.

    Examples
    --------
    >>> import numpy as np
    >>> from gputape.host.pool import HostPool
    >>> pool = HostPool(limit_bytes=1 << 24, min_bytes=1 << 10)
    >>> a = pool.empty((512, 4), np.float32)
    >>> address = a.ctypes.data
    >>> pool.empty((512, 4), np.float32).ctypes.data == address  # a is still alive
    False
    >>> del a
    >>> pool.empty((2048,), np.float32).ctypes.data == address  # same size: reused
    True
    """

    def __init__(self, limit_bytes: int, min_bytes: int = MIN_BYTES) -> None:
        self.limit_bytes = limit_bytes if _supported() else 0
        self.min_bytes = min_bytes
        self._buffers: "dict[int, list]" = {}  # nbytes -> owning uint8 arrays
        self._held = 0
        self._idle_refs = _idle_count()
        self._lock = threading.Lock()

    def empty(self, shape: tuple, dtype) -> np.ndarray:
        """An uninitialised array of ``shape`` and ``dtype``, from a free buffer if one fits."""
        dtype = np.dtype(dtype)
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes < self.min_bytes or nbytes > self.limit_bytes:
            return np.empty(shape, dtype)
        with self._lock:
            buffers = self._buffers.setdefault(nbytes, [])
            for i in range(len(buffers)):
                if _references(buffers, i) == self._idle_refs:
                    return buffers[i].view(dtype).reshape(shape)
            if self._held + nbytes > self.limit_bytes:
                self._drop_idle()
                if self._held + nbytes > self.limit_bytes:
                    return np.empty(shape, dtype)
            buffer = np.empty(nbytes, np.uint8)
            buffers.append(buffer)
            self._held += nbytes
            return buffer.view(dtype).reshape(shape)

    def release(self) -> int:
        """Drop every idle buffer; returns the bytes given back."""
        with self._lock:
            return self._drop_idle()

    def stats(self) -> dict:
        """``{"held": bytes, "idle": bytes, "buffers": count}`` right now."""
        with self._lock:
            idle = count = 0
            for nbytes, buffers in self._buffers.items():
                count += len(buffers)
                idle += nbytes * sum(
                    _references(buffers, i) == self._idle_refs for i in range(len(buffers))
                )
            return {"held": self._held, "idle": idle, "buffers": count}

    def _drop_idle(self) -> int:
        dropped = 0
        for nbytes, buffers in self._buffers.items():
            keep = [
                buffers[i]
                for i in range(len(buffers))
                if _references(buffers, i) != self._idle_refs
            ]
            dropped += nbytes * (len(buffers) - len(keep))
            buffers[:] = keep
        self._held -= dropped
        return dropped


def _limit_from_environment() -> int:
    value = os.environ.get("GPUTAPE_HOST_POOL_MB", "512").strip()
    try:
        megabytes = float(value)
    except ValueError:
        raise ValueError(
            f"GPUTAPE_HOST_POOL_MB={value!r} is not a number; hint: the pool's size in MB, "
            f"0 to turn it off"
        ) from None
    return max(0, int(megabytes * (1 << 20)))


POOL = HostPool(_limit_from_environment())

def same_dtype_ufunc(ufunc) -> bool:
    """Whether ``ufunc`` gives one result of its float operands' dtype (float32 and float64
    operands of one dtype: ``add``, ``sin``; not ``less``, ``frexp`` or ``ldexp``), read from
    its type signatures, so that any such op gets pooled results without being listed.

    >>> import numpy as np
    >>> [same_dtype_ufunc(f) for f in (np.arctan, np.less, np.frexp, np.matmul)]
    [True, False, False, False]
    """
    if not isinstance(ufunc, np.ufunc) or ufunc.nout != 1 or ufunc.signature is not None:
        return False  # (a generalized ufunc such as matmul is not elementwise)
    return all(f"{c * ufunc.nin}->{c}" in ufunc.types for c in "fd")


class _PooledUfunc:
    """A NumPy ufunc that writes a large same-dtype result into a pooled buffer.

    Operands that hold one value everywhere (every stride 0: the broadcast cotangent of a sum,
    for one) cost no pass: when all of them do, the ufunc runs on that one value and its result
    is broadcast (a read-only view); a product with such an operand equal to 1 is the other
    operand, as it is.
    """

    __slots__ = ("ufunc", "pool", "identity_of_one")

    def __init__(self, ufunc, pool: HostPool) -> None:
        self.ufunc = ufunc
        self.pool = pool
        self.identity_of_one = ufunc is np.multiply

    def __call__(self, *args, **kwargs):
        if not kwargs:
            shape_dtype = _result_of(args)
            if shape_dtype is not None:
                result = _without_pass(self, args, shape_dtype)
                if result is not None:
                    return result
                return hostthreads.run(self.ufunc, args, self.pool.empty(*shape_dtype))
        elif len(kwargs) == 1 and type(kwargs.get("out")) is np.ndarray:
            out = kwargs["out"]  # in place, as in x*x*x: the same threads, no pool
            if (_result_of(args) == (out.shape, out.dtype) and out.flags.writeable
                    and all(a is out or not np.may_share_memory(a, out) for a in args)):
                return hostthreads.run(self.ufunc, args, out)
        return self.ufunc(*args, **kwargs)

    def __getattr__(self, name):  # reduce, at, nin, ... as NumPy's
        return getattr(self.ufunc, name)


def _uniform(a) -> bool:
    """Whether ``a`` is an array that holds one value everywhere, by its strides alone."""
    return type(a) is np.ndarray and a.size > 0 and not any(a.strides)


def _without_pass(pooled: _PooledUfunc, args: tuple, shape_dtype: tuple):
    """The result of ``pooled`` on ``args`` without a pass over the elements, or None."""
    uniform = [_uniform(a) for a in args]
    if not any(uniform):
        return None
    shape, dtype = shape_dtype
    if all(uniform[i] or type(a) is not np.ndarray for i, a in enumerate(args)):
        values = [a[(0,) * a.ndim] if uniform[i] else a for i, a in enumerate(args)]
        one = np.asarray(pooled.ufunc(*values))
        return np.broadcast_to(one, shape) if one.dtype == dtype else None
    if pooled.identity_of_one and len(args) == 2:
        a, b = args
        if uniform[0] and a[(0,) * a.ndim] == 1 and type(b) is np.ndarray and b.shape == shape:
            return b
        if uniform[1] and b[(0,) * b.ndim] == 1 and type(a) is np.ndarray and a.shape == shape:
            return a
    return None


def _result_of(args: tuple) -> "tuple | None":
    """``(shape, dtype)`` of an elementwise result when every array operand has one float dtype
    and either one shape or none (0-d), and the other operands are Python numbers; else None."""
    shape = dtype = None
    for a in args:
        if type(a) is np.ndarray:
            if dtype is None:
                dtype = a.dtype
                if dtype.kind != "f":
                    return None
            elif a.dtype != dtype:
                return None
            if a.ndim:
                if shape is None:
                    shape = a.shape
                elif a.shape != shape:
                    return None
        elif type(a) is not float and type(a) is not int:
            if not (isinstance(a, np.generic) and a.dtype == dtype):
                return None
    return None if shape is None else (shape, dtype)


class _PooledNumPy:
    """NumPy, with the same-dtype float ufuncs writing large results into pooled buffers."""

    __name__ = "numpy"

    def __init__(self, pool: HostPool) -> None:
        self._pool = pool

    def __getattr__(self, name):  # first use of a name: remembered, pooled if it is a ufunc
        found = getattr(np, name)
        if same_dtype_ufunc(found):
            found = _PooledUfunc(found, self._pool)
        setattr(self, name, found)
        return found

    def __repr__(self) -> str:
        return "<NumPy with pooled results>"


pooled_numpy = _PooledNumPy(POOL)


# zeros_operand: full arrays of zeros for sizes in this range; a 0-d zero outside it.
_ZEROS_MIN_SIZE = 4096  # below this, NumPy's scalar loop costs no more than reading zeros
_ZEROS_MAX_BYTES = 1 << 26
_ZEROS: dict = {}  # dtype -> the largest never-written np.zeros array made so far


def zeros_operand(shape: tuple, dtype) -> np.ndarray:
    """Zeros of ``shape`` and ``dtype`` to hand a ufunc as an operand: read-only, and free.

    NumPy's ``maximum`` and ``minimum`` have SIMD loops for two arrays but a scalar loop when
    one operand is a single value: ``np.maximum(x, 0)`` on 131,072 float32 takes 2.5x as long as
    with an array of zeros (bench/NOTES.md). The array of zeros here is a view of one large
    ``np.zeros`` array per dtype that nothing ever writes: its pages are never touched by a
    write, so on Linux every one maps the kernel's single zero page, costing no memory and
    reading from cache. Sizes below 4,096 elements, or above 64 MB, get a 0-d zero instead.

    Examples
    --------
    >>> import numpy as np
    >>> from gputape.host.pool import zeros_operand
    >>> z = zeros_operand((64, 128), np.float32)
    >>> z.shape, z.flags.writeable, bool(z.any())
    ((64, 128), False, False)
    >>> zeros_operand((3,), np.float32).shape  # small: one value
    ()
    """
    dtype = np.dtype(dtype)
    size = math.prod(shape)
    if size < _ZEROS_MIN_SIZE or size * dtype.itemsize > _ZEROS_MAX_BYTES:
        return np.zeros((), dtype)
    zeros = _ZEROS.get(dtype)
    if zeros is None or zeros.size < size:
        zeros = np.zeros(max(size, 1 << 20), dtype)
        zeros.flags.writeable = False
        _ZEROS[dtype] = zeros
    return zeros[:size].reshape(shape)


def release() -> int:
    """Give every idle pooled host buffer back to the system; returns the bytes released.

    Examples
    --------
    >>> import gputape as gt
    >>> gt.hostpool.release() >= 0
    True
    """
    return POOL.release()


def stats() -> dict:
    """Bytes the host pool holds (``"held"``), of which idle (``"idle"``), and its buffers.

    Examples
    --------
    >>> import gputape as gt
    >>> sorted(gt.hostpool.stats())
    ['buffers', 'held', 'idle']
    """
    return POOL.stats()
