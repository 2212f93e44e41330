"""Small helpers shared by the test modules."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

import gputape as gt
from gputape.core.device import why_no_gpu

# The skip reason of every test that needs a GPU (the device-parametrized ones add that their
# CPU variant ran): one wording, with why there is none.
NO_GPU = f"no CUDA device ({why_no_gpu()})"

# The repository's root (this file is tests/helpers.py).
ROOT = Path(__file__).resolve().parent.parent


def run_python(*parts: str, env: "dict | None" = None) -> dict:
    """Run the code ``parts`` (each dedented) in a fresh interpreter (no $GPUTAPE_DEVICE unless
    given) and return the JSON object it prints on its last line."""
    child_env = {k: v for k, v in os.environ.items() if k != "GPUTAPE_DEVICE"}
    child_env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p])
    child_env.update(env or {})
    code = "\n".join(textwrap.dedent(part) for part in parts)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True,
                          text=True, env=child_env, cwd=str(ROOT), timeout=120)
    assert proc.returncode == 0, f"subprocess failed:\n{proc.stdout}\n{proc.stderr}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def check(t, expected, device, dtype=None, rtol=1e-5, atol=1e-6):
    """``t`` is a tensor on ``device`` with ``expected``'s shape and values (and ``dtype``)."""
    assert isinstance(t, gt.Tensor), f"expected a tensor, got {t!r}"
    assert t.device == device, f"tensor on {t.device}, expected {device}"
    expected = np.asarray(expected)
    assert t.shape == expected.shape, f"shape {t.shape}, expected {expected.shape}"
    if dtype is not None:
        assert t.dtype == np.dtype(dtype), f"dtype {t.dtype}, expected {np.dtype(dtype)}"
    np.testing.assert_allclose(np.asarray(t.numpy()), expected, rtol=rtol, atol=atol)


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


def count_calls(monkeypatch, owner, name: str) -> list:
    """Replace ``owner.name`` with a wrapper that appends to the returned list on each call."""
    calls: list = []
    real = getattr(owner, name)

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, counting)
    if name == "forward" and getattr(owner, "host_forward", None) is real:
        monkeypatch.setattr(owner, "host_forward", counting)  # a primitive's host copy of it
    return calls


# Ufuncs the host pool serves (gputape.host.pool.same_dtype_ufunc): those gputape's ops use, and
# two no op uses yet (pooled all the same, without a list to keep).
POOLED_UFUNCS = ("add", "subtract", "multiply", "true_divide", "divide", "negative", "power",
                 "maximum", "minimum", "sin", "cos", "tan", "tanh", "exp", "expm1", "log",
                 "log1p", "sqrt", "square", "absolute", "abs", "sign", "reciprocal", "arctan",
                 "hypot")
