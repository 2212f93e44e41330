"""Small helpers shared by the test modules."""

from __future__ import annotations

import numpy as np

import gputape as gt


def host(value) -> np.ndarray:
    """A NumPy copy of a tensor (or of anything array-like)."""
    return np.asarray(value.numpy() if isinstance(value, gt.Tensor) else value)


def tape_grads(fn, *xs):
    """Gradients of ``fn(*xs)`` with respect to every ``xs`` (all watched)."""
    with gt.GradientTape() as tape:
        for x in xs:
            tape.watch(x)
        y = fn(*xs)
    return tape.gradient(y, list(xs))
