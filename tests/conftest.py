"""Shared fixtures: every test that takes ``device`` runs once per device gputape can use.

The ``device`` fixture yields the device name ("cpu", "gpu:0", ...) *inside* ``gt.device(...)``,
so tensors made in the test body land there; tests may also pass it on explicitly.

The ``cpu-fused`` variant runs on the CPU with the GPU's fused route switched on for NumPy
(fused gradient primitives, pending results, pattern sums; see ``gputape.cuda.fused``), so every
tape rule is checked through that route without a GPU. On a GPU machine, run the suite a second
time with ``GPUTAPE_FUSED=0`` for the unfused GPU path.
"""

from __future__ import annotations

import numpy as np
import pytest

import gputape as gt
from gputape.core.device import why_no_gpu
from gputape.cuda import table

FUSED_CPU = "cpu-fused"
NO_GPU_REASON = f"no CUDA device ({why_no_gpu()}); the CPU variant of this test ran"


def _device_params() -> list:
    names = [d.name for d in gt.list_devices()]
    params = [
        pytest.param(name, marks=pytest.mark.gpu, id=name) if name.startswith("gpu")
        else pytest.param(name, id=name)
        for name in names
    ]
    params.insert(1, pytest.param(FUSED_CPU, id=FUSED_CPU))
    if not any(name.startswith("gpu") for name in names):
        params.append(pytest.param(
            "gpu:0", id="gpu:0",
            marks=[pytest.mark.gpu, pytest.mark.skip(reason=NO_GPU_REASON)],
        ))
    return params


@pytest.fixture(params=_device_params())
def device(request):
    """The name of one device, with new tensors placed on it for the test's duration."""
    if request.param == FUSED_CPU:
        table.route("numpy")
        try:
            with gt.device("cpu"):
                yield "cpu"
        finally:
            table.unroute("numpy")
        return
    with gt.device(request.param):
        yield request.param


@pytest.fixture
def numpy_route():
    """The GPU's fused route switched on for NumPy, with tensors made on the CPU."""
    table.route("numpy")
    try:
        with gt.device("cpu"):
            yield
    finally:
        table.unroute("numpy")


@pytest.fixture
def rng():
    """A seeded NumPy random generator, fresh for every test (reproducible inputs)."""
    return np.random.default_rng(0)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """One line per skip reason, with its count (pytest's own -rs lists every location)."""
    reasons: dict = {}
    for report in terminalreporter.stats.get("skipped", []):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(
            report.longrepr)
        reason = reason.removeprefix("Skipped: ")
        reasons[reason] = reasons.get(reason, 0) + 1
    if reasons:
        terminalreporter.section("skip reasons", sep="-")
        for reason, count in sorted(reasons.items(), key=lambda item: (-item[1], item[0])):
            terminalreporter.write_line(f"{count:5} skipped: {reason}")
