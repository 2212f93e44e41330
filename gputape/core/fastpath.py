"""Host fast paths of the one-ufunc ops: a NumPy call, a Tensor and a tape entry, nothing else.

Most calls on a CPU are a small NumPy tensor, or two of one dtype, or a tensor and a Python
number. For primitives whose host forward is one NumPy ufunc (declared with
:func:`gputape.core.registry.ufunc`), ``unary(prim, x)`` and ``binary(prim, x, y)`` run exactly what
:func:`gputape.core.dispatch.apply` would run in that case, without its argument packing and general
checks. Everything else, every error included, goes to ``apply``; so does every call while
check_numerics is on (``registry.set_host_fast_paths``).

In a backward walk's array mode (``recording.arrays``) the rules hand these functions bare
arrays, and they answer with bare arrays, as ``dispatch.apply_to_arrays`` does.

Examples
--------
>>> import gputape as gt
>>> from gputape.core.fastpath import binary
>>> from gputape.ops.elementwise import MULTIPLY
>>> binary(MULTIPLY, gt.constant([1.0, 2.0]), 3.0).numpy()
array([3., 6.], dtype=float32)
"""

from __future__ import annotations

import numpy as np

from ..host.pool import MIN_BYTES
from . import dispatch
from .registry import Primitive
from .state import recording
from .tensor import Tensor, _ids

__all__ = ["unary", "binary"]

_ndarray = np.ndarray
_new = object.__new__
_next_uid = _ids.__next__
_apply = dispatch.apply
_host_scalar = dispatch._host_scalar
# Tape entries are written in gputape.core.dispatch only (record, unrolled for one and two
# operands).
_record_one, _record_two = dispatch.record_one, dispatch.record_two
_note_blocked = dispatch.note_blocked


def unary(prim: Primitive, x):
    """``prim`` on one operand: NumPy's ufunc directly for a small host tensor (or, in array
    mode, a small array), else :func:`gputape.core.dispatch.apply`."""
    ufunc = prim.host_ufunc
    if ufunc is not None:
        if type(x) is Tensor:
            a = x._data
            if (type(a) is _ndarray and a.nbytes < MIN_BYTES
                    and (not prim.float_only or a.dtype.kind in "fc")):
                out = ufunc(a)
                if type(out) is not _ndarray:
                    out = np.asarray(out)  # NumPy ufuncs return scalars for 0-d inputs
                result = _new(Tensor)
                result._data = out
                result._uid = _next_uid()
                tapes = recording.tapes
                if tapes:
                    if prim.differentiable and out.dtype.kind in "fc":
                        _record_one(tapes, prim, x, result)
                    else:
                        _note_blocked(tapes, prim, (x,), result)
                return result
        elif type(x) is _ndarray and recording.arrays and x.nbytes < MIN_BYTES:
            out = ufunc(x)
            return out if type(out) is _ndarray else np.asarray(out)
    return _apply(prim, x)


def binary(prim: Primitive, x, y):
    """``prim`` on two operands: NumPy's ufunc directly for small host tensors of one dtype (a
    Python number beside one takes its dtype), else :func:`gputape.core.dispatch.apply`."""
    ufunc = prim.host_ufunc
    if ufunc is not None:
        tx, ty = type(x), type(y)
        if tx is Tensor:
            a = x._data
            if ty is Tensor:
                b = y._data
            elif ty is float or ty is int:
                scalar = _host_scalar(y, a.dtype) if type(a) is _ndarray else None
                if scalar is None:
                    return _apply(prim, x, y)
                y = scalar
                b = y._data
            else:
                return _apply(prim, x, y)
        elif ty is Tensor and (tx is float or tx is int):
            b = y._data
            scalar = _host_scalar(x, b.dtype) if type(b) is _ndarray else None
            if scalar is None:
                return _apply(prim, x, y)
            x = scalar
            a = x._data
        elif tx is _ndarray and recording.arrays:
            return _arrays(prim, ufunc, x, y)
        else:
            return _apply(prim, x, y)
        if (type(a) is _ndarray and type(b) is _ndarray and a.dtype is b.dtype
                and a.nbytes < MIN_BYTES and b.nbytes < MIN_BYTES
                and (not prim.float_only or a.dtype.kind in "fc")):
            try:
                out = ufunc(a, b)
            except (ValueError, TypeError):  # shapes that do not broadcast: apply explains
                return _apply(prim, x, y)
            if type(out) is not _ndarray:
                out = np.asarray(out)
            result = _new(Tensor)
            result._data = out
            result._uid = _next_uid()
            tapes = recording.tapes
            if tapes:
                if prim.differentiable and out.dtype.kind in "fc":
                    _record_two(tapes, prim, x, y, result)
                else:
                    _note_blocked(tapes, prim, (x, y), result)
            return result
        return _apply(prim, x, y)
    return _apply(prim, x, y)


def _arrays(prim: Primitive, ufunc, a, b):
    """Array mode: two small arrays of one dtype go straight to NumPy; anything else (a number,
    a NumPy scalar, another dtype) to ``apply``, which unifies them as usual."""
    if (type(b) is _ndarray and a.dtype is b.dtype and a.nbytes < MIN_BYTES
            and b.nbytes < MIN_BYTES):
        try:
            out = ufunc(a, b)
        except (ValueError, TypeError):
            return _apply(prim, a, b)
        return out if type(out) is _ndarray else np.asarray(out)
    return _apply(prim, a, b)
