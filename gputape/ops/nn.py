"""Neural-network ops. softmax and log_softmax are primitives (not compositions of exp and
sum) because the composition overflows for large logits; their rules reuse the output."""

from __future__ import annotations

from ..dispatch import apply
from ..registry import defvjp, primitive
from ._axes import as_tensor, normalize_axis
from .elementwise import exp, relu, sigmoid, softplus  # noqa: F401 - re-exported in gt.nn
from .reduction import reduce_sum

# NumPy reduces a short last axis row by row, about 45 ns a row for ``max`` over 10 values: with
# many rows, one ``maximum`` per column is faster (bench/NOTES.md, section 15).
_SHORT_AXIS = 32
_ROWS_PER_COLUMN = 16


def _peak(xp, x, axis):
    """The maximum of ``x`` along ``axis`` (negative), kept as a dimension of size 1."""
    n = x.shape[axis] if x.ndim else 0
    if axis == -1 and 1 < n <= _SHORT_AXIS and x.size >= _ROWS_PER_COLUMN * n * n \
            and xp.__name__ == "numpy":
        peak = xp.maximum(x[..., 0:1], x[..., 1:2])
        for j in range(2, n):
            xp.maximum(peak, x[..., j:j + 1], out=peak)
        return peak
    return xp.max(x, axis=axis, keepdims=True)


def _softmax_forward(xp, x, axis):
    shifted = x - _peak(xp, x, axis)
    e = xp.exp(shifted)
    return e / xp.sum(e, axis=axis, keepdims=True)


def _log_softmax_forward(xp, x, axis):
    shifted = x - _peak(xp, x, axis)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=axis, keepdims=True))


# The axis is stored negative so that the rules also hold for batched cotangents.
SOFTMAX = defvjp(primitive("softmax", _softmax_forward, ("logits",), float_only=True),
                 lambda g, ans, x, axis: ans * (g - reduce_sum(g * ans, axis, keepdims=True)))
LOG_SOFTMAX = defvjp(primitive("log_softmax", _log_softmax_forward, ("logits",), float_only=True),
                     lambda g, ans, x, axis: g - exp(ans) * reduce_sum(g, axis, keepdims=True))


def _negative_axis(op: str, x, axis) -> int:
    return normalize_axis(op, axis, x.ndim) - x.ndim


def softmax(logits, axis=-1):
    """``exp(x) / sum(exp(x))`` along ``axis``, stable for large logits.

    >>> import gputape as gt
    >>> gt.softmax([1000.0, 1000.0]).numpy()
    array([0.5, 0.5], dtype=float32)
    """
    x = as_tensor("softmax", "logits", logits)
    return apply(SOFTMAX, x, axis=_negative_axis("softmax", x, axis))


def log_softmax(logits, axis=-1):
    """``x - logsumexp(x)`` along ``axis``, stable for large logits.

    >>> import gputape as gt
    >>> gt.log_softmax([0.0, 0.0]).numpy()
    array([-0.6931472, -0.6931472], dtype=float32)
    """
    x = as_tensor("log_softmax", "logits", logits)
    return apply(LOG_SOFTMAX, x, axis=_negative_axis("log_softmax", x, axis))


def softmax_cross_entropy_with_logits(labels, logits, axis=-1):
    """Cross entropy between ``labels`` (a distribution) and ``softmax(logits)``, per example.

    >>> import gputape as gt
    >>> gt.nn.softmax_cross_entropy_with_logits([[0.0, 1.0]], [[0.0, 0.0]]).numpy()
    array([0.6931472], dtype=float32)
    """
    return -reduce_sum(labels * log_softmax(logits, axis), axis)
