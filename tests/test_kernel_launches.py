"""The launcher's calls, checked without a GPU: each kernel call against the kernel's C signature
(taken from the preprocessed sources), and the launches' results against NumPy.

``gputape.cuda.launch`` imports CuPy when it runs. Here it gets a stand-in module whose arrays
are NumPy arrays, and ``loader.function`` gets kernels that check their arguments against the
``extern "C"`` signature of the same name (and, where CuPy's NVRTC is installed, against the
parameter list of the PTX that NVRTC makes for sm_90: the widths the GPU reads) and then do,
with NumPy, what the CUDA code does:
the map-reduce of ``gt_reduce.cuh`` over (K1, R, K2) with per-operand strides, split into S
partials; the one-pass sums with gradients; the finishing sum of the partials. What the
kernels compute per element is checked separately (``test_kernels_compile.py`` runs the maps
as host code; ``test_fused_gpu.py`` runs the kernels on a GPU).
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import sys
import types

import numpy as np
import pytest
from nvrtc_build import build, unavailable

from gputape.cuda import kernels, launch, loader
from gputape.ops.reduction import _sum_to_forward

CPP = shutil.which("cpp")
pytestmark = pytest.mark.skipif(CPP is None, reason="no C preprocessor (cpp) on the PATH")

_SIGNATURE = re.compile(r'extern\s+"C"\s+__global__\s+void\s+(\w+)\s*\(([^)]*)\)')

MUL, SQUARE = kernels.ONE_PASS["sum_grad_mul"], kernels.ONE_PASS["sum_grad_square"]


@functools.cache
def _signatures(module: str) -> dict:
    """``{kernel name: [the NumPy type of each parameter, or "pointer"]}``."""
    text = subprocess.run([CPP, "-P"], input=loader.source(f"{module}.cu"), capture_output=True,
                          text=True, check=True, timeout=60).stdout
    found = {}
    for name, params in _SIGNATURE.findall(text):
        kinds = []
        for param in params.split(","):
            if "*" in param:
                kinds.append("pointer")
                continue
            kind = param.rsplit(None, 1)[0].strip()
            assert kind in _SCALARS, f"{name}: parameter {param!r}"
            kinds.append(_SCALARS[kind])
        found[name] = kinds
    return found


_SCALARS = {"long long": np.int64, "float": np.float32, "double": np.float64}
# What CuPy passes for each argument type, and the PTX parameter types of that width.
_PTX_TYPES = {np.int64: {"u64", "s64", "b64"}, np.uint64: {"u64", "b64"},
              np.float32: {"f32"}, np.float64: {"f64"}}


def _ptx_params(module: str, name: str) -> "list | None":
    """The PTX parameter types of kernel ``name`` (sm_90), or None without CuPy's NVRTC."""
    if _NVRTC_MISSING:
        return None
    entries = build(module, "90").entries
    assert name in entries, f"no entry point {name} in the PTX of kernels/{module}.cu"
    return entries[name]


def _check_against_ptx(name: str, args: tuple, params: list) -> None:
    """Each argument as CuPy would pass it (an array: its device pointer, 8 bytes; a NumPy
    scalar: its bytes) against the width and kind of the PTX parameter it lands in."""
    assert len(args) == len(params), f"{name}: {len(args)} arguments, the PTX takes {params}"
    for i, (arg, param) in enumerate(zip(args, params)):
        kind = np.uint64 if isinstance(arg, np.ndarray) else type(arg)
        assert param in _PTX_TYPES.get(kind, ()), (
            f"{name} argument {i}: {type(arg).__name__} passed where the PTX takes .{param}")


_NVRTC_MISSING = unavailable()


class _DeviceArray(np.ndarray):
    """A NumPy array in place of a CuPy array: what the launcher reads of one."""

    @property
    def device(self):
        return _Device(0)


class _Device:
    def __init__(self, device_id: int) -> None:
        self.id = device_id

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> bool:
        return False


def _on_device(array) -> _DeviceArray:
    return np.asarray(array).view(_DeviceArray)


def _fake_cupy() -> types.ModuleType:
    cupy = types.ModuleType("cupy")
    cupy.empty = lambda shape, dtype: _on_device(np.full(shape, np.nan, dtype))  # never zeros
    cupy.zeros = lambda shape, dtype: _on_device(np.zeros(shape, dtype))
    cupy.sum = lambda a, axis=None, keepdims=False: _on_device(
        np.sum(np.asarray(a), axis=axis, keepdims=keepdims))
    cupy.cuda = types.SimpleNamespace(Device=_Device)
    return cupy


# What each map adds up, in NumPy: the CUDA maps form products in the tensor's type and sum in
# double (gt_math.cuh). Operands beyond a map's count are ignored.
def _masked_log(x):
    with np.errstate(all="ignore"):
        return np.where(x > 0, np.log(np.where(x > 0, x, 1)), 0).astype(x.dtype)


REDUCE_MAPS = {
    "sum": lambda v0, v1, v2: [v0],
    "mul": lambda g, y, _: [g * y],
    "mul_pair": lambda g, x, y: [g * y, g * x],
    "square_grad": lambda g, x, _: [g * (2 * x)],
    "pow_grad_x": lambda g, x, p: [(g * p) * np.power(x, p - 1)],
    "pow_grad_p": lambda g, x, p: [(g * np.power(x, p)) * _masked_log(x)],
    "sum_product": lambda x, y, _: [x * y],
    "sum_power": lambda x, p, _: [np.power(x, p)],
    "sum_square": lambda x, v1, v2: [x * x],
}
# one-pass kernels, for a cotangent c: (sum term, second sum term, gradient 0, gradient 1)
ONE_PASS_MAPS = {
    "sum_grad_mul": lambda x, y, c: (x * y, 0 * x, c * y, c * x),
    "sum_grad_square": lambda x, y, c: (x * x, 0 * x, c * (2 * x), 0 * x),
    "sum_grad_pow": lambda x, p, c: (np.power(x, p), 0 * x, (c * p) * np.power(x, p - 1),
                                     0 * x),
    "sum_grad_pow_p": lambda x, p, c: (np.power(x, p), (c * np.power(x, p)) * _masked_log(x),
                                       (c * p) * np.power(x, p - 1), 0 * x),
}


class _Kernel:
    """Kernel ``name`` of ``module``: checks a call's arguments, then does its work in NumPy."""

    calls: list = []
    launches: list = []  # (name, grid, block, arguments) of each call

    def __init__(self, module: str, name: str) -> None:
        signatures = _signatures(module)
        assert name in signatures, f"no kernel {name} in kernels/{module}.cu"
        self.name, self.kinds = name, signatures[name]
        self.params = _ptx_params(module, name)

    def __call__(self, grid: tuple, block: tuple, args: tuple) -> None:
        assert len(args) == len(self.kinds), f"{self.name}: {len(args)} arguments"
        if self.params is not None:
            _check_against_ptx(self.name, args, self.params)
        for i, (arg, kind) in enumerate(zip(args, self.kinds)):
            if kind == "pointer":
                assert isinstance(arg, np.ndarray) or (type(arg) is np.uint64 and arg == 0), (
                    f"{self.name} argument {i}: a pointer, given {type(arg).__name__}")
            else:
                assert type(arg) is kind, (
                    f"{self.name} argument {i}: {kind.__name__}, given {type(arg).__name__}")
        assert all(type(n) is int and n >= 1 for n in (*grid, *block)), (grid, block)
        _Kernel.calls.append(self.name)
        _Kernel.launches.append((self.name, grid, block, args))
        body = re.sub(r"^gt_|_(f32|f64)$", "", self.name)
        if body == "finish":
            partial, splits, count, out = args
            out.reshape(-1)[:] = partial.reshape(int(splits), int(count)).sum(axis=0)
        elif body in ONE_PASS_MAPS:
            self._one_pass(ONE_PASS_MAPS[body], *args)
        else:
            self._reduce(REDUCE_MAPS[body.rsplit("_", 1)[0]], body.endswith("_inner"), args)

    @staticmethod
    def _one_pass(terms, x, y, step, c, n, splits, g0, g1, part0, part1, width=256) -> None:
        n, splits = int(n), int(splits)
        x = np.asarray(x).reshape(-1)
        y = np.asarray(y).reshape(-1)[:n] if step else np.asarray(y).reshape(-1)[0]
        value, second, w0, w1 = terms(x, y, c)
        for grad, w in ((g0, w0), (g1, w1)):
            if isinstance(grad, np.ndarray):
                grad.reshape(-1)[:] = w
        per_block = -(-n // splits)
        chunk = -(-per_block // width) * width  # whole block widths, as the kernel
        for part, term in ((part0, value), (part1, second)):
            term = np.broadcast_to(term, (n,)).astype(np.float64)
            part[:] = [term[s * chunk:(s + 1) * chunk].sum() for s in range(splits)]

    @staticmethod
    def _reduce(element_map, inner: bool, args: tuple) -> None:
        operands = [args[4 * i: 4 * i + 4] for i in range(3)]
        rest = [int(a) if type(a) is np.int64 else a for a in args[12:]]
        if inner:
            (k1, r, splits), k2, (out0, out1, part0, part1) = rest[:3], 1, rest[3:]
        else:
            (k1, r, k2, splits), (out0, out1, part0, part1) = rest[:4], rest[4:]
        dtype = next(op[0].dtype for op in operands if isinstance(op[0], np.ndarray))
        views = []
        for ptr, a, b, c in operands:
            if not isinstance(ptr, np.ndarray):
                views.append(np.zeros((k1, r, k2), dtype))
                continue
            size = ptr.itemsize
            views.append(np.lib.stride_tricks.as_strided(
                np.asarray(ptr), (k1, r, k2), (int(a) * size, int(b) * size, int(c) * size)))
        chunk = -(-r // splits)
        with np.errstate(all="ignore"):
            values = element_map(*views)
        for value, out, part in zip(values, (out0, out1), (part0, part1)):
            sums = [value[:, s * chunk:(s + 1) * chunk, :].astype(np.float64).sum(axis=1)
                    for s in range(splits)]
            if splits == 1:
                out.reshape(-1)[:] = sums[0].reshape(-1)
            else:
                part[:] = np.concatenate([s.reshape(-1) for s in sums])


@pytest.fixture
def fake_gpu(monkeypatch):
    """CuPy and the kernels, stood in for by NumPy; yields the list of kernels called."""
    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy())
    monkeypatch.setattr(loader, "function", lambda module, name, device_id: _Kernel(module, name))
    monkeypatch.setattr(loader, "multiprocessors", lambda device_id: 4)
    _Kernel.calls = []
    _Kernel.launches = []
    yield _Kernel.calls


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
    got = launch.map_reduce(kernels.MAP_REDUCE[kernel], [_on_device(a) for a in host], shape)
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
    got = launch.map_reduce(kernels.MAP_REDUCE[kernel], [_on_device(a) for a in host], shape)
    (name, grid, block, args), = [c for c in _Kernel.launches if "finish" not in c[0]]
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
            got = launch.map_reduce(kernels.MAP_REDUCE["mul"], [_on_device(view), _on_device(y)],
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
        kernels.ONE_PASS[kernel], _on_device(x),
        None if kernel == "sum_grad_square" else _on_device(other),
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
    x = _on_device(np.ones(10, np.float32))
    assert launch.sum_with_grads(MUL, x[::2], x[::2], (True, True)) is None
    assert launch.sum_with_grads(MUL, x, x[:5], (True, True)) is None
    assert launch.sum_with_grads(MUL, x, x.astype(np.float64), (True, True)) is None
    assert launch.sum_with_grads(SQUARE, x.astype(np.float16), None,
                                 (True, False)) is None
    assert fake_gpu == []


def test_signatures_are_read_from_every_module():
    for module in ("sum", "multiply_grad", "power_grad", "fused_sum"):
        found = _signatures(module)
        assert "gt_finish_f32" in found and "gt_finish_f64" in found
        assert all(kinds.count("pointer") >= 2 for kinds in found.values())
    assert _signatures("fused_sum")["gt_sum_grad_mul_f32"] == (
        ["pointer"] * 2 + [np.int64, np.float32, np.int64, np.int64] + ["pointer"] * 4)


@pytest.mark.parametrize("wants", [(True, True), (True, False), (False, True)], ids=str)
def test_one_pass_overrides_give_the_fused_routes_shapes(fake_gpu, wants):
    """The CuPy forwards registered for gputape.cuda.fused.pattern_sum: (sum, [gradients])."""
    from gputape.cuda import table

    rng = np.random.default_rng(8)
    x, y = rng.uniform(0.5, 2.0, (3, 5)), rng.standard_normal((3, 5))
    p = np.asarray(1.5)
    total, grads = table._one_pass_multiply(None, _on_device(x), _on_device(y), list(wants), 1.0)
    np.testing.assert_allclose(total, np.sum(x * y), rtol=1e-12)
    for grad, want, wanted in zip(grads, (y, x), wants):
        assert (grad is None) != wanted
        if wanted:
            np.testing.assert_array_equal(grad, want)
    total, grads = table._one_pass_pow(None, _on_device(x), _on_device(p), list(wants), 0.25)
    np.testing.assert_allclose(total, np.sum(x ** 1.5), rtol=1e-12)
    assert len(grads) == 2 and (grads[0] is None) != wants[0] and (grads[1] is None) != wants[1]
    if wants[0]:
        np.testing.assert_allclose(grads[0], 0.25 * 1.5 * x ** 0.5, rtol=1e-12)
    if wants[1]:
        assert grads[1].shape == ()
        np.testing.assert_allclose(grads[1], 0.25 * np.sum(x ** 1.5 * np.log(x)), rtol=1e-12)
    total, grads = table._one_pass_square(None, _on_device(x), [True], 1.0)
    np.testing.assert_allclose(total, np.sum(x * x), rtol=1e-12)
    assert len(grads) == 1
    np.testing.assert_array_equal(grads[0], 2 * x)
    assert table._one_pass_multiply(None, _on_device(x)[:, ::2], _on_device(y)[:, ::2],
                                    list(wants), 1.0) is None


@pytest.mark.skipif(_NVRTC_MISSING is not None, reason=str(_NVRTC_MISSING))
def test_launch_arguments_are_checked_against_the_ptx():
    params = _ptx_params("fused_sum", "gt_sum_grad_mul_f32")
    x = _on_device(np.ones(4, np.float32))
    null = np.uint64(0)
    good = (x, x, np.int64(1), np.float32(1.0), np.int64(4), np.int64(1), x, null, x, x)
    _check_against_ptx("gt_sum_grad_mul_f32", good, params)
    for i, wrong in [(3, np.float64(1.0)), (2, np.int32(1)), (4, 4), (0, np.float32(0))]:
        bad = good[:i] + (wrong,) + good[i + 1:]
        with pytest.raises(AssertionError, match=f"argument {i}"):
            _check_against_ptx("gt_sum_grad_mul_f32", bad, params)
    with pytest.raises(AssertionError, match="9 arguments"):
        _check_against_ptx("gt_sum_grad_mul_f32", good[:-1], params)
