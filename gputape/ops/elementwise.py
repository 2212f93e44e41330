"""Elementwise primitives: each forward and its per-input gradient rules side by side.

Rules follow TensorFlow's choices at kinks and ties (relu'(0) = 0, abs'(0) = 0, maximum sends
the gradient to ``x`` where ``x >= y``, ``d/dp x**p`` is 0 where ``x <= 0``).

For complex inputs the rules are written in the unconjugated form (a holomorphic op's rule is
``g * f'(z)``; ``real``, ``imag``, ``conj`` and ``abs`` the transposes of their real-linear
derivatives); the backward walk conjugates at its ends, which gives TensorFlow's gradients
(``g * conj(f'(z))``; for a real loss, ``dL/dRe + i dL/dIm``). See
:func:`gputape.autodiff.backward.walk`.
"""

from __future__ import annotations

import functools

from ..core.dispatch import apply
from ..core.fastpath import binary, unary
from ..core.registry import defvjp, implement, primitive, ufunc
from ..core.tensor import Variable
from ..host.pool import zeros_operand

__all__ = [
    "abs", "add", "atan", "cast", "clip_by_value", "conj", "cos", "divide", "equal", "exp",
    "expm1", "floor", "greater", "greater_equal", "identity", "imag", "less", "less_equal", "log",
    "log1p", "real",
    "logical_and", "logical_not", "logical_or", "maximum", "minimum", "multiply", "negative",
    "not_equal", "pow", "relu", "round", "sigmoid", "sign", "sin", "softplus", "sqrt", "square",
    "stop_gradient", "subtract", "tan", "tanh", "where",
]

# -- arithmetic ---------------------------------------------------------------------------

ADD = defvjp(primitive("add", ufunc("add"), ("x", "y")),
             lambda g, ans, x, y: g,
             lambda g, ans, x, y: g)

SUBTRACT = defvjp(primitive("subtract", ufunc("subtract"), ("x", "y")),
                  lambda g, ans, x, y: g,
                  lambda g, ans, x, y: negative(g))

MULTIPLY = defvjp(primitive("multiply", ufunc("multiply"), ("x", "y")),
                  lambda g, ans, x, y: g * y,
                  lambda g, ans, x, y: g * x)

DIVIDE = defvjp(primitive("divide", ufunc("true_divide"), ("x", "y"),
                          hint="look for a zero denominator (add eps, or gt.where to guard it)"),
                lambda g, ans, x, y: g / y,
                lambda g, ans, x, y: g * (negative(x) / y / y))


def _pow_host(xp, x, p):
    # NumPy's power takes the general (exp/log) route even for small integer exponents, about
    # 7x slower than multiplying; x*x, x*x*x and (x*x)**2 round at most one ulp differently.
    if p.ndim == 0 and x.ndim and x.dtype.kind == "f":
        exponent = float(p)
        if exponent == 2.0:
            return xp.multiply(x, x)
        if exponent in (3.0, 4.0):
            out = xp.multiply(x, x)
            other = x if exponent == 3.0 else out
            if not out.flags.writeable:  # a broadcast of one value (gputape.host.pool)
                return xp.multiply(out, other)
            return xp.multiply(out, other, out=out)
    return xp.power(x, p)


def masked_log(x):
    """``log(x)`` where ``x > 0``, else 0: the log in d/dp x**p (TF's). The inner ``where``
    keeps the log finite, so higher derivatives through it stay finite too."""
    positive = greater(x, 0)
    return where(positive, log(where(positive, x, 1)), 0)


def _pow_grad_p(g, ans, x, p):
    # d/dp x**p = x**p log x, defined as 0 where x <= 0 (TF).
    return g * ans * masked_log(x)


POW = defvjp(primitive("pow", lambda xp, x, p: xp.power(x, p), ("x", "y"),
                       hint="look for 0 ** negative, negative ** fractional, or overflow"),
             lambda g, ans, x, p: g * p * pow(x, p - 1),
             _pow_grad_p)
implement(POW, "numpy", _pow_host)

NEGATIVE = defvjp(primitive("negative", ufunc("negative")),
                  lambda g, ans, x: negative(g))

MAXIMUM = defvjp(primitive("maximum", ufunc("maximum"), ("x", "y")),
                 lambda g, ans, x, y: where(greater_equal(x, y), g, 0),
                 lambda g, ans, x, y: where(greater_equal(x, y), 0, g))

MINIMUM = defvjp(primitive("minimum", ufunc("minimum"), ("x", "y")),
                 lambda g, ans, x, y: where(less_equal(x, y), g, 0),
                 lambda g, ans, x, y: where(less_equal(x, y), 0, g))

WHERE = defvjp(primitive("where", lambda xp, c, x, y: xp.where(c, x, y), ("condition", "x", "y"),
                         unify=(1, 2)),
               None,
               lambda g, ans, c, x, y: where(c, g, 0),
               lambda g, ans, c, x, y: where(c, 0, g))

# -- unary math ---------------------------------------------------------------------------


def _float_unary(name, forward, rule, hint=""):
    return defvjp(primitive(name, forward, float_only=True, hint=hint), rule)


SQUARE = defvjp(primitive("square", ufunc("square")),
                lambda g, ans, x: g * (2 * x))
SQRT = _float_unary("sqrt", ufunc("sqrt"), lambda g, ans, x: g / (2 * ans),
                    "sqrt's gradient is infinite at 0: use gt.sqrt(x + eps) where x can be 0")
EXP = _float_unary("exp", ufunc("exp"), lambda g, ans, x: g * ans,
                   "exp overflows above ~88 in float32 (~709 in float64): use log-space forms "
                   "such as gt.reduce_logsumexp, gt.nn.softplus or gt.log_softmax")
LOG = _float_unary("log", ufunc("log"), lambda g, ans, x: g / x,
                   "keep log's argument positive (e.g. gt.log(x + eps) or "
                   "gt.log(gt.maximum(x, eps)))")
LOG1P = _float_unary("log1p", ufunc("log1p"), lambda g, ans, x: g / (1 + x),
                     "keep log1p's argument above -1")
# g * exp(x), reading the input as TF's rule does (which tensors a rule reads decides where a
# higher-order gradient is None: d(dy/dx)/dy is None here, as in TF).
EXPM1 = _float_unary("expm1", ufunc("expm1"), lambda g, ans, x: g * exp(x))
SIN = _float_unary("sin", ufunc("sin"), lambda g, ans, x: g * cos(x))
COS = _float_unary("cos", ufunc("cos"), lambda g, ans, x: negative(g * sin(x)))
TAN = _float_unary("tan", ufunc("tan"), lambda g, ans, x: g / square(cos(x)))
# g * 1/(1 + x^2), as TF's AtanGrad (a reciprocal, then a product: the same rounding).
ATAN = _float_unary("atan", ufunc("arctan"), lambda g, ans, x: g * (1 / (1 + square(x))))
TANH = _float_unary("tanh", ufunc("tanh"), lambda g, ans, x: g * (1 - square(ans)))


def _sigmoid_forward(xp, x):
    if x.dtype.kind == "c":  # (no half-lines to choose between)
        return 1 / (1 + xp.exp(-x))
    # exp of -|x| never overflows; both branches are exact in their half-line.
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


def _zero(xp, x):
    return xp.zeros((), x.dtype)


def _host_zero(xp, x):
    # An array of zeros of x's shape, for which NumPy's maximum has a SIMD loop where a 0-d
    # zero gets the scalar loop (gputape.host.pool.zeros_operand).
    return zeros_operand(x.shape, x.dtype)


def _softplus_forward(xp, x, zero=_zero):
    # log(1 + e^x) = max(x, 0) + log1p(e^-|x|): no overflow at +1e4, no cancellation at -1e4.
    result = xp.maximum(x, zero(xp, x)) + xp.log1p(xp.exp(-xp.abs(x)))
    return result.astype(x.dtype, copy=False)


def _relu_forward(xp, x, zero=_zero):
    return xp.maximum(x, zero(xp, x))


SIGMOID = _float_unary("sigmoid", _sigmoid_forward, lambda g, ans, x: g * (ans * (1 - ans)))
SOFTPLUS = _float_unary("softplus", _softplus_forward, lambda g, ans, x: g * sigmoid(x))
implement(SOFTPLUS, "numpy", functools.partial(_softplus_forward, zero=_host_zero))

# relu's gradient reads its output through a step function whose own gradient is zero (not
# None), as TF's ReluGrad(g, y): d(dy/dx)/dy is zeros, as in TF.
STEP = defvjp(primitive("step", lambda xp, x: (x > 0).astype(x.dtype)),
              lambda g, ans, x: zeros_like_tensor(x))
RELU = defvjp(primitive("relu", _relu_forward), lambda g, ans, x: g * apply(STEP, ans))
implement(RELU, "numpy", functools.partial(_relu_forward, zero=_host_zero))
def _abs_grad(g, ans, x):
    if x.dtype.kind == "c":
        # TF's: g * x / |x|, 0 where x = 0 (a division that is differentiable again, where
        # sign's rule would say 0); conjugated here, in the unconjugated form. g is real.
        nonzero = greater(ans, 0)
        modulus = cast(where(nonzero, ans, 1), x.dtype)
        return where(nonzero, cast(g, x.dtype) * (conj(x) / modulus), 0)
    return g * sign(x)


ABS = defvjp(primitive("abs", ufunc("abs")), _abs_grad)
CONJ = defvjp(primitive("conj", ufunc("conjugate")), lambda g, ans, x: conj(g))
# real and imag map complex to real; their rules map a real cotangent back to the complex
# input: g and -i g (for a real input, real is the identity and imag gives zeros)
REAL = defvjp(primitive("real", lambda xp, x: xp.real(x)),
              lambda g, ans, x: cast(g, x.dtype))
IMAG = defvjp(primitive("imag", lambda xp, x: xp.imag(x) if x.dtype.kind == "c"
                        else xp.zeros_like(x)),
              lambda g, ans, x: (cast(negative(g), x.dtype) * 1j if x.dtype.kind == "c"
                                 else zeros_like_tensor(x)))
SIGN = defvjp(primitive("sign", ufunc("sign")), lambda g, ans, x: zeros_like_tensor(x))
IDENTITY = defvjp(primitive("identity", lambda xp, x: x), lambda g, ans, x: g)


def _cast_forward(xp, x, dtype):
    if x.dtype.kind == "c" and xp.dtype(dtype).kind != "c":
        x = x.real  # as TF: complex to real keeps the real part (NumPy would warn)
    return x.astype(dtype, copy=False)


CAST = defvjp(primitive("cast", _cast_forward, unify=()), lambda g, ans, x, dtype: cast(g, x.dtype))

# -- not differentiable -------------------------------------------------------------------
# floor and round are recorded with a None gradient (TF's FloorGrad and RoundGrad), so that
# their results can be sources; nothing flows back through them.
FLOOR = defvjp(primitive("floor", ufunc("floor")), None)
ROUND = defvjp(primitive("round", lambda xp, x: xp.round(x)), None)  # half to even, as TF
STOP_GRADIENT = primitive("stop_gradient", lambda xp, x: x, differentiable=False)

_COMPARE = {
    name: primitive(name, forward, ("x", "y"), differentiable=False)
    for name, forward in [
        ("equal", ufunc("equal")),
        ("not_equal", ufunc("not_equal")),
        ("less", ufunc("less")),
        ("less_equal", ufunc("less_equal")),
        ("greater", ufunc("greater")),
        ("greater_equal", ufunc("greater_equal")),
        ("logical_and", ufunc("logical_and")),
        ("logical_or", ufunc("logical_or")),
    ]
}
LOGICAL_NOT = primitive("logical_not", ufunc("logical_not"), differentiable=False)
ARGWHERE = primitive("argwhere", lambda xp, c: xp.argwhere(c), ("condition",),
                     differentiable=False)


# == public functions ======================================================================


def add(x, y):
    """``x + y`` elementwise, with broadcasting.

    >>> import gputape as gt
    >>> gt.add([1.0, 2.0], 3.0).numpy()
    array([4., 5.], dtype=float32)
    """
    return binary(ADD, x, y)


def subtract(x, y):
    """``x - y`` elementwise, with broadcasting.

    >>> import gputape as gt
    >>> gt.subtract(5.0, [1.0, 2.0]).numpy()
    array([4., 3.], dtype=float32)
    """
    return binary(SUBTRACT, x, y)


def multiply(x, y):
    """``x * y`` elementwise, with broadcasting.

    >>> import gputape as gt
    >>> gt.multiply(1, 3.0)
    ... # doctest: +ELLIPSIS
    <gt.Tensor shape=() dtype=float32 device=... numpy=3.0>
    """
    return binary(MULTIPLY, x, y)


def divide(x, y):
    """``x / y`` elementwise (true division), with broadcasting.

    >>> import gputape as gt
    >>> gt.divide([1.0, 3.0], 2.0).numpy()
    array([0.5, 1.5], dtype=float32)
    """
    return binary(DIVIDE, x, y)


def pow(x, y):  # noqa: A001 - TensorFlow's name
    """``x ** y`` elementwise; ``d/dx = y * x**(y-1)``, ``d/dy = x**y * log(x)`` (0 where x <= 0).

    >>> import gputape as gt
    >>> gt.pow([2.0, 3.0], 2).numpy()
    array([4., 9.], dtype=float32)
    """
    return apply(POW, x, y)


def negative(x):
    """``-x`` elementwise.

    >>> import gputape as gt
    >>> gt.negative([1.0, -2.0]).numpy()
    array([-1.,  2.], dtype=float32)
    """
    return unary(NEGATIVE, x)


def maximum(x, y):
    """Elementwise maximum; at ties the gradient goes to ``x``.

    >>> import gputape as gt
    >>> gt.maximum([1.0, 5.0], 3.0).numpy()
    array([3., 5.], dtype=float32)
    """
    return binary(MAXIMUM, x, y)


def minimum(x, y):
    """Elementwise minimum; at ties the gradient goes to ``x``.

    >>> import gputape as gt
    >>> gt.minimum([1.0, 5.0], 3.0).numpy()
    array([1., 3.], dtype=float32)
    """
    return binary(MINIMUM, x, y)


def where(condition, x=None, y=None):
    """Pick ``x`` where ``condition`` is true, else ``y`` (broadcasting). With only
    ``condition``, the int64 coordinates of its true elements.

    >>> import gputape as gt
    >>> gt.where([True, False], 1.0, -1.0).numpy()
    array([ 1., -1.], dtype=float32)
    """
    from ..core.errors import ArgumentError, DTypeError

    if x is None and y is None:
        return apply(ARGWHERE, condition)
    if x is None or y is None:
        raise ArgumentError(
            f"where: got only {'x' if y is None else 'y'}; hint: give both x and y, or neither "
            f"(to get the coordinates of the true elements)"
        )
    cond_dtype = getattr(condition, "dtype", None)
    if cond_dtype is not None and cond_dtype.kind != "b":
        raise DTypeError(
            f"where: condition must be a bool tensor, got dtype {cond_dtype}; hint: compare "
            f"first, e.g. gt.where(x > 0, x, y)"
        )
    return apply(WHERE, condition, x, y)


def square(x):
    """``x * x`` elementwise.

    >>> import gputape as gt
    >>> gt.square([2.0, -3.0]).numpy()
    array([4., 9.], dtype=float32)
    """
    return unary(SQUARE, x)


def sqrt(x):
    """Elementwise square root.

    >>> import gputape as gt
    >>> gt.sqrt([4.0, 9.0]).numpy()
    array([2., 3.], dtype=float32)
    """
    return unary(SQRT, x)


def exp(x):
    """Elementwise ``e**x``.

    >>> import gputape as gt
    >>> float(gt.exp(0.0))
    1.0
    """
    return unary(EXP, x)


def log(x):
    """Elementwise natural logarithm.

    >>> import gputape as gt
    >>> float(gt.log(1.0))
    0.0
    """
    return unary(LOG, x)


def log1p(x):
    """Elementwise ``log(1 + x)``, accurate for small ``x``.

    >>> import gputape as gt
    >>> float(gt.log1p(0.0))
    0.0
    """
    return unary(LOG1P, x)


def expm1(x):
    """Elementwise ``exp(x) - 1``, accurate for small ``x``.

    >>> import gputape as gt
    >>> float(gt.expm1(0.0))
    0.0
    """
    return unary(EXPM1, x)


def sin(x):
    """Elementwise sine.

    >>> import gputape as gt
    >>> float(gt.sin(0.0))
    0.0
    """
    return unary(SIN, x)


def cos(x):
    """Elementwise cosine.

    >>> import gputape as gt
    >>> float(gt.cos(0.0))
    1.0
    """
    return unary(COS, x)


def tan(x):
    """Elementwise tangent.

    >>> import gputape as gt
    >>> float(gt.tan(0.0))
    0.0
    """
    return unary(TAN, x)


def atan(x):
    """Elementwise arctangent, in radians (``tf.math.atan``).

    >>> import gputape as gt
    >>> float(gt.atan(1.0)) * 4
    3.1415927410125732
    """
    return unary(ATAN, x)


def tanh(x):
    """Elementwise hyperbolic tangent.

    >>> import gputape as gt
    >>> float(gt.tanh(0.0))
    0.0
    """
    return unary(TANH, x)


def sigmoid(x):
    """Elementwise logistic function ``1 / (1 + exp(-x))``, stable at large ``|x|``.

    >>> import gputape as gt
    >>> float(gt.sigmoid(0.0))
    0.5
    """
    return apply(SIGMOID, x)


def softplus(x):
    """Elementwise ``log(1 + exp(x))``, stable at large ``|x|``.

    >>> import gputape as gt
    >>> float(gt.softplus(0.0)) == float(gt.log(2.0))
    True
    """
    return apply(SOFTPLUS, x)


def relu(x):
    """Elementwise ``max(x, 0)``; its gradient at 0 is 0.

    >>> import gputape as gt
    >>> gt.relu([-1.0, 2.0]).numpy()
    array([0., 2.], dtype=float32)
    """
    return apply(RELU, x)


def abs(x):  # noqa: A001 - TensorFlow's name
    """Elementwise absolute value; its gradient at 0 is 0.

    >>> import gputape as gt
    >>> gt.abs([-1.5, 2.0]).numpy()
    array([1.5, 2. ], dtype=float32)
    """
    return unary(ABS, x)


def conj(x):
    """Elementwise complex conjugate (``tf.math.conj``); a real tensor is returned as is.

    >>> import gputape as gt
    >>> gt.conj(gt.constant([1 + 2j])).numpy()
    array([1.-2.j])
    """
    return unary(CONJ, x)


def real(x):
    """The real part of each element (``tf.math.real``): float32 for complex64, float64 for
    complex128; a real tensor as is.

    >>> import gputape as gt
    >>> gt.real(gt.constant([1 + 2j])).numpy()
    array([1.])
    """
    return unary(REAL, x)


def imag(x):
    """The imaginary part of each element (``tf.math.imag``); zeros for a real tensor.

    >>> import gputape as gt
    >>> gt.imag(gt.constant([1 + 2j])).numpy()
    array([2.])
    """
    return unary(IMAG, x)


def sign(x):
    """Elementwise sign (-1, 0 or 1); its gradient is zero.

    >>> import gputape as gt
    >>> gt.sign([-3.0, 0.0, 2.0]).numpy()
    array([-1.,  0.,  1.], dtype=float32)
    """
    return unary(SIGN, x)


def floor(x):
    """Elementwise floor (not differentiable: gradients through it are None).

    >>> import gputape as gt
    >>> gt.floor([1.5, -1.5]).numpy()
    array([ 1., -2.], dtype=float32)
    """
    return unary(FLOOR, x)


def round(x):  # noqa: A001 - TensorFlow's name
    """Elementwise rounding, halves to even (not differentiable).

    >>> import gputape as gt
    >>> gt.round([0.5, 1.5, 2.5]).numpy()
    array([0., 2., 2.], dtype=float32)
    """
    return apply(ROUND, x)


def identity(x):
    """The same value as a new tensor (gradients pass through).

    >>> import gputape as gt
    >>> float(gt.identity(2.0))
    2.0
    """
    return apply(IDENTITY, x)


def stop_gradient(x):
    """The same value, but no gradient flows through it.

    >>> import gputape as gt
    >>> x = gt.constant(3.0)
    >>> with gt.GradientTape() as tape:
    ...     tape.watch(x)
    ...     y = x * gt.stop_gradient(x)
    >>> float(tape.gradient(y, x))
    3.0
    """
    if isinstance(x, Variable):  # a read no tape watches for (TF: not in watched_variables)
        x = x._snapshot()
    return apply(STOP_GRADIENT, x)


def cast(x, dtype):
    """``x`` converted to ``dtype``; float-to-int truncates toward zero. Gradients flow between
    float dtypes only.

    >>> import gputape as gt
    >>> gt.cast([1.7, -1.7], gt.int32).numpy()
    array([ 1, -1], dtype=int32)
    """
    from ..core.dtypes import as_dtype

    return apply(CAST, x, dtype=as_dtype(dtype))


def clip_by_value(t, clip_value_min, clip_value_max):
    """``t`` clipped to ``[clip_value_min, clip_value_max]`` (gradient 1 inside, ties included).

    >>> import gputape as gt
    >>> gt.clip_by_value([-2.0, 0.5, 3.0], -1.0, 1.0).numpy()
    array([-1. ,  0.5,  1. ], dtype=float32)
    """
    return minimum(maximum(t, clip_value_min), clip_value_max)


def zeros_like_tensor(x):
    from .creation import zeros_like

    return zeros_like(x)


def _comparison(name: str, symbol: str):
    prim = _COMPARE[name]

    def compare(x, y):
        return binary(prim, x, y)

    compare.__name__ = compare.__qualname__ = name
    compare.__doc__ = (
        f"Elementwise ``x {symbol} y`` as a bool tensor (not differentiable).\n\n"
        f"    >>> import gputape as gt\n"
        f"    >>> gt.{name}([1.0, 2.0], 2.0).numpy().dtype\n"
        f"    dtype('bool')\n"
    )
    return compare


equal = _comparison("equal", "==")
not_equal = _comparison("not_equal", "!=")
less = _comparison("less", "<")
less_equal = _comparison("less_equal", "<=")
greater = _comparison("greater", ">")
greater_equal = _comparison("greater_equal", ">=")
logical_and = _comparison("logical_and", "and")
logical_or = _comparison("logical_or", "or")


def logical_not(x):
    """Elementwise boolean negation.

    >>> import gputape as gt
    >>> gt.logical_not([True, False]).numpy()
    array([False,  True])
    """
    return unary(LOGICAL_NOT, x)
