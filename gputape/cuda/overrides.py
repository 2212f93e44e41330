"""The CUDA kernels registered as overrides of the generic forwards for ``"cupy"`` arrays.

Each override falls back to the generic forward when the kernels do not apply (see
:func:`gputape.cuda.launch.map_reduce`), so results never depend on whether fusion happened
beyond summation order.
"""

from __future__ import annotations

import numpy as np

from ..ops import fused, reduction
from ..registry import REGISTRY, register_override
from .launch import map_reduce

__all__ = ["install"]


def _fused(module: str, kernel: str, generic, outputs: int = 1):
    def forward(xp, *arrays, shape, batch):
        outs = map_reduce(module, kernel, list(arrays), shape, batch, outputs)
        if outs is None:
            return generic(xp, *arrays, shape=shape, batch=batch)
        return outs[0] if outputs == 1 else xp.stack(outs)

    return forward


def _sum_to(xp, x, shape, batch):
    outs = map_reduce("sum", "sum", [x], shape, batch)
    return reduction._sum_to_forward(xp, x, shape, batch) if outs is None else outs[0]


def _reduce_sum(xp, x, axes, keepdims):
    if x.dtype.kind != "f" or not axes:
        return reduction._sum_forward(xp, x, axes, keepdims)
    kept = tuple(1 if i in axes else n for i, n in enumerate(x.shape))
    outs = map_reduce("sum", "sum", [x], kept)
    if outs is None:
        return reduction._sum_forward(xp, x, axes, keepdims)
    return outs[0] if keepdims else outs[0].reshape(
        tuple(n for i, n in enumerate(x.shape) if i not in axes))


def _pattern(kernel: str, name: str):
    generic = fused._generic_pattern(name)

    def forward(xp, *arrays, axes, keepdims):
        shape = tuple(np.broadcast_shapes(*(a.shape for a in arrays)))
        kept = tuple(1 if i in axes else n for i, n in enumerate(shape))
        outs = map_reduce("fused_sum", kernel, list(arrays), kept)
        if outs is None:
            return generic(xp, *arrays, axes=axes, keepdims=keepdims)
        return outs[0] if keepdims else outs[0].reshape(
            tuple(n for i, n in enumerate(shape) if i not in axes))

    return forward


def install() -> None:
    """Register every kernel override for ``"cupy"`` (imports nothing from CuPy)."""
    register_override("sum_to", "cupy", _sum_to)
    register_override("reduce_sum", "cupy", _reduce_sum)
    for name, module, kernel in [("mul_grad", "multiply_grad", "mul"),
                                 ("square_grad", "multiply_grad", "square_grad"),
                                 ("pow_grad_x", "power_grad", "pow_grad_x"),
                                 ("pow_grad_p", "power_grad", "pow_grad_p")]:
        register_override(name, "cupy", _fused(module, kernel, REGISTRY[name].forward))
    register_override("mul_grad_pair", "cupy",
                      _fused("multiply_grad", "mul_pair", REGISTRY["mul_grad_pair"].forward, 2))
    for name, kernel in [("multiply", "sum_product"), ("pow", "sum_power"),
                         ("square", "sum_square")]:
        fused.register_pattern_sum(name, "cupy", _pattern(kernel, name))
