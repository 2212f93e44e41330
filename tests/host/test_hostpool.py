"""The pool of large host buffers: reuse only once nothing refers to a buffer, limits, fallbacks,
and results identical to plain NumPy."""

from __future__ import annotations

import contextlib
import threading

import numpy as np
import pytest
from helpers import POOLED_UFUNCS

import gputape as gt
from gputape.host import pool as hostpool
from gputape.host.pool import HostPool, pooled_numpy

KB = 1 << 10


def _pool(limit=1 << 24):
    return HostPool(limit_bytes=limit, min_bytes=4 * KB)


def test_a_buffer_is_reused_once_its_array_is_gone():
    pool = _pool()
    a = pool.empty((1024, 2), np.float32)
    address = a.ctypes.data
    del a
    b = pool.empty((2048,), np.float32)
    assert b.ctypes.data == address
    assert pool.stats()["buffers"] == 1


@pytest.mark.parametrize("derive", [
    lambda a: a[::2],
    lambda a: a.reshape(2, -1).T,
    lambda a: a.view(np.int32),
    lambda a: a[10:][5:],
    lambda a: np.asarray(a),
    lambda a: memoryview(a),
], ids=["slice", "reshape-transpose", "view-dtype", "slice-of-slice", "asarray", "memoryview"])
def test_a_buffer_stays_taken_while_anything_made_from_it_lives(derive):
    pool = _pool()
    a = pool.empty((2048,), np.float32)
    a[:] = 1.0
    kept = derive(a)
    snapshot = np.array(kept, copy=True)
    del a
    b = pool.empty((2048,), np.float32)
    b[:] = 7.0
    np.testing.assert_array_equal(np.asarray(kept), snapshot)
    del kept, b
    assert pool.stats()["buffers"] == 2
    assert pool.stats()["idle"] == pool.stats()["held"]


def test_small_and_oversized_requests_are_plain_arrays():
    pool = _pool(limit=64 * KB)
    small = pool.empty((16,), np.float32)
    huge = pool.empty((1 << 16,), np.float32)  # 256 KB > the limit
    assert small.base is None and huge.base is None
    assert pool.stats() == {"held": 0, "idle": 0, "buffers": 0}


def test_the_limit_drops_idle_buffers_first_then_allocates_outside():
    pool = _pool(limit=64 * KB)
    a = pool.empty((8 * KB,), np.float32)  # 32 KB
    b = pool.empty((4 * KB,), np.float32)  # 16 KB
    del a
    c = pool.empty((10 * KB,), np.float32)  # 40 KB: fits once the idle 32 KB are dropped
    assert pool.stats()["held"] == 56 * KB
    d = pool.empty((8 * KB,), np.float32)  # no idle buffer left to drop: outside the pool
    assert d.base is None
    assert not np.shares_memory(c, b)
    del b, c
    assert pool.release() == 56 * KB
    assert pool.stats() == {"held": 0, "idle": 0, "buffers": 0}


def test_zero_limit_turns_the_pool_off():
    pool = HostPool(limit_bytes=0, min_bytes=1)
    assert pool.empty((1000,), np.float64).base is None


def test_the_environment_sets_the_limit(monkeypatch):
    monkeypatch.setenv("GPUTAPE_HOST_POOL_MB", "2")
    assert hostpool._limit_from_environment() == 2 << 20
    monkeypatch.setenv("GPUTAPE_HOST_POOL_MB", "lots")
    with pytest.raises(ValueError, match="GPUTAPE_HOST_POOL_MB='lots'.*hint"):
        hostpool._limit_from_environment()


@pytest.mark.parametrize("args", [
    lambda x: (x, x.astype(np.float64)),  # mixed dtypes promote
    lambda x: (x, x[:1]),  # broadcasting
    lambda x: (x.astype(np.int64), 2),  # integers
    lambda x: (x, np.float64(2.0)),  # a strong scalar of another dtype
], ids=["mixed-dtypes", "broadcast", "integers", "float64-scalar"])
def test_pooled_ufuncs_leave_other_cases_to_numpy(args):
    x = np.linspace(0.5, 1.5, 1 << 17, dtype=np.float32)
    operands = args(x)
    got = pooled_numpy.multiply(*operands)
    want = np.multiply(*operands)
    assert got.dtype == want.dtype and got.base is None
    np.testing.assert_array_equal(got, want)


def test_pooled_ufuncs_match_numpy_bit_for_bit():
    rng = np.random.default_rng(3)
    x = rng.uniform(0.5, 1.5, 1 << 17).astype(np.float32)
    y = rng.uniform(0.5, 1.5, 1 << 17).astype(np.float32)
    for name in ("add", "multiply", "true_divide", "power", "maximum"):
        got = getattr(pooled_numpy, name)(x, y)
        assert got.base is not None, name  # it did come from the pool
        np.testing.assert_array_equal(got, getattr(np, name)(x, y))
    for name in ("sin", "cos", "exp", "log", "tanh", "sqrt", "negative"):
        np.testing.assert_array_equal(getattr(pooled_numpy, name)(x), getattr(np, name)(x))
    np.testing.assert_array_equal(pooled_numpy.multiply(x, 2.5), x * np.float32(2.5))
    np.testing.assert_array_equal(pooled_numpy.add.reduce(x), np.add.reduce(x))


_N = 1 << 17  # float32: 512 KB, pooled


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", POOLED_UFUNCS)
def test_operands_of_one_value_cost_no_pass_and_give_numpys_bits(name, dtype):
    ufunc = getattr(np, name)
    rng = np.random.default_rng(len(name))
    values = [dtype(v) for v in rng.uniform(0.25, 1.75, ufunc.nin)]
    uniform = [np.broadcast_to(np.asarray(v), (_N,)) for v in values]
    with np.errstate(all="ignore"):
        got = getattr(pooled_numpy, name)(*uniform)
        want = ufunc(*[np.full(_N, v) for v in values])
    assert got.dtype == want.dtype and got.shape == want.shape
    assert not any(got.strides) and not got.flags.writeable  # one value, broadcast
    np.testing.assert_array_equal(got, want)
    if ufunc.nin == 2:  # one operand of one value, the other a full array: a real pass
        full = rng.uniform(0.25, 1.75, _N).astype(dtype)
        with np.errstate(all="ignore"):
            got = getattr(pooled_numpy, name)(uniform[0], full)
            want = ufunc(np.full(_N, values[0]), full)
        assert got.base is not None  # it came from the pool
        np.testing.assert_array_equal(got, want)


def test_a_product_with_a_broadcast_one_is_the_other_operand():
    x = np.random.default_rng(4).uniform(-2, 2, (256, 512)).astype(np.float32)
    one = np.broadcast_to(np.float32(1), x.shape)
    assert pooled_numpy.multiply(one, x) is x
    assert pooled_numpy.multiply(x, one) is x
    assert pooled_numpy.multiply(x, np.ones((), np.float32)) is x
    two = np.broadcast_to(np.float32(2), x.shape)
    np.testing.assert_array_equal(pooled_numpy.multiply(x, two), x * 2)
    assert pooled_numpy.add(x, one) is not x  # only products
    empty = np.broadcast_to(np.float32(1), (0,))  # strides 0 but no value to read
    assert pooled_numpy.multiply(empty, np.empty(0, np.float32)).shape == (0,)


@pytest.mark.parametrize("numerics", [False, True], ids=["array-mode", "tensor-mode"])
def test_sums_of_broadcast_cotangents_are_never_added_into(numerics):
    # Each reduce_sum sends x a read-only broadcast of one value; the walk must not add the
    # third one into the (read-only) sum of the first two.
    x = gt.constant(np.random.default_rng(5).uniform(-1, 1, _N).astype(np.float32))
    context = gt.debugging.check_numerics() if numerics else contextlib.nullcontext()
    with context, gt.GradientTape() as tape:
        tape.watch(x)
        loss = gt.reduce_sum(x) + gt.reduce_sum(x) + gt.reduce_sum(x) + gt.reduce_sum(x * 2)
    grad = tape.gradient(loss, x).numpy()
    np.testing.assert_array_equal(grad, np.full(_N, 5, np.float32))


def test_gradients_through_products_with_a_broadcast_one_are_exact():
    rng = np.random.default_rng(6)
    x = gt.constant(rng.uniform(0.5, 1.5, _N))
    y = gt.constant(rng.uniform(0.5, 1.5, _N))
    with gt.GradientTape(persistent=True) as outer:
        outer.watch([x, y])
        with gt.GradientTape() as inner:
            inner.watch([x, y])
            loss = gt.reduce_sum(x * y + x ** 3)
        gx, gy = inner.gradient(loss, [x, y])
        curvature = gt.reduce_sum(gx)
    np.testing.assert_array_equal(gy.numpy(), x.numpy())
    np.testing.assert_allclose(gx.numpy(), y.numpy() + 3 * x.numpy() ** 2, rtol=1e-14)
    np.testing.assert_allclose(outer.gradient(curvature, x).numpy(), 6 * x.numpy(), rtol=1e-14)
    assert outer.gradient(curvature, y) is not None
    gy.numpy()[0] = -1.0  # exported arrays are copies: x is untouched
    assert x.numpy()[0] != -1.0


def test_results_written_in_place_are_split_across_threads_only_when_safe(monkeypatch):
    calls = []
    monkeypatch.setattr(hostpool.hostthreads, "run",
                        lambda ufunc, args, out: calls.append(ufunc) or ufunc(*args, out=out))
    rng = np.random.default_rng(7)
    x = rng.uniform(0.5, 1.5, 1 << 18)
    out = x * x
    want = out * x
    assert pooled_numpy.multiply(out, x, out=out) is out  # x*x*x, as pow's forward does it
    np.testing.assert_array_equal(out, want)
    assert calls == [np.multiply]
    shifted = x.copy()  # overlapping views: NumPy's own call, which buffers
    want = x[1:] + x[:-1]
    pooled_numpy.add(shifted[1:], shifted[:-1], out=shifted[:-1])
    np.testing.assert_array_equal(shifted[:-1], want)
    assert calls == [np.multiply]


def test_live_tensors_never_share_a_pooled_buffer():
    rng = np.random.default_rng(0)
    n = 1 << 17  # 512 KB in float32: pooled
    x = gt.constant(rng.uniform(0.5, 1.5, n).astype(np.float32))
    y = gt.constant(rng.uniform(0.5, 1.5, n).astype(np.float32))
    kept = []
    for _ in range(3):
        with gt.GradientTape(persistent=True) as tape:
            tape.watch([x, y])
            parts = [x * y, x**3, gt.sin(y), x**3 * gt.sin(y)]
            loss = gt.reduce_sum(parts[0] + parts[3])
        kept += parts + list(tape.gradient(loss, [x, y]))
    arrays = [t.numpy() for t in kept]  # copies: values now
    for i, a in enumerate(kept):
        for b in kept[i + 1:]:
            assert not np.shares_memory(a._data, b._data)
    xs, ys = x.numpy().astype(np.float64), y.numpy().astype(np.float64)
    np.testing.assert_allclose(arrays[4], ys + 3 * xs**2 * np.sin(ys), rtol=1e-5)
    np.testing.assert_allclose(arrays[5], xs + xs**3 * np.cos(ys), rtol=1e-5)


def test_gradients_are_the_same_with_and_without_the_pool(monkeypatch):
    rng = np.random.default_rng(1)
    n = 1 << 17
    x = gt.constant(rng.uniform(0.5, 1.5, n).astype(np.float32))
    y = gt.constant(rng.uniform(0.5, 1.5, n).astype(np.float32))

    def grads():
        with gt.GradientTape() as tape:
            tape.watch([x, y])
            loss = gt.reduce_sum(x * y + x**3 * gt.sin(y))
        return [g.numpy() for g in tape.gradient(loss, [x, y])]

    pooled = grads()
    assert hostpool.stats()["held"] > 0
    monkeypatch.setattr(hostpool.POOL, "limit_bytes", 0)
    plain = grads()
    for a, b in zip(pooled, plain):
        np.testing.assert_array_equal(a, b)


def test_steps_reuse_the_same_buffers():
    rng = np.random.default_rng(2)
    n = 1 << 17
    x = gt.constant(rng.uniform(0.5, 1.5, n).astype(np.float32))

    def step():
        with gt.GradientTape() as tape:
            tape.watch(x)
            loss = gt.reduce_sum(gt.sin(x) * x)
        return tape.gradient(loss, x)

    step()
    held = hostpool.stats()["held"]
    for _ in range(20):
        step()
    assert hostpool.stats()["held"] == held


def test_threads_never_get_a_buffer_in_use():
    pool = _pool(limit=1 << 26)
    errors = []

    def work(seed):
        for i in range(200):
            a = pool.empty((4096,), np.float32)
            a[:] = seed
            b = pool.empty((4096,), np.float32)
            b[:] = -seed
            if not (np.all(a == seed) and np.all(b == -seed)):
                errors.append((seed, i))

    threads = [threading.Thread(target=work, args=(s + 1,)) for s in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


# -- zeros_operand: the zero that relu and softplus compare against ------------------------

def _special_values(size, dtype):
    x = np.random.default_rng(3).standard_normal(size).astype(dtype)
    x[::7] = -0.0
    x[::11] = np.nan
    x[::13] = -np.inf
    x[5] = np.inf
    x[17] = -np.nan
    return x


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("size", [20, 4096, 100_003])
def test_maximum_with_zeros_operand_has_the_bits_of_a_scalar_zero(dtype, size):
    x = _special_values(size, dtype)
    zero = hostpool.zeros_operand(x.shape, x.dtype)
    bits = np.dtype(f"u{np.dtype(dtype).itemsize}")
    expected = np.maximum(x, np.zeros((), dtype))
    np.testing.assert_array_equal(np.maximum(x, zero).view(bits), expected.view(bits))


def test_zeros_operand_is_read_only_zeros_of_the_shape_asked():
    zero = hostpool.zeros_operand((64, 100), np.float32)
    assert zero.shape == (64, 100) and zero.dtype == np.float32
    assert not zero.flags.writeable
    assert not zero.any()
    with pytest.raises(ValueError):
        zero[0, 0] = 1.0


def test_zeros_operand_is_one_value_when_small_or_huge():
    assert hostpool.zeros_operand((7,), np.float64).shape == ()
    huge = (hostpool._ZEROS_MAX_BYTES // 4 + 1,)
    assert hostpool.zeros_operand(huge, np.float32).shape == ()


def test_zeros_operand_grows_and_earlier_views_stay_zero(monkeypatch):
    monkeypatch.setattr(hostpool, "_ZEROS", {})
    small = hostpool.zeros_operand((4096,), np.float64)
    big = hostpool.zeros_operand((3 << 20,), np.float64)  # larger than the first array made
    assert big.size == 3 << 20 and not big.any()
    assert not small.any() and small.shape == (4096,)


@pytest.mark.parametrize("op", [gt.relu, gt.nn.softplus], ids=["relu", "softplus"])
def test_relu_and_softplus_on_large_inputs_match_a_scalar_zero(op):
    x = _special_values(50_000, np.float32)
    got = op(gt.constant(x)).numpy()
    if op is gt.relu:
        expected = np.maximum(x, np.float32(0))
    else:
        expected = (np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))).astype(np.float32)
    np.testing.assert_array_equal(got, expected)


def test_every_same_dtype_ufunc_is_pooled_without_a_list():
    """A new op whose forward is a ufunc gets pooled results with no edit to the pool."""
    assert isinstance(pooled_numpy.arctan, hostpool._PooledUfunc)
    assert pooled_numpy.arctan is pooled_numpy.arctan  # made once
    assert pooled_numpy.less is np.less and pooled_numpy.matmul is np.matmul
    assert pooled_numpy.arctan.ufunc is np.arctan
