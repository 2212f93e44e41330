"""What ``gradient``, ``jacobian`` and ``batch_jacobian`` share about their targets and sources:
argument checks, which sources the walk should reach, and what an unconnected source gets."""

from __future__ import annotations

import enum
import weakref

from ..core.errors import TapeTypeError, TapeValueError
from ..core.tensor import Tensor, Variable

__all__ = ["UnconnectedGradients", "unconnected_mode", "as_tensors", "reachable", "finish",
           "LIVE_TAPES"]

# Every GradientTape alive, so that explain can tell a target recorded by another tape.
LIVE_TAPES: weakref.WeakSet = weakref.WeakSet()


class UnconnectedGradients(str, enum.Enum):
    """What ``gradient`` returns for a source the target does not depend on."""

    NONE = "none"
    ZERO = "zero"


def unconnected_mode(value, method: str) -> UnconnectedGradients:
    """``value`` (an UnconnectedGradients or its string) checked for ``method``."""
    if type(value) is UnconnectedGradients:
        return value
    try:
        return UnconnectedGradients(value)
    except ValueError:
        raise TapeValueError(
            f"{method}: unconnected_gradients={value!r} is not understood; hint: use "
            f"gt.UnconnectedGradients.NONE / ZERO or the strings 'none' / 'zero'"
        ) from None


def as_tensors(items: list, method: str, what: str) -> list:
    """``items`` as tensors (a Variable as its current read); anything else raises, naming
    ``method`` and its argument ``what``."""
    out = []
    for item in items:
        if isinstance(item, Variable):
            item = item._snapshot()
        elif not isinstance(item, Tensor):
            hint = ("differentiate w.r.t. the tensor you computed with, not a Python value"
                    if what in ("sources", "source") else
                    "pass the tensor computed inside the tape's block, not a Python value")
            raise TapeTypeError(
                f"{method}: every element of `{what}` must be a gt.Tensor or gt.Variable, got "
                f"{type(item).__name__} ({item!r:.60}); hint: {hint}"
            )
        out.append(item)
    return out


def reachable(sources: list, watched: set, target_ids: set) -> set:
    """Ids the backward walk should reach: the float sources the tape follows (watched, or
    computed by a recorded op) or that are themselves targets. As in TensorFlow, a constant
    that was never watched gets no gradient even when a recorded op read it."""
    return {
        s._uid for s in sources
        if isinstance(s, Tensor) and s.dtype.kind in "fc"
        and (s._uid in watched or s._uid in target_ids)
    }


def finish(grad, mode: UnconnectedGradients, shape: tuple, like: Tensor):
    """``grad``, or for an unconnected source (``grad`` None) what ``mode`` says: None, or
    zeros of ``shape`` with ``like``'s dtype and device."""
    if grad is None and mode is UnconnectedGradients.ZERO:
        from ..ops import zeros

        return zeros(shape, dtype=like.dtype, device=like.device)
    return grad
