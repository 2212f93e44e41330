"""``@custom_gradient``: a user function whose gradient the user defines (TensorFlow's form)."""

from __future__ import annotations

import functools

from ..core.dispatch import note_variable_read, record
from ..core.errors import ArgumentTypeError, GradientRuleError
from ..core.registry import defvjp_all, primitive
from ..core.state import recording
from ..core.tensor import Tensor, Variable, convert_to_tensor

__all__ = ["custom_gradient"]


def _user_grads(g, ans, inputs, params):
    fn_name, grad_fn = params["name"], params["grad_fn"]
    grads = grad_fn(g)
    if isinstance(grads, Tensor) or not isinstance(grads, (list, tuple)):
        grads = [grads]
    if len(grads) != len(inputs):
        raise GradientRuleError(
            f"custom_gradient: the gradient function of {fn_name!r} returned {len(grads)} "
            f"gradient(s) but the function has {len(inputs)} tensor input(s); hint: return one "
            f"gradient (or None) per input, in order"
        )
    out = []
    for i, (grad, x) in enumerate(zip(grads, inputs)):
        if grad is None:
            out.append(None)
            continue
        if not isinstance(grad, Tensor):
            try:
                grad = convert_to_tensor(grad)
            except ArgumentTypeError:
                raise GradientRuleError(
                    f"custom_gradient: gradient {i} of {fn_name!r} is a {type(grad).__name__} "
                    f"({grad!r:.40}), not a tensor; input {i} has shape {x.shape} and dtype "
                    f"{x.dtype}; hint: return a gt.Tensor (or None) per input"
                ) from None
        if grad.shape != x.shape and not _broadcasts_to(grad.shape, x.shape):
            raise GradientRuleError(
                f"custom_gradient: gradient {i} of {fn_name!r} has shape {grad.shape} but input "
                f"{i} has shape {x.shape}; hint: return a gradient shaped like its input"
            )
        out.append(grad)  # the backward walk sums or broadcasts it to the input's shape
    return out


def _broadcasts_to(have: tuple, want: tuple) -> bool:
    """True when a ``have``-shaped gradient can be summed or broadcast to ``want``."""
    have, want = have[-len(want):] if want else (), want
    return all(h == w or h == 1 or w == 1 for h, w in zip(have[::-1], want[::-1]))


# User rules see one cotangent at a time, so jacobian walks rows one by one through them.
CUSTOM = defvjp_all(primitive("custom_gradient", None, ("x",), unify=(), batchable=False),
                    _user_grads)


def custom_gradient(f):
    """Decorate ``f(*x) -> (y, grad_fn)`` so that gradients of ``y`` use ``grad_fn(upstream)``,
    which returns one gradient (or ``None``) per input. Works with nested tapes: the ops in
    ``grad_fn`` are recorded by any outer tape.

    Examples
    --------
    >>> import gputape as gt
    >>> @gt.custom_gradient
    ... def log1pexp(x):
    ...     e = gt.exp(x)
    ...     def grad(upstream):
    ...         return upstream * (1 - 1 / (1 + e))
    ...     return gt.log(1 + e), grad
    >>> x = gt.constant(10.0)
    >>> with gt.GradientTape() as tape:
    ...     tape.watch(x)
    ...     y = log1pexp(x)
    >>> round(float(tape.gradient(y, x)), 4)
    1.0
    """

    if not callable(f):
        raise ArgumentTypeError(
            f"custom_gradient: expects a function, got {type(f).__name__} {f!r:.40}; hint: use "
            f"it as a decorator, @gt.custom_gradient above `def f(x): ... return y, grad_fn`"
        )

    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        inputs = [_read(a) for a in args]
        tapes = recording.tapes
        active = list(tapes)
        tapes.clear()
        try:
            result = f(*inputs, **kwargs)
        finally:
            tapes.extend(active)
        if not (isinstance(result, tuple) and len(result) == 2 and callable(result[1])):
            raise GradientRuleError(
                f"custom_gradient: {f.__name__!r} must return a pair (y, grad_fn), got "
                f"{type(result).__name__}; hint: end it with `return y, grad_fn` where "
                f"grad_fn(upstream) returns the input gradients"
            )
        y, grad_fn = result
        if not isinstance(y, Tensor):
            y = convert_to_tensor(y)
        output = Tensor._wrap(y._data)
        if tapes and output.dtype.kind in "fc":
            record(tapes, CUSTOM, inputs, {"name": f.__name__, "grad_fn": grad_fn}, output)
        return output

    return wrapper


def _read(value) -> Tensor:
    if isinstance(value, Variable):
        note_variable_read(value)
        return value._snapshot()
    return convert_to_tensor(value)
