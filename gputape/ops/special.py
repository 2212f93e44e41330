"""The rest of ``tf.math``'s elementwise functions: inverse and hyperbolic trigonometry, erf,
reciprocals, the safe divisions, floor division and modulo, and the NaN/Inf tests. Each
forward and its gradient rules (TensorFlow's) side by side, as in :mod:`.elementwise`.
"""

from __future__ import annotations

import math

import numpy as np

from ..core.fastpath import binary, unary
from ..core.registry import defvjp, implement, primitive, ufunc
from .elementwise import cast, exp, negative, not_equal, softplus, sqrt, square

__all__ = [
    "acos", "acosh", "asin", "asinh", "atan2", "atanh", "cosh", "divide_no_nan", "erf", "erfc",
    "floordiv", "floormod", "is_finite", "is_inf", "is_nan", "log_sigmoid", "mod",
    "reciprocal", "reciprocal_no_nan", "rsqrt", "sinh", "squared_difference", "xdivy", "xlog1py",
    "xlogy",
]

_TWO_OVER_ROOT_PI = 2.0 / math.sqrt(math.pi)


def _float(name, forward, rule, hint=""):
    return defvjp(primitive(name, forward, float_only=True, hint=hint), rule)


# -- trigonometry ---------------------------------------------------------------------------

ASIN = _float("asin", ufunc("arcsin"), lambda g, ans, x: g / sqrt(1 - square(x)),
              "asin is defined on [-1, 1] and its gradient is infinite at the ends")
ACOS = _float("acos", ufunc("arccos"), lambda g, ans, x: negative(g / sqrt(1 - square(x))),
              "acos is defined on [-1, 1] and its gradient is infinite at the ends")
SINH = _float("sinh", ufunc("sinh"), lambda g, ans, x: g * cosh(x))
COSH = _float("cosh", ufunc("cosh"), lambda g, ans, x: g * sinh(x))
# TF's rules read the output: 1 / cosh(asinh x), 1 / sinh(acosh x)
ASINH = _float("asinh", ufunc("arcsinh"), lambda g, ans, x: g / cosh(ans))
ACOSH = _float("acosh", ufunc("arccosh"), lambda g, ans, x: g / sinh(ans),
               "acosh is defined for x >= 1 and its gradient is infinite at 1")
ATANH = _float("atanh", ufunc("arctanh"), lambda g, ans, x: g * (1 / (1 - square(x))),
               "atanh is defined on (-1, 1)")


def _atan2_grad(g, ans, y, x, which):
    scale = g / (square(x) + square(y))  # TF's: grad / (x^2 + y^2), then x and -y
    return scale * x if which == 0 else negative(scale * y)


ATAN2 = defvjp(primitive("atan2", ufunc("arctan2"), ("y", "x"), float_only=True),
               lambda g, ans, y, x: _atan2_grad(g, ans, y, x, 0),
               lambda g, ans, y, x: _atan2_grad(g, ans, y, x, 1))

# -- erf ------------------------------------------------------------------------------------


def _special(name: str):
    """CuPy's ``cupyx.scipy.special.<name>`` (the device forward; the host's is below)."""
    def forward(xp, x):
        from cupyx.scipy import special

        return getattr(special, name)(x)

    forward.__name__ = f"cupyx_{name}"
    return forward


def _host(function):
    """NumPy has no erf: the standard library's, element by element (exact to the last bit,
    about 0.1 us an element)."""
    vectorized = np.frompyfunc(function, 1, 1)

    def forward(xp, x):
        return np.asarray(vectorized(x), dtype=x.dtype)

    forward.__name__ = f"host_{function.__name__}"
    return forward


def _gaussian(x):
    return _TWO_OVER_ROOT_PI * exp(negative(square(x)))


ERF = _float("erf", _special("erf"), lambda g, ans, x: g * _gaussian(x))
ERFC = _float("erfc", _special("erfc"), lambda g, ans, x: negative(g * _gaussian(x)))
implement(ERF, "numpy", _host(math.erf))
implement(ERFC, "numpy", _host(math.erfc))

# -- reciprocals ----------------------------------------------------------------------------

RECIPROCAL = _float("reciprocal", ufunc("reciprocal"),
                    lambda g, ans, x: negative(g * square(ans)),  # TF's ReciprocalGrad
                    "look for a zero (add eps, or gt.where to guard it)")
RSQRT = _float("rsqrt", lambda xp, x: 1 / xp.sqrt(x),
               lambda g, ans, x: g * (-0.5 * ans * square(ans)),  # TF's RsqrtGrad: -y^3 / 2
               "rsqrt is infinite at 0 and NaN below: keep its argument positive")

# -- differences and divisions --------------------------------------------------------------


def _squared_difference_grad(g, ans, x, y, which):
    d = g * (2 * (x - y))
    return d if which == 0 else negative(d)


SQUARED_DIFFERENCE = defvjp(
    primitive("squared_difference", lambda xp, x, y: xp.square(x - y), ("x", "y")),
    lambda g, ans, x, y: _squared_difference_grad(g, ans, x, y, 0),
    lambda g, ans, x, y: _squared_difference_grad(g, ans, x, y, 1))


def _no_nan(xp, x, y):
    zero = y == 0
    return xp.where(zero, xp.zeros((), x.dtype), x / xp.where(zero, xp.ones((), y.dtype), y))


DIVIDE_NO_NAN = defvjp(
    primitive("divide_no_nan", _no_nan, ("x", "y"), float_only=True),
    lambda g, ans, x, y: divide_no_nan(g, y),
    lambda g, ans, x, y: g * divide_no_nan(divide_no_nan(negative(x), y), y))


def _xlogy(xp, x, y):
    return xp.where(x == 0, xp.zeros((), x.dtype), x * xp.log(xp.where(x == 0, 1, y)))


def _xdivy(xp, x, y):
    return xp.where(x == 0, xp.zeros((), x.dtype), x / xp.where(x == 0, 1, y))


XLOGY = defvjp(
    primitive("xlogy", _xlogy, ("x", "y"), float_only=True),
    # TF's: xlogy(x != 0, y) and xdivy(x, y), each times the cotangent
    lambda g, ans, x, y: g * xlogy(cast(not_equal(x, 0), x.dtype), y),
    lambda g, ans, x, y: g * xdivy(x, y))
XDIVY = defvjp(
    primitive("xdivy", _xdivy, ("x", "y"), float_only=True),
    lambda g, ans, x, y: g * xdivy(cast(not_equal(x, 0), x.dtype), y),
    lambda g, ans, x, y: g * xdivy(negative(x), square(y)))

def _floordiv(xp, x, y):
    # TF's floats: floor(x / y) (NumPy's floor_divide rounds (x - fmod(x, y)) / y instead:
    # 1 // 0.1 is 9 there, 10 in TF); integers: floor_divide, the same in both
    if x.dtype.kind == "f":
        return xp.floor(x / y)
    return xp.floor_divide(x, y)


# floor division has no gradient (TF's is None); floormod's is TF's: g, -g * floor(x / y)
FLOORDIV = defvjp(primitive("floordiv", _floordiv, ("x", "y")), None, None)
FLOORMOD = defvjp(primitive("floormod", ufunc("remainder"), ("x", "y")),
                  lambda g, ans, x, y: g,
                  lambda g, ans, x, y: negative(g * floordiv(x, y)))

# -- tests for NaN and Inf (bool results, not differentiable) ---------------------------------

IS_NAN = primitive("is_nan", ufunc("isnan"), differentiable=False)
IS_INF = primitive("is_inf", ufunc("isinf"), differentiable=False)
IS_FINITE = primitive("is_finite", ufunc("isfinite"), differentiable=False)


# == public functions ======================================================================


def asin(x):
    """Elementwise arcsine, on [-1, 1].

    >>> import gputape as gt
    >>> float(gt.asin(1.0)) == float(gt.constant(3.141592653589793 / 2))
    True
    """
    return unary(ASIN, x)


def acos(x):
    """Elementwise arccosine, on [-1, 1].

    >>> import gputape as gt
    >>> float(gt.acos(1.0))
    0.0
    """
    return unary(ACOS, x)


def atan2(y, x):
    """The angle of the point ``(x, y)``, elementwise, in (-pi, pi] (``tf.math.atan2(y, x)``).

    >>> import gputape as gt
    >>> round(float(gt.atan2(1.0, -1.0)), 4)  # 3 pi / 4
    2.3562
    """
    return binary(ATAN2, y, x)


def sinh(x):
    """Elementwise hyperbolic sine.

    >>> import gputape as gt
    >>> float(gt.sinh(0.0))
    0.0
    """
    return unary(SINH, x)


def cosh(x):
    """Elementwise hyperbolic cosine.

    >>> import gputape as gt
    >>> float(gt.cosh(0.0))
    1.0
    """
    return unary(COSH, x)


def asinh(x):
    """Elementwise inverse hyperbolic sine.

    >>> import gputape as gt
    >>> float(gt.asinh(0.0))
    0.0
    """
    return unary(ASINH, x)


def acosh(x):
    """Elementwise inverse hyperbolic cosine, for ``x >= 1``.

    >>> import gputape as gt
    >>> float(gt.acosh(1.0))
    0.0
    """
    return unary(ACOSH, x)


def atanh(x):
    """Elementwise inverse hyperbolic tangent, on (-1, 1).

    >>> import gputape as gt
    >>> float(gt.atanh(0.0))
    0.0
    """
    return unary(ATANH, x)


def erf(x):
    """The error function, elementwise: ``2 / sqrt(pi) * integral of exp(-t^2) from 0 to x``.

    >>> import gputape as gt
    >>> round(float(gt.erf(1.0)), 6)
    0.842701
    """
    return unary(ERF, x)


def erfc(x):
    """The complementary error function, ``1 - erf(x)``, accurate where erf is near 1.

    >>> import gputape as gt
    >>> float(gt.erfc(0.0))
    1.0
    """
    return unary(ERFC, x)


def reciprocal(x):
    """``1 / x`` elementwise.

    >>> import gputape as gt
    >>> gt.reciprocal([2.0, 4.0]).numpy()
    array([0.5 , 0.25], dtype=float32)
    """
    return unary(RECIPROCAL, x)


def rsqrt(x):
    """``1 / sqrt(x)`` elementwise.

    >>> import gputape as gt
    >>> gt.rsqrt([4.0, 16.0]).numpy()
    array([0.5 , 0.25], dtype=float32)
    """
    return unary(RSQRT, x)


def squared_difference(x, y):
    """``(x - y) ** 2`` elementwise, with broadcasting.

    >>> import gputape as gt
    >>> gt.squared_difference([1.0, 5.0], 2.0).numpy()
    array([1., 9.], dtype=float32)
    """
    return binary(SQUARED_DIFFERENCE, x, y)


def divide_no_nan(x, y):
    """``x / y``, 0 where ``y`` is 0 (its gradients too, as TensorFlow's).

    >>> import gputape as gt
    >>> gt.divide_no_nan([1.0, 2.0], [0.0, 4.0]).numpy()
    array([0. , 0.5], dtype=float32)
    """
    return binary(DIVIDE_NO_NAN, x, y)


def xlogy(x, y):
    """``x * log(y)``, 0 where ``x`` is 0 (whatever ``y``).

    >>> import gputape as gt
    >>> gt.xlogy([0.0, 2.0], [0.0, 1.0]).numpy()
    array([0., 0.], dtype=float32)
    """
    return binary(XLOGY, x, y)


def xdivy(x, y):
    """``x / y``, 0 where ``x`` is 0 (whatever ``y``).

    >>> import gputape as gt
    >>> gt.xdivy([0.0, 3.0], [0.0, 2.0]).numpy()
    array([0. , 1.5], dtype=float32)
    """
    return binary(XDIVY, x, y)


def floordiv(x, y):
    """``floor(x / y)`` elementwise (``//``; not differentiable, as in TensorFlow).

    >>> import gputape as gt
    >>> gt.floordiv([7.0, -7.0], 2.0).numpy()
    array([ 3., -4.], dtype=float32)
    """
    return binary(FLOORDIV, x, y)


def floormod(x, y):
    """``x - floor(x / y) * y`` elementwise (``%``: the result has ``y``'s sign).

    >>> import gputape as gt
    >>> gt.floormod([7.0, -7.0], 3.0).numpy()
    array([1., 2.], dtype=float32)
    """
    return binary(FLOORMOD, x, y)


def log_sigmoid(x):
    """``log(sigmoid(x))``, computed as ``-softplus(-x)`` (finite for any ``x``).

    >>> import gputape as gt
    >>> round(float(gt.log_sigmoid(0.0)), 6)
    -0.693147
    """
    return negative(softplus(negative(x)))


def is_nan(x):
    """Where ``x`` is NaN, as a bool tensor.

    >>> import gputape as gt
    >>> gt.is_nan([1.0, float("nan")]).numpy()
    array([False,  True])
    """
    return unary(IS_NAN, x)


def is_inf(x):
    """Where ``x`` is +Inf or -Inf, as a bool tensor.

    >>> import gputape as gt
    >>> gt.is_inf([1.0, float("-inf")]).numpy()
    array([False,  True])
    """
    return unary(IS_INF, x)


def is_finite(x):
    """Where ``x`` is neither NaN nor an Inf, as a bool tensor.

    >>> import gputape as gt
    >>> gt.is_finite([1.0, float("inf")]).numpy()
    array([ True, False])
    """
    return unary(IS_FINITE, x)


mod = floormod  # TF's alias (tf.math.mod)


def reciprocal_no_nan(x):
    """``1 / x``, 0 where ``x`` is 0 (and so is its gradient there, as TF's).

    >>> import gputape as gt
    >>> gt.reciprocal_no_nan([0.0, 4.0]).numpy()
    array([0.  , 0.25], dtype=float32)
    """
    from ._axes import as_tensor
    from .creation import ones_like

    x = as_tensor("reciprocal_no_nan", "x", x)
    return divide_no_nan(ones_like(x), x)


def xlog1py(x, y):
    """``x * log1p(y)``, 0 where ``x`` is 0 (whatever ``y``).

    >>> import gputape as gt
    >>> gt.xlog1py([0.0, 2.0], [-1.0, 0.0]).numpy()
    array([0., 0.], dtype=float32)
    """
    from ._axes import as_tensor
    from .elementwise import equal, log1p, where

    x = as_tensor("xlog1py", "x", x)
    zero = equal(x, 0)
    return where(zero, 0.0, x * log1p(where(zero, 0.0, y)))
