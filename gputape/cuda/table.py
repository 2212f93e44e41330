"""The CUDA backend's one table: what it registers under which primitive, per fused op.

:func:`route` registers every row for one array namespace (``"cupy"``, at import; the tests
also route ``"numpy"`` to run the fused rules without a GPU), with the kernels for ``"cupy"``;
:func:`unroute` removes exactly the same rows. Every registration is made ``fused=True``, so
``GPUTAPE_FUSED=0`` turns them all off at once. Each kernel override falls back to the generic
forward when the kernels do not apply (see :func:`gputape.cuda.launch.map_reduce`), so results
never depend on whether fusion happened beyond summation order.

Adding a fused op takes its element map in ``kernels/gt_math.cuh`` and one ``GT_DEFINE_...``
line in a ``.cu`` file, its kernel's entry in :mod:`gputape.cuda.kernels`, and here one row:
a :class:`Gradient` for a fused gradient primitive (declared in :mod:`gputape.cuda.fused` with
its generic map and its rules), or a :class:`FusedOp` for an op whose gradient uses them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..core import registry
from ..ops import reduction
from . import fused, pending
from .kernels import MAP_REDUCE, ONE_PASS, MapReduce, OnePass
from .launch import map_reduce, sum_with_grads

__all__ = ["route", "unroute", "entry_points", "GRADIENTS", "FUSED_OPS"]


@dataclass(frozen=True)
class Gradient:
    """A primitive whose ``"cupy"`` forward is one map-reduce kernel (its generic forward is the
    same map then ``sum_to``)."""

    primitive: str
    kernel: MapReduce


@dataclass(frozen=True)
class FusedOp:
    """An op fused on the GPU: its gradient from the fused gradient primitives (``joint_rule``),
    its result left pending while a tape records, and ``reduce_sum`` of that pending result
    computed from its inputs: ``pattern`` (generic) or ``pattern_kernel`` (CUDA), over every
    axis also with the inputs' gradients in one pass (``one_pass`` generic, ``one_pass_cuda``
    launching ``one_pass_kernels``) for operands ``fits`` accepts."""

    primitive: str
    joint_rule: Callable
    pattern: Callable
    pattern_kernel: MapReduce
    one_pass: Callable
    one_pass_cuda: Callable
    one_pass_kernels: "tuple[OnePass, ...]"
    fits: Callable


# -- the CUDA forms --------------------------------------------------------------------------


def _kernel_forward(kernel: MapReduce, generic):
    def forward(xp, *arrays, shape, batch):
        out = map_reduce(kernel, list(arrays), shape, batch)
        if out is None:
            return generic(xp, *arrays, shape=shape, batch=batch)
        return out[0] if kernel.outputs == 1 else out

    return forward


def _sum_over_axes(kernel: MapReduce, arrays: list, axes: tuple, keepdims: bool):
    """The kernel's map of ``arrays`` summed over ``axes``, or None where no kernel applies."""
    shape = tuple(np.broadcast_shapes(*(a.shape for a in arrays)))
    kept = tuple(1 if i in axes else n for i, n in enumerate(shape))
    out = map_reduce(kernel, arrays, kept)
    if out is None:
        return None
    if keepdims:
        return out[0]
    return out[0].reshape(tuple(n for i, n in enumerate(shape) if i not in axes))


def _sum_to(xp, x, shape, batch):
    out = map_reduce(MAP_REDUCE["sum"], [x], shape, batch)
    return reduction._sum_to_forward(xp, x, shape, batch) if out is None else out[0]


def _reduce_sum(xp, x, axes, keepdims):
    out = _sum_over_axes(MAP_REDUCE["sum"], [x], axes, keepdims) if axes else None
    return reduction._sum_forward(xp, x, axes, keepdims) if out is None else out


def _pattern_cuda(op: FusedOp):
    def forward(xp, *arrays, axes, keepdims):
        out = _sum_over_axes(op.pattern_kernel, list(arrays), axes, keepdims)
        return op.pattern(xp, *arrays, axes=axes, keepdims=keepdims) if out is None else out

    return forward


def _one_pass_multiply(xp, x, y, wants, scale):
    done = sum_with_grads(ONE_PASS["sum_grad_mul"], x, y, tuple(wants), scale=scale)
    return None if done is None else (done[0], done[1])


def _one_pass_square(xp, x, wants, scale):
    done = sum_with_grads(ONE_PASS["sum_grad_square"], x, None, (True, False), scale=scale)
    return None if done is None else (done[0], done[1][:1])


def _one_pass_pow(xp, x, p, wants, scale):
    kernel = ONE_PASS["sum_grad_pow_p" if wants[1] else "sum_grad_pow"]
    done = sum_with_grads(kernel, x, p, (wants[0], False), second_sum=wants[1], scale=scale)
    return None if done is None else (done[0], [done[1][0], done[2]])


# -- the table -------------------------------------------------------------------------------

GRADIENTS = (
    Gradient("mul_grad", MAP_REDUCE["mul"]),
    Gradient("mul_grad_pair", MAP_REDUCE["mul_pair"]),
    Gradient("square_grad", MAP_REDUCE["square_grad"]),
    Gradient("pow_grad_x", MAP_REDUCE["pow_grad_x"]),
    Gradient("pow_grad_p", MAP_REDUCE["pow_grad_p"]),
)
FUSED_OPS = (
    # The one pass covers x and y of one shape (no broadcasting between them) ...
    FusedOp("multiply", fused.multiply_rule, fused.sum_of_product, MAP_REDUCE["sum_product"],
            fused.one_pass_multiply, _one_pass_multiply, (ONE_PASS["sum_grad_mul"],),
            lambda x, y: x.shape == y.shape),
    FusedOp("square", fused.square_rule, fused.sum_of_square, MAP_REDUCE["sum_square"],
            fused.one_pass_square, _one_pass_square, (ONE_PASS["sum_grad_square"],),
            lambda x: True),
    # ... and a 0-d exponent.
    FusedOp("pow", fused.pow_rule, fused.sum_of_power, MAP_REDUCE["sum_power"],
            fused.one_pass_pow, _one_pass_pow,
            (ONE_PASS["sum_grad_pow"], ONE_PASS["sum_grad_pow_p"]), lambda x, p: p.ndim == 0),
)
# The reductions whose rules pass a known (filled) cotangent on, and whose pending operand may
# be summed from its inputs: (primitive, joint rule, shortcut).
REDUCTIONS = (
    ("reduce_sum", fused.reduce_sum_rule, fused.sum_shortcut),
    ("reduce_mean", fused.reduce_mean_rule, fused.mean_shortcut),
)
# Primitives whose "cupy" forward is the plain sum kernel.
SUMS = (("sum_to", _sum_to), ("reduce_sum", _reduce_sum))


def route(xp_name: str) -> None:
    """Register every row of the table for arrays of ``xp_name`` (with the kernels: ``"cupy"``).

    Imports nothing from CuPy."""
    cuda = xp_name == "cupy"
    for name, rule, shortcut in REDUCTIONS:
        registry.register_joint_rule(name, xp_name, rule, fused=True)
        registry.register_shortcut(name, xp_name, shortcut, fused=True)
    for op in FUSED_OPS:
        registry.register_joint_rule(op.primitive, xp_name, op.joint_rule, fused=True)
        registry.register_shortcut(op.primitive, xp_name, pending.defer_while_recorded,
                                   fused=True)
        fused.PATTERN_SUMS[(op.primitive, xp_name)] = fused.PatternSum(
            _pattern_cuda(op) if cuda else op.pattern,
            op.one_pass_cuda if cuda else op.one_pass, op.fits)
    if cuda:
        for name, forward in SUMS:
            registry.implement(name, xp_name, forward, fused=True)
        for row in GRADIENTS:
            generic = registry.REGISTRY[row.primitive].forward
            registry.implement(row.primitive, xp_name, _kernel_forward(row.kernel, generic),
                               fused=True)


def unroute(xp_name: str) -> None:
    """Remove exactly what :func:`route` registered for ``xp_name``."""
    rules = ("joint_rules_for", "shortcuts")
    for name, _, _ in REDUCTIONS:
        registry.unregister(name, xp_name, rules)
    for op in FUSED_OPS:
        registry.unregister(op.primitive, xp_name, rules)
        fused.PATTERN_SUMS.pop((op.primitive, xp_name), None)
    if xp_name == "cupy":
        for name in [name for name, _ in SUMS] + [row.primitive for row in GRADIENTS]:
            registry.unregister(name, xp_name, ("implementations",))


def entry_points() -> dict:
    """``{module: set of kernel names}``: every kernel the table's rows can launch.

    >>> sorted(entry_points()["sum"])[:2]
    ['gt_finish_f32', 'gt_finish_f64']
    """
    kernels = [MAP_REDUCE["sum"], *(row.kernel for row in GRADIENTS)]
    for op in FUSED_OPS:
        kernels += [op.pattern_kernel, *op.one_pass_kernels]
    names: dict = {}
    for kernel in kernels:
        names.setdefault(kernel.module, set()).update(kernel.entry_points())
    return names
