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
import threading

import numpy as np

from ..core import dispatch
from ..core.numerics import count_bad
from ..core.registry import set_host_fast_paths

__all__ = ["check_numerics", "disable_check_numerics", "enable_check_numerics"]

_lock = threading.Lock()
_depth = 0  # open check_numerics blocks, plus one while enable_check_numerics() is in force
_enabled = False



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
    from ..core.tensor import convert_to_tensor

    tensor = convert_to_tensor(tensor)
    bad = count_bad(tensor._data)
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
    dispatch.set_checking_numerics(_depth > 0)
    set_host_fast_paths(_depth == 0)


def checking() -> bool:
    """True while results are checked (read by the backward walk once per walk)."""
    return dispatch.checking_numerics
