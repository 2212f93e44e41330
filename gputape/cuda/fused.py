"""Fused gradient primitives and the rules that use them on the GPU.

Each fused primitive computes ``sum_to(map(...), shape)`` in one pass: the multiply, square and
pow gradients with their un-broadcast. Its forward below is the generic array code (it runs on
NumPy, and on CuPy with ``GPUTAPE_FUSED=0`` or where a kernel does not apply); the CUDA kernels
of ``kernels/`` override it for ``"cupy"``. Each has its own gradient rules, so an outer tape
differentiates through a fused gradient exactly as through the generic one.

The joint rules of ``multiply``, ``square`` and ``pow`` here call the fused primitives;
``reduce_sum`` of a pending result of those three is computed from its inputs
(:func:`pattern_sum`). :mod:`gputape.cuda.table` registers them for ``"cupy"`` (the tests also
for ``"numpy"``, to check every rule without a GPU).
"""

from __future__ import annotations

import numpy as np

from ..core import registry  # (fused_enabled)
from ..core.dispatch import apply
from ..core.registry import defvjp, primitive
from ..core.state import recording
from ..core.tensor import FilledTensor, Tensor, fill_of
from ..ops._axes import lead
from ..ops.elementwise import masked_log
from ..ops.reduction import _sum_to_forward
from . import pending

# -- the generic forwards: map, then sum to ``shape`` ------------------------------------------


def _masked_log_array(xp, x):
    positive = x > 0
    return xp.where(positive, xp.log(xp.where(positive, x, xp.ones((), x.dtype))),
                    xp.zeros((), x.dtype))


def _mul_map(xp, g, other):
    return xp.multiply(g, other)


def _square_map(xp, g, x):
    return xp.multiply(g, xp.multiply(x, x.dtype.type(2)))


def _pow_x_map(xp, g, x, p):
    return xp.multiply(xp.multiply(g, p), xp.power(x, p - p.dtype.type(1)))


def _pow_p_map(xp, g, x, p):
    return xp.multiply(xp.multiply(g, xp.power(x, p)), _masked_log_array(xp, x))


def _pair_map(xp, g, x, y, shape, batch):
    return xp.stack([_sum_to_forward(xp, xp.multiply(g, y), shape, batch),
                     _sum_to_forward(xp, xp.multiply(g, x), shape, batch)])


def _summed(array_map):
    def forward(xp, *arrays, shape, batch):
        return _sum_to_forward(xp, array_map(xp, *arrays), shape, batch)

    return forward


# -- their gradients, with gputape ops --------------------------------------------------------


def _lift(h, lead_shape, shape, batch, full):
    """Cotangent ``h`` of a ``sum_to(..., shape)`` reshaped to broadcast against ``full``
    (``lead_shape``: the extra leading dimensions ``h`` carries)."""
    from ..ops.shape import reshape

    extra = len(full) - batch - len(shape)
    return reshape(h, lead_shape + full[:batch] + (1,) * extra + shape)


def _full(*tensors) -> tuple:
    return tuple(np.broadcast_shapes(*(t.shape for t in tensors)))


def _masked_reciprocal(x):
    from ..ops.elementwise import greater, where

    positive = greater(x, 0)
    return where(positive, 1 / where(positive, x, 1), 0)


def _vjp(rule):
    """A VJP rule of a fused op, given ``rule(hl, *inputs)`` on the lifted cotangent ``hl``."""
    def vjp(index):
        def one(h, ans, *inputs, shape, batch):
            return rule(index, _lift(h, lead(h, ans), shape, batch, _full(*inputs)), *inputs)

        return one

    return vjp


def _mul_rule(i, hl, g, other):
    return hl * other if i == 0 else hl * g


def _square_rule(i, hl, g, x):
    return hl * (2 * x) if i == 0 else hl * g * 2


def _pow_x_rule(i, hl, g, x, p):
    from ..ops.elementwise import pow

    if i == 0:
        return hl * p * pow(x, p - 1)
    if i == 1:
        return hl * g * p * (p - 1) * pow(x, p - 2)
    a = pow(x, p - 1)
    return hl * g * a + hl * (g * p) * a * masked_log(x)


def _pow_p_rule(i, hl, g, x, p):
    from ..ops.elementwise import pow

    z = pow(x, p)
    if i == 0:
        return hl * z * masked_log(x)
    if i == 1:
        hg = hl * g
        return hg * p * pow(x, p - 1) * masked_log(x) + hg * z * _masked_reciprocal(x)
    return hl * g * z * masked_log(x) * masked_log(x)


def _declare(name, array_map, arg_names, rule):
    vjp = _vjp(rule)
    prim = primitive(name, _summed(array_map), arg_names)
    return defvjp(prim, *(vjp(i) for i in range(len(arg_names))))


MUL_GRAD = _declare("mul_grad", _mul_map, ("g", "other"), _mul_rule)
SQUARE_GRAD = _declare("square_grad", _square_map, ("g", "x"), _square_rule)
POW_GRAD_X = _declare("pow_grad_x", _pow_x_map, ("g", "x", "p"), _pow_x_rule)
POW_GRAD_P = _declare("pow_grad_p", _pow_p_map, ("g", "x", "p"), _pow_p_rule)


def _pair_vjp(index):
    from ..ops.indexing import getitem

    def one(h, ans, g, x, y, shape, batch):
        lead_shape = lead(h, ans)
        at = (slice(None),) * len(lead_shape)
        full = _full(g, x, y)
        h_gx = _lift(getitem(h, at + (0,)), lead_shape, shape, batch, full)
        h_gy = _lift(getitem(h, at + (1,)), lead_shape, shape, batch, full)
        if index == 0:
            return h_gx * y + h_gy * x
        return h_gy * g if index == 1 else h_gx * g

    return one


MUL_GRAD_PAIR = defvjp(primitive("mul_grad_pair", _pair_map, ("g", "x", "y")),
                       *(_pair_vjp(i) for i in range(3)))


# -- the fused gradient rules of multiply, square and pow ------------------------------------


def reduce_sum_rule(g, ans, inputs, params, needed, kept):
    from ..ops.reduction import _sum_vjp

    spread = _sum_vjp(g, ans, inputs[0], **params)
    known = fill_of(g)
    if known is not None:  # a known value spread over the input: the same value
        spread = FilledTensor.like(spread, known)
    return [spread]


def reduce_mean_rule(g, ans, inputs, params, needed, kept):
    from ..ops.reduction import _count, _mean_vjp

    x = inputs[0]
    spread = _mean_vjp(g, ans, x, **params)
    known = fill_of(g)
    if known is not None:  # the rule spreads g / count
        count = _count(x.shape, params["axes"])
        spread = FilledTensor.like(spread, _divided(known, x.dtype, count))
    return [spread]


def _divided(value: float, dtype, count: int) -> float:
    """``value / count`` as the rules compute it: both in ``dtype``, then divided."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.true_divide(dtype.type(value), dtype.type(count)))


def _target(g, ans, x):
    batch = g.ndim - ans.ndim
    return {"shape": x.shape, "batch": batch}


def _kept_gradients(g, ans, needed: list, kept) -> "list | None":
    """The inputs' gradients :func:`pattern_sum` kept for this entry (the walk hands ``kept``
    over only while no tape records it: they are constants to an outer tape), when ``g`` is
    known to hold, everywhere in ``ans``'s shape, the value they were computed for. Each kept
    set is handed out once (the walk may add into what it gets)."""
    if kept is None or kept.value is None:
        return None
    known = fill_of(g)
    if known is None or g.shape != ans.shape:
        return None
    scale, grads = kept.value
    if scale != known or any(need and grad is None for need, grad in zip(needed, grads)):
        return None
    kept.value = None
    return [Tensor._wrap(grad) if need else None for need, grad in zip(needed, grads)]


def multiply_rule(g, ans, inputs, params, needed, kept):
    handed = _kept_gradients(g, ans, needed, kept)
    if handed is not None:
        return handed
    x, y = inputs
    # The pair reads g, x and y once, but its two halves then depend on all three; while a tape
    # records this backward pass, separate ops keep TF's None for d(gx)/dx.
    if needed[0] and needed[1] and x.shape == y.shape and not recording.tapes:
        pair = apply(MUL_GRAD_PAIR, g, x, y, **_target(g, ans, x))
        return [pair[0], pair[1]]
    return [apply(MUL_GRAD, g, y, **_target(g, ans, x)) if needed[0] else None,
            apply(MUL_GRAD, g, x, **_target(g, ans, y)) if needed[1] else None]


def square_rule(g, ans, inputs, params, needed, kept):
    handed = _kept_gradients(g, ans, needed, kept)
    if handed is not None:
        return handed
    (x,) = inputs
    return [apply(SQUARE_GRAD, g, x, **_target(g, ans, x))]


def pow_rule(g, ans, inputs, params, needed, kept):
    handed = _kept_gradients(g, ans, needed, kept)
    if handed is not None:
        return handed
    x, p = inputs
    gp = None
    if needed[1] and recording.tapes:
        # While a tape records this backward pass, the generic rule: it reads z = x**p, as
        # TF's does, so d(dz/dp)/dz is what TF gives (the fused map recomputes x**p).
        from ..ops.elementwise import _pow_grad_p

        gp = _pow_grad_p(g, ans, x, p)
    elif needed[1]:
        gp = apply(POW_GRAD_P, g, x, p, **_target(g, ans, p))
    return [apply(POW_GRAD_X, g, x, p, **_target(g, ans, x)) if needed[0] else None, gp]


# -- reduce_sum of a pending elementwise result, straight from its inputs ---------------------
#
# What the backward pass of reduce_sum(x * y) writes when the sum's cotangent holds c (1 for the
# seed gradient() gives a scalar target, 1/count under a mean): d/dx = c y and d/dy = c x.
# Likewise c (2 x) for square(x), and for x ** p, (c p) x**(p-1) and the sum of (c x**p) log x
# (masked where x <= 0): the fused gradient maps above with g = c, so the same bits. The generic
# forms below run on NumPy (for the tests); CuPy's are kernels (gputape.cuda.table).


def sum_of_product(xp, x, y, axes, keepdims):
    return xp.sum(xp.multiply(x, y), axis=axes, keepdims=keepdims)


def sum_of_square(xp, x, axes, keepdims):
    return xp.sum(xp.multiply(x, x), axis=axes, keepdims=keepdims)


def sum_of_power(xp, x, p, axes, keepdims):
    return xp.sum(xp.power(x, p), axis=axes, keepdims=keepdims)


def one_pass_multiply(xp, x, y, wants, scale):
    c = x.dtype.type(scale)
    return xp.sum(xp.multiply(x, y)), [_mul_map(xp, c, y) if wants[0] else None,
                                       _mul_map(xp, c, x) if wants[1] else None]


def one_pass_square(xp, x, wants, scale):
    return xp.sum(xp.multiply(x, x)), [_square_map(xp, x.dtype.type(scale), x)]


def one_pass_pow(xp, x, p, wants, scale):
    c = x.dtype.type(scale)
    gx = _pow_x_map(xp, c, x, p) if wants[0] else None
    gp = xp.sum(_pow_p_map(xp, c, x, p)) if wants[1] else None
    return xp.sum(xp.power(x, p)), [gx, gp]


class PatternSum:
    """How ``reduce_sum`` of one op's pending result is computed on one array namespace:
    ``forward(xp, *arrays, axes, keepdims)``; and, over every axis, ``one_pass(xp, *arrays,
    wants, scale)`` giving the sum with the inputs' gradients for a cotangent of ``scale`` (or
    None where it does not apply), for operands ``fits(*arrays)`` accepts."""

    __slots__ = ("forward", "one_pass", "fits")

    def __init__(self, forward, one_pass, fits) -> None:
        self.forward, self.one_pass, self.fits = forward, one_pass, fits


PATTERN_SUMS: "dict[tuple, PatternSum]" = {}  # (primitive name, namespace): gputape.cuda.table


def _followed(tensor, tapes: list) -> bool:
    uid = tensor._uid
    return any(uid in tape._watched for tape in tapes)


def _sum_with_kept_gradients(recipe, arrays: list, tapes: list, scale: float):
    """``(sum, gradients)`` of a pending result summed over every axis, with the gradients
    (None where no tape follows the input) for a cotangent of ``scale``; None where that does
    not apply."""
    pattern = PATTERN_SUMS.get((recipe.prim.name, recipe.xp.__name__))
    if pattern is None or not pattern.fits(*arrays):
        return None
    wants = [_followed(t, tapes) for t in recipe.inputs]
    if not any(wants):
        return None
    xp = recipe.xp
    done = pattern.one_pass(xp, *arrays, wants=wants, scale=scale)
    if done is None:
        return None
    total, grads = done  # NumPy gives scalars for 0-d results
    return total, [None if grad is None else xp.asarray(grad) for grad in grads]


def pattern_sum(tensor, axes: tuple, keepdims: bool, mean: bool = False):
    """``reduce_sum(tensor, axes)`` (``reduce_mean`` with ``mean``) computed from the inputs
    of a pending ``tensor``, recorded as an ordinary ``reduce_sum`` (``reduce_mean``) of it;
    ``None`` when ``tensor`` is not pending or no fused forward applies.

    Over every axis while one tape records, the pass may also compute the gradients the
    backward pass would give the inputs for the cotangent a scalar loss most likely sends:
    1 for a sum (the default seed), 1/count for a mean. They are kept for the entry of the op
    that made the pending tensor (its :class:`~gputape.core.state.Kept`), whose fused rule
    returns them when its cotangent is known to hold that value (a
    :class:`~gputape.core.tensor.FilledTensor`): the inputs are read once for forward and
    gradient.
    """
    from ..ops.reduction import _count

    recipe = pending.pending_inputs(tensor)
    if recipe is None or not registry.fused_enabled():
        return None
    xp = recipe.xp
    pattern = PATTERN_SUMS.get((recipe.prim.name, xp.__name__))
    if pattern is None:
        return None
    arrays = [t._data for t in recipe.inputs]
    tapes = recording.tapes
    count = _count(recipe.shape, axes)
    kept = None
    # With one tape: under nested tapes the inner gradient is taken while the outer one
    # records, where gradients kept from the forward cannot be used.
    if len(tapes) == 1 and recipe.kept is not None and len(axes) == len(recipe.shape) and count:
        scale = _divided(1.0, recipe.dtype, count) if mean else 1.0
        kept = _sum_with_kept_gradients(recipe, arrays, tapes, scale)
    if kept is None:
        out = pattern.forward(xp, *arrays, axes=axes, keepdims=keepdims)
    else:
        out, grads = kept
        recipe.kept.value = (scale, grads)
        if keepdims:
            out = xp.reshape(out, (1,) * len(recipe.shape))
    if mean:  # as reduce_mean's forward: the sum, then one division
        out = xp.true_divide(out, count)
    return Tensor._wrap(xp.asarray(out))  # NumPy's sum gives a scalar for axis=None


def sum_shortcut(prim, tensors, params, xp, kept):
    return pattern_sum(tensors[0], params["axes"], params["keepdims"])


def mean_shortcut(prim, tensors, params, xp, kept):
    if tensors[0].dtype.kind not in "fc":  # an integer mean: a sum, then a division
        return None
    return pattern_sum(tensors[0], params["axes"], params["keepdims"], mean=True)
