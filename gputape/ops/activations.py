"""``tf.nn``'s activations, normalizations, losses and helpers, composed from the library's
primitives the way TensorFlow composes them, so that their gradients (and TF's choices at the
kinks: leaky_relu's slope at 0, relu6's zero gradient at 0 and 6, moments' stopped mean) come
out as TF's."""

from __future__ import annotations

import math
import numbers

import numpy as np

from ..core import dtypes
from ..core.errors import ArgumentError, DTypeError
from ..core.tensor import Tensor
from ._axes import as_tensor
from .elementwise import (
    cast,
    exp,
    expm1,
    greater,
    greater_equal,
    less,
    less_equal,
    log1p,
    maximum,
    minimum,
    negative,
    sigmoid,
    stop_gradient,
    tanh,
    where,
)
from .indexing import gather
from .nn import log_softmax
from .reduction import reduce_mean, reduce_sum
from .special import erfc, rsqrt, squared_difference

# At the top level (gt.one_hot, as tf.one_hot); the rest are gt.nn's (gputape/nn.py).
__all__ = ["one_hot"]
NN = [
    "batch_normalization", "dropout", "elu", "embedding_lookup", "gelu", "l2_loss",
    "l2_normalize", "leaky_relu", "moments", "relu6", "selu", "sigmoid_cross_entropy_with_logits",
    "silu", "sparse_softmax_cross_entropy_with_logits", "swish",
]

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _floating(op: str, value, arg: str = "features") -> Tensor:
    x = as_tensor(op, arg, value)
    if x.dtype.kind != "f":
        raise DTypeError(f"{op}: {arg} must be floating point, got {x.dtype} (shape "
                         f"{x.shape}); hint: gt.cast({arg}, gt.float32)")
    return x


def gelu(features, approximate=False):
    """The Gaussian error linear unit: ``x * P(X <= x)`` for a standard normal X, exactly
    (with erf) or, with ``approximate=True``, by TF's tanh formula.

    >>> import gputape as gt
    >>> round(float(gt.nn.gelu(1.0)), 6)
    0.841345
    """
    x = _floating("gelu", features)
    if approximate:
        inner = math.sqrt(2 / math.pi) * (x + 0.044715 * x * x * x)
        return 0.5 * x * (1 + tanh(inner))
    # (erfc(-x / sqrt 2) is 1 + erf(x / sqrt 2) without its cancellation for x << 0)
    return 0.5 * x * erfc(x * (-1 / math.sqrt(2)))


def leaky_relu(features, alpha=0.2):
    """``x`` where positive, ``alpha * x`` elsewhere; at 0 the gradient is ``alpha`` (TF's).

    >>> import gputape as gt
    >>> gt.nn.leaky_relu([-1.0, 2.0]).numpy()
    array([-0.2,  2. ], dtype=float32)
    """
    x = _floating("leaky_relu", features)
    return where(greater(x, 0), x, x * alpha)


def elu(features):
    """``x`` where positive, ``exp(x) - 1`` elsewhere (at 0 the positive side's gradients,
    as TF's).

    >>> import gputape as gt
    >>> round(float(gt.nn.elu(-1.0)), 6)
    -0.632121
    """
    x = _floating("elu", features)
    return where(less(x, 0), expm1(minimum(x, 0)), x)  # (expm1 of x > 0 may overflow)


def selu(features):
    """The scaled exponential linear unit (Klambauer et al. 2017's constants, as TF's).

    >>> import gputape as gt
    >>> round(float(gt.nn.selu(1.0)), 6)
    1.050701
    """
    x = _floating("selu", features)
    return _SELU_SCALE * where(less(x, 0), _SELU_ALPHA * expm1(minimum(x, 0)), x)


def silu(features, beta=1.0):
    """``x * sigmoid(beta * x)`` (also called swish).

    >>> import gputape as gt
    >>> float(gt.nn.silu(0.0))
    0.0
    """
    x = _floating("silu", features)
    return x * sigmoid(beta * x)


swish = silu


def relu6(features):
    """``min(max(x, 0), 6)``; its gradient is 0 at 0 and at 6 (TF's).

    >>> import gputape as gt
    >>> gt.nn.relu6([-1.0, 3.0, 9.0]).numpy()
    array([0., 3., 6.], dtype=float32)
    """
    x = _floating("relu6", features)
    return where(greater_equal(x, 6), cast(6.0, x.dtype),
                 where(less_equal(x, 0), cast(0.0, x.dtype), x))  # (NaN stays NaN)


def l2_normalize(x, axis=None, epsilon=1e-12):
    """``x / sqrt(max(sum(x ** 2), epsilon))`` along ``axis`` (TF's formula).

    >>> import gputape as gt
    >>> gt.nn.l2_normalize([3.0, 4.0]).numpy()
    array([0.6, 0.8], dtype=float32)
    """
    x = _floating("l2_normalize", x, "x")
    return x * rsqrt(maximum(reduce_sum(x * x, axis, keepdims=True), epsilon))


def l2_loss(t):
    """``sum(t ** 2) / 2``.

    >>> import gputape as gt
    >>> float(gt.nn.l2_loss([1.0, 2.0]))
    2.5
    """
    t = _floating("l2_loss", t, "t")
    return reduce_sum(t * t) / 2


def moments(x, axes, shift=None, keepdims=False, name=None):
    """The ``(mean, variance)`` of ``x`` over ``axes``; as TF's, the variance's gradient does
    not flow through the mean (it is computed around ``stop_gradient(mean)``).

    >>> import gputape as gt
    >>> mean, variance = gt.nn.moments(gt.constant([1.0, 2.0, 3.0, 4.0]), axes=[0])
    >>> float(mean), float(variance)
    (2.5, 1.25)
    """
    x = _floating("moments", x, "x")
    if axes is None:
        axes = list(range(x.ndim))
    axes = [axes] if isinstance(axes, numbers.Integral) else [int(a) for a in axes]
    mean = reduce_mean(x, axes, keepdims=True)
    variance = reduce_mean(squared_difference(x, stop_gradient(mean)), axes, keepdims=True)
    if keepdims:
        return mean, variance
    from .shape import squeeze

    axes = tuple(a % x.ndim for a in axes)
    return squeeze(mean, axes), squeeze(variance, axes)


def batch_normalization(x, mean, variance, offset, scale, variance_epsilon):
    """``(x - mean) * scale / sqrt(variance + epsilon) + offset`` (``offset`` and ``scale``
    may be None), computed as TF computes it.

    >>> import gputape as gt
    >>> gt.nn.batch_normalization(gt.constant([1.0, 3.0]), 2.0, 1.0, None, None, 0.0).numpy()
    array([-1.,  1.], dtype=float32)
    """
    x = _floating("batch_normalization", x, "x")

    def like_x(value):  # Python numbers and arrays take x's dtype (tensors keep theirs)
        return value if value is None or isinstance(value, Tensor) else cast(value, x.dtype)

    mean, variance, offset, scale = map(like_x, (mean, variance, offset, scale))
    inv = rsqrt(variance + variance_epsilon)
    if scale is not None:
        inv = inv * scale
    shift = -mean * inv if offset is None else offset - mean * inv
    return x * cast(inv, x.dtype) + cast(shift, x.dtype)


def sigmoid_cross_entropy_with_logits(labels=None, logits=None):
    """Per-element logistic loss of ``logits`` against ``labels`` in [0, 1], computed as TF's
    ``max(x, 0) - x * z + log(1 + exp(-|x|))`` (stable for any logit).

    >>> import gputape as gt
    >>> round(float(gt.nn.sigmoid_cross_entropy_with_logits(1.0, 0.0)), 6)
    0.693147
    """
    logits = _floating("sigmoid_cross_entropy_with_logits", logits, "logits")
    labels = as_tensor("sigmoid_cross_entropy_with_logits", "labels", labels)
    if labels.shape != logits.shape:
        from ..core.errors import ShapeError

        raise ShapeError(
            f"sigmoid_cross_entropy_with_logits: labels shape {labels.shape} and logits shape "
            f"{logits.shape} must be the same; hint: one label per logit"
        )
    labels = cast(labels, logits.dtype)
    positive = greater_equal(logits, 0)
    relu_logits = where(positive, logits, 0.0)
    neg_abs_logits = where(positive, negative(logits), logits)
    return relu_logits - logits * labels + log1p(exp(neg_abs_logits))


def sparse_softmax_cross_entropy_with_logits(labels=None, logits=None):
    """Cross entropy of ``logits`` (``[..., classes]``) against integer class ``labels``
    (``[...]``): ``-log_softmax(logits)[label]``; its gradient is ``softmax - one_hot``.

    >>> import gputape as gt
    >>> loss = gt.nn.sparse_softmax_cross_entropy_with_logits([0], [[0.0, 0.0]])
    >>> round(float(loss[0]), 6)
    0.693147
    """
    logits = _floating("sparse_softmax_cross_entropy_with_logits", logits, "logits")
    if logits.ndim == 0:
        raise ArgumentError("sparse_softmax_cross_entropy_with_logits: logits cannot be a "
                            "scalar; hint: logits have a last axis of classes")
    labels = as_tensor("sparse_softmax_cross_entropy_with_logits", "labels", labels)
    if labels.dtype.kind not in "iu" or labels.shape != logits.shape[:-1]:
        raise ArgumentError(
            f"sparse_softmax_cross_entropy_with_logits: labels must be integer class indices "
            f"of shape logits.shape[:-1] = {logits.shape[:-1]}, got {labels.dtype} of shape "
            f"{labels.shape}; hint: for one-hot or soft labels use "
            f"gt.nn.softmax_cross_entropy_with_logits"
        )
    classes = logits.shape[-1]
    data = labels.numpy()
    if data.size and (data.min() < 0 or data.max() >= classes):
        from ..core.errors import IndexOutOfRangeError

        raise IndexOutOfRangeError(
            f"sparse_softmax_cross_entropy_with_logits: labels must be in 0..{classes - 1} "
            f"(logits has {classes} classes), got values from {data.min()} to {data.max()}; "
            f"hint: check the label encoding"
        )
    chosen = one_hot(labels, classes, dtype=logits.dtype)
    return negative(reduce_sum(chosen * log_softmax(logits), axis=-1))


def one_hot(indices, depth, on_value=None, off_value=None, axis=-1, dtype=None):
    """A tensor with ``on_value`` (1) at each index along a new ``axis`` of size ``depth`` and
    ``off_value`` (0) elsewhere; an index outside ``0 .. depth - 1`` gives a row of
    ``off_value`` (TF's). ``dtype``: float32 unless the on/off values say otherwise.

    >>> import gputape as gt
    >>> gt.one_hot([0, 2, -1], 3).numpy()
    array([[1., 0., 0.],
           [0., 0., 1.],
           [0., 0., 0.]], dtype=float32)
    """
    indices = as_tensor("one_hot", "indices", indices)
    if indices.dtype.kind not in "iu":
        raise DTypeError(f"one_hot: indices must be integers, got {indices.dtype}; hint: "
                         f"gt.cast(indices, gt.int32)")
    if isinstance(depth, bool) or not isinstance(depth, numbers.Integral) or depth < 0:
        raise ArgumentError(f"one_hot: depth must be a non-negative int, got {depth!r}")
    if dtype is None:  # TF's: the on/off values' dtype (Python ints: int32), else float32
        given = [v for v in (on_value, off_value) if v is not None]
        dtype = dtypes.float32
        if given:
            first = given[0]
            dtype = first.dtype if isinstance(first, (Tensor, np.generic)) else \
                dtypes.weak_dtype([first])
    dtype = dtypes.as_dtype(dtype)
    xp = indices.device.xp
    ndim = indices.ndim + 1
    axis = axis % ndim if -ndim <= axis < ndim else None
    if axis is None:
        raise ArgumentError(f"one_hot: axis must be in -{ndim}..{ndim - 1} for indices of "
                            f"rank {indices.ndim}")
    classes = xp.arange(int(depth)).reshape((-1,) + (1,) * (ndim - 1 - axis))
    hit = Tensor._wrap(xp.expand_dims(indices._data, axis) == classes)
    on = 1 if on_value is None else on_value
    off = 0 if off_value is None else off_value
    if isinstance(on, Tensor) or isinstance(off, Tensor):  # (differentiable in them)
        return where(hit, cast(on, dtype), cast(off, dtype))
    return Tensor._wrap(xp.where(hit._data, dtype.type(on), dtype.type(off)))


def dropout(x, rate, noise_shape=None, seed=None):
    """``x`` with each element zeroed with probability ``rate`` and the rest scaled by
    ``1 / (1 - rate)`` (``tf.nn.dropout``), the mask drawn from gt.random's global generator
    (``seed``: an op seed, as TF's).

    >>> import gputape as gt
    >>> gt.nn.dropout(gt.ones(4), rate=0.0).numpy()
    array([1., 1., 1., 1.], dtype=float32)
    """
    x = _floating("dropout", x, "x")
    if isinstance(rate, Tensor):
        rate = float(rate.numpy())
    if not 0 <= rate < 1:
        raise ArgumentError(f"dropout: rate must be in [0, 1), got {rate!r}; hint: the share "
                            f"of elements to drop")
    if rate == 0:
        return x
    from .random import _op_generator

    shape = x.shape if noise_shape is None else tuple(noise_shape)
    keep = _op_generator(seed).uniform(shape, dtype=x.dtype, device=x.device)
    mask = cast(greater_equal(keep, rate), x.dtype) * (1 / (1 - rate))
    return x * mask


def embedding_lookup(params, ids):
    """The rows of ``params`` picked by ``ids`` (``tf.nn.embedding_lookup``): a gather along
    axis 0, the gradient adding up at repeated ids. A list of tables is TF's shards, their
    rows numbered in order ("div", for shards sized as TF partitions them).

    >>> import gputape as gt
    >>> gt.nn.embedding_lookup(gt.constant([[1.0, 2.0], [3.0, 4.0]]), [1, 1]).numpy()
    array([[3., 4.],
           [3., 4.]], dtype=float32)
    """
    if isinstance(params, (list, tuple)):  # TF's shards ("div": contiguous id ranges)
        from .shape import concat

        shards = [as_tensor("embedding_lookup", "params", p) for p in params]
        params = concat(shards, 0) if len(shards) > 1 else shards[0]
    return gather(params, ids)

