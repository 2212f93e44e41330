"""The launcher's calls, checked without a GPU: each kernel call against the kernel's C signature
(taken from the preprocessed sources), and the launches' results against NumPy.

``gputape.cuda.launch`` imports CuPy when it runs. Here (``tests/kernel_stand_in.py``) it gets
a stand-in module whose arrays are NumPy arrays, and ``loader.function`` gets kernels that check
their arguments against the ``extern "C"`` signature of the same name (and, where CuPy's NVRTC
is installed, against the parameter list of the PTX that NVRTC makes for sm_90: the widths the
GPU reads) and then do, with NumPy, what the CUDA code does:
the map-reduce of ``gt_reduce.cuh`` over (K1, R, K2) with per-operand strides, split into S
partials; the one-pass sums with gradients; the finishing sum of the partials. What the
kernels compute per element is checked separately (``test_kernels_compile.py`` runs the maps
as host code; ``test_fused_gpu.py`` runs the kernels on a GPU).
"""

from __future__ import annotations

import numpy as np
import pytest
from kernel_stand_in import (
    CPP,
    NVRTC_MISSING,
    ONE_PASS_MAPS,
    REDUCE_MAPS,
    Kernel,
    check_against_ptx,
    on_device,
    ptx_params,
    signatures,
    use_fake_gpu,
)

from gputape.cuda import kernels, launch
from gputape.ops.reduction import _sum_to_forward

pytestmark = pytest.mark.skipif(CPP is None, reason="no C preprocessor (cpp) on the PATH")

MUL, SQUARE = kernels.ONE_PASS["sum_grad_mul"], kernels.ONE_PASS["sum_grad_square"]


@pytest.fixture
def fake_gpu(monkeypatch):
    """CuPy and the kernels, stood in for by NumPy; yields the list of kernels called."""
    yield use_fake_gpu(monkeypatch)


def _operands(rng, full: tuple, count: int, dtype) -> list:
    arrays = []
    for i in range(count):
        shape = full if i != 2 else full[-1:]  # the third operand broadcasts along rows
        arrays.append((rng.uniform(0.25, 2.0, shape) * rng.choice([-1.0, 1.0], shape))
                      .astype(dtype))
    return arrays


# (full shape, target shape): full, none, leading, trailing, middle kept, splits, empty
PROBLEMS = [
    ((1000,), ()), ((1000,), (1000,)), ((333, 257), (257,)), ((257, 333), (257, 1)),
    ((5, 6, 7), (1, 6, 1)), ((3, 70001), ()), ((4096, 3), (1, 3)), ((0, 4), (4,)), ((1,), ()),
]
COUNTS = {"sum": 1, "mul": 2, "mul_pair": 3, "pow_grad_x": 3, "sum_power": 2}
MODULES = {"sum": "sum", "mul": "multiply_grad", "mul_pair": "multiply_grad",
           "pow_grad_x": "power_grad", "sum_power": "fused_sum"}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("problem", PROBLEMS, ids=str)
@pytest.mark.parametrize("kernel", list(COUNTS))
def test_map_reduce_launches_match_numpy(fake_gpu, kernel, problem, dtype):
    full, shape = problem
    host = _operands(np.random.default_rng(0), full, COUNTS[kernel], dtype)
    outputs = 2 if kernel == "mul_pair" else 1
    got = launch.map_reduce(kernels.MAP_REDUCE[kernel], [on_device(a) for a in host], shape)
    assert got is not None and got.shape == (outputs, *shape) and got.dtype == dtype
    padded = [np.broadcast_to(a, full) for a in host] + [np.zeros(full, dtype)] * 2
    with np.errstate(all="ignore"):
        want = [_sum_to_forward(np, v.astype(np.float64), shape, 0)
                for v in REDUCE_MAPS[kernel](*padded[:3])]
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, **tol)
    if 0 not in full:
        assert any(name.startswith(f"gt_{kernel}_") for name in fake_gpu)


@pytest.mark.parametrize("problem", [((3, 70001), (70001,)), ((300, 300), (300, 1))],
                         ids=["outer", "inner"])
@pytest.mark.parametrize("kernel", ["sum", "mul_pair", "pow_grad_x", "sum_power"])
def test_grids_are_capped_so_the_kernels_loop(fake_gpu, kernel, problem):
    """With 4 multiprocessors a grid has at most 256 blocks: fewer threads (outer) or blocks
    (inner) than the work items, so the kernels' grid-stride loops take a second turn."""
    full, shape = problem
    host = _operands(np.random.default_rng(10), full, COUNTS[kernel], np.float64)
    got = launch.map_reduce(kernels.MAP_REDUCE[kernel], [on_device(a) for a in host], shape)
    (name, grid, block, args), = [c for c in Kernel.launches if "finish" not in c[0]]
    k1 = int(args[12])
    if name.endswith("_inner_f64"):
        rows = k1 * int(args[14])  # one block per row and split
        assert grid == (256,) and rows > 256, (grid, rows)
    else:
        threads = k1 * int(args[14]) * int(args[15])  # one thread per output and split
        assert grid == (256,) and grid[0] * block[0] < threads, (grid, block, threads)
    padded = [np.broadcast_to(a, full) for a in host] + [np.zeros(full)] * 2
    with np.errstate(all="ignore"):  # x ** p of negative x
        want = [_sum_to_forward(np, v, shape, 0) for v in REDUCE_MAPS[kernel](*padded[:3])]
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)


def test_strided_and_reversed_operands_are_read_in_place(fake_gpu):
    base = np.random.default_rng(1).standard_normal((64, 130))
    y = np.random.default_rng(2).standard_normal(65)
    for view in (base[:, ::2], base.T[:65].T, base[::-1, :65]):
        for shape in [(), (65,), (64, 1), (64, 65)]:
            got = launch.map_reduce(kernels.MAP_REDUCE["mul"], [on_device(view), on_device(y)],
                                    shape)[0]
            np.testing.assert_allclose(got, _sum_to_forward(np, view * y, shape, 0), rtol=1e-12)


@pytest.mark.parametrize("scale", [1.0, 1 / 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size", [0, 1, 1000, 70001])
@pytest.mark.parametrize("kernel", list(ONE_PASS_MAPS))
def test_one_pass_launches_match_numpy(fake_gpu, kernel, size, dtype, scale):
    rng = np.random.default_rng(3)
    x = rng.uniform(0.25, 2.0, size).astype(dtype)
    other = (np.asarray(2.5, dtype) if kernel.startswith("sum_grad_pow")
             else rng.standard_normal(size).astype(dtype))
    writes = (True, kernel == "sum_grad_mul")
    second = kernel == "sum_grad_pow_p"
    total, grads, second_total = launch.sum_with_grads(
        kernels.ONE_PASS[kernel], on_device(x),
        None if kernel == "sum_grad_square" else on_device(other),
        writes, second_sum=second, scale=scale)
    value, second_value, w0, w1 = ONE_PASS_MAPS[kernel](
        x, x if kernel == "sum_grad_square" else other, dtype(scale))
    tol = dict(rtol=1e-5) if dtype == np.float32 else dict(rtol=1e-12)
    assert total.shape == () and total.dtype == dtype
    np.testing.assert_allclose(total, value.astype(np.float64).sum(), **tol)
    np.testing.assert_allclose(grads[0], w0, **tol)
    if writes[1]:
        np.testing.assert_allclose(grads[1], w1, **tol)
    else:
        assert grads[1] is None
    if second:
        np.testing.assert_allclose(second_total, second_value.astype(np.float64).sum(), **tol)
    else:
        assert second_total is None
    if size:
        assert fake_gpu[0].startswith(f"gt_{kernel}_") and fake_gpu[1].startswith("gt_finish_")


def test_one_pass_declines_layouts_it_does_not_read(fake_gpu):
    x = on_device(np.ones(10, np.float32))
    assert launch.sum_with_grads(MUL, x[::2], x[::2], (True, True)) is None
    assert launch.sum_with_grads(MUL, x, x[:5], (True, True)) is None
    assert launch.sum_with_grads(MUL, x, x.astype(np.float64), (True, True)) is None
    assert launch.sum_with_grads(SQUARE, x.astype(np.float16), None,
                                 (True, False)) is None
    assert fake_gpu == []


def test_signatures_are_read_from_every_module():
    for module in ("sum", "multiply_grad", "power_grad", "fused_sum"):
        found = signatures(module)
        assert "gt_finish_f32" in found and "gt_finish_f64" in found
        assert all(kinds.count("pointer") >= 2 for kinds in found.values())
    assert signatures("fused_sum")["gt_sum_grad_mul_f32"] == (
        ["pointer"] * 2 + [np.int64, np.float32, np.int64, np.int64] + ["pointer"] * 4)


@pytest.mark.parametrize("wants", [(True, True), (True, False), (False, True)], ids=str)
def test_one_pass_overrides_give_the_fused_routes_shapes(fake_gpu, wants):
    """The CuPy forwards registered for gputape.cuda.fused.pattern_sum: (sum, [gradients])."""
    from gputape.cuda import table

    rng = np.random.default_rng(8)
    x, y = rng.uniform(0.5, 2.0, (3, 5)), rng.standard_normal((3, 5))
    p = np.asarray(1.5)
    total, grads = table._one_pass_multiply(None, on_device(x), on_device(y), list(wants), 1.0)
    np.testing.assert_allclose(total, np.sum(x * y), rtol=1e-12)
    for grad, want, wanted in zip(grads, (y, x), wants):
        assert (grad is None) != wanted
        if wanted:
            np.testing.assert_array_equal(grad, want)
    total, grads = table._one_pass_pow(None, on_device(x), on_device(p), list(wants), 0.25)
    np.testing.assert_allclose(total, np.sum(x ** 1.5), rtol=1e-12)
    assert len(grads) == 2 and (grads[0] is None) != wants[0] and (grads[1] is None) != wants[1]
    if wants[0]:
        np.testing.assert_allclose(grads[0], 0.25 * 1.5 * x ** 0.5, rtol=1e-12)
    if wants[1]:
        assert grads[1].shape == ()
        np.testing.assert_allclose(grads[1], 0.25 * np.sum(x ** 1.5 * np.log(x)), rtol=1e-12)
    total, grads = table._one_pass_square(None, on_device(x), [True], 1.0)
    np.testing.assert_allclose(total, np.sum(x * x), rtol=1e-12)
    assert len(grads) == 1
    np.testing.assert_array_equal(grads[0], 2 * x)
    assert table._one_pass_multiply(None, on_device(x)[:, ::2], on_device(y)[:, ::2],
                                    list(wants), 1.0) is None


@pytest.mark.skipif(NVRTC_MISSING is not None, reason=str(NVRTC_MISSING))
def test_launch_arguments_are_checked_against_the_ptx():
    params = ptx_params("fused_sum", "gt_sum_grad_mul_f32")
    x = on_device(np.ones(4, np.float32))
    null = np.uint64(0)
    good = (x, x, np.int64(1), np.float32(1.0), np.int64(4), np.int64(1), x, null, x, x)
    check_against_ptx("gt_sum_grad_mul_f32", good, params)
    for i, wrong in [(3, np.float64(1.0)), (2, np.int32(1)), (4, 4), (0, np.float32(0))]:
        bad = good[:i] + (wrong,) + good[i + 1:]
        with pytest.raises(AssertionError, match=f"argument {i}"):
            check_against_ptx("gt_sum_grad_mul_f32", bad, params)
    with pytest.raises(AssertionError, match="9 arguments"):
        check_against_ptx("gt_sum_grad_mul_f32", good[:-1], params)
