"""Launch a fused map-reduce kernel on CuPy arrays (see ``kernels/gt_reduce.cuh``).

``map_reduce`` returns ``None`` when a problem does not fit the kernels (a dtype other than
float32/float64, mixed dtypes, or a stride pattern :func:`layout.plan` cannot collapse); the
caller then runs the generic array code, so a fused op never refuses an input.
"""

from __future__ import annotations

import math

import numpy as np

from . import layout, loader
from .kernels import MapReduce, OnePass, finish_entry

__all__ = ["map_reduce", "kept_shape", "sum_with_grads"]

_THREADS = 256
_SUFFIX = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64"}


def kept_shape(full: tuple, shape: tuple, batch: int) -> tuple:
    """``full`` with 1 on the dimensions that summing ``full[batch:]`` down to ``shape`` removes
    (the leading ``batch`` dimensions are kept)."""
    extra = len(full) - batch - len(shape)
    kept = list(full)
    for i in range(batch, batch + extra):
        kept[i] = 1
    for i, n in enumerate(shape):
        if n == 1:
            kept[batch + extra + i] = 1
    return tuple(kept)


def map_reduce(kernel: MapReduce, operands: list, shape: tuple, batch: int = 0):
    """An array of shape ``(outputs,) + full[:batch] + shape``: for each of the kernel's
    ``outputs`` accumulators, the sum over the broadcast of ``operands`` (their broadcast shape
    is ``full``) of the kernel's element map. The outputs share one buffer, so a pair of
    gradients needs no copy to be stacked."""
    import cupy

    outputs = kernel.outputs
    dtype = operands[0].dtype
    suffix = _SUFFIX.get(dtype)
    if suffix is None or any(op.dtype != dtype for op in operands) or len(operands) > 3:
        return None
    full = tuple(np.broadcast_shapes(*(op.shape for op in operands)))
    out_shape = (outputs,) + full[:batch] + tuple(shape)
    kept = kept_shape(full, tuple(shape), batch)
    device_id = operands[0].device.id
    with cupy.cuda.Device(device_id):
        if math.prod(out_shape) == 0 or math.prod(full) == 0:
            return cupy.zeros(out_shape, dtype)
        strides = [layout.operand_strides(op.shape, op.strides, op.itemsize, full)
                   for op in operands]
        plan, partial = _plan_with_finish(full, kept, strides)
        if plan is None:
            return None
        out = cupy.empty((outputs,) + partial, dtype)
        _run(kernel, suffix, device_id, plan, operands, list(out))
        if partial != kept:  # the reduced dimensions the kernel kept: a small generic sum
            axes = tuple(1 + i for i, (a, b) in enumerate(zip(partial, kept)) if a != b)
            out = cupy.sum(out, axis=axes, keepdims=True)
        return out.reshape(out_shape)


def sum_with_grads(kernel: OnePass, x, other, writes: tuple, second_sum: bool = False,
                   scale: float = 1.0):
    """One pass of the one-pass ``kernel`` (``kernels/fused_sum.cu``) over every element of ``x``
    (C-contiguous) and ``other`` (of ``x``'s shape and C-contiguous, 0-d, or None):
    ``(sum, [gradient 0, gradient 1], second sum)``, the gradients (for a cotangent holding
    ``scale``) shaped like ``x`` where ``writes[i]`` asks for them (else None), the second sum
    only with ``second_sum``. Returns None where the kernel does not apply (the caller runs
    the generic code)."""
    import cupy

    dtype = x.dtype
    suffix = _SUFFIX.get(dtype)
    if suffix is None or not x.flags.c_contiguous:
        return None
    if other is None:
        other, step = x, 0
    elif other.dtype != dtype:
        return None
    elif other.ndim == 0:
        step = 0
    elif other.shape == x.shape and other.flags.c_contiguous:
        step = 1
    else:
        return None
    device_id = x.device.id
    n = x.size
    with cupy.cuda.Device(device_id):
        grads = [cupy.empty(x.shape, dtype) if want else None for want in writes]
        if n == 0:
            zero = cupy.zeros((), dtype)
            return zero, grads, zero.copy() if second_sum else None
        blocks = max(1, min(loader.multiprocessors(device_id) * 8, -(-n // (_THREADS * 8))))
        parts = [cupy.empty(blocks, np.float64) for _ in range(2)]
        null = np.uint64(0)
        loader.function(kernel.module, kernel.entry(suffix), device_id)(
            (blocks,), (_THREADS,),
            (x, other, np.int64(step), dtype.type(scale), np.int64(n), np.int64(blocks),
             *(null if g is None else g for g in grads), *parts),
        )
        finish = loader.function(kernel.module, finish_entry(suffix), device_id)
        sums = []
        for part in parts[: 2 if second_sum else 1]:
            total = cupy.empty((), dtype)
            finish((1,), (_THREADS,), (part, np.int64(blocks), np.int64(1), total))
            sums.append(total)
    return sums[0], grads, sums[1] if second_sum else None


def _plan_with_finish(full: tuple, kept: tuple, strides: list):
    """A plan for ``kept``, or for ``kept`` with its last reduced dimensions kept (summed
    afterwards) when operands' strides forbid merging the reduced dimensions, e.g. a full sum
    of ``x * y`` with ``y`` broadcast along rows. Returns ``(plan, shape the kernel writes)``."""
    partial = list(kept)
    while True:
        plan = layout.plan(full, tuple(partial), strides)
        if plan is not None:
            return plan, tuple(partial)
        reduced = [i for i, (f, k) in enumerate(zip(full, partial)) if k == 1 and f != 1]
        if len(reduced) < 2:
            return None, None
        partial[reduced[-1]] = full[reduced[-1]]


def _run(kernel: MapReduce, suffix: str, device_id: int, plan, operands, outs) -> None:
    import cupy

    null = np.uint64(0)
    args: list = []
    for i in range(3):
        if i < len(operands):
            args += [operands[i], *(np.int64(s) for s in plan.strides[i])]
        else:
            args += [null, np.int64(0), np.int64(0), np.int64(0)]
    K1, R, K2 = plan.K1, plan.R, plan.K2  # noqa: N806
    M = K1 * K2  # noqa: N806
    sms = loader.multiprocessors(device_id)
    inner = K2 == 1 and R >= _THREADS
    if inner:
        splits = max(1, min(-(-sms * 8 // K1), -(-R // (_THREADS * 4))))
        blocks = min(K1 * splits, sms * 64)
        shape_args = [np.int64(K1), np.int64(R), np.int64(splits)]
    else:
        splits = max(1, min(-(-sms * 2048 // M), -(-R // 64)))
        blocks = min(-(-M * splits // _THREADS), sms * 64)
        shape_args = [np.int64(K1), np.int64(R), np.int64(K2), np.int64(splits)]
    parts = [cupy.empty(splits * M, np.float64) for _ in outs] if splits > 1 else []
    out_args = [outs[0], outs[1] if len(outs) > 1 else null]
    part_args = [parts[0] if parts else null, parts[1] if len(parts) > 1 else null]
    loader.function(kernel.module, kernel.entry(inner, suffix), device_id)(
        (blocks,), (_THREADS,), (*args, *shape_args, *out_args, *part_args)
    )
    if parts:
        finish = loader.function(kernel.module, finish_entry(suffix), device_id)
        grid = (max(1, min(-(-M // _THREADS), sms * 64)),)
        for part, out in zip(parts, outs):
            finish(grid, (_THREADS,), (part, np.int64(splits), np.int64(M), out))
