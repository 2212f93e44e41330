"""``@custom_gradient``: a user function whose gradient the user defines (TensorFlow's form)."""

from __future__ import annotations

import functools
import inspect

from ..core.dispatch import note_variable_read, read_variable, record
from ..core.errors import (
    ArgumentTypeError,
    CustomGradientError,
    CustomGradientTypeError,
    GradientRuleError,
)
from ..core.registry import defvjp_all, primitive
from ..core.state import recording
from ..core.tensor import Tensor, Variable, convert_to_tensor

__all__ = ["custom_gradient", "recompute_grad"]


def _user_grads(g, ans, inputs, params):
    """The user's rule, which speaks TensorFlow's complex convention, inside the walk, which
    speaks the unconjugated one (see gputape.autodiff.backward._conj): a complex cotangent
    goes to it conjugated, and complex gradients come back conjugated."""
    if g.dtype.kind == "c" or any(x.dtype.kind == "c" for x in inputs):
        from ..ops import conj

        grads = _checked_user_grads(conj(g) if g.dtype.kind == "c" else g, ans, inputs, params)
        return [conj(d) if d is not None and d.dtype.kind == "c" else d for d in grads]
    return _checked_user_grads(g, ans, inputs, params)


def _checked_user_grads(g, ans, inputs, params):
    fn_name, grad_fn, variables = params["name"], params["grad_fn"], params["variables"]
    if variables:
        result = grad_fn(g, variables=variables)
        if not (isinstance(result, (list, tuple)) and len(result) == 2):
            raise CustomGradientError(
                f"custom_gradient: the gradient function of {fn_name!r} was given variables= "
                f"(the function reads {_names(variables)}) and must return a pair "
                f"(input_grads, variable_grads), got {type(result).__name__}; hint: end it with "
                f"`return input_grads, [one gradient per variable]`"
            )
        grads, variable_grads = result
        variable_grads = list(variable_grads) if isinstance(variable_grads, (list, tuple)) \
            else [variable_grads]
        if len(variable_grads) != len(variables):
            raise CustomGradientError(
                f"custom_gradient: the gradient function of {fn_name!r} returned "
                f"{len(variable_grads)} variable gradient(s) but the function reads "
                f"{len(variables)} trainable Variable(s) ({_names(variables)}); hint: return "
                f"one gradient (or None) per entry of `variables`, in order"
            )
    else:
        grads, variable_grads = grad_fn(g), []
    if isinstance(grads, Tensor) or not isinstance(grads, (list, tuple)):
        grads = [grads]
    arg_count = len(inputs) - len(variables)
    if len(grads) != arg_count:
        raise CustomGradientError(
            f"custom_gradient: the gradient function of {fn_name!r} returned {len(grads)} "
            f"gradient(s) but the function has {arg_count} tensor input(s); hint: return one "
            f"gradient (or None) per input, in order"
        )
    grads = [*grads, *variable_grads]
    out = []
    for i, (grad, x) in enumerate(zip(grads, inputs)):  # (the variables' reads come last)
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


def _names(variables) -> str:
    return ", ".join(repr(v.name) for v in variables)


def _accepts_variables(grad_fn) -> bool:
    """Whether ``grad_fn`` takes a ``variables`` keyword (by name, or through ``**kwargs``)."""
    try:
        parameters = inspect.signature(grad_fn).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature: let the call decide
        return True
    return any(p.name == "variables" and p.kind is not p.POSITIONAL_ONLY
               or p.kind is p.VAR_KEYWORD for p in parameters)


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

    When ``f`` reads trainable Variables (other than its arguments), ``grad_fn`` must take a
    ``variables`` keyword: it is called as ``grad_fn(upstream, variables=[...])`` and returns
    ``(input_grads, variable_grads)``, one variable gradient per entry, as in TensorFlow; a
    ``grad_fn`` without that keyword is a ``TypeError`` when ``f`` is called.

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

    A Variable read inside the function:

    >>> v = gt.Variable(3.0)
    >>> @gt.custom_gradient
    ... def scale(x):
    ...     def grad(upstream, variables):
    ...         return upstream * v, [upstream * x]
    ...     return x * v, grad
    >>> with gt.GradientTape() as tape:
    ...     tape.watch(x)
    ...     y = scale(x)
    >>> [float(g) for g in tape.gradient(y, [x, v])]
    [3.0, 10.0]
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
        read: list = []  # the trainable Variables f reads
        recording.variable_watchers.append(read)
        try:
            result = f(*inputs, **kwargs)
        finally:
            recording.variable_watchers.remove(read)
            tapes.extend(active)
        if not (isinstance(result, tuple) and len(result) == 2 and callable(result[1])):
            raise GradientRuleError(
                f"custom_gradient: {f.__name__!r} must return a pair (y, grad_fn), got "
                f"{type(result).__name__}; hint: end it with `return y, grad_fn` where "
                f"grad_fn(upstream) returns the input gradients"
            )
        y, grad_fn = result
        variables = [v for v in read if not any(v is a for a in args)]
        if variables and not _accepts_variables(grad_fn):
            raise CustomGradientTypeError(
                f"custom_gradient: {f.__name__!r} reads the Variable(s) {_names(variables)}, so "
                f"its gradient function must accept a keyword argument 'variables' (as "
                f"TensorFlow requires); hint: `def grad(upstream, variables): ... return "
                f"input_grads, [one gradient per variable]`"
            )
        if not isinstance(y, Tensor):
            y = convert_to_tensor(y)
        output = Tensor._wrap(y._data)
        if tapes and output.dtype.kind in "fc":
            inputs += [read_variable(v) for v in variables]
            record(tapes, CUSTOM, inputs,
                   {"name": f.__name__, "grad_fn": grad_fn, "variables": variables}, output)
        return output

    return wrapper


def _read(value) -> Tensor:
    if isinstance(value, Variable):
        note_variable_read(value)
        return value._snapshot()
    return convert_to_tensor(value)


def recompute_grad(f):
    """``f`` whose intermediate results are not kept for the gradient but computed again
    during the backward pass (``tf.recompute_grad``): a tape records one op from ``f``'s inputs
    to its output, and that op's gradient runs ``f`` once more under a tape of its own. Memory
    falls from every intermediate of ``f`` to its inputs and output, for one more forward pass;
    gradients are the same, to any order, and Variables read inside ``f`` get theirs. ``f``
    must compute the same values when run again (no fresh random numbers inside).

    Examples
    --------
    >>> import gputape as gt
    >>> block = gt.recompute_grad(lambda x: gt.tanh(gt.tanh(x) * 2.0))
    >>> x = gt.constant(0.5)
    >>> with gt.GradientTape() as tape:
    ...     tape.watch(x)
    ...     y = block(x)
    >>> round(float(tape.gradient(y, x)), 6)  # 2 (1 - tanh(2 tanh x)^2)(1 - tanh(x)^2)
    0.739528
    """
    from .tape import GradientTape

    if not callable(f):
        raise ArgumentTypeError(
            f"recompute_grad: expects a function, got {type(f).__name__} {f!r:.40}; hint: "
            f"gt.recompute_grad(block) or use it as a decorator"
        )

    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        def forward(*inputs):
            def grad(upstream, variables=()):
                with GradientTape(watch_accessed_variables=False) as again:
                    again.watch([*inputs, *variables])
                    output = f(*inputs, **kwargs)
                grads = again.gradient(output, [*inputs, *variables],
                                       output_gradients=upstream)
                return grads[:len(inputs)], grads[len(inputs):]

            def grad_of_inputs(upstream):
                return grad(upstream)[0]

            output = f(*inputs, **kwargs)
            return output, grad if recording.variable_watchers[-1] else grad_of_inputs

        forward.__name__ = getattr(f, "__name__", "recompute_grad")
        return custom_gradient(forward)(*args)

    return wrapper
