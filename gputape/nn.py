"""``gt.nn``: the neural-network ops under TensorFlow's ``tf.nn`` names."""

from .ops.activations import (
    batch_normalization,
    dropout,
    elu,
    embedding_lookup,
    gelu,
    l2_loss,
    l2_normalize,
    leaky_relu,
    moments,
    relu6,
    selu,
    sigmoid_cross_entropy_with_logits,
    silu,
    sparse_softmax_cross_entropy_with_logits,
    swish,
)
from .ops.convolution import avg_pool2d, conv1d, conv2d, conv2d_transpose, max_pool2d
from .ops.elementwise import relu, sigmoid, softplus
from .ops.nn import log_softmax, softmax, softmax_cross_entropy_with_logits
from .ops.special import log_sigmoid

__all__ = [
    "avg_pool2d", "batch_normalization", "conv1d", "conv2d", "conv2d_transpose", "dropout", "elu",
    "embedding_lookup", "gelu", "l2_loss", "l2_normalize", "leaky_relu", "log_sigmoid",
    "log_softmax", "max_pool2d", "moments", "relu", "relu6", "selu", "sigmoid",
    "sigmoid_cross_entropy_with_logits", "silu", "softmax", "softmax_cross_entropy_with_logits",
    "softplus", "sparse_softmax_cross_entropy_with_logits", "swish",
]
