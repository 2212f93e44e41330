"""``gt.nn``: the neural-network ops under TensorFlow's ``tf.nn`` names."""

from .ops.elementwise import relu, sigmoid, softplus
from .ops.nn import log_softmax, softmax, softmax_cross_entropy_with_logits

__all__ = ["relu", "sigmoid", "softplus", "softmax", "log_softmax",
           "softmax_cross_entropy_with_logits"]
