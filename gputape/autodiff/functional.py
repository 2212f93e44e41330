"""Function transforms: gradients of Python functions, nestable for higher orders."""

from __future__ import annotations

import functools
import inspect
import numbers

from ..core import nest
from ..core.errors import ArgumentError, ArgumentTypeError
from ..core.tensor import Tensor, convert_to_tensor
from .forward import ForwardAccumulator
from .tape import GradientTape

__all__ = ["gradients_function", "value_and_gradients_function", "grad", "value_and_grad",
           "hessian", "jacobian", "vjp", "jvp", "jacfwd", "vectorized_map"]


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


def _inexact(op: str, f, tensors, positions) -> None:
    """JAX's rule for its transforms: each differentiated argument must be floating or
    complex; an integer one is a TypeError, not a silent None or zero."""
    for i in positions:
        if tensors[i].dtype.kind not in "fc":
            raise ArgumentTypeError(
                f"{op}: argument {i} of {_name(f)} is {tensors[i].dtype} (shape "
                f"{tensors[i].shape}); {op} differentiates floating or complex inputs only; "
                f"hint: pass a float, e.g. 3.0 rather than 3, or gt.cast(x, gt.float32) "
                f"(gt.gradients_function gives None for integer arguments, as TF does)"
            )


def _value_and_grads(f, args, kwargs, positions, op=None, has_aux=False):
    tensors = [a if isinstance(a, Tensor) else convert_to_tensor(a) for a in args]
    with GradientTape() as tape:
        for i in positions:
            if tensors[i]._data.dtype.kind in "fc":
                tape.watch(tensors[i])
            elif op is not None:  # the JAX-named transforms refuse what TF's lets be None
                _inexact(op, f, tensors, positions)
        value = f(*tensors, **kwargs)
    aux = None
    if has_aux:
        value, aux = _split_aux(op, f, value)
    grads = tape.gradient(value, [tensors[i] for i in positions])
    return (value, aux) if has_aux else value, grads


def _split_aux(op: str, f, result):
    """``(output, aux)`` from what a ``has_aux=True`` function returned."""
    if not (isinstance(result, (tuple, list)) and len(result) == 2):
        raise ArgumentTypeError(
            f"{op}: with has_aux=True, {_name(f)} must return a pair (output, aux), got "
            f"{type(result).__name__}"
            f"{f' of length {len(result)}' if isinstance(result, (tuple, list)) else ''}; "
            f"hint: `return loss, aux` (aux: anything to carry along, not differentiated)"
        )
    return result[0], result[1]


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


def value_and_grad(f, argnums=0, has_aux=False):
    """``f`` turned into a function returning ``(f(*args), gradient)`` w.r.t. ``argnums``
    (an int: one gradient; a tuple: a tuple of them). The differentiated arguments must be
    floating or complex (an integer one is a TypeError, as in JAX).

    With ``has_aux=True``, ``f`` returns ``(output, aux)`` and the result is
    ``((output, aux), gradient)``: ``aux`` rides along, not differentiated (JAX's contract).

    Examples
    --------
    >>> import gputape as gt
    >>> value, g = gt.value_and_grad(lambda x, y: x * y, argnums=1)(2.0, 5.0)
    >>> float(value), float(g)
    (10.0, 2.0)
    >>> (loss, n), g = gt.value_and_grad(lambda x: (x * x, "aux"), has_aux=True)(3.0)
    >>> float(loss), n, float(g)
    (9.0, 'aux', 6.0)
    """
    return _value_and_grad("value_and_grad", f, argnums, has_aux)


def _value_and_grad(op: str, f, argnums, has_aux=False):
    _callable(op, f)
    single = isinstance(argnums, numbers.Integral)
    wanted = _argnums(op, argnums)

    @functools.wraps(f)
    def decorated(*args, **kwargs):
        positions = _check_positions(op, f, wanted, len(args))
        value, grads = _value_and_grads(f, args, kwargs, positions, op, bool(has_aux))
        return value, (grads[0] if single else tuple(grads))

    return decorated


def grad(f, argnums=0, has_aux=False):
    """``f`` turned into a function returning its gradient w.r.t. ``argnums``; with
    ``has_aux=True`` (``f`` returns ``(output, aux)``), ``(gradient, aux)``.

    Examples
    --------
    >>> import gputape as gt
    >>> float(gt.grad(gt.grad(lambda x: x ** 3))(2.0))
    12.0
    >>> g, aux = gt.grad(lambda x: (x ** 2, {"x": float(x)}), has_aux=True)(3.0)
    >>> float(g), aux
    (6.0, {'x': 3.0})
    """
    value_and_gradient = _value_and_grad("grad", f, argnums, has_aux)

    @functools.wraps(f)
    def decorated(*args, **kwargs):
        value, gradient = value_and_gradient(*args, **kwargs)
        return (gradient, value[1]) if has_aux else gradient

    return decorated


def vjp(f, *primals, has_aux=False):
    """``f``'s value at ``primals`` and its pullback: ``vjp(f, *primals) -> (out, pullback)``
    (JAX's name and contract), where ``pullback(cotangent)`` returns a tuple with one
    vector-Jacobian product per primal, ``cotangent`` shaped like ``out`` (a nest of tensors
    where ``out`` is one). The pullback can be called any number of times, and under an outer
    tape it is differentiable again. Primals must be floating or complex (an integer one is a
    TypeError: JAX gives it a ``float0`` cotangent, a dtype gputape does not have); one that
    ``out`` does not depend on gets zeros. The cotangent must have the output's structure,
    shapes and dtypes. With ``has_aux=True``, ``f`` returns ``(out, aux)`` and the result is
    ``(out, pullback, aux)``.

    Examples
    --------
    >>> import gputape as gt
    >>> out, pullback = gt.vjp(lambda x, y: x * y, 2.0, 5.0)
    >>> float(out), [float(g) for g in pullback(gt.constant(1.0))]
    (10.0, [5.0, 2.0])
    >>> [float(g) for g in pullback(gt.constant(3.0))]
    [15.0, 6.0]
    """
    _callable("vjp", f)
    tensors = [p if isinstance(p, Tensor) else convert_to_tensor(p) for p in primals]
    _inexact("vjp", f, tensors, range(len(tensors)))
    tape = GradientTape(persistent=True)
    with tape:
        tape.watch(tensors)
        out = f(*tensors)
    aux = None
    if has_aux:
        out, aux = _split_aux("vjp", f, out)
    flat_out = nest.flatten(out)

    def pullback(cotangent):
        flat = nest.flatten(cotangent)
        if len(flat) != len(flat_out) or not _same_structure(cotangent, out):
            raise ArgumentError(
                f"vjp: the pullback of {_name(f)} was given {len(flat)} cotangent(s) in a "
                f"{type(cotangent).__name__} for {len(flat_out)} output(s) in a "
                f"{type(out).__name__}; hint: give a cotangent shaped like the output (the "
                f"same nest of tensors)"
            )
        for i, (c, o) in enumerate(zip(flat, flat_out)):
            shape, dtype = getattr(c, "shape", None), getattr(c, "dtype", None)
            if shape is not None and tuple(shape) != tuple(o.shape):
                raise ArgumentError(
                    f"vjp: cotangent {i} for {_name(f)} has shape {tuple(shape)} but output "
                    f"{i} has shape {tuple(o.shape)}; hint: a cotangent has its output's shape"
                )
            if isinstance(c, Tensor) and dtype != o.dtype:
                raise ArgumentError(
                    f"vjp: cotangent {i} for {_name(f)} is {dtype} but output {i} is "
                    f"{o.dtype}; hint: a cotangent has its output's dtype: gt.cast(c, "
                    f"gt.{o.dtype})"
                )
        grads = tape.gradient(flat_out, tensors, output_gradients=flat,
                              unconnected_gradients="zero")
        return tuple(grads)

    return (out, pullback, aux) if has_aux else (out, pullback)


def jacobian(f, argnums=0, parallel_iterations=None):
    """``f`` turned into a function returning its Jacobian w.r.t. argument ``argnums`` by
    reverse mode: shape ``out.shape + x.shape`` (``tape.jacobian``'s, with its
    ``parallel_iterations``: rows per backward pass, by default as many as fit the memory
    budget).

    Examples
    --------
    >>> import gputape as gt
    >>> gt.jacobian(lambda x: x ** 2)(gt.constant([1.0, 2.0])).numpy()
    array([[2., 0.],
           [0., 4.]], dtype=float32)
    """
    _callable("jacobian", f)
    _one_argnum("jacobian", argnums)

    @functools.wraps(f)
    def decorated(*args, **kwargs):
        tensors, x = _differentiated("jacobian", f, args, argnums)
        with GradientTape() as tape:
            tape.watch(x)
            out = f(*tensors, **kwargs)
        return tape.jacobian(out, x, unconnected_gradients="zero",
                             parallel_iterations=parallel_iterations)

    return decorated


def _differentiated(op: str, f, args, argnums: int):
    """``args`` as tensors, and the one ``op`` differentiates (checked: in range, inexact)."""
    tensors = [a if isinstance(a, Tensor) else convert_to_tensor(a) for a in args]
    position = _check_positions(op, f, [argnums], len(args))
    _inexact(op, f, tensors, position)
    return tensors, tensors[position[0]]


def _one_argnum(op: str, argnums) -> None:
    if isinstance(argnums, bool) or not isinstance(argnums, numbers.Integral):
        raise ArgumentTypeError(
            f"{op}: argnums must be one int, got {type(argnums).__name__} {argnums!r:.40}; "
            f"hint: take one per argument, e.g. argnums=0"
        )


def hessian(f, argnums=0, parallel_iterations=None):
    """``f`` turned into a function returning its Hessian w.r.t. argument ``argnums``:
    shape ``x.shape + x.shape`` (from nested tapes and a vectorized jacobian, in chunks of
    ``parallel_iterations`` rows, by default as many as fit the memory budget:
    ``GPUTAPE_JACOBIAN_BYTES``, 256 MiB unless set).

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

        tensors, x = _differentiated("hessian", f, args, argnums)
        with GradientTape() as outer:
            outer.watch(x)
            with GradientTape() as inner:
                inner.watch(x)
                y = f(*tensors, **kwargs)
            g = inner.gradient(y, x)
        if g is None:
            return zeros(x.shape + x.shape, dtype=x.dtype, device=x.device)
        return outer.jacobian(g, x, unconnected_gradients="zero",
                              parallel_iterations=parallel_iterations)

    return decorated


def jvp(f, primals, tangents):
    """``(f(*primals), J t)``: ``f``'s value and its Jacobian-vector product along
    ``tangents`` (JAX's ``jax.jvp``: ``primals`` and ``tangents`` are tuples, one tangent per
    primal, of its shape). The output's tangent has the output's structure; parts the primals
    do not reach get zeros. Primals must be floating or complex.

    Examples
    --------
    >>> import gputape as gt
    >>> y, dy = gt.jvp(lambda x: gt.sin(x) * x, (0.0,), (1.0,))
    >>> float(y), float(dy)  # d/dx x sin x = sin x + x cos x
    (0.0, 0.0)
    >>> float(gt.jvp(lambda x, y: x * y, (2.0, 5.0), (1.0, 1.0))[1])
    7.0
    """
    _callable("jvp", f)
    primals, tangents = _pair_of_tuples("jvp", primals, tangents)
    tensors = [p if isinstance(p, Tensor) else convert_to_tensor(p) for p in primals]
    _inexact("jvp", f, tensors, range(len(tensors)))
    with ForwardAccumulator(tensors, list(tangents)) as accumulator:
        out = f(*tensors)
    return out, accumulator.jvp(out, unconnected_gradients="zero")


def jacfwd(f, argnums=0):
    """``f`` turned into a function returning its Jacobian w.r.t. argument ``argnums`` by
    forward mode (JAX's ``jax.jacfwd``): shape ``out.shape + x.shape``, one column per input
    element, all columns in one vectorized pass.

    Examples
    --------
    >>> import gputape as gt
    >>> gt.jacfwd(lambda x: x ** 2)(gt.constant([1.0, 2.0])).numpy()
    array([[2., 0.],
           [0., 4.]], dtype=float32)
    """
    _callable("jacfwd", f)
    _one_argnum("jacfwd", argnums)

    @functools.wraps(f)
    def decorated(*args, **kwargs):
        from ..ops import reshape, transpose, zeros

        tensors, x = _differentiated("jacfwd", f, args, argnums)
        with GradientTape(persistent=True) as inner:
            inner.watch(x)
            out = f(*tensors, **kwargs)
        # J^T u is linear in u; its Jacobian w.r.t. u, x.size rows in one vectorized pass, is
        # J transposed (the two-reverse-passes form of forward mode, as in ForwardAccumulator)
        u = Tensor._wrap(out.device.xp.zeros_like(out._data))
        with GradientTape() as linear:
            linear.watch(u)
            pulled = inner.gradient(out, x, output_gradients=u)
        if pulled is None:
            return zeros(out.shape + x.shape, dtype=out.dtype, device=out.device)
        columns = linear.jacobian(pulled, u, unconnected_gradients="zero")  # x.shape + out.shape
        n_in, n_out = len(x.shape), len(out.shape)
        order = list(range(n_in, n_in + n_out)) + list(range(n_in))
        return reshape(transpose(columns, order), out.shape + x.shape)

    return decorated


def _same_structure(a, b) -> bool:
    """Whether nests ``a`` and ``b`` have the same containers (types, lengths, keys)."""
    if isinstance(a, (list, tuple, dict)) or isinstance(b, (list, tuple, dict)):
        if type(a) is not type(b) or len(a) != len(b):
            return False
        if isinstance(a, dict):
            return a.keys() == b.keys() and all(_same_structure(a[k], b[k]) for k in a)
        return all(_same_structure(x, y) for x, y in zip(a, b))
    return True


def _pair_of_tuples(op: str, primals, tangents):
    if not isinstance(primals, (tuple, list)) or not isinstance(tangents, (tuple, list)):
        raise ArgumentTypeError(
            f"{op}: primals and tangents must be tuples (one entry per argument), got "
            f"{type(primals).__name__} and {type(tangents).__name__}; hint: "
            f"{op}(f, (x,), (v,)) for one argument"
        )
    if len(primals) != len(tangents):  # a TypeError, as JAX's
        raise ArgumentTypeError(
            f"{op}: {len(primals)} primal(s) but {len(tangents)} tangent(s); hint: one tangent "
            f"per primal"
        )
    return primals, tangents


def vectorized_map(fn, elems, fallback_to_while_loop=True, warn=True):
    """``fn`` applied to each slice of ``elems`` along its first axis, the results stacked
    (``tf.vectorized_map``): ``elems`` is a tensor or a nest of tensors sharing their first
    dimension, and ``fn`` receives one slice (or the nest of slices) at a time. Gradients flow
    through to ``elems`` and to whatever ``fn`` reads.

    gputape runs ``fn`` once per slice (TensorFlow's fallback, a loop, without its attempt
    to vectorize first: that needs batching rules per op, which gputape does not have yet);
    where ``fn``'s ops accept a leading batch dimension, calling ``fn`` on the whole batch is
    faster. ``fallback_to_while_loop`` and ``warn`` are accepted for TensorFlow's signature.

    Examples
    --------
    >>> import gputape as gt
    >>> x = gt.constant([[1.0, 2.0], [3.0, 4.0]])
    >>> gt.vectorized_map(lambda row: gt.reduce_sum(row * row), x).numpy()
    array([ 5., 25.], dtype=float32)
    """
    from ..ops import stack

    _callable("vectorized_map", fn)
    flat = [e if isinstance(e, Tensor) else convert_to_tensor(e) for e in nest.flatten(elems)]
    if not flat:
        raise ArgumentError(
            "vectorized_map: elems holds no tensor; hint: pass a tensor (or a nest of them) "
            "whose first axis runs over the examples"
        )
    sizes = {e.shape[0] if e.ndim else None for e in flat}
    if None in sizes or len(sizes) != 1:
        raise ArgumentError(
            f"vectorized_map: every tensor of elems needs the same first dimension, got shapes "
            f"{[e.shape for e in flat]}; hint: the first axis runs over the examples"
        )
    (count,) = sizes
    results = [fn(nest.pack_as(elems, [e[i] for e in flat])) for i in range(count)]
    if not results:
        raise ArgumentError(
            "vectorized_map: elems has no example (a first dimension of 0), so the shape of "
            "fn's result is unknown; hint: call it on at least one example"
        )
    pieces = [nest.flatten(r) for r in results]
    return nest.pack_as(results[0], [stack([p[j] for p in pieces])
                                     for j in range(len(pieces[0]))])
