"""The CUDA kernels registered as overrides of the generic forwards for ``"cupy"`` arrays.

Each override falls back to the generic forward when the kernels do not apply (see
:func:`gputape.cuda.launch.map_reduce`), so results never depend on whether fusion happened
beyond summation order.
"""

from __future__ import annotations

import numpy as np

from ..core.registry import REGISTRY, implement
from ..ops import reduction
from . import fused
from .launch import map_reduce, map_reduce_names, one_pass_names, sum_with_grads

__all__ = ["install", "entry_points"]


def _fused(module: str, kernel: str, generic, outputs: int = 1):
    def forward(xp, *arrays, shape, batch):
        out = map_reduce(module, kernel, list(arrays), shape, batch, outputs)
        if out is None:
            return generic(xp, *arrays, shape=shape, batch=batch)
        return out[0] if outputs == 1 else out

    return forward


def _sum_to(xp, x, shape, batch):
    out = map_reduce("sum", "sum", [x], shape, batch)
    return reduction._sum_to_forward(xp, x, shape, batch) if out is None else out[0]


def _sum_over_axes(module: str, kernel: str, arrays: list, axes: tuple, keepdims: bool):
    """The kernel's map of ``arrays`` summed over ``axes``, or None where no kernel applies."""
    shape = tuple(np.broadcast_shapes(*(a.shape for a in arrays)))
    kept = tuple(1 if i in axes else n for i, n in enumerate(shape))
    out = map_reduce(module, kernel, arrays, kept)
    if out is None:
        return None
    if keepdims:
        return out[0]
    return out[0].reshape(tuple(n for i, n in enumerate(shape) if i not in axes))


def _reduce_sum(xp, x, axes, keepdims):
    out = _sum_over_axes("sum", "sum", [x], axes, keepdims) if axes else None
    return reduction._sum_forward(xp, x, axes, keepdims) if out is None else out


def _pattern(kernel: str, name: str):
    generic = fused._generic_pattern(name)

    def forward(xp, *arrays, axes, keepdims):
        out = _sum_over_axes("fused_sum", kernel, list(arrays), axes, keepdims)
        return generic(xp, *arrays, axes=axes, keepdims=keepdims) if out is None else out

    return forward


# Full sums with the inputs' gradients for a cotangent holding ``scale``, one pass
# (gputape.cuda.fused): (sum, [gradients]) or None where the kernel does not apply.


def _unit_multiply(xp, x, y, wants, scale):
    done = sum_with_grads("sum_grad_mul", x, y, tuple(wants), scale=scale)
    return None if done is None else (done[0], done[1])


def _unit_square(xp, x, wants, scale):
    done = sum_with_grads("sum_grad_square", x, None, (True, False), scale=scale)
    return None if done is None else (done[0], done[1][:1])


def _unit_pow(xp, x, p, wants, scale):
    kernel = "sum_grad_pow_p" if wants[1] else "sum_grad_pow"
    done = sum_with_grads(kernel, x, p, (wants[0], False), second_sum=wants[1], scale=scale)
    return None if done is None else (done[0], [done[1][0], done[2]])


# What install() registers, and so every kernel a GPU run can ask the loader for.
# Gradient primitives computed by a map-reduce kernel: (primitive, module, kernel, outputs).
_GRADIENT_MAPS = (
    ("mul_grad", "multiply_grad", "mul", 1),
    ("mul_grad_pair", "multiply_grad", "mul_pair", 2),
    ("square_grad", "multiply_grad", "square_grad", 1),
    ("pow_grad_x", "power_grad", "pow_grad_x", 1),
    ("pow_grad_p", "power_grad", "pow_grad_p", 1),
)
# Pattern sums reduce_sum(f(...)) of kernels/fused_sum.cu: (primitive f, map-reduce kernel,
# one-pass forward with gradients, the one-pass kernels that forward launches).
_PATTERN_SUMS = (
    ("multiply", "sum_product", _unit_multiply, ("sum_grad_mul",)),
    ("pow", "sum_power", _unit_pow, ("sum_grad_pow", "sum_grad_pow_p")),
    ("square", "sum_square", _unit_square, ("sum_grad_square",)),
)


def install() -> None:
    """Register every kernel override for ``"cupy"`` (imports nothing from CuPy)."""
    implement("sum_to", "cupy", _sum_to, fused=True)
    implement("reduce_sum", "cupy", _reduce_sum, fused=True)
    for name, module, kernel, outputs in _GRADIENT_MAPS:
        implement(name, "cupy", _fused(module, kernel, REGISTRY[name].forward, outputs), fused=True)
    for name, kernel, unit_forward, _ in _PATTERN_SUMS:
        fused.register_pattern_sum(name, "cupy", _pattern(kernel, name), unit_forward)


def entry_points() -> dict:
    """``{module: set of kernel names}``: every kernel the registered overrides can launch.

    >>> sorted(entry_points()["sum"])[:2]
    ['gt_finish_f32', 'gt_finish_f64']
    """
    names: dict = {"sum": set(map_reduce_names("sum"))}
    for _, module, kernel, _ in _GRADIENT_MAPS:
        names.setdefault(module, set()).update(map_reduce_names(kernel))
    for _, kernel, _, one_pass in _PATTERN_SUMS:
        names.setdefault("fused_sum", set()).update(map_reduce_names(kernel))
        for name in one_pass:
            names["fused_sum"].update(one_pass_names(name))
    return names
