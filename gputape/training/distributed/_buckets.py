"""Gradient bucketing: many small arrays travel in a few flat buffers, one collective each.

A collective costs a fixed latency plus bytes over bandwidth; 100 gradients of 40 kB pay the
latency 100 times unbucketed and a handful of times bucketed. Arrays are grouped by dtype and
device (a buffer has one of each), in order, into buffers of about ``bucket_bytes``.
"""

from __future__ import annotations

import contextlib

import numpy as np

__all__ = ["on_device", "plan", "pack", "unpack"]


def plan(arrays: list, bucket_bytes: int) -> "list[list[int]]":
    """Indices of ``arrays`` grouped into buckets (one dtype and device each, in order).

    An array larger than ``bucket_bytes`` travels alone; ``bucket_bytes <= 0`` means one
    array per bucket.
    """
    buckets: list = []
    open_bucket: dict = {}  # (dtype, device) -> (bucket, bytes so far)
    for i, array in enumerate(arrays):
        key = (array.dtype, _device_key(array))
        size = array.nbytes
        current = open_bucket.get(key)
        if bucket_bytes <= 0 or current is None or current[1] + size > bucket_bytes:
            current = ([], 0)
            buckets.append(current[0])
        current[0].append(i)
        open_bucket[key] = (current[0], current[1] + size)
    return buckets


def pack(arrays: list):
    """One flat array holding ``arrays`` one after the other (a view for a single array)."""
    xp = _namespace(arrays[0])
    if len(arrays) == 1:
        return xp.ascontiguousarray(arrays[0]).reshape(-1)
    return xp.concatenate([a.reshape(-1) for a in arrays])


def unpack(flat, like: list) -> list:
    """``pack``'s inverse: arrays shaped like ``like``, cut from ``flat``."""
    out, start = [], 0
    for array in like:
        end = start + array.size
        out.append(flat[start:end].reshape(array.shape))
        start = end
    return out


def on_device(array):
    """A context in which ``array``'s GPU is CuPy's current device (nothing for host arrays).

    CuPy allocates, launches and picks its stream on the current device, not on the device of
    the arrays it is given: work on a buffer of GPU N runs with GPU N current.
    """
    if isinstance(array, np.ndarray):
        return contextlib.nullcontext()
    import cupy

    return cupy.cuda.Device(array.device.id)


def _device_key(array):
    return "cpu" if isinstance(array, np.ndarray) else f"gpu:{array.device.id}"


def _namespace(array):
    if isinstance(array, np.ndarray):
        return np
    import cupy

    return cupy
