"""NumPy functions on tensors: ``np.sin(t)``, ``np.sum(t, axis=0)``, ``np.matmul(a, b)`` and
``array @ t`` run the gputape op of the same meaning, so the result is a Tensor on the tensor's
device, recorded on the tape (NumPy's ``__array_ufunc__`` and ``__array_function__``
protocols). A NumPy function without a gputape counterpart raises an error that names it and
says what to do instead; NumPy's own semantics are kept where they differ from TensorFlow's
(``np.argmax(t)`` flattens, as NumPy does).

>>> import numpy as np
>>> import gputape as gt
>>> x = gt.constant([0.0, 1.0])
>>> with gt.GradientTape() as tape:
...     tape.watch(x)
...     y = np.sum(np.sin(x) * 2.0)
>>> type(y).__name__, [round(float(g), 4) for g in tape.gradient(y, x)]
('Tensor', [2.0, 1.0806])
"""

from __future__ import annotations

import numpy as np

from ..core.errors import ArgumentTypeError
from ..core.tensor import Tensor
from . import elementwise as ew
from . import special
from .linalg import matmul
from .reduction import (
    reduce_all,
    reduce_any,
    reduce_max,
    reduce_mean,
    reduce_min,
    reduce_prod,
    reduce_std,
    reduce_sum,
    reduce_variance,
)
from .scan import cumprod, cumsum
from .shape import concat, expand_dims, reshape, squeeze, stack, transpose
from .sorting import argmax, argmin, argsort, sort
from .tile import tile

__all__ = ["install"]

UFUNCS = {
    np.add: ew.add, np.subtract: ew.subtract, np.multiply: ew.multiply,
    np.true_divide: ew.divide, np.power: ew.pow, np.negative: ew.negative,
    np.maximum: ew.maximum, np.minimum: ew.minimum, np.matmul: matmul,
    np.equal: ew.equal, np.not_equal: ew.not_equal, np.less: ew.less,
    np.less_equal: ew.less_equal, np.greater: ew.greater, np.greater_equal: ew.greater_equal,
    np.logical_and: ew.logical_and, np.logical_or: ew.logical_or,
    np.logical_not: ew.logical_not, np.absolute: ew.abs, np.sign: ew.sign,
    np.floor: ew.floor, np.rint: ew.round, np.exp: ew.exp, np.expm1: ew.expm1,
    np.log: ew.log, np.log1p: ew.log1p, np.sqrt: ew.sqrt, np.square: ew.square,
    np.sin: ew.sin, np.cos: ew.cos, np.tan: ew.tan, np.arctan: ew.atan, np.tanh: ew.tanh,
    np.conjugate: ew.conj, np.arcsin: special.asin, np.arccos: special.acos,
    np.arctan2: special.atan2, np.sinh: special.sinh, np.cosh: special.cosh,
    np.arcsinh: special.asinh, np.arccosh: special.acosh, np.arctanh: special.atanh,
    np.reciprocal: special.reciprocal, np.floor_divide: special.floordiv,
    np.remainder: special.floormod, np.isnan: special.is_nan, np.isinf: special.is_inf,
    np.isfinite: special.is_finite,
}

# ufunc.reduce: np.add.reduce(t, axis=0) and the functions built on it
REDUCERS = {np.add: reduce_sum, np.multiply: reduce_prod, np.maximum: reduce_max,
            np.minimum: reduce_min, np.logical_and: reduce_all, np.logical_or: reduce_any}


def _reduction(name: str, op):
    """A NumPy reduction (``axis=None`` reduces everything, as in NumPy and TF alike)."""
    def call(a, axis=None, keepdims=False, **unsupported):
        _refuse_options(name, unsupported)
        return op(a, axis=axis, keepdims=keepdims)

    return call


def _flat_or_axis(name: str, op):
    """NumPy's ``axis=None`` flattens first (np.argmax, np.cumsum), where TF's means 0."""
    def call(a, axis=None, **unsupported):
        _refuse_options(name, unsupported)
        if axis is None:
            return op(reshape(a, (-1,)), axis=0)
        return op(a, axis=axis)

    return call


def _refuse_options(name: str, options: dict) -> None:
    given = sorted(k for k, v in options.items() if v is not None)
    if given:
        raise ArgumentTypeError(
            f"np.{name} on a gt.Tensor: the option(s) {given} have no gputape counterpart; "
            f"hint: leave them out, or use .numpy() first (no gradient flows through NumPy)"
        )


def _np_sort(a, axis=-1, kind=None, order=None, **unsupported):
    _refuse_options("sort", {"order": order, **unsupported})
    if axis is None:
        return sort(reshape(a, (-1,)))
    return sort(a, axis=axis)


def _np_argsort(a, axis=-1, kind=None, order=None, **unsupported):
    _refuse_options("argsort", {"order": order, **unsupported})
    if axis is None:
        return argsort(reshape(a, (-1,)))
    return argsort(a, axis=axis)


def _np_var(name: str, op):
    def call(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, **unsupported):
        _refuse_options(name, {"dtype": dtype, "out": out, **unsupported})
        if ddof != 0:
            raise ArgumentTypeError(
                f"np.{name} on a gt.Tensor: ddof={ddof} has no gputape counterpart (gt."
                f"{op.__name__} divides by the count, as TensorFlow's); hint: multiply the "
                f"variance by n / (n - ddof)"
            )
        return op(a, axis=axis, keepdims=keepdims)

    return call


FUNCTIONS = {
    np.sum: _reduction("sum", reduce_sum), np.prod: _reduction("prod", reduce_prod),
    np.mean: _reduction("mean", reduce_mean), np.max: _reduction("max", reduce_max),
    np.min: _reduction("min", reduce_min), np.any: _reduction("any", reduce_any),
    np.all: _reduction("all", reduce_all), np.var: _np_var("var", reduce_variance),
    np.std: _np_var("std", reduce_std), np.argmax: _flat_or_axis("argmax", argmax),
    np.argmin: _flat_or_axis("argmin", argmin), np.cumsum: _flat_or_axis("cumsum", cumsum),
    np.cumprod: _flat_or_axis("cumprod", cumprod), np.sort: _np_sort,
    np.argsort: _np_argsort,
    np.reshape: lambda a, shape=None, **kw: reshape(a, kw.get("newshape", shape)),
    np.transpose: lambda a, axes=None: transpose(a, axes),
    np.concatenate: lambda arrays, axis=0: concat(list(arrays), axis),
    np.stack: lambda arrays, axis=0: stack(list(arrays), axis),
    np.expand_dims: lambda a, axis: expand_dims(a, axis),
    np.squeeze: lambda a, axis=None: squeeze(a, axis),
    np.tile: lambda a, reps: tile(a, reps),
    np.where: lambda condition, x=None, y=None: ew.where(condition, x, y),
    np.clip: lambda a, a_min=None, a_max=None: ew.clip_by_value(a, a_min, a_max),
    np.dot: lambda a, b: matmul(a, b),
}


def _array_ufunc(self, ufunc, method, *inputs, **kwargs):
    if method == "__call__" and not kwargs and ufunc in UFUNCS:
        return UFUNCS[ufunc](*inputs)
    if method == "reduce" and ufunc in REDUCERS and len(inputs) == 1:
        axis, keepdims = kwargs.pop("axis", 0), kwargs.pop("keepdims", False)
        if not kwargs:
            return REDUCERS[ufunc](inputs[0], axis=axis, keepdims=keepdims)
    name = ufunc.__name__ if method == "__call__" else f"{ufunc.__name__}.{method}"
    extra = f" with {sorted(kwargs)}" if kwargs else ""
    raise ArgumentTypeError(
        f"np.{name}{extra} on a gt.Tensor has no gputape counterpart (the tape cannot record "
        f"it); hint: use the gt function of that name if there is one, or call .numpy() "
        f"first to leave gputape (no gradient flows through NumPy)"
    )


def _array_function(self, func, types, args, kwargs):
    handler = FUNCTIONS.get(func)
    if handler is None:
        raise ArgumentTypeError(
            f"np.{func.__name__} on a gt.Tensor has no gputape counterpart (the tape cannot "
            f"record it); hint: use the gt function of that name if there is one, or call "
            f".numpy() first to leave gputape (no gradient flows through NumPy)"
        )
    return handler(*args, **kwargs)


def install() -> None:
    """Attach the two protocols to Tensor (and so to Variable)."""
    Tensor.__array_ufunc__ = _array_ufunc
    Tensor.__array_function__ = _array_function
