"""``gt.math``: the math ops under TensorFlow's ``tf.math`` names (the same functions as
``gt.sin``, ``gt.reduce_sum``, ...; as in TensorFlow, most are at the top level too).

>>> import gputape as gt
>>> float(gt.math.erf(0.0)), gt.math.sin is gt.sin
(0.0, True)
"""

from .ops.elementwise import (
    abs,
    add,
    atan,
    conj,
    cos,
    divide,
    equal,
    exp,
    expm1,
    floor,
    greater,
    greater_equal,
    imag,
    less,
    less_equal,
    log,
    log1p,
    logical_and,
    logical_not,
    logical_or,
    maximum,
    minimum,
    multiply,
    negative,
    not_equal,
    pow,
    real,
    round,
    sigmoid,
    sign,
    sin,
    softplus,
    sqrt,
    square,
    subtract,
    tan,
    tanh,
)
from .ops.nn import log_softmax, softmax
from .ops.reduction import (
    reduce_all,
    reduce_any,
    reduce_euclidean_norm,
    reduce_logsumexp,
    reduce_max,
    reduce_mean,
    reduce_min,
    reduce_prod,
    reduce_std,
    reduce_sum,
    reduce_variance,
)
from .ops.scan import cumprod, cumsum
from .ops.sorting import argmax, argmin, top_k
from .ops.special import (
    acos,
    acosh,
    asin,
    asinh,
    atan2,
    atanh,
    cosh,
    divide_no_nan,
    erf,
    erfc,
    floordiv,
    floormod,
    is_finite,
    is_inf,
    is_nan,
    log_sigmoid,
    mod,
    reciprocal,
    reciprocal_no_nan,
    rsqrt,
    sinh,
    squared_difference,
    xdivy,
    xlog1py,
    xlogy,
)

__all__ = [
    "abs", "acos", "acosh", "add", "argmax", "argmin", "asin", "asinh", "atan", "atan2",
    "atanh", "conj", "cos", "cosh", "cumprod", "cumsum", "divide", "divide_no_nan", "equal",
    "erf", "erfc", "exp", "expm1", "floor",
    "floordiv", "floormod", "greater", "greater_equal", "imag", "is_finite", "is_inf", "is_nan",
    "less", "less_equal", "log", "log1p", "log_sigmoid", "log_softmax", "logical_and",
    "logical_not", "logical_or", "maximum", "minimum", "multiply", "negative", "not_equal",
    "pow", "real", "reciprocal", "reduce_all", "reduce_any", "reduce_euclidean_norm",
    "reduce_logsumexp", "reduce_max", "reduce_mean", "reduce_min", "reduce_prod", "reduce_std",
    "reduce_sum", "reduce_variance", "round", "rsqrt", "sigmoid", "sign", "sin", "sinh",
    "softmax", "softplus", "sqrt", "square", "squared_difference", "subtract", "tan", "tanh",
    "top_k", "xdivy", "xlog1py", "xlogy", "mod", "reciprocal_no_nan",
]
