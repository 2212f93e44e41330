"""The CUDA kernels themselves, called through the launcher on CuPy arrays and compared with
NumPy: each map, both launch shapes (one thread per output, one block per row), split and
unsplit reductions, float32 and float64, empty and odd sizes, strided and broadcast operands."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import NO_GPU

from gputape.core.device import cupy_or_none
from gputape.cuda import kernels, launch, loader
from gputape.ops.reduction import _sum_to_forward

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(cupy_or_none() is None, reason=NO_GPU),
]

MUL, SQUARE = kernels.ONE_PASS["sum_grad_mul"], kernels.ONE_PASS["sum_grad_square"]


def _np_masked_log(x):
    with np.errstate(all="ignore"):
        return np.where(x > 0, np.log(np.where(x > 0, x, 1)), 0)


# kernel -> (module, number of operands, NumPy map giving one or two arrays)
MAPS = {
    "sum": ("sum", 1, lambda x: [x]),
    "mul": ("multiply_grad", 2, lambda g, y: [g * y]),
    "mul_pair": ("multiply_grad", 3, lambda g, x, y: [g * y, g * x]),
    "square_grad": ("multiply_grad", 2, lambda g, x: [g * (2 * x)]),
    "pow_grad_x": ("power_grad", 3, lambda g, x, p: [(g * p) * np.power(x, p - 1)]),
    "pow_grad_p": ("power_grad", 3, lambda g, x, p: [(g * np.power(x, p)) * _np_masked_log(x)]),
    "sum_product": ("fused_sum", 2, lambda x, y: [x * y]),
    "sum_power": ("fused_sum", 2, lambda x, p: [np.power(x, p)]),
    "sum_square": ("fused_sum", 1, lambda x: [x * x]),
}

# (full shape, target shape): leading, trailing, full, none, and a batch-like middle case
PROBLEMS = [
    ((1000,), ()), ((1000,), (1000,)), ((333, 257), (257,)), ((257, 333), (257, 1)),
    ((3, 70001), ()), ((5, 6, 7), (1, 6, 1)), ((0, 4), (4,)), ((4, 0), (4, 1)), ((1,), ()),
    ((2**20 + 3,), ()), ((4096, 3), (1, 3)),
]


def _operands(cupy, full, count, dtype, rng):
    arrays = []
    for i in range(count):
        shape = full if i != 2 else full[-1:]  # the third operand broadcasts along rows
        a = rng.uniform(0.25, 2.0, shape) * rng.choice([-1.0, 1.0], shape)
        arrays.append(a.astype(dtype))
    return arrays


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("problem", PROBLEMS, ids=str)
@pytest.mark.parametrize("kernel", list(MAPS))
def test_kernel_matches_numpy(kernel, problem, dtype):
    cupy = cupy_or_none()
    module, count, np_map = MAPS[kernel]
    full, shape = problem
    rng = np.random.default_rng(0)
    host = _operands(cupy, full, count, dtype, rng)
    outs = launch.map_reduce(kernels.MAP_REDUCE[kernel], [cupy.asarray(a) for a in host], shape)
    assert outs is not None, "the launcher fell back to the generic path"
    _assert_sums_of_map(cupy, outs, np_map, host, shape, dtype)


@pytest.mark.parametrize("view", ["columns", "transposed", "reversed"])
def test_kernel_reads_strided_views(view):
    cupy = cupy_or_none()
    base = cupy.asarray(np.random.default_rng(1).standard_normal((64, 130)))
    x = {"columns": base[:, ::2], "transposed": base.T[:65].T, "reversed": base[::-1, :65]}[view]
    y = cupy.asarray(np.random.default_rng(2).standard_normal(65))
    for shape in [(), (65,), (64, 1), (64, 65)]:
        (got,) = launch.map_reduce(kernels.MAP_REDUCE["mul"], [x, y], shape)
        want = launch.kept_shape(x.shape, shape, 0)
        expected = cupy.sum(x * y, axis=tuple(i for i, n in enumerate(want) if n == 1 and
                                              x.shape[i] != 1), keepdims=True).reshape(shape)
        cupy.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_same_inputs_give_the_same_bits():
    """Split reductions are finished in a fixed order: no atomics, so results repeat."""
    cupy = cupy_or_none()
    x = cupy.asarray(np.random.default_rng(3).standard_normal(2**22).astype(np.float32))
    first = launch.map_reduce(kernels.MAP_REDUCE["sum"], [x], ())[0]
    for _ in range(3):
        assert launch.map_reduce(kernels.MAP_REDUCE["sum"], [x], ())[0].item() == first.item()


def test_unsupported_dtypes_fall_back():
    cupy = cupy_or_none()
    x = cupy.ones(10, dtype=cupy.float16)
    assert launch.map_reduce(kernels.MAP_REDUCE["sum"], [x], ()) is None


def test_modules_are_built_once_per_device(monkeypatch):
    """From empty caches: the first launch builds the module and looks the kernel up; the
    second reuses both (``test_loader.py`` checks the cache key's device without a GPU)."""
    cupy = cupy_or_none()
    monkeypatch.setattr(loader, "_modules", {})
    monkeypatch.setattr(loader, "_functions", {})
    built = []
    real = cupy.RawModule

    def counting(*args, **kwargs):
        built.append(kwargs.get("code", args[0] if args else None))
        return real(*args, **kwargs)

    monkeypatch.setattr(cupy, "RawModule", counting)
    x = cupy.ones(100, dtype=cupy.float32)
    device_id = x.device.id
    assert launch.map_reduce(kernels.MAP_REDUCE["sum"], [x], ())[0].item() == 100.0
    first = dict(loader._functions)
    assert built == [loader.source("sum.cu")]
    assert list(loader._modules) == [("sum", device_id)]
    assert first and all(key[0] == "sum" and key[2] == device_id for key in first)
    assert launch.map_reduce(kernels.MAP_REDUCE["sum"], [x], ())[0].item() == 100.0
    assert len(built) == 1 and loader._functions.keys() == first.keys()
    assert all(loader._functions[key] is kernel for key, kernel in first.items())


def _launches(monkeypatch) -> list:
    """Records ``(kernel name, grid, block, arguments)`` of every launch through the loader."""
    launches: list = []
    real = loader.function

    def spy(module, name, device_id):
        kernel = real(module, name, device_id)

        def launch_and_record(grid, block, args):
            launches.append((name, grid, block, args))
            return kernel(grid, block, args)

        return launch_and_record

    monkeypatch.setattr(loader, "function", spy)
    return launches


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("launch_shape", ["outer", "inner"])
@pytest.mark.parametrize("kernel", ["sum", "mul_pair", "pow_grad_x", "pow_grad_p", "sum_power"])
def test_grid_stride_loops_reach_every_output(monkeypatch, kernel, launch_shape, dtype):
    """More outputs (outer: threads; inner: rows) than the launcher's capped grid holds, so
    each thread or block takes a second turn of its grid-stride loop."""
    cupy = cupy_or_none()
    module, count, np_map = MAPS[kernel]
    cap = loader.multiprocessors(0) * 64  # the launcher's most blocks
    if launch_shape == "outer":  # sum_to (3, n) -> (n,)
        n = max(2**22, cap * 256 + 4099)
        full, shape = (3, n), (n,)
    else:  # row sums of 300 columns
        rows = max(20000, cap + 1001)
        full, shape = (rows, 300), (rows, 1)
    host = _operands(cupy, full, count, dtype, np.random.default_rng(7))
    launches = _launches(monkeypatch)
    outs = launch.map_reduce(kernels.MAP_REDUCE[kernel], [cupy.asarray(a) for a in host], shape)
    (name, grid, block, args), = [c for c in launches if "finish" not in c[0]]
    assert f"_{launch_shape}_" in name and grid == (cap,)
    k1 = int(args[12])
    if launch_shape == "outer":
        assert grid[0] * block[0] < k1 * int(args[14]) * int(args[15])  # K1 * K2 * S threads
    else:
        assert grid[0] < k1 * int(args[14])  # K1 * S rows
    _assert_sums_of_map(cupy, outs, np_map, host, shape, dtype)


def test_a_pair_of_outputs_is_one_buffer():
    """The pair of multiply gradients comes back stacked as the kernel wrote it: no copy."""
    cupy = cupy_or_none()
    g, x, y = (cupy.asarray(np.random.default_rng(i).standard_normal((33, 7))) for i in range(3))
    out = launch.map_reduce(kernels.MAP_REDUCE["mul_pair"], [g, x, y], (33, 7))
    assert out.shape == (2, 33, 7) and out.flags.c_contiguous
    cupy.testing.assert_allclose(out[0], g * y, rtol=1e-14)
    cupy.testing.assert_allclose(out[1], g * x, rtol=1e-14)


# kernel -> NumPy (sum, gradient 0, gradient 1, second sum) of x and y (p for the pow
# kernels), for a cotangent c
SUM_GRADS = {
    "sum_grad_mul": lambda x, y, c: (x * y, c * y, c * x, None),
    "sum_grad_square": lambda x, y, c: (x * x, c * (2 * x), None, None),
    "sum_grad_pow": lambda x, p, c: (np.power(x, p), (c * p) * np.power(x, p - 1), None, None),
    "sum_grad_pow_p": lambda x, p, c: (np.power(x, p), (c * p) * np.power(x, p - 1), None,
                                       (c * np.power(x, p)) * _np_masked_log(x)),
}


@pytest.mark.parametrize("scale", [1.0, 1 / 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(0,), (1,), (1000,), (3, 257), (2**20 + 3,)], ids=str)
@pytest.mark.parametrize("kernel", list(SUM_GRADS))
def test_sum_with_grads_matches_numpy(kernel, shape, dtype, scale):
    cupy = cupy_or_none()
    rng = np.random.default_rng(4)
    x = (rng.uniform(0.25, 2.0, shape) * rng.choice([-1.0, 1.0], shape)).astype(dtype)
    if kernel.startswith("sum_grad_pow"):
        x = np.abs(x)
        other = np.asarray(2.5, dtype)
    else:
        other = rng.standard_normal(shape).astype(dtype)
    operand = None if kernel == "sum_grad_square" else cupy.asarray(other)
    total, grads, second = launch.sum_with_grads(
        kernels.ONE_PASS[kernel], cupy.asarray(x), operand, (True, kernel == "sum_grad_mul"),
        second_sum=kernel == "sum_grad_pow_p", scale=scale)
    want_total, want0, want1, want_second = SUM_GRADS[kernel](x.astype(np.float64), other,
                                                             scale)
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-10)
    assert total.shape == () and total.dtype == dtype
    np.testing.assert_allclose(total.item(), want_total.sum(), **tol)
    for got, want in zip(grads, (want0, want1)):
        if want is None:
            assert got is None
        else:
            assert got.shape == shape and got.dtype == dtype
            np.testing.assert_allclose(cupy.asnumpy(got), want, **tol)
    if want_second is None:
        assert second is None
    else:
        np.testing.assert_allclose(second.item(), want_second.sum(), **tol)


def test_sum_with_grads_repeats_bits_and_declines_what_it_cannot_read():
    cupy = cupy_or_none()
    x = cupy.asarray(np.random.default_rng(5).standard_normal(2**22).astype(np.float32))
    y = cupy.asarray(np.random.default_rng(6).standard_normal(2**22).astype(np.float32))
    first = launch.sum_with_grads(MUL, x, y, (True, True))[0].item()
    for _ in range(3):
        assert launch.sum_with_grads(MUL, x, y, (True, True))[0].item() == first
    assert launch.sum_with_grads(MUL, x[::2], y[::2], (True, True)) is None
    assert launch.sum_with_grads(MUL, x, y.astype(cupy.float64), (True, True)) is None
    assert launch.sum_with_grads(MUL, x, y[:10], (True, True)) is None
    half = x.astype(cupy.float16)
    assert launch.sum_with_grads(SQUARE, half, None, (True, False)) is None


def _assert_sums_of_map(cupy, outs, np_map, host, shape, dtype):
    """Each of ``outs`` (a kernel's sums to ``shape``) equals NumPy's sum in float64 of the
    matching output of ``np_map`` over the host operands, within the dtype's tolerance."""
    with np.errstate(all="ignore"):
        expected = [_sum_to_forward(np, m.astype(np.float64), shape, 0) for m in np_map(*host)]
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-10)
    assert len(outs) == len(expected)
    for got, want in zip(outs, expected):
        assert got.dtype == dtype and got.shape == shape
        np.testing.assert_allclose(cupy.asnumpy(got), want, equal_nan=True, **tol)
