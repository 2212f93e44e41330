"""Which fused kernels a gradient on a GPU launches, checked without a GPU.

A stand-in CuPy holds NumPy arrays behind a ``cupy.ndarray`` of its own (so gputape takes
them for GPU arrays: ``"gpu:0"`` tensors, the ``"cupy"`` overrides, rules and pattern sums),
and the kernels are those of ``test_kernel_launches.py`` (``tests/kernel_stand_in.py``; the
stand-in GPU: ``tests/array_stand_in.py``): each call checked against the kernel's C signature,
then done in NumPy. A tape on ``"gpu:0"`` must then launch the kernels
:func:`gputape.cuda.overrides.install` registers, give the values and gradients of the generic
path, and launch nothing at all with ``GPUTAPE_FUSED=0``.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from array_stand_in import CUPY, FakeArray, cupy_lacks, use_gpu_stand_in
from helpers import host
from kernel_stand_in import CPP

import gputape as gt

pytestmark = pytest.mark.skipif(CPP is None, reason="no C preprocessor (cpp) on the PATH")


@pytest.fixture
def gpu_stand_in(monkeypatch):
    """A stand-in "gpu:0" for the test's duration; yields the names of the kernels launched."""
    with use_gpu_stand_in(monkeypatch) as launched:
        yield launched


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
    assert type(value._data) is FakeArray and all(type(g._data) is FakeArray for g in grads)
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
    a = FakeArray(np.arange(12.0).reshape(3, 4))
    np.testing.assert_array_equal(a[np.array([0, 5])].host, a.host[[0, 2]])
    np.testing.assert_array_equal(a[..., np.array([-5, 4])].host, a.host[:, [3, 0]])
    np.testing.assert_array_equal(a[None, 1, np.array([6])].host, a.host[None, 1, [2]])
    with pytest.raises(IndexError):
        a[3]
    assert not hasattr(a.flags, "writeable") and a.flags.c_contiguous
    if CUPY is not None:
        assert cupy_lacks(np.busday_count) and not cupy_lacks(np.linalg.norm)
        with pytest.raises(TypeError):
            np.busday_count(a, a)


def test_out_of_range_index_arrays_raise_on_a_gpu(gpu_stand_in):
    """Checked before the indices move to the GPU, where CuPy would wrap them around."""
    x = gt.constant([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert type(x._data) is FakeArray
    bad = [lambda: x[[0, 2]], lambda: x[:, [0, 3]], lambda: x[..., np.array([-4])],
           lambda: x[gt.constant([0, 5])], lambda: x[1, gt.constant([3])],
           lambda: gt.gather(x, [0, 2]), lambda: gt.gather(x, gt.constant([-3]))]
    for index in bad:
        with pytest.raises(gt.errors.IndexOutOfRangeError, match="out of range"):
            index()
    np.testing.assert_array_equal(host(x[[1, -2]]), [[4.0, 5.0, 6.0], [1.0, 2.0, 3.0]])
    np.testing.assert_array_equal(host(x[:, gt.constant([2, -3])]), [[3.0, 1.0], [6.0, 4.0]])
    np.testing.assert_array_equal(host(gt.gather(x, gt.constant([1]), axis=0)), [[4, 5, 6]])
