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
from .ops.elementwise import relu, sigmoid, softplus
from .ops.nn import log_softmax, softmax, softmax_cross_entropy_with_logits
from .ops.special import log_sigmoid

__all__ = [
    "batch_normalization", "dropout", "elu", "embedding_lookup", "gelu", "l2_loss",
    "l2_normalize", "leaky_relu", "log_sigmoid", "log_softmax", "moments", "relu", "relu6",
    "selu", "sigmoid", "sigmoid_cross_entropy_with_logits", "silu", "softmax",
    "softmax_cross_entropy_with_logits", "softplus", "sparse_softmax_cross_entropy_with_logits",
    "swish",
]
