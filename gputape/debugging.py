"""Hunting NaN and Inf: ``check_numerics`` stops at the first op that makes one.

While the check is on, every op's result is looked at, forward and backward. The first op that
turns finite inputs into a NaN or an Inf raises ``FloatingPointError`` naming the op, its
operands and the line of the user's code that called it (for a gradient rule: the line where
the forward op was recorded). A NaN that comes in from the data is reported at the first op
that reads it. Checking costs a pass over every result (and a device synchronisation on the
GPU), so it is for debugging; when it is off, the ops do not pay for it.

Examples
--------
>>> import gputape as gt
>>> x = gt.constant([1.0, 0.0], device="cpu")
>>> with gt.debugging.check_numerics():
...     y = gt.log(x)
Traceback (most recent call last):
...
FloatingPointError: check_numerics: 'log' made -inf (1 of 2 values) from finite inputs ...
"""

from __future__ import annotations

import contextlib
import linecache
import os
import sys
import threading

import numpy as np

from . import dispatch
from ._state import PRIM, WHERE, recording
from .registry import set_host_fast_paths

__all__ = ["check_numerics", "disable_check_numerics", "enable_check_numerics"]

_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep
_lock = threading.Lock()
_depth = 0  # open check_numerics blocks, plus one while enable_check_numerics() is in force
_enabled = False

_HINTS = {
    "log": "keep log's argument positive (e.g. gt.log(x + eps) or gt.log(gt.maximum(x, eps)))",
    "log1p": "keep log1p's argument above -1",
    "sqrt": "sqrt's gradient is infinite at 0: use gt.sqrt(x + eps) where x can be 0",
    "divide": "look for a zero denominator (add eps, or gt.where to guard it)",
    "reciprocal": "look for a zero argument",
    "exp": "exp overflows above ~88 in float32 (~709 in float64): use log-space forms such as "
           "gt.reduce_logsumexp, gt.nn.softplus or gt.log_softmax",
    "pow": "look for 0 ** negative, negative ** fractional, or overflow",
}


def enable_check_numerics() -> None:
    """Check every op from now on, until :func:`disable_check_numerics` (TensorFlow's switch).

    Examples
    --------
    >>> import gputape as gt
    >>> gt.debugging.enable_check_numerics()
    >>> gt.debugging.disable_check_numerics()
    """
    global _enabled
    with _lock:
        if not _enabled:
            _enabled = True
            _change(+1)


def disable_check_numerics() -> None:
    """Undo :func:`enable_check_numerics` (open ``check_numerics()`` blocks keep checking)."""
    global _enabled
    with _lock:
        if _enabled:
            _enabled = False
            _change(-1)


def check_numerics(tensor=None, message: str = ""):
    """Without arguments: a context manager that checks every op inside its block.
    With a tensor: raise ``FloatingPointError`` if it holds a NaN or an Inf, else return it.

    The check is process-wide while any block is open (ops in other threads are checked too).

    Examples
    --------
    >>> import gputape as gt
    >>> with gt.debugging.check_numerics():
    ...     y = gt.sqrt(gt.constant([4.0], device="cpu"))
    >>> gt.debugging.check_numerics(y, "after sqrt").numpy()
    array([2.], dtype=float32)
    """
    if tensor is None:
        return _checking()
    from .tensor import convert_to_tensor

    tensor = convert_to_tensor(tensor)
    bad = _count_bad(tensor._data)
    if bad:
        raise FloatingPointError(
            f"check_numerics: {message + ': ' if message else ''}tensor of shape {tensor.shape} "
            f"and dtype {tensor.dtype} on {tensor.device} holds {bad}"
        )
    return tensor


@contextlib.contextmanager
def _checking():
    with _lock:
        _change(+1)
    try:
        # NumPy's own RuntimeWarnings would only repeat, less precisely, what is raised here.
        with np.errstate(all="ignore"):
            yield
    finally:
        with _lock:
            _change(-1)


def _change(step: int) -> None:
    global _depth
    _depth += step
    dispatch.checking_numerics = _depth > 0
    set_host_fast_paths(_depth == 0)


def checking() -> bool:
    """True while results are checked (read by the backward walk once per walk)."""
    return dispatch.checking_numerics


# -- the checks (called by dispatch and the backward walk while checking) -------------------
def check_op_result(prim, tensors, out) -> None:
    """Raise if ``out`` (the result of ``prim`` on ``tensors``) holds a NaN or an Inf."""
    bad = _count_bad(out)
    if not bad:
        return
    from .dispatch import describe

    during = _during()
    for i, t in enumerate(tensors):
        came = _count_bad(t._data)
        if came:
            raise FloatingPointError(
                f"check_numerics: input {_arg(prim, i)!r} of {prim.name!r} already holds "
                f"{came}{during}, at {user_line()}; it was not made by an op checked here: it "
                f"came in with the data (gt.constant, a Variable) or was computed before the "
                f"check was on; hint: check the inputs with gt.debugging.check_numerics(x)"
            )
    # Inside a gradient rule, the forward op's advice is the useful one.
    named = recording.backward_of[PRIM].name if during else prim.name
    hint = _HINTS.get(named, "look at the ranges of this op's inputs")
    raise FloatingPointError(
        f"check_numerics: {prim.name!r} made {bad} from finite inputs ({describe(prim, tensors)})"
        f"{during}, at {user_line()}; hint: {hint}"
    )


def check_gradient(entry: tuple, index: int, grad) -> None:
    """Raise if the gradient of tape ``entry``'s op w.r.t. input ``index`` holds a NaN or an
    Inf."""
    bad = _count_bad(grad._data)
    if bad:
        prim = entry[PRIM]
        raise FloatingPointError(
            f"check_numerics: the gradient of {prim.name!r} w.r.t. "
            f"{_arg(prim, index)!r} holds {bad}; the op was recorded at "
            f"{entry[WHERE] or 'an unknown line'}; hint: "
            f"{_HINTS.get(prim.name, 'look at the ranges of its inputs there')}"
        )


def _during() -> str:
    entry = recording.backward_of
    if entry is None:
        return ""
    where = entry[WHERE] or "an unknown line"
    return f" while computing the gradient of {entry[PRIM].name!r} (recorded at {where})"


def _count_bad(array) -> str:
    """``''`` when ``array`` is finite (or not floating), else e.g. ``'nan (2 of 6 values)'``."""
    if array.dtype.kind not in "fc":
        return ""
    xp = np if isinstance(array, np.ndarray) else sys.modules["cupy"]
    finite = xp.isfinite(array)
    if bool(finite.all()):
        return ""
    values = array[~finite]
    kinds = []
    if bool(xp.isnan(values).any()):
        kinds.append("nan")
    if array.dtype.kind == "f":
        if bool((values == np.inf).any()):
            kinds.append("inf")
        if bool((values == -np.inf).any()):
            kinds.append("-inf")
    elif not kinds:
        kinds.append("inf")
    return f"{'/'.join(kinds)} ({values.size} of {array.size} values)"


def _arg(prim, i: int) -> str:
    names = prim.arg_names
    return names[i] if i < len(names) else f"arg{i}"


def user_line() -> str:
    """``file:line in function: `code``` of the innermost caller outside gputape."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame = frame.f_back
    if frame is None:
        return "an unknown line"
    code = frame.f_code
    text = linecache.getline(code.co_filename, frame.f_lineno).strip()
    where = f"{code.co_filename}:{frame.f_lineno} in {code.co_name}"
    return f"{where}: `{text}`" if text else where
