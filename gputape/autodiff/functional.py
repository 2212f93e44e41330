"""Function transforms: gradients of Python functions, nestable for higher orders."""

from __future__ import annotations

import functools
import inspect
import numbers

from ..core.errors import ArgumentError, ArgumentTypeError
from ..core.tensor import Tensor, convert_to_tensor
from .tape import GradientTape

__all__ = ["gradients_function", "value_and_gradients_function", "grad", "value_and_grad",
           "hessian"]


def _callable(op: str, f) -> None:
    if not callable(f):
        raise ArgumentTypeError(
            f"{op}: expects a function, got {type(f).__name__} {f!r:.40}; hint: pass the "
            f"function itself, e.g. {op}(loss_fn), not its value loss_fn(x)"
        )


def _argnums(op: str, argnums, what: str = "argnums") -> "list[int]":
    """``argnums`` (an int or a sequence of ints) as a list, checked for its kind."""
    items = [argnums] if isinstance(argnums, numbers.Integral) else argnums
    if isinstance(argnums, bool) or not isinstance(items, (list, tuple)) or not all(
            isinstance(i, numbers.Integral) and not isinstance(i, bool) for i in items):
        raise ArgumentTypeError(
            f"{op}: {what} must be an int or a tuple of ints, got {type(argnums).__name__} "
            f"{argnums!r:.40}; hint: e.g. {what}=0 or {what}=(0, 1)"
        )
    return [int(i) for i in items]


def _check_positions(op: str, f, positions: "list[int]", nargs: int,
                     what: str = "argnums") -> "list[int]":
    out = []
    for i in positions:
        if not -nargs <= i < nargs:
            raise ArgumentError(
                f"{op}: {what} {i} is out of range: {_name(f)} was called with {nargs} "
                f"positional argument(s); hint: {what} counts the positional arguments from 0"
            )
        out.append(i % nargs)
    return out


def _name(f) -> str:
    return repr(getattr(f, "__name__", type(f).__name__))


def _positions(f, params, nargs: int) -> "list[int]":
    if params is None:
        return list(range(nargs))
    names = list(inspect.signature(f).parameters)
    out = []
    for p in params:
        if isinstance(p, str):
            if p not in names:
                raise ArgumentError(
                    f"gradients_function: {_name(f)} has no parameter {p!r} (it has {names}); "
                    f"hint: name one of its parameters or give its position"
                )
            out.append(names.index(p))
        else:
            out.append(_argnums("gradients_function", p, "params")[0])
    return _check_positions("gradients_function", f, out, nargs, "params")


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
    _callable("value_and_gradients_function", f)

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
    _callable("gradients_function", f)

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
    return _value_and_grad("value_and_grad", f, argnums)


def _value_and_grad(op: str, f, argnums):
    _callable(op, f)
    single = isinstance(argnums, numbers.Integral)
    wanted = _argnums(op, argnums)

    @functools.wraps(f)
    def decorated(*args, **kwargs):
        positions = _check_positions(op, f, wanted, len(args))
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
    value_and_gradient = _value_and_grad("grad", f, argnums)

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
    _callable("hessian", f)
    if isinstance(argnums, bool) or not isinstance(argnums, numbers.Integral):
        raise ArgumentTypeError(
            f"hessian: argnums must be one int, got {type(argnums).__name__} {argnums!r:.40}; "
            f"hint: take one Hessian per argument, e.g. argnums=0"
        )

    @functools.wraps(f)
    def decorated(*args, **kwargs):
        from ..ops import zeros

        tensors = [a if isinstance(a, Tensor) else convert_to_tensor(a) for a in args]
        x = tensors[_check_positions("hessian", f, [argnums], len(args))[0]]
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
