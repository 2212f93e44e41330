"""Pending tensors: an elementwise result that is computed only when first read.

On a device with fused kernels, ``x * y``, ``x ** p`` and ``square(x)`` may return a tensor whose
array does not exist yet. If a ``reduce_sum`` is its first reader, the sum is computed straight
from ``x`` and ``y`` (one read of each, no intermediate written); any other reader computes the
array with the primitive's usual forward and the tensor becomes a plain :class:`Tensor`. The tape
records the same entries either way, so gradients (and gradients with respect to the pending
tensor itself) do not depend on whether the fusion happened.
"""

from __future__ import annotations

import numpy as np

from ..core.device import device_of
from ..core.state import recording
from ..core.tensor import Tensor, _ids

__all__ = ["PendingTensor", "defer", "defer_while_recorded", "pending_inputs"]

_SLOT = Tensor._data  # the slot descriptor, read past the property below


class _Recipe:
    """How to compute a pending tensor: the primitive, its input tensors and parameters."""

    __slots__ = ("prim", "inputs", "params", "xp", "shape", "dtype", "device", "kept")

    def __init__(self, prim, inputs, params, xp, shape, dtype, device, kept=None) -> None:
        self.prim, self.inputs, self.params, self.xp = prim, inputs, params, xp
        self.shape, self.dtype, self.device = shape, dtype, device
        # The Kept of the entry that recorded this result: gputape.cuda.fused.pattern_sum puts
        # (a cotangent value, the inputs' gradients for a cotangent holding it) there.
        self.kept = kept

    def run(self):
        forward = self.prim.implementation(self.xp.__name__)
        out = forward(self.xp, *[t._data for t in self.inputs], **self.params)
        return self.xp.asarray(out)  # NumPy ufuncs return scalars for 0-d inputs


class PendingTensor(Tensor):
    """A :class:`Tensor` whose array is computed on first read (then it is a plain Tensor)."""

    __slots__ = ()

    @property
    def _data(self):
        recipe = _SLOT.__get__(self, Tensor)
        if type(recipe) is _Recipe:
            array = recipe.run()
            _SLOT.__set__(self, array)
            self.__class__ = Tensor  # same layout: from now on, no indirection at all
            return array
        return recipe

    @property
    def shape(self) -> tuple:
        return _SLOT.__get__(self, Tensor).shape

    @property
    def dtype(self):
        return _SLOT.__get__(self, Tensor).dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        size = 1
        for n in self.shape:
            size *= n
        return size

    @property
    def device(self):
        return _SLOT.__get__(self, Tensor).device


def defer(prim, inputs, params: dict, xp, shape: tuple, dtype, device,
          kept=None) -> PendingTensor:
    """A pending result of ``prim`` on the tensors ``inputs`` (``kept``: its entry's Kept)."""
    tensor = object.__new__(PendingTensor)
    _SLOT.__set__(tensor, _Recipe(prim, tuple(inputs), params, xp, shape, dtype, device, kept))
    tensor._uid = next(_ids)
    return tensor


def pending_inputs(tensor) -> "_Recipe | None":
    """The recipe of a tensor that is still pending, else ``None`` (never computes anything)."""
    if type(tensor) is not PendingTensor:
        return None
    recipe = _SLOT.__get__(tensor, Tensor)
    return recipe if type(recipe) is _Recipe else None


def defer_while_recorded(prim, tensors, params: dict, xp, kept) -> "PendingTensor | None":
    """A pending result of ``prim`` when a tape follows one of its inputs (the tape keeps the
    inputs alive anyway, so waiting costs no memory) and they are floats of one dtype; else
    None. Registered under the primitives a pattern sum can fuse (``gputape.cuda.fused``)."""
    tapes = recording.tapes
    if not any(t._uid in tape._watched for tape in tapes for t in tensors):
        return None
    dtype = tensors[0]._data.dtype
    if dtype.kind != "f" or any(t._data.dtype != dtype for t in tensors):
        return None
    shape = np.broadcast_shapes(*(t._data.shape for t in tensors))
    return defer(prim, tensors, params, xp, shape, dtype, device_of(tensors[0]._data), kept)
