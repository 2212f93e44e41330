"""Shared fixtures: every test that takes ``device`` runs once per device gputape can use.

The ``device`` fixture yields the device name ("cpu", "gpu:0", ...) *inside* ``gt.device(...)``,
so tensors made in the test body land there; tests may also pass it on explicitly.
"""

from __future__ import annotations

import numpy as np
import pytest

import gputape as gt

NO_GPU_REASON = "no CUDA device (CuPy sees no GPU); the CPU variant of this test ran"


def _device_params() -> list:
    names = [d.name for d in gt.list_devices()]
    params = [
        pytest.param(name, marks=pytest.mark.gpu, id=name) if name.startswith("gpu")
        else pytest.param(name, id=name)
        for name in names
    ]
    if not any(name.startswith("gpu") for name in names):
        params.append(pytest.param(
            "gpu:0", id="gpu:0",
            marks=[pytest.mark.gpu, pytest.mark.skip(reason=NO_GPU_REASON)],
        ))
    return params


@pytest.fixture(params=_device_params())
def device(request):
    """The name of one device, with new tensors placed on it for the test's duration."""
    with gt.device(request.param):
        yield request.param


@pytest.fixture
def rng():
    """A seeded NumPy random generator, fresh for every test (reproducible inputs)."""
    return np.random.default_rng(0)
