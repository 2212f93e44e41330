"""Every kernel module compiled by NVRTC as the loader has CuPy compile it, for Hopper (sm_90)
and Blackwell (sm_100), on a machine without a GPU (see ``nvrtc_build.py``).

Checked: CuPy's option assembly keeps the loader's options; no errors and no warnings; every
entry point the registered overrides can launch is in the PTX; ptxas spills no register;
products are not contracted into FMAs (``--fmad=false``) and float32 flushes subnormals
(CuPy's ``-ftz=true``, as for its own kernels). The launch arguments are checked against the
PTX parameter lists in ``test_kernel_launches.py``. These tests skip without CuPy's NVRTC
(``pip install -e '.[gpu-check]'``) and fail instead where ``GPUTAPE_REQUIRE_NVRTC=1``, as in
``make test``.
"""

from __future__ import annotations

import re

import pytest
from nvrtc_build import ARCHS, MODULES, CompileError, build, kernel_ptx, require_or_skip

from gputape.cuda import loader, table


@pytest.fixture(autouse=True)
def _nvrtc():
    require_or_skip()


@pytest.mark.parametrize("arch", ARCHS)
def test_cupy_assembles_the_loader_options(arch):
    options = build("sum", arch).options
    mine = [o for o in options if o in loader.OPTIONS]
    assert mine == list(loader.OPTIONS), options
    assert "-ftz=true" in options and f"-arch=sm_{arch}" in options, options
    assert any(o.startswith("-I") and o.rstrip("/").endswith("include") for o in options)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("module", MODULES)
def test_module_compiles_without_warnings(module, arch):
    found = build(module, arch)
    assert found.warnings == [], "\n".join(found.warnings)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("module", MODULES)
def test_every_launchable_entry_point_is_there(module, arch):
    wanted = table.entry_points().get(module, set())
    assert wanted, f"kernels/{module}.cu: no override launches it"
    missing = wanted - set(build(module, arch).entries)
    assert not missing, f"kernels/{module}.cu for sm_{arch} lacks {sorted(missing)}"


def test_every_module_the_overrides_launch_exists():
    assert set(table.entry_points()) == set(MODULES)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("module", MODULES)
def test_no_register_spills(module, arch):
    found = build(module, arch)
    resources = found.resources
    assert set(resources) == set(found.entries), "ptxas reported other kernels than the PTX"
    spilling = {name: r for name, r in resources.items() if r[1] or r[2]}
    assert not spilling, (
        f"sm_{arch} kernels/{module}.cu: ptxas spills (registers, store bytes, load bytes): "
        f"{spilling}")
    assert all(0 < r[0] <= 255 for r in resources.values()), resources


def test_products_are_not_contracted_into_fmas():
    """The f64 gradient map forms g * y and adds it to the sum: without ``--fmad=false`` NVRTC
    fuses the two (one rounding fewer than the generic path); with it, none is left."""
    name = "gt_mul_outer_f64"
    assert "fma.rn" not in kernel_ptx(build("multiply_grad", "90"), name)
    default = build("multiply_grad", "90", options=("--std=c++17",))
    assert "fma.rn.f64" in kernel_ptx(default, name), "the control no longer contracts"


def test_float32_maps_flush_subnormals_as_cupy_kernels_do():
    body = kernel_ptx(build("multiply_grad", "90"), "gt_mul_outer_f32")
    assert re.search(r"\bmul\.rn\.ftz\.f32\b", body), body[:400]


def test_a_compile_error_and_a_warning_are_caught():
    source = loader.source("sum.cu")
    with pytest.raises(CompileError, match="sum.cu"):
        build("sum", "90", source=source + "\n#error deliberately broken\n")
    warned = build("sum", "90", source=source + (
        '\nextern "C" __global__ void gt_probe(float* out) { int unused; out[0] = 1.0f; }\n'))
    assert any("declared but never referenced" in line for line in warned.warnings)
