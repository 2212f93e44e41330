"""Which fused kernels a gradient on a GPU launches, checked without a GPU.

A stand-in CuPy holds NumPy arrays behind a ``cupy.ndarray`` of its own (so gputape takes
them for GPU arrays: ``"gpu:0"`` tensors, the ``"cupy"`` overrides, rules and pattern sums),
and the kernels are those of ``test_kernel_launches.py``: each call checked against the
kernel's C signature, then done in NumPy. A tape on ``"gpu:0"`` must then launch the kernels
:func:`gputape.cuda.overrides.install` registers, give the values and gradients of the generic
path, and launch nothing at all with ``GPUTAPE_FUSED=0``.
"""

from __future__ import annotations

import re
import sys
import types

import numpy as np
import pytest
from helpers import host
from test_kernel_launches import CPP, _Kernel

import gputape as gt
from gputape.cuda import loader

pytestmark = pytest.mark.skipif(CPP is None, reason="no C preprocessor (cpp) on the PATH")

_DEVICE_MODULE = sys.modules["gputape.core.device"]  # gt.device is the context manager


def _unwrap(value):
    if isinstance(value, _FakeArray):
        return value.host
    if isinstance(value, (list, tuple)):
        return type(value)(_unwrap(v) for v in value)
    return value


def _wrap(value):
    if isinstance(value, (np.ndarray, np.generic)):  # CuPy's reductions give 0-d arrays
        return _FakeArray(np.asarray(value))
    if isinstance(value, (list, tuple)):
        return type(value)(_wrap(v) for v in value)
    return value


def _on_arrays(fn):
    def call(*args, **kwargs):
        return _wrap(fn(*_unwrap(args), **{k: _unwrap(v) for k, v in kwargs.items()}))

    return call


class _Device:
    def __init__(self, device_id: int = 0) -> None:
        self.id = device_id

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> bool:
        return False


def _real_cupy():
    """CuPy's Python layer where installed (it imports without a GPU), to ask what it has."""
    try:
        import cupy

        return cupy if hasattr(cupy, "RawModule") else None
    except Exception:  # noqa: BLE001 - not installed, or broken: use NumPy's names
        return None


_CUPY = _real_cupy()


def _cupy_lacks(func) -> bool:
    """True when CuPy has no function of ``func``'s name (``numpy.linalg.x``: cupy.linalg.x),
    so that its ``__array_function__`` returns NotImplemented and NumPy raises TypeError.
    Without CuPy installed, every NumPy function passes."""
    if _CUPY is None:
        return False
    module = _CUPY
    for part in func.__module__.split(".")[1:]:
        module = getattr(module, part, None)
        if module is None:
            return True
    return not hasattr(module, func.__name__)


def _wrap_indices(host: np.ndarray, key):
    """``key`` with its integer index arrays taken modulo the size of the dimension each
    indexes: CuPy wraps out-of-range integer array indices around instead of raising."""
    items = key if isinstance(key, tuple) else (key,)
    if not any(isinstance(k, np.ndarray) and k.dtype.kind in "iu" for k in items):
        return key
    used = sum(k.ndim if isinstance(k, np.ndarray) and k.dtype.kind == "b" else 1
               for k in items if k is not None and k is not Ellipsis)
    out, dim = [], 0
    for k in items:
        if k is Ellipsis:
            dim += host.ndim - used
        elif isinstance(k, np.ndarray) and k.dtype.kind in "iu":
            k = np.mod(k, host.shape[dim]) if host.shape[dim] else k
            dim += 1
        elif k is not None:
            dim += k.ndim if isinstance(k, np.ndarray) else 1
        out.append(k)
    return tuple(out)


class _Flags:
    """CuPy's ``ndarray.flags``: the contiguity and ownership, no ``writeable``."""

    def __init__(self, host: np.ndarray) -> None:
        self.c_contiguous = host.flags.c_contiguous
        self.f_contiguous = host.flags.f_contiguous
        self.owndata = host.flags.owndata


class _FakeArray:
    """A GPU array as gputape sees one: NumPy inside, and CuPy's ways where they differ from
    NumPy's: no implicit conversion to the host, out-of-range integer index arrays wrapped
    around, ``flags`` without ``writeable``, NumPy functions CuPy lacks refused."""

    __module__ = "cupy"  # how gputape tells a CuPy array from another value
    __array_priority__ = 1000
    __hash__ = None

    def __init__(self, array: np.ndarray) -> None:
        self.host = array

    device = property(lambda self: _Device(0))
    shape = property(lambda self: self.host.shape)
    dtype = property(lambda self: self.host.dtype)
    strides = property(lambda self: self.host.strides)
    itemsize = property(lambda self: self.host.itemsize)
    ndim = property(lambda self: self.host.ndim)
    size = property(lambda self: self.host.size)
    nbytes = property(lambda self: self.host.nbytes)
    flags = property(lambda self: _Flags(self.host))
    T = property(lambda self: _FakeArray(self.host.T))

    def get(self) -> np.ndarray:
        return np.array(self.host)

    def __array__(self, *args, **kwargs):
        raise TypeError("implicit conversion of a GPU array to a NumPy array")

    def __getattr__(self, name: str):
        if name.startswith("__"):  # no __array_interface__ (a silent host conversion), ...
            raise AttributeError(f"'cupy.ndarray' object has no attribute {name!r}")
        value = getattr(self.host, name)
        return _on_arrays(value) if callable(value) else _wrap(value)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        kwargs = {k: _unwrap(v) for k, v in kwargs.items()}
        return _wrap(getattr(ufunc, method)(*_unwrap(inputs), **kwargs))

    def __array_function__(self, func, types, args, kwargs):
        if _cupy_lacks(func):
            return NotImplemented
        return _wrap(func(*_unwrap(args), **{k: _unwrap(v) for k, v in kwargs.items()}))

    def __getitem__(self, key):
        key = _wrap_indices(self.host, _unwrap(key))
        out = self.host[key]
        if isinstance(out, np.generic):  # NumPy gives a copy of one element, CuPy a 0-d view
            out = self.host[(key if isinstance(key, tuple) else (key,)) + (Ellipsis,)]
        return _FakeArray(out)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __setitem__(self, key, value) -> None:
        self.host[_unwrap(key)] = _unwrap(value)

    def __len__(self) -> int:
        return len(self.host)

    def __bool__(self) -> bool:
        return bool(self.host)

    def __float__(self) -> float:
        return float(self.host)

    def __int__(self) -> int:
        return int(self.host)

    def __neg__(self):
        return np.negative(self)

    def __abs__(self):
        return np.absolute(self)


def _binary(ufunc):
    return (lambda self, other: ufunc(self, other)), (lambda self, other: ufunc(other, self))


for _name, _ufunc in [("add", np.add), ("sub", np.subtract), ("mul", np.multiply),
                      ("truediv", np.true_divide), ("pow", np.power), ("matmul", np.matmul),
                      ("lt", np.less), ("le", np.less_equal), ("gt", np.greater),
                      ("ge", np.greater_equal), ("eq", np.equal), ("ne", np.not_equal)]:
    _forward, _reflected = _binary(_ufunc)
    setattr(_FakeArray, f"__{_name}__", _forward)
    setattr(_FakeArray, f"__r{_name}__", _reflected)


def _fake_cupy() -> types.ModuleType:
    cupy = types.ModuleType("cupy")
    cupy.ndarray = _FakeArray

    def namespace(name: str):
        value = getattr(np, name)  # NumPy's functions on the arrays inside; types as they are
        return _on_arrays(value) if callable(value) and not isinstance(value, type) else value

    def asarray(a, dtype=None):
        if isinstance(a, _FakeArray) and (dtype is None or np.dtype(dtype) == a.dtype):
            return a
        return _FakeArray(np.array(_unwrap(a), dtype=dtype))  # a copy, as to a GPU

    cupy.__getattr__ = namespace
    cupy.asarray = asarray
    cupy.asnumpy = lambda a: np.array(_unwrap(a))
    cupy.empty = lambda shape, dtype=np.float64: _FakeArray(np.full(shape, np.nan, dtype))
    cupy.cuda = types.SimpleNamespace(
        Device=_Device, runtime=types.SimpleNamespace(getDeviceCount=lambda: 1))
    return cupy


def _kernel(module: str, name: str, device_id: int):
    kernel = _Kernel(module, name)

    def launch(grid: tuple, block: tuple, args: tuple) -> None:
        for i, arg in enumerate(args):  # a kernel reads GPU memory, never a host array
            assert not isinstance(arg, np.ndarray), f"{name} argument {i}: a host array"
        kernel(grid, block, tuple(_unwrap(a) for a in args))

    return launch


@pytest.fixture
def gpu_stand_in(monkeypatch):
    """A stand-in "gpu:0" for the test's duration; yields the names of the kernels launched."""
    cupy = _fake_cupy()
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    monkeypatch.setitem(_DEVICE_MODULE._CUPY_STATE, "module", cupy)
    monkeypatch.setattr(_DEVICE_MODULE, "_RESOLVED_DEFAULT", {})
    monkeypatch.setattr(loader, "function", _kernel)
    monkeypatch.setattr(loader, "multiprocessors", lambda device_id: 4)
    _Kernel.calls = []
    with gt.device("gpu:0"):
        yield _Kernel.calls


def _family(kernel: str) -> str:
    """``gt_mul_pair_outer_f32`` -> ``mul_pair``."""
    return re.sub(r"^gt_|(_inner|_outer)?_(f32|f64)$", "", kernel)


def _run(fn, arrays: list, watch: tuple) -> list:
    """Host copies of ``fn``'s value and its gradients with respect to the ``watch`` inputs."""
    tensors = [gt.constant(a) for a in arrays]
    sources = [tensors[i] for i in watch]
    with gt.GradientTape() as tape:
        tape.watch(sources)
        value = fn(*tensors)
    grads = tape.gradient(value, sources)
    assert type(value._data) is _FakeArray and all(type(g._data) is _FakeArray for g in grads)
    return [host(t) for t in (value, *grads)]


# name -> (function, input shapes, watched inputs, the kernels its value and gradients launch
# besides the finishing sums)
CASES = {
    "sum of x*y + x**3": (lambda x, y: gt.reduce_sum(x * y + x ** 3.0),
                          [(4, 5), (4, 5)], (0, 1), {"sum", "mul_pair", "pow_grad_x"}),
    "one-pass sum of x*y": (lambda x, y: gt.reduce_sum(x * y), [(4, 5), (4, 5)], (0, 1),
                            {"sum_grad_mul"}),
    "one-pass mean of x**p": (lambda x, p: gt.reduce_mean(gt.pow(x, p)), [(7,), ()], (0, 1),
                              {"sum_grad_pow_p"}),
    "one-pass sum of square": (lambda x: gt.reduce_sum(gt.square(x)), [(3, 2)], (0,),
                               {"sum_grad_square"}),
    "partial sum of x*y": (lambda x, y: gt.reduce_sum(x * y, axis=0), [(4, 5), (4, 5)],
                           (0, 1), {"sum_product", "mul_pair"}),
    "keepdims sum of square": (lambda x: gt.reduce_sum(gt.square(x), axis=1, keepdims=True),
                               [(4, 5)], (0,), {"sum_square", "square_grad"}),
    "partial sum of x**p": (lambda x, p: gt.reduce_sum(gt.pow(x, p), axis=0),
                            [(3, 4), ()], (0, 1), {"sum_power", "pow_grad_x", "pow_grad_p"}),
    "0-d square": (lambda x: gt.square(x) * 3.0, [()], (0,), {"mul", "square_grad"}),
    "broadcast product": (lambda x, b: gt.reduce_sum(gt.exp(x * b)), [(4, 5), (5,)], (0, 1),
                          {"sum", "mul"}),
    "un-broadcast of a bias": (lambda x, b: gt.reduce_sum(gt.exp(x + b), axis=1),
                               [(300, 3), (3,)], (1,), {"sum"}),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", list(CASES))
def test_a_gpu_gradient_launches_the_fused_kernels(gpu_stand_in, monkeypatch, rng, case, dtype):
    fn, shapes, watch, families = CASES[case]
    arrays = [rng.uniform(0.5, 1.5, s).astype(dtype) for s in shapes]
    fused_out = _run(fn, arrays, watch)
    launched = list(gpu_stand_in)
    assert {_family(k) for k in launched} - {"finish"} == families  # finish: split sums
    assert all(k.endswith("_f32" if dtype == np.float32 else "_f64") for k in launched)

    gpu_stand_in.clear()
    monkeypatch.setenv("GPUTAPE_FUSED", "0")
    generic_out = _run(fn, arrays, watch)
    assert gpu_stand_in == []  # no kernel: every forward and rule is the generic one
    tol = dict(rtol=2e-6, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-13, atol=1e-13)
    for got, want in zip(fused_out, generic_out):
        assert got.shape == want.shape and got.dtype == want.dtype
        np.testing.assert_allclose(got, want, **tol)


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", [None, 0, -1, (0, 2), (1, 2)], ids=str)
def test_pattern_sums_over_axes_equal_generic(gpu_stand_in, monkeypatch, rng, axis, keepdims):
    """The CuPy pattern forwards summed over some axes: the kept shape the kernels write, then
    the reshape that drops the summed axes unless ``keepdims``. Under two tapes, so that full
    sums run the pattern kernels too (one tape would take the one-pass kernels)."""
    x = rng.uniform(0.5, 1.5, (3, 4, 5))
    y = rng.standard_normal((3, 4, 5))

    def patterns(x, y):
        with gt.GradientTape() as outer:
            outer.watch([x, y])
            with gt.GradientTape() as inner:
                inner.watch([x, y])
                sums = [gt.reduce_sum(x * y, axis=axis, keepdims=keepdims),
                        gt.reduce_sum(gt.square(x), axis=axis, keepdims=keepdims),
                        gt.reduce_sum(x ** 2.5, axis=axis, keepdims=keepdims)]
        return [host(s) for s in sums]

    got = patterns(gt.constant(x), gt.constant(y))
    assert {_family(k) for k in gpu_stand_in} - {"finish"} == {
        "sum_product", "sum_square", "sum_power"}
    monkeypatch.setenv("GPUTAPE_FUSED", "0")
    want = patterns(gt.constant(x), gt.constant(y))
    for g, w in zip(got, want):
        assert g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=1e-13, atol=1e-13)


def test_every_row_of_the_table_is_registered_for_cupy():
    """What :func:`gputape.cuda.table.route` registers for ``"cupy"``, by name (the tests
    above check that the registered kernels are the ones that run); unroute removes exactly
    that, and routing again restores it."""
    from gputape.core.registry import REGISTRY
    from gputape.cuda import fused, table

    def registered():
        return {name: (REGISTRY[name].implementations.get("cupy"),
                       REGISTRY[name].joint_rules_for.get("cupy"),
                       REGISTRY[name].shortcuts.get("cupy"))
                for name in ("sum_to", "reduce_sum", "reduce_mean", "mul_grad", "square_grad",
                             "pow_grad_x", "pow_grad_p", "mul_grad_pair", "multiply", "square",
                             "pow")}

    for name in ("sum_to", "reduce_sum", "mul_grad", "square_grad", "pow_grad_x", "pow_grad_p",
                 "mul_grad_pair"):
        assert REGISTRY[name].implementations["cupy"].__module__ == table.__name__, name
    for name in ("multiply", "square", "pow"):
        pattern = fused.PATTERN_SUMS[(name, "cupy")]
        assert pattern.forward.__module__ == table.__name__
        unit = {"multiply": table._one_pass_multiply, "square": table._one_pass_square,
                "pow": table._one_pass_pow}[name]
        assert pattern.one_pass is unit
    before = registered()
    host_sum_to = REGISTRY["sum_to"].implementations["numpy"]
    table.unroute("cupy")
    try:
        assert all(value == (None, None, None) for value in registered().values())
        assert not any(key[1] == "cupy" for key in fused.PATTERN_SUMS)
        assert REGISTRY["sum_to"].implementations["numpy"] is host_sum_to  # the host's stays
    finally:
        table.route("cupy")
    after = registered()
    assert {k: [f is not None for f in v] for k, v in after.items()} == {
        k: [f is not None for f in v] for k, v in before.items()}


def test_the_stand_in_indexes_as_cupy_does():
    """Out-of-range integer index arrays wrap around (CuPy), scalars still raise; flags have
    no ``writeable``; a NumPy function CuPy lacks is refused (where CuPy is installed)."""
    a = _FakeArray(np.arange(12.0).reshape(3, 4))
    np.testing.assert_array_equal(a[np.array([0, 5])].host, a.host[[0, 2]])
    np.testing.assert_array_equal(a[..., np.array([-5, 4])].host, a.host[:, [3, 0]])
    np.testing.assert_array_equal(a[None, 1, np.array([6])].host, a.host[None, 1, [2]])
    with pytest.raises(IndexError):
        a[3]
    assert not hasattr(a.flags, "writeable") and a.flags.c_contiguous
    if _CUPY is not None:
        assert _cupy_lacks(np.busday_count) and not _cupy_lacks(np.linalg.norm)
        with pytest.raises(TypeError):
            np.busday_count(a, a)


def test_out_of_range_index_arrays_raise_on_a_gpu(gpu_stand_in):
    """Checked before the indices move to the GPU, where CuPy would wrap them around."""
    x = gt.constant([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert type(x._data) is _FakeArray
    bad = [lambda: x[[0, 2]], lambda: x[:, [0, 3]], lambda: x[..., np.array([-4])],
           lambda: x[gt.constant([0, 5])], lambda: x[1, gt.constant([3])],
           lambda: gt.gather(x, [0, 2]), lambda: gt.gather(x, gt.constant([-3]))]
    for index in bad:
        with pytest.raises(gt.errors.IndexOutOfRangeError, match="out of range"):
            index()
    np.testing.assert_array_equal(host(x[[1, -2]]), [[4.0, 5.0, 6.0], [1.0, 2.0, 3.0]])
    np.testing.assert_array_equal(host(x[:, gt.constant([2, -3])]), [[3.0, 1.0], [6.0, 4.0]])
    np.testing.assert_array_equal(host(gt.gather(x, gt.constant([1]), axis=0)), [[4, 5, 6]])
