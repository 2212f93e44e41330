"""The NaN/Inf checks that ``gt.debugging.check_numerics`` turns on, run by dispatch (each
op's result) and the backward walk (each rule's result).

Each check names the op, its operands, the line of the user's code that called it (for a
gradient rule: the line where the forward op was recorded) and the hint the op's declaration
gives (``primitive(..., hint=...)``).
"""

from __future__ import annotations

import linecache
import os
import sys

import numpy as np

from .registry import REGISTRY, describe
from .state import PRIM, WHERE, recording

__all__ = ["check_op_result", "check_gradient", "count_bad", "user_line"]

# The package's folder: frames inside it are gputape's, the first one outside is the user's.
_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def _hint(name: str, default: str) -> str:
    prim = REGISTRY.get(name)
    return prim.hint if prim is not None and prim.hint else default


def check_op_result(prim, tensors, out) -> None:
    """Raise if ``out`` (the result of ``prim`` on ``tensors``) holds a NaN or an Inf."""
    bad = count_bad(out)
    if not bad:
        return
    during = _during()
    for i, t in enumerate(tensors):
        came = count_bad(t._data)
        if came:
            raise FloatingPointError(
                f"check_numerics: input {prim.arg_name(i)!r} of {prim.name!r} already holds "
                f"{came}{during}, at {user_line()}; it was not made by an op checked here: it "
                f"came in with the data (gt.constant, a Variable) or was computed before the "
                f"check was on; hint: check the inputs with gt.debugging.check_numerics(x)"
            )
    # Inside a gradient rule, the forward op's advice is the useful one.
    named = recording.backward_of[PRIM].name if during else prim.name
    hint = _hint(named, "look at the ranges of this op's inputs")
    raise FloatingPointError(
        f"check_numerics: {prim.name!r} made {bad} from finite inputs ({describe(prim, tensors)})"
        f"{during}, at {user_line()}; hint: {hint}"
    )


def check_gradient(entry: tuple, index: int, grad) -> None:
    """Raise if the gradient of tape ``entry``'s op w.r.t. input ``index`` holds a NaN or an
    Inf."""
    bad = count_bad(grad._data)
    if bad:
        prim = entry[PRIM]
        raise FloatingPointError(
            f"check_numerics: the gradient of {prim.name!r} w.r.t. "
            f"{prim.arg_name(index)!r} holds {bad}; the op was recorded at "
            f"{entry[WHERE] or 'an unknown line'}; hint: "
            f"{_hint(prim.name, 'look at the ranges of its inputs there')}"
        )


def _during() -> str:
    entry = recording.backward_of
    if entry is None:
        return ""
    where = entry[WHERE] or "an unknown line"
    return f" while computing the gradient of {entry[PRIM].name!r} (recorded at {where})"


def count_bad(array) -> str:
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
