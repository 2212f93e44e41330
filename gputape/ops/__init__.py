"""The op library: declarations grouped by family. Importing it registers every primitive."""

from . import operators
from .creation import (
    convert_like,
    eye,
    fill,
    lin_space,
    linspace,
    ones,
    ones_like,
    range,
    zeros,
    zeros_like,
)
from .elementwise import (
    abs,
    add,
    cast,
    clip_by_value,
    cos,
    divide,
    equal,
    exp,
    expm1,
    floor,
    greater,
    greater_equal,
    identity,
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
    relu,
    round,
    sigmoid,
    sign,
    sin,
    softplus,
    sqrt,
    square,
    stop_gradient,
    subtract,
    tan,
    tanh,
    where,
)
from .indexing import gather, getitem
from .linalg import matmul
from .nn import log_softmax, softmax, softmax_cross_entropy_with_logits
from .reduction import (
    logsumexp,
    reduce_logsumexp,
    reduce_max,
    reduce_mean,
    reduce_min,
    reduce_prod,
    reduce_sum,
    sum_to,
)
from .shape import (
    broadcast_to,
    concat,
    copy_to_device,
    expand_dims,
    matrix_transpose,
    reshape,
    split,
    squeeze,
    stack,
    transpose,
)
from .tile import tile

operators.install()

__all__ = [
    "abs", "add", "broadcast_to", "cast", "clip_by_value", "concat", "convert_like",
    "copy_to_device", "cos", "divide", "equal", "exp", "expand_dims", "expm1", "eye", "fill",
    "floor", "gather", "getitem", "greater", "greater_equal", "identity", "less", "less_equal",
    "lin_space", "linspace", "log", "log1p", "log_softmax", "logical_and", "logical_not",
    "logical_or", "logsumexp", "matmul", "matrix_transpose", "maximum", "minimum", "multiply",
    "negative", "not_equal", "ones", "ones_like", "pow", "range", "reduce_logsumexp",
    "reduce_max", "reduce_mean", "reduce_min", "reduce_prod", "reduce_sum", "relu", "reshape",
    "round", "sigmoid", "sign", "sin", "softmax", "softmax_cross_entropy_with_logits", "softplus",
    "split", "sqrt", "square", "squeeze", "stack", "stop_gradient", "subtract", "sum_to", "tan",
    "tanh", "tile", "transpose", "where", "zeros", "zeros_like",
]
