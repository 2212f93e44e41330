"""The fused route against the generic one, shared by the fused-kernel tests
(``tests/cuda_backend/test_fused*.py``): run a function once with fusion on and once with
``GPUTAPE_FUSED=0``, compare the results, and the edge inputs and strided views they use.
"""

from __future__ import annotations

import numpy as np
from helpers import host

import gputape as gt
from gputape.cuda import fused

TOL = {np.float32: dict(rtol=2e-5, atol=1e-5), np.float64: dict(rtol=1e-12, atol=1e-12)}
EDGE_X = np.array([0.0, -0.0, -1.5, -0.5, 0.5, 1.0, 2.0, 3.7, np.nan, np.inf, -np.inf])
EXPONENTS = [0.0, 1.0, 2.0, 3.0, -1.0, 0.5, 2.5]


def fused_and_generic(monkeypatch, fn, *arrays):
    """``fn(*tensors)`` -> list of tensors, once fused and once with GPUTAPE_FUSED=0."""
    results = []
    for flag in ("1", "0"):
        monkeypatch.setenv("GPUTAPE_FUSED", flag)
        with np.errstate(all="ignore"):  # the edge points divide by zero on purpose
            out = fn(*map(gt.constant, arrays))
            results.append([None if t is None else host(t) for t in out])
    return results


def assert_same(fused_out, generic_out, dtype):
    assert len(fused_out) == len(generic_out)
    for f, g in zip(fused_out, generic_out):
        assert (f is None) == (g is None)
        if f is None:
            continue
        assert f.shape == g.shape and f.dtype == g.dtype
        np.testing.assert_allclose(f, g, equal_nan=True, **TOL[dtype])


def value_and_grads(target_fn):
    def run(*tensors):
        with gt.GradientTape() as tape:
            tape.watch(list(tensors))
            y = target_fn(*tensors)
        return [y, *tape.gradient(y, list(tensors))]

    return run


def route_on() -> bool:
    """Whether the fused route runs for the current default device's arrays (the GPU, and
    NumPy in the cpu-fused variant)."""
    name = "cupy" if gt.default_device().name.startswith("gpu") else "numpy"
    return fused.registry.REGISTRY["multiply"].joint_rules_for.get(name) is not None


# Strided, transposed, reversed and broadcast reads of an (8, 10) array, each (8, 5).
VIEWS = {
    "columns": lambda b: b[:, ::2],
    "transposed": lambda b: gt.transpose(gt.reshape(b, (10, 8)))[:, :5],
    "reversed": lambda b: b[::-1, :5],
    "broadcast": lambda b: gt.broadcast_to(b[:1, :5], (8, 5)),
}
