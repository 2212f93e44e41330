"""``apply``: the one place where ops, devices, dtypes and tapes meet.

1. convert the arguments (Python numbers are weakly typed, Variables are read),
2. pick the array namespace from the operands (mixed devices raise DeviceMismatchError),
3. run the primitive's implementation (a fused override on the GPU when one is registered), or
   leave the result pending when the primitive may be fused into a reduction that reads it,
4. wrap the result in a Tensor,
5. record it on every recording tape that watches one of its float inputs.
"""

from __future__ import annotations

import types

import numpy as np

from ..host.pool import MIN_BYTES as _POOL_MIN
from ..host.pool import pooled_numpy
from . import dtypes
from .device import default_device, device_of, move, namespace_of
from .errors import (
    ArgumentError,
    DeviceMismatchError,
    DTypeError,
    GputapeError,
    IndexOutOfRangeError,
    ShapeError,
)
from .numerics import check_op_result, user_line
from .registry import Primitive, describe
from .state import Kept, recording
from .tensor import Tensor, Variable, _holds_tensor, _ids, convert_to_tensor

__all__ = ["apply", "describe"]


def apply(prim: Primitive, *args, **params) -> Tensor:
    """Run primitive ``prim`` on ``args`` (tensors or values that can become tensors) with
    static keyword ``params``, and record it on the active tapes."""
    tensors = _host_operands(prim, args) if prim.host_generic else None
    if tensors is None:
        return _apply_general(prim, args, params)
    # The host fast path: the generic NumPy forward on operands that need no conversion.
    # Large operands get NumPy with pooled results (gputape.host.pool).
    forward = prim.host_forward
    first = tensors[0]._data
    xp = np
    if first.nbytes >= _POOL_MIN or (len(tensors) > 1 and tensors[1]._data.nbytes >= _POOL_MIN):
        xp = pooled_numpy
    try:
        if params:
            out = forward(xp, *[t._data for t in tensors], **params)
        elif len(tensors) == 1:
            out = forward(xp, first)
        else:
            out = forward(xp, first, tensors[1]._data)
    except GputapeError:
        raise
    except (ValueError, TypeError, IndexError) as exc:
        raise _explain(prim, tensors, params, exc) from exc
    if type(out) is not _ndarray:
        out = np.asarray(out)  # NumPy ufuncs return scalars for 0-d inputs
    if checking_numerics:
        check_op_result(prim, tensors, out)
    result = _new(Tensor)
    result._data = out
    result._uid = _next_uid()
    tapes = recording.tapes
    if tapes:
        if prim.differentiable and out.dtype.kind in "fc":  # track(), without its call
            record(tapes, prim, tensors, params, result)
        else:
            note_blocked(tapes, prim, tensors, result)
    return result


def _apply_general(prim: Primitive, args: tuple, params: dict) -> Tensor:
    if recording.arrays:
        return apply_to_arrays(prim, args, params)
    tensors = _operands(prim, args)
    if prim.shortcuts and not checking_numerics:
        result = _shortcut(prim, tensors, params)
        if result is not None:
            return result
    data = tensors[0]._data
    xp = np if type(data) is np.ndarray else namespace_of(data)
    forward = prim.host_forward if xp is np else prim.implementation(xp.__name__)
    tapes = recording.tapes
    kept = Kept() if prim.keeps and tapes else None
    try:
        if kept is None:
            out = forward(xp, *[t._data for t in tensors], **params)
        else:
            out = forward(xp, *[t._data for t in tensors], kept=kept, **params)
    except GputapeError:
        raise
    except (ValueError, TypeError, IndexError) as exc:
        raise _explain(prim, tensors, params, exc) from exc
    if xp is np and type(out) is not np.ndarray:
        out = np.asarray(out)  # NumPy ufuncs return scalars for 0-d inputs
    if checking_numerics:
        check_op_result(prim, tensors, out)
    result = Tensor._wrap(out)
    if tapes:
        track(tapes, prim, tensors, params, result, kept)
    return result


def _shortcut(prim: Primitive, tensors, params: dict) -> "Tensor | None":
    """The result a backend's shortcut produces (pending, or computed from a pending operand's
    inputs: gputape.cuda.pending), recorded as usual; None where it declines."""
    xp = tensors[0].device.xp  # (a pending operand knows its device without computing)
    shortcut = prim.shortcut(xp.__name__)
    if shortcut is None:
        return None
    tapes = recording.tapes
    kept = Kept() if tapes else None
    try:
        result = shortcut(prim, tensors, params, xp, kept)
    except (ValueError, TypeError) as exc:
        raise _explain(prim, tensors, params, exc) from exc
    if result is not None and tapes:  # gradients do not depend on whether it was taken
        record(tapes, prim, tensors, params, result, kept)
    return result


def apply_to_arrays(prim: Primitive, args: tuple, params: dict):
    """``prim`` on host arrays, returning an array: how gradient rules run in a backward walk's
    array mode (``recording.arrays``), where no tape records and nothing needs checking (the
    walk's inputs were checked when they were recorded). Python numbers take the dtype of the
    arrays they are unified with, as in :func:`apply`."""
    if prim.host_generic and not params and len(args) == 1 and type(args[0]) is _ndarray:
        a = args[0]
        out = prim.host_forward(pooled_numpy if a.nbytes >= _POOL_MIN else np, a)
        return out if type(out) is _ndarray else np.asarray(out)
    arrays = [a._data if isinstance(a, Tensor) else a for a in args]
    # NumPy scalars (what NumPy makes of 0-d results) stand for 0-d tensors: strongly typed.
    unify = prim.unify
    dtype = None
    for i in unify:
        if i < len(arrays) and isinstance(arrays[i], (_ndarray, np.generic)):
            dtype = arrays[i].dtype
            break
    xp = np
    for i, a in enumerate(arrays):
        if type(a) is _ndarray:
            if a.nbytes >= _POOL_MIN:
                xp = pooled_numpy
        elif isinstance(a, np.generic):
            arrays[i] = np.asarray(a)
        elif i in unify and dtypes.is_weak(a):
            arrays[i] = np.asarray(a, dtype=dtype if dtype is not None else
                                   dtypes.weak_dtype([a]))
    out = prim.host_forward(xp, *arrays, **params)
    return out if type(out) is _ndarray else np.asarray(out)


# True while check_numerics is on (gputape.tools.debugging): every result is checked for NaN/Inf.
checking_numerics = False


def set_checking_numerics(on: bool) -> None:
    global checking_numerics
    checking_numerics = bool(on)


# -- the host fast path ------------------------------------------------------------------
# Most calls on a CPU are one or two NumPy tensors of one dtype, or a tensor and a Python
# number, with no override registered: they skip the general conversion and checks (which
# would find nothing to do). Anything else, including every error, takes the general path.

_ndarray = np.ndarray
_new = object.__new__
_next_uid = _ids.__next__
_SCALARS: dict = {}  # (Python number, dtype) -> 0-d host Tensor; tensors are immutable
_NO_PARAMS = types.MappingProxyType({})  # the params of an entry without parameters


def _host_operands(prim: Primitive, args: tuple) -> "tuple | None":
    """``args`` as host tensors when they need no conversion or checks beyond dtype agreement,
    else ``None`` (the general path decides, and raises if something is wrong)."""
    n = len(args)
    if n == 1:
        a = args[0]
        if type(a) is Tensor and type(a._data) is _ndarray:
            if prim.float_only and a._data.dtype.kind not in "fc":
                return None
            return args
        return None
    if n != 2:
        return None
    a, b = args
    if type(a) is Tensor:
        da = a._data
        if type(da) is not _ndarray:
            return None
        if type(b) is Tensor:
            db = b._data
            if type(db) is not _ndarray:
                return None
            if len(prim.unify) == 2 and db.dtype != da.dtype:
                return None
            if prim.float_only and (da.dtype.kind not in "fc" or db.dtype.kind not in "fc"):
                return None
            return args
        if len(prim.unify) == 2 and (type(b) is float or type(b) is int):
            scalar = _host_scalar(b, da.dtype)
            return None if scalar is None else (a, scalar)
        return None
    if type(b) is Tensor and len(prim.unify) == 2 and (type(a) is float or type(a) is int):
        db = b._data
        if type(db) is not _ndarray:
            return None
        scalar = _host_scalar(a, db.dtype)
        return None if scalar is None else (scalar, b)
    return None


def _host_scalar(value, dtype) -> "Tensor | None":
    """A 0-d host tensor holding the Python number ``value`` as a float ``dtype`` (cached)."""
    if dtype.kind not in "fc" or not value:  # ints may not fit; 0.0 and -0.0 compare equal
        return None
    key = (value, dtype)
    tensor = _SCALARS.get(key)
    if tensor is None:
        if len(_SCALARS) >= 1024:
            _SCALARS.clear()
        tensor = _SCALARS[key] = Tensor._wrap(np.asarray(value, dtype=dtype))
    return tensor


def track(tapes: list, prim: Primitive, tensors, params: dict, result: Tensor,
          kept: "Kept | None" = None) -> None:
    """Tell the recording ``tapes`` about a computed ``result``: an entry when gradients can
    flow through it, else a note for ``explain``."""
    if prim.differentiable and result._data.dtype.kind in "fc":
        record(tapes, prim, tensors, params, result, kept)
    else:
        note_blocked(tapes, prim, tensors, result)


def record(tapes: list, prim: Primitive, tensors, params: dict, result: Tensor,
           kept: "Kept | None" = None) -> None:
    """Append one entry to every tape in ``tapes`` that watches an input (tapes watch float
    tensors only: ``GradientTape._watch_one``; recorded outputs are floats). The only place
    that writes a tape's entries (the fast paths call it too)."""
    entry = None
    for tape in tapes:
        watched = tape._watched
        for t in tensors:
            if t._uid in watched:
                break
        else:
            if tape._shadow:
                _follow_shadow(tape, prim, tensors, result, False)
            continue
        if entry is None:  # see gputape.core.state
            entry = (prim, tensors if type(tensors) is tuple else tuple(tensors), params, result,
                     user_line() if checking_numerics else None, kept)
        tape._entries.append(entry)
        watched.add(result._uid)
        if not prim.host_walk:
            tape._host_rules = False  # (gputape.core.fastpath records only ops whose rules may)


def note_blocked(tapes: list, prim: Primitive, tensors, result: Tensor) -> None:
    """Remember a result no gradient flows through (a non-differentiable op, or an integer
    result) when it comes from a tensor a tape follows, so that ``explain`` can name it."""
    for tape in tapes:
        _follow_shadow(tape, prim, tensors, result, True)


def record_one(tapes: list, prim: Primitive, x: Tensor, result: Tensor) -> None:
    """:func:`record` for one operand and no parameters, unrolled: the fast paths run it for
    every small host op (of a primitive whose rules may run on host arrays, while
    check_numerics is off: what they handle)."""
    entry = None
    for tape in tapes:
        watched = tape._watched
        if x._uid in watched:
            if entry is None:
                entry = (prim, (x,), _NO_PARAMS, result, None, None)
            tape._entries.append(entry)
            watched.add(result._uid)
        elif tape._shadow:
            _follow_shadow(tape, prim, (x,), result, False)


def record_two(tapes: list, prim: Primitive, x: Tensor, y: Tensor, result: Tensor) -> None:
    """:func:`record` for two operands and no parameters, unrolled."""
    entry = None
    for tape in tapes:
        watched = tape._watched
        if x._uid in watched or y._uid in watched:
            if entry is None:
                entry = (prim, (x, y), _NO_PARAMS, result, None, None)
            tape._entries.append(entry)
            watched.add(result._uid)
        elif tape._shadow:
            _follow_shadow(tape, prim, (x, y), result, False)


def _follow_shadow(tape, prim: Primitive, tensors, result: Tensor, blocking: bool) -> None:
    followed = tape._watched, tape._shadow
    uids = tuple(t._uid for t in tensors)
    if any(uid in ids for uid in uids for ids in followed):
        name = prim.name
        if blocking and result._data.dtype.kind not in "fc":
            name = f"{name} -> {result._data.dtype}"
        tape._blocked.append((result._uid, uids, name, blocking))
        tape._shadow.add(result._uid)


def _operands(prim: Primitive, args: tuple) -> list:
    """Tensors for ``args``: one device, one dtype per unified group, weak scalars converted."""
    if _all_plain_tensors(args):
        _check_dtypes(prim, args)
        return args
    tensors: list = list(args)
    device = None
    device_arg = None
    pending: list = []  # (index, value) still to convert once the device is known
    for i, value in enumerate(args):
        if isinstance(value, (list, tuple)) and _holds_tensor(value):
            # Packed with a recorded stack, as TF packs a list of tensors: their dtype and
            # device, and gradients flow back to each (a host copy would cut them off).
            value = tensors[i] = convert_to_tensor(value)
        if isinstance(value, Tensor):
            if isinstance(value, Variable):
                note_variable_read(value)
                value = tensors[i] = _read(value)
            # (a pending tensor knows its device without computing)
            dev = device_of(value._data) if type(value) is Tensor else value.device
            if device is None:
                device, device_arg = dev, i
            elif dev != device:
                raise DeviceMismatchError(
                    f"{prim.name}: argument {prim.arg_name(device_arg)!r} lives on {device} but "
                    f"argument {prim.arg_name(i)!r} on {dev}; hint: move one with .to('{device}') "
                    f"(Python numbers are fine anywhere)"
                )
        else:
            pending.append(i)
    if not pending:
        _check_dtypes(prim, tensors)
        return tensors
    if device is None:
        device = default_device()
    weak: list = []
    for i in pending:
        value = args[i]
        if dtypes.is_weak(value):
            weak.append(i)
            continue
        if type(value).__module__.startswith("cupy"):
            raise DeviceMismatchError(
                f"{prim.name}: argument {prim.arg_name(i)!r} is a raw CuPy array; hint: wrap it "
                f"with gt.constant(array) first"
            )
        # Arrays and lists next to a tensor take its dtype, as in TensorFlow.
        dtype = _group_dtype(prim, tensors, i)
        host = dtypes.infer_host_array(value, dtype, prim.name, prim.arg_name(i))
        tensors[i] = Tensor._wrap(move(host, device))
    for i in weak:
        tensors[i] = _weak_tensor(prim, args, tensors, i, device)
    _check_dtypes(prim, tensors)
    return tensors


def _all_plain_tensors(args: tuple) -> bool:
    for value in args:
        if type(value) is not Tensor:
            return False
    if len(args) > 1:
        first = args[0]._data
        kind = type(first)
        for value in args[1:]:
            if type(value._data) is not kind:
                return False
        if kind is not np.ndarray:
            dev = first.device.id
            if any(value._data.device.id != dev for value in args[1:]):
                return False
    return True


def _group_dtype(prim: Primitive, tensors: list, i: int):
    """The dtype of the first tensor operand that ``i`` must agree with, if any."""
    if i in prim.unify:
        for j in prim.unify:
            if isinstance(tensors[j], Tensor):
                return tensors[j]._data.dtype
    return None


def _weak_tensor(prim: Primitive, args: tuple, tensors: list, i: int, device) -> Tensor:
    value = args[i]
    group = prim.unify if i in prim.unify else (i,)
    strong = [tensors[j] for j in group if isinstance(tensors[j], Tensor)]
    if strong:
        dtype = strong[0]._data.dtype
        dtypes.cast_weak(value, dtype, prim.name, prim.arg_name(i))
    else:
        dtype = dtypes.weak_dtype([args[j] for j in group])
    return Tensor._wrap(move(np.asarray(value, dtype=dtype), device))


def _check_dtypes(prim: Primitive, tensors) -> None:
    group = prim.unify
    if len(group) > 1:
        first = tensors[group[0]].dtype
        for j in group[1:]:
            other = tensors[j].dtype
            if other != first:
                a, b = prim.arg_name(group[0]), prim.arg_name(j)
                name, dtype = _cast_hint((a, first), (b, other))
                raise DTypeError(
                    f"{prim.name}: argument {a!r} has dtype {first} but {b!r} has dtype {other}; "
                    f"gputape does not promote silently; hint: gt.cast({name}, gt.{dtype}) "
                    f"(Python numbers adapt on their own)"
                )
    if prim.float_only:
        for t in tensors:
            if t.dtype.kind not in "fc":
                raise DTypeError(
                    f"{prim.name}: needs a float tensor, got {describe(prim, tensors)}; hint: "
                    f"gt.cast(x, gt.float32)"
                )


def _cast_hint(first: tuple, second: tuple) -> tuple:
    """``(argument, dtype)`` to suggest for two operands of different dtypes: the integer one
    to the float's dtype, else the wider float to the narrower (float64 data meeting float32
    weights: cast the data, not the weights), else the second to the first's."""
    (a, da), (b, db) = first, second
    if da.kind in "fc" and db.kind not in "fc":
        return b, da
    if db.kind in "fc" and da.kind not in "fc":
        return a, db
    if da.kind == db.kind == "f" and da.itemsize > db.itemsize:
        return a, db
    return b, da


def _read(variable: Variable) -> Tensor:
    """A read of ``variable``. It carries the Variable's id where a recording tape watches
    the Variable, so that gradients reach it; else an id of its own, so that a later
    ``watch()`` does not connect it (TF records a read only while the Variable is watched: a
    read before ``watch()``, inside ``stop_recording()`` or outside any tape stays a
    constant)."""
    snapshot = variable._snapshot()
    uid = variable._uid
    for tape in recording.tapes:
        if uid in tape._watched:
            return snapshot
    snapshot._uid = next(_ids)
    return snapshot


def note_variable_read(variable: Variable) -> None:
    if variable.trainable:
        for tape in recording.tapes:
            if tape._watch_accessed_variables:
                tape._watch_one(variable)
        for seen in recording.variable_watchers:
            if not any(v is variable for v in seen):
                seen.append(variable)


def read_variable(variable: Variable) -> Tensor:
    """A read of ``variable`` as an op's input would take it: noted by the recording tapes
    (which watch it where they watch accessed variables) and carrying its id where one does,
    so that a gradient reaches it."""
    note_variable_read(variable)
    return _read(variable)


def _param_text(params: dict) -> str:
    def show(value):
        if hasattr(value, "shape") and hasattr(value, "dtype"):
            return f"<{value.dtype} array {tuple(value.shape)}>"
        if isinstance(value, tuple):
            return "(" + ", ".join(show(v) for v in value) + ("," if len(value) == 1 else "") + ")"
        return repr(value)

    return ", ".join(f"{k}={show(v)}" for k, v in params.items())


def _explain(prim: Primitive, tensors, params: dict, exc: Exception) -> Exception:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    operands = describe(prim, tensors)
    if params:
        operands += f"; {_param_text(params)}"
    if "broadcast" in text:
        return ShapeError(
            f"{prim.name}: shapes do not broadcast ({operands}); hint: each dimension must be "
            f"equal or 1, counting from the right; use gt.reshape or gt.expand_dims"
        )
    if isinstance(exc, IndexError):
        return IndexOutOfRangeError(f"{prim.name}: {text} ({operands})")
    return ArgumentError(f"{prim.name}: {text} ({operands})")
