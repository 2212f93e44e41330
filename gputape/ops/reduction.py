"""Reductions and their gradients (the broadcast of the cotangent back over the reduced axes),
plus ``sum_to``, the un-broadcast that ends almost every gradient."""

from __future__ import annotations

import functools
import math

import numpy as np

from ..core.dispatch import apply
from ..core.registry import defvjp, implement, primitive
from ..core.tensor import Tensor
from ..host import rows
from ._axes import as_tensor, lead, normalize_axes
from .shape import broadcast_to, reshape

__all__ = [
    "logsumexp", "reduce_all", "reduce_any", "reduce_euclidean_norm", "reduce_logsumexp",
    "reduce_max", "reduce_mean", "reduce_min", "reduce_prod", "reduce_std", "reduce_sum",
    "reduce_variance", "sum_to",
]


def _kept_shape(shape: tuple, axes: tuple) -> tuple:
    return tuple(1 if i in axes else s for i, s in enumerate(shape))


def _spread(g, ans, x, axes, keepdims):
    """Cotangent of a reduction, reshaped to keep the reduced axes as size 1."""
    if keepdims:
        return g
    return reshape(g, lead(g, ans) + _kept_shape(x.shape, axes))


def _sum_forward(xp, x, axes, keepdims):
    dtype = x.dtype if x.dtype.kind in "iub" and x.dtype.kind != "b" else None
    return xp.sum(x, axis=axes, keepdims=keepdims, dtype=dtype)


def _sum_vjp(g, ans, x, axes, keepdims):
    if g.ndim == 0:  # the sum of everything, no batch: one value to spread
        return broadcast_to(g, x.shape)
    spread = _spread(g, ans, x, axes, keepdims)
    return broadcast_to(spread, spread.shape[: spread.ndim - x.ndim] + x.shape)


REDUCE_SUM = defvjp(primitive("reduce_sum", _sum_forward, ("input_tensor",)), _sum_vjp)


def _count(shape: tuple, axes: tuple) -> int:
    return math.prod(shape[a] for a in axes)


def _mean_forward(xp, x, axes, keepdims):
    # The sum as reduce_sum computes it (a kernel where one is registered), then one division.
    total = REDUCE_SUM.implementation(xp.__name__)(xp, x, axes, keepdims)
    return xp.true_divide(total, _count(x.shape, axes))


def _mean_vjp(g, ans, x, axes, keepdims):
    from .elementwise import divide  # not ``/``: NumPy makes a scalar of a 0-d array's quotient

    return _sum_vjp(divide(g, _count(x.shape, axes)), ans, x, axes, keepdims)


REDUCE_MEAN = defvjp(primitive("reduce_mean", _mean_forward, ("input_tensor",)), _mean_vjp)


def _extreme_forward(name):
    def forward(xp, x, axes, keepdims):
        if x.size == 0:
            fill = -math.inf if name == "max" else math.inf
            if x.dtype.kind in "iu":
                info = np.iinfo(x.dtype)
                fill = info.min if name == "max" else info.max
            kept = _kept_shape(x.shape, axes)
            shape = kept if keepdims else tuple(s for i, s in enumerate(x.shape) if i not in axes)
            return xp.full(shape, fill, dtype=x.dtype)
        return getattr(xp, name)(x, axis=axes, keepdims=keepdims)

    return forward


def _extreme_vjp(g, ans, x, axes, keepdims):
    # Tied extremes share the gradient equally (TF).
    from .elementwise import cast, equal

    kept = _kept_shape(x.shape, axes)
    mask = cast(equal(x, reshape(ans, kept)), g.dtype)
    share = mask / reduce_sum(mask, axes, keepdims=True)
    return _spread(g, ans, x, axes, keepdims) * share


REDUCE_MAX = defvjp(primitive("reduce_max", _extreme_forward("max"), ("input_tensor",)),
                    _extreme_vjp)
REDUCE_MIN = defvjp(primitive("reduce_min", _extreme_forward("min"), ("input_tensor",)),
                    _extreme_vjp)


def _prod_forward(xp, x, axes, keepdims):
    dtype = x.dtype if x.dtype.kind in "iu" else None
    return xp.prod(x, axis=axes, keepdims=keepdims, dtype=dtype)


def _prod_vjp(g, ans, x, axes, keepdims):
    # prod of the others, without dividing by zero: with no zero in the slice it is
    # prod/x; with exactly one zero only that element gets the product of the rest.
    from .elementwise import cast, equal, logical_and, where

    is_zero = equal(x, 0)
    zeros_in_slice = reduce_sum(cast(is_zero, x.dtype), axes, keepdims=True)
    safe_x = where(is_zero, 1, x)
    others = reduce_prod(safe_x, axes, keepdims=True)
    none_zero = equal(zeros_in_slice, 0)
    lone_zero = logical_and(equal(zeros_in_slice, 1), is_zero)
    partial = where(none_zero, others / safe_x, where(lone_zero, others, 0))
    return _spread(g, ans, x, axes, keepdims) * partial


REDUCE_PROD = defvjp(primitive("reduce_prod", _prod_forward, ("input_tensor",)), _prod_vjp)


REDUCE_ANY = primitive("reduce_any", lambda xp, x, axes, keepdims: xp.any(
    x, axis=axes, keepdims=keepdims), ("input_tensor",), differentiable=False)
REDUCE_ALL = primitive("reduce_all", lambda xp, x, axes, keepdims: xp.all(
    x, axis=axes, keepdims=keepdims), ("input_tensor",), differentiable=False)


def _sum_to_forward(xp, x, shape, batch, leading=None):
    axes = tuple(batch + a for a in _sum_to_axes(x.shape[batch:], shape))
    out_shape = x.shape[:batch] + shape
    if not axes:
        return x.reshape(out_shape)
    if leading is not None and axes == tuple(range(len(axes))):
        out = leading(xp, x, len(axes), out_shape)
        if out is not None:
            return out
    return xp.sum(x, axis=axes, keepdims=True).reshape(out_shape)


def _sum_to_vjp(g, ans, x, shape, batch):
    extra = x.ndim - batch - len(shape)
    kept = x.shape[:batch] + (1,) * extra + shape
    return broadcast_to(reshape(g, lead(g, ans) + kept), lead(g, ans) + x.shape)


SUM_TO = defvjp(primitive("sum_to", _sum_to_forward), _sum_to_vjp)
# On the host, a sum over the leading axes is one BLAS product (gputape.host.rows).
implement(SUM_TO, "numpy", functools.partial(_sum_to_forward, leading=rows.sum_leading))


def _sum_to_axes(have: tuple, want: tuple) -> tuple:
    extra = len(have) - len(want)
    axes = list(range(extra))
    axes += [extra + i for i, s in enumerate(want) if s == 1 and have[extra + i] != 1]
    return tuple(axes)


# == public functions ======================================================================


def _reduce(prim, input_tensor, axis, keepdims):
    x = as_tensor(prim.name, "input_tensor", input_tensor)
    axes = normalize_axes(prim.name, axis, x.ndim)
    return apply(prim, x, axes=axes, keepdims=bool(keepdims))


def reduce_sum(input_tensor, axis=None, keepdims=False):
    """Sum over ``axis`` (None: all; int or tuple of ints).

    >>> import gputape as gt
    >>> gt.reduce_sum([[1.0, 2.0], [3.0, 4.0]], axis=0).numpy()
    array([4., 6.], dtype=float32)
    """
    return _reduce(REDUCE_SUM, input_tensor, axis, keepdims)


def reduce_max(input_tensor, axis=None, keepdims=False):
    """Maximum over ``axis``; tied maxima share the gradient equally.

    >>> import gputape as gt
    >>> float(gt.reduce_max([1.0, 3.0, 2.0]))
    3.0
    """
    return _reduce(REDUCE_MAX, input_tensor, axis, keepdims)


def reduce_min(input_tensor, axis=None, keepdims=False):
    """Minimum over ``axis``; tied minima share the gradient equally.

    >>> import gputape as gt
    >>> float(gt.reduce_min([1.0, 3.0, 2.0]))
    1.0
    """
    return _reduce(REDUCE_MIN, input_tensor, axis, keepdims)


def reduce_prod(input_tensor, axis=None, keepdims=False):
    """Product over ``axis`` (its gradient is exact with zeros in the input).

    >>> import gputape as gt
    >>> float(gt.reduce_prod([2.0, 3.0, 4.0]))
    24.0
    """
    return _reduce(REDUCE_PROD, input_tensor, axis, keepdims)


def reduce_mean(input_tensor, axis=None, keepdims=False):
    """Mean over ``axis`` (integer tensors: truncated, as TensorFlow).

    >>> import gputape as gt
    >>> gt.reduce_mean([[1.0, 2.0], [3.0, 4.0]], axis=1).numpy()
    array([1.5, 3.5], dtype=float32)
    """
    x = as_tensor("reduce_mean", "input_tensor", input_tensor)
    axes = normalize_axes("reduce_mean", axis, x.ndim)
    if x.dtype.kind in "fc":
        return apply(REDUCE_MEAN, x, axes=axes, keepdims=bool(keepdims))
    from .elementwise import cast

    count = _count(x.shape, axes)
    total = apply(REDUCE_SUM, x, axes=axes, keepdims=bool(keepdims))
    data = total._data
    if count == 0:
        return cast(total, x.dtype)
    mean = (data // count + ((data % count != 0) & (data < 0))).astype(x.dtype)
    return Tensor._wrap(np.asarray(mean) if isinstance(mean, np.generic) else mean)


def reduce_variance(input_tensor, axis=None, keepdims=False):
    """Variance over ``axis`` (the mean squared deviation from the mean, dividing by the count
    as TensorFlow does); its gradient flows through the mean too.

    >>> import gputape as gt
    >>> float(gt.reduce_variance([1.0, 2.0, 3.0, 4.0]))
    1.25
    """
    from .elementwise import square

    x = _floating("reduce_variance", input_tensor)
    axes = normalize_axes("reduce_variance", axis, x.ndim)
    mean = reduce_mean(x, axes, keepdims=True)
    return reduce_mean(square(x - mean), axes, keepdims=keepdims)


def reduce_std(input_tensor, axis=None, keepdims=False):
    """Standard deviation over ``axis``: the square root of :func:`reduce_variance`.

    >>> import gputape as gt
    >>> float(gt.reduce_std([1.0, 3.0]))
    1.0
    """
    from .elementwise import sqrt

    return sqrt(reduce_variance(input_tensor, axis, keepdims))


def reduce_euclidean_norm(input_tensor, axis=None, keepdims=False):
    """``sqrt(sum(x ** 2))`` over ``axis`` (its gradient is NaN where the norm is 0, as
    TensorFlow's).

    >>> import gputape as gt
    >>> float(gt.reduce_euclidean_norm([3.0, 4.0]))
    5.0
    """
    from .elementwise import sqrt, square

    x = _floating("reduce_euclidean_norm", input_tensor)
    return sqrt(reduce_sum(square(x), axis, keepdims))


def _floating(op: str, value) -> Tensor:
    x = as_tensor(op, "input_tensor", value)
    if x.dtype.kind != "f":
        from ..core.errors import DTypeError

        raise DTypeError(
            f"{op}: input_tensor must be floating point, got {x.dtype} (shape {x.shape}); "
            f"hint: gt.cast(x, gt.float32)"
        )
    return x


def reduce_any(input_tensor, axis=None, keepdims=False):
    """Logical or over ``axis`` of a bool tensor.

    >>> import gputape as gt
    >>> gt.reduce_any([[True, False], [False, False]], axis=1).numpy()
    array([ True, False])
    """
    return _logical(REDUCE_ANY, input_tensor, axis, keepdims)


def reduce_all(input_tensor, axis=None, keepdims=False):
    """Logical and over ``axis`` of a bool tensor.

    >>> import gputape as gt
    >>> gt.reduce_all([[True, True], [True, False]], axis=1).numpy()
    array([ True, False])
    """
    return _logical(REDUCE_ALL, input_tensor, axis, keepdims)


def _logical(prim, input_tensor, axis, keepdims):
    x = as_tensor(prim.name, "input_tensor", input_tensor)
    if x.dtype.kind != "b":
        from ..core.errors import DTypeError

        raise DTypeError(
            f"{prim.name}: input_tensor must be bool, got {x.dtype} (shape {x.shape}); hint: "
            f"compare first, e.g. gt.{prim.name}(gt.greater(x, 0))"
        )
    return _reduce(prim, x, axis, keepdims)


def logsumexp(input_tensor, axis=None, keepdims=False):
    """``log(sum(exp(x)))`` over ``axis``, computed without overflow.

    TF's composite: ``log(sum(exp(x - m))) + m`` with ``m`` the maximum (0 where it is not
    finite) held constant, so its gradient (the softmax) and where higher orders are None
    follow from the ops it is made of, as in TF.

    >>> import gputape as gt
    >>> round(float(gt.logsumexp([1000.0, 1000.0])), 3)
    1000.693
    """
    from .elementwise import abs, exp, less, log, stop_gradient, where
    from .shape import squeeze

    x = as_tensor("reduce_logsumexp", "input_tensor", input_tensor)
    axes = normalize_axes("reduce_logsumexp", axis, x.ndim)
    if x.dtype.kind not in "fc":
        from ..core.errors import DTypeError

        raise DTypeError(
            f"reduce_logsumexp: input_tensor must be floating point, got {x.dtype} (shape "
            f"{x.shape}); hint: gt.cast(x, gt.float32)"
        )
    if x.size:
        raw = reduce_max(x, axes, keepdims=True)
    else:  # the maximum of nothing is -inf, replaced by 0 below
        from .creation import zeros

        raw = zeros(_kept_shape(x.shape, axes), dtype=x.dtype, device=x.device)
    peak = stop_gradient(where(less(abs(raw), math.inf), raw, 0))
    out = log(reduce_sum(exp(x - peak), axes, keepdims=True)) + peak
    return out if keepdims else squeeze(out, axes) if axes else out


reduce_logsumexp = logsumexp


def sum_to(x, shape, batch: int = 0):
    """Sum ``x`` down to ``shape`` over the dimensions broadcasting added (the un-broadcast).

    ``batch`` leading dimensions of ``x`` are kept as they are.

    >>> import gputape as gt
    >>> gt.sum_to(gt.ones((2, 3)), (1, 3)).numpy()
    array([[2., 2., 2.]], dtype=float32)
    """
    shape = tuple(shape)
    if x.ndim - batch < len(shape) or not _sum_to_axes(x.shape[batch:], shape):
        return x
    return apply(SUM_TO, x, shape=shape, batch=batch)
