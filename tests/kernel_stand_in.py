"""A GPU stood in for by NumPy, for the launcher's tests (``gputape.cuda.launch``) without a GPU.

``cupy_module()`` is a stand-in CuPy whose arrays are NumPy arrays (``on_device``), and
``Kernel(module, name)`` a stand-in for ``loader.function``: it checks each call's arguments
against the ``extern "C"`` signature of the same name in the preprocessed ``kernels/<module>.cu``
(and, where CuPy's NVRTC is installed, against the parameter list of the PTX that NVRTC makes
for sm_90), then does with NumPy what the CUDA code does (``REDUCE_MAPS``, ``ONE_PASS_MAPS``,
the finishing sum). ``use_fake_gpu`` puts both in place for a test. Reading the signatures needs
a C preprocessor: ``CPP`` is None without one.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import sys
import types

import numpy as np
from nvrtc_build import build, unavailable

from gputape.cuda import loader

CPP = shutil.which("cpp")

_SIGNATURE = re.compile(r'extern\s+"C"\s+__global__\s+void\s+(\w+)\s*\(([^)]*)\)')


@functools.cache
def signatures(module: str) -> dict:
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


def ptx_params(module: str, name: str) -> "list | None":
    """The PTX parameter types of kernel ``name`` (sm_90), or None without CuPy's NVRTC."""
    if NVRTC_MISSING:
        return None
    entries = build(module, "90").entries
    assert name in entries, f"no entry point {name} in the PTX of kernels/{module}.cu"
    return entries[name]


def check_against_ptx(name: str, args: tuple, params: list) -> None:
    """Each argument as CuPy would pass it (an array: its device pointer, 8 bytes; a NumPy
    scalar: its bytes) against the width and kind of the PTX parameter it lands in."""
    assert len(args) == len(params), f"{name}: {len(args)} arguments, the PTX takes {params}"
    for i, (arg, param) in enumerate(zip(args, params)):
        kind = np.uint64 if isinstance(arg, np.ndarray) else type(arg)
        assert param in _PTX_TYPES.get(kind, ()), (
            f"{name} argument {i}: {type(arg).__name__} passed where the PTX takes .{param}")


NVRTC_MISSING = unavailable()


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


def on_device(array) -> _DeviceArray:
    return np.asarray(array).view(_DeviceArray)


def cupy_module() -> types.ModuleType:
    cupy = types.ModuleType("cupy")
    cupy.empty = lambda shape, dtype: on_device(np.full(shape, np.nan, dtype))  # never zeros
    cupy.zeros = lambda shape, dtype: on_device(np.zeros(shape, dtype))
    cupy.sum = lambda a, axis=None, keepdims=False: on_device(
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


class Kernel:
    """Kernel ``name`` of ``module``: checks a call's arguments, then does its work in NumPy."""

    calls: list = []
    launches: list = []  # (name, grid, block, arguments) of each call

    def __init__(self, module: str, name: str) -> None:
        found = signatures(module)
        assert name in found, f"no kernel {name} in kernels/{module}.cu"
        self.name, self.kinds = name, found[name]
        self.params = ptx_params(module, name)

    def __call__(self, grid: tuple, block: tuple, args: tuple) -> None:
        assert len(args) == len(self.kinds), f"{self.name}: {len(args)} arguments"
        if self.params is not None:
            check_against_ptx(self.name, args, self.params)
        for i, (arg, kind) in enumerate(zip(args, self.kinds)):
            if kind == "pointer":
                assert isinstance(arg, np.ndarray) or (type(arg) is np.uint64 and arg == 0), (
                    f"{self.name} argument {i}: a pointer, given {type(arg).__name__}")
            else:
                assert type(arg) is kind, (
                    f"{self.name} argument {i}: {kind.__name__}, given {type(arg).__name__}")
        assert all(type(n) is int and n >= 1 for n in (*grid, *block)), (grid, block)
        Kernel.calls.append(self.name)
        Kernel.launches.append((self.name, grid, block, args))
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


def use_fake_gpu(monkeypatch) -> list:
    """CuPy and the kernels, stood in for by NumPy until ``monkeypatch`` undoes it; returns the
    list of the kernels called (``Kernel.calls``; ``Kernel.launches`` has their arguments)."""
    monkeypatch.setitem(sys.modules, "cupy", cupy_module())
    monkeypatch.setattr(loader, "function", lambda module, name, device_id: Kernel(module, name))
    monkeypatch.setattr(loader, "multiprocessors", lambda device_id: 4)
    Kernel.calls = []
    Kernel.launches = []
    return Kernel.calls
