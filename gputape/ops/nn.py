"""Neural-network ops. softmax and log_softmax are primitives (not compositions of exp and
sum) because the composition overflows for large logits; their rules reuse the output."""

from __future__ import annotations

import functools

import numpy as np

from ..core.dispatch import apply
from ..core.errors import DTypeError
from ..core.registry import defvjp, implement, primitive
from ..core.tensor import Tensor
from ..host import rows
from ._axes import as_tensor, normalize_axis
from .elementwise import exp, relu, sigmoid, softplus  # noqa: F401 - re-exported in gt.nn
from .reduction import reduce_sum
from .shape import broadcast_to, reshape

__all__ = [
    "log_softmax", "softmax", "softmax_cross_entropy_with_logits",
]


def _peak(xp, x, axis):
    """The maximum of ``x`` along ``axis`` (negative), kept as a dimension of size 1."""
    return xp.max(x, axis=axis, keepdims=True)


def _row_sum(xp, x, axis):
    """The sum of ``x`` along ``axis`` (negative), kept as a dimension of size 1."""
    return xp.sum(x, axis=axis, keepdims=True)


def _host_peak(xp, x, axis):
    out = rows.peak(xp, x, axis)
    return _peak(xp, x, axis) if out is None else out


def _host_row_sum(xp, x, axis):
    out = rows.row_sum(xp, x, axis)
    return _row_sum(xp, x, axis) if out is None else out


def _on_host(forward):
    """``forward`` with the host's row reductions (gputape.host.rows): its host implementation."""
    return functools.partial(forward, peak=_host_peak, row_sum=_host_row_sum)


def _softmax_forward(xp, x, axis, peak=_peak, row_sum=_row_sum):
    if x.ndim and x.shape[axis] == 0:  # an empty axis: an empty result, as TF
        return xp.zeros_like(x)
    shifted = x - peak(xp, x, axis)
    e = xp.exp(shifted)
    return e / row_sum(xp, e, axis)


def _log_softmax_forward(xp, x, axis, peak=_peak, row_sum=_row_sum):
    if x.ndim and x.shape[axis] == 0:
        return xp.zeros_like(x)
    shifted = x - peak(xp, x, axis)
    return shifted - xp.log(row_sum(xp, xp.exp(shifted), axis))


# The axis is stored negative so that the rules also hold for batched cotangents.
SOFTMAX = defvjp(primitive("softmax", _softmax_forward, ("logits",), float_only=True),
                 lambda g, ans, x, axis: ans * (g - reduce_sum(g * ans, axis, keepdims=True)))
LOG_SOFTMAX = defvjp(primitive("log_softmax", _log_softmax_forward, ("logits",), float_only=True),
                     lambda g, ans, x, axis: g - exp(ans) * reduce_sum(g, axis, keepdims=True))
implement(SOFTMAX, "numpy", _on_host(_softmax_forward))
implement(LOG_SOFTMAX, "numpy", _on_host(_log_softmax_forward))


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


def _xent_forward(xp, labels, logits, axis, kept=None, peak=_peak, row_sum=_row_sum):
    shifted = logits - peak(xp, logits, axis)
    e = xp.exp(shifted)
    total = row_sum(xp, e, axis)
    if kept is not None:
        # The gradient with respect to the logits, per unit of loss: softmax times the labels'
        # total (1 for distributions, which need not be assumed) minus the labels.
        if labels.shape != logits.shape:
            labels = xp.broadcast_to(labels, np.broadcast_shapes(labels.shape, logits.shape))
        kept.value = e / total * row_sum(xp, labels, axis) - labels
    return xp.squeeze(row_sum(xp, labels * (xp.log(total) - shifted), axis), axis=axis)


def _per_class(g, axis):
    """The cotangent of a loss per example, with the class axis (negative) back as size 1."""
    at = g.ndim + 1 + axis
    return reshape(g, g.shape[:at] + (1,) + g.shape[at:])


def _xent_vjp_labels(g, ans, labels, logits, axis, kept=None):
    return -log_softmax(logits, axis) * _per_class(g, axis)


def _xent_vjp_logits(g, ans, labels, logits, axis, kept=None):
    if kept is not None and kept.value is not None:  # (None while a tape records the walk)
        return _per_class(g, axis) * kept.value
    shape = np.broadcast_shapes(labels.shape, logits.shape)
    mass = reduce_sum(broadcast_to(labels, shape), axis, keepdims=True)
    return _per_class(g, axis) * (softmax(logits, axis) * mass - labels)


# One primitive, as TensorFlow's op: its first-order gradient reuses softmax - labels from the
# forward (bench/NOTES.md, section 16).
SOFTMAX_XENT = defvjp(primitive("softmax_cross_entropy_with_logits", _xent_forward,
                                ("labels", "logits"), float_only=True, keeps=True),
                      _xent_vjp_labels, _xent_vjp_logits)
implement(SOFTMAX_XENT, "numpy", _on_host(_xent_forward))


def softmax_cross_entropy_with_logits(labels, logits, axis=-1):
    """Cross entropy between ``labels`` (a distribution) and ``softmax(logits)``, per example.

    ``labels`` broadcast against ``logits``; the result drops ``axis``.

    >>> import gputape as gt
    >>> gt.nn.softmax_cross_entropy_with_logits([[0.0, 1.0]], [[0.0, 0.0]]).numpy()
    array([0.6931472], dtype=float32)
    """
    op = "softmax_cross_entropy_with_logits"
    x = as_tensor(op, "logits", logits)
    if isinstance(labels, Tensor) and labels.dtype.kind not in "fc":
        raise DTypeError(
            f"{op}: labels must be a probability distribution of the logits' dtype, got "
            f"{labels.dtype} labels {labels.shape} for {x.dtype} logits {x.shape}; hint: "
            f"one-hot encode class indices, as gt.cast(gt.equal(gt.expand_dims(indices, -1), "
            f"gt.range(classes)), {x.dtype})"
        )
    return apply(SOFTMAX_XENT, labels, x, axis=_negative_axis(op, x, axis))
