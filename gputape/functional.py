"""Function transforms: gradients of Python functions, nestable for higher orders."""

from __future__ import annotations

import functools
import inspect

from .tape import GradientTape
from .tensor import Tensor, convert_to_tensor

__all__ = ["gradients_function", "value_and_gradients_function", "grad", "value_and_grad",
           "hessian"]


def _positions(f, params, nargs: int) -> "list[int]":
    if params is None:
        return list(range(nargs))
    names = list(inspect.signature(f).parameters)
    out = []
    for p in params:
        if isinstance(p, str):
            if p not in names:
                raise ValueError(f"gradients_function: {f.__name__!r} has no parameter {p!r}")
            out.append(names.index(p))
        else:
            out.append(int(p))
    return out


def _value_and_grads(f, args, kwargs, positions):
    tensors = [a if isinstance(a, Tensor) else convert_to_tensor(a) for a in args]
    with GradientTape() as tape:
        for i in positions:
            if tensors[i].dtype.kind in "fc":
                tape.watch(tensors[i])
        value = f(*tensors, **kwargs)
    grads = tape.gradient(value, [tensors[i] for i in positions])
    return value, grads


def value_and_gradients_function(f, params=None):
    """``f`` turned into a function returning ``(f(*args), [df/darg for each arg])``.

    ``params`` picks the arguments (indices or names); default: all of them.

    Examples
    --------
    >>> import gputape as gt
    >>> value, grads = gt.value_and_gradients_function(lambda x: x * x)(3.0)
    >>> float(value), float(grads[0])
    (9.0, 6.0)
    """

    @functools.wraps(f)
    def decorated(*args, **kwargs):
        return _value_and_grads(f, args, kwargs, _positions(f, params, len(args)))

    return decorated


def gradients_function(f, params=None):
    """``f`` turned into a function returning the list of its gradients w.r.t. its arguments
    (a sum over the output's elements). Nest it for higher derivatives.

    Examples
    --------
    >>> import gputape as gt
    >>> def f(x):
    ...     return gt.square(gt.sin(x))
    >>> d3 = gt.gradients_function(lambda x: gt.gradients_function(
    ...     lambda y: gt.gradients_function(f)(y)[0])(x)[0])
    >>> round(float(d3(0.5)[0]), 4)  # -8 sin(x) cos(x)
    -3.3659
    """

    @functools.wraps(f)
    def decorated(*args, **kwargs):
        return _value_and_grads(f, args, kwargs, _positions(f, params, len(args)))[1]

    return decorated


def value_and_grad(f, argnums=0):
    """``f`` turned into a function returning ``(f(*args), gradient)`` w.r.t. ``argnums``
    (an int: one gradient; a tuple: a tuple of them).

    Examples
    --------
    >>> import gputape as gt
    >>> value, g = gt.value_and_grad(lambda x, y: x * y, argnums=1)(2.0, 5.0)
    >>> float(value), float(g)
    (10.0, 2.0)
    """
    single = isinstance(argnums, int)
    positions = [argnums] if single else list(argnums)

    @functools.wraps(f)
    def decorated(*args, **kwargs):
        value, grads = _value_and_grads(f, args, kwargs, positions)
        return value, (grads[0] if single else tuple(grads))

    return decorated


def grad(f, argnums=0):
    """``f`` turned into a function returning its gradient w.r.t. ``argnums``.

    Examples
    --------
    >>> import gputape as gt
    >>> float(gt.grad(gt.grad(lambda x: x ** 3))(2.0))
    12.0
    """
    value_and_gradient = value_and_grad(f, argnums)

    @functools.wraps(f)
    def decorated(*args, **kwargs):
        return value_and_gradient(*args, **kwargs)[1]

    return decorated


def hessian(f, argnums=0):
    """``f`` turned into a function returning its Hessian w.r.t. argument ``argnums``:
    shape ``x.shape + x.shape`` (from nested tapes and one vectorized jacobian).

    Examples
    --------
    >>> import gputape as gt
    >>> gt.hessian(lambda x: gt.reduce_sum(x ** 3))([1.0, 2.0]).numpy()
    array([[ 6.,  0.],
           [ 0., 12.]], dtype=float32)
    """

    @functools.wraps(f)
    def decorated(*args, **kwargs):
        from .ops import zeros

        tensors = [a if isinstance(a, Tensor) else convert_to_tensor(a) for a in args]
        x = tensors[argnums]
        with GradientTape() as outer:
            outer.watch(x)
            with GradientTape() as inner:
                inner.watch(x)
                y = f(*tensors, **kwargs)
            g = inner.gradient(y, x)
        if g is None:
            return zeros(x.shape + x.shape, dtype=x.dtype, device=x.device)
        return outer.jacobian(g, x, unconnected_gradients="zero")

    return decorated
