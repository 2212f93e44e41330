"""The public namespaces mirror TensorFlow's: gt.math and gt.nn hold the same functions as the
top level (as tf.math.sin is tf.sin), under tf.math's and tf.nn's names."""

from __future__ import annotations

import pytest

import gputape as gt

# tf.math names gputape has (TF 2.21's tf.math has each of them)
TF_MATH = [
    "abs", "acos", "acosh", "add", "asin", "asinh", "atan", "atan2", "atanh", "conj", "cos",
    "cosh", "divide", "divide_no_nan", "equal", "erf", "erfc", "exp", "expm1", "floor",
    "floordiv", "floormod", "greater", "greater_equal", "imag", "is_finite", "is_inf", "is_nan",
    "less", "less_equal", "log", "log1p", "log_sigmoid", "log_softmax", "logical_and",
    "logical_not", "logical_or", "maximum", "minimum", "multiply", "negative", "not_equal",
    "pow", "real", "reciprocal", "reduce_logsumexp", "reduce_max", "reduce_mean", "reduce_min",
    "reduce_prod", "reduce_sum", "round", "rsqrt", "sigmoid", "sign", "sin", "sinh", "softmax",
    "softplus", "sqrt", "square", "squared_difference", "subtract", "tan", "tanh", "xdivy",
    "xlogy", "argmax", "argmin", "cumprod", "cumsum", "reduce_all", "reduce_any",
    "reduce_euclidean_norm", "reduce_std", "reduce_variance", "top_k", "mod",
    "reciprocal_no_nan", "xlog1py",
]


@pytest.mark.parametrize("namespace", [gt.math, gt.nn], ids=["math", "nn"])
def test_each_name_is_the_top_level_function(namespace):
    """Where a name is at the top level too, it is the same function (tf.nn.gelu and the
    other gt.nn-only names have no top-level twin, as in TF)."""
    for name in namespace.__all__:
        if namespace is gt.math or name in NN_AT_TOP:
            assert getattr(namespace, name) is getattr(gt, name), name
        else:
            assert not hasattr(gt, name), name


NN_AT_TOP = {"relu", "sigmoid", "softplus", "softmax", "log_softmax", "log_sigmoid",
             "softmax_cross_entropy_with_logits"}


def test_gt_math_has_tf_maths_names():
    assert sorted(gt.math.__all__) == sorted(TF_MATH)
