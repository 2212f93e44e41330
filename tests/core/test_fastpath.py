"""The one-ufunc fast paths (gputape.core.fastpath) give exactly what the general path gives: the
same bits, the same tape entries, the same errors, and they step aside whenever the general path
has something to do (overrides, check_numerics, large operands, devices, Variables)."""

from __future__ import annotations

import numpy as np
import pytest

import gputape as gt
from gputape.core import dispatch, fastpath
from gputape.core.registry import REGISTRY, implement, unregister
from gputape.core.state import recording
from gputape.host.pool import MIN_BYTES

UFUNC_PRIMS = sorted(name for name, prim in REGISTRY.items() if prim.host_ufunc is not None)
UNARY = [name for name in UFUNC_PRIMS if len(REGISTRY[name].arg_names) == 1]
BINARY = [name for name in UFUNC_PRIMS if len(REGISTRY[name].arg_names) == 2]


def _call(name, *args):
    prim = REGISTRY[name]
    return (fastpath.unary if len(args) == 1 else fastpath.binary)(prim, *args)


def _values(name, dtype, rng, shape=(7,)):
    if np.dtype(dtype).kind == "b":
        return rng.uniform(size=shape) > 0.5
    values = rng.uniform(0.1, 2.0, size=shape)
    if values.size and name not in ("log", "divide"):
        values.flat[0] = 0.0
    return values.astype(dtype)


def _same_bits(got, want) -> None:
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)
    if got.dtype.kind == "f":
        np.testing.assert_array_equal(np.signbit(got), np.signbit(want))


def test_the_elementwise_ops_are_declared_as_ufuncs():
    # A guard against losing the fast path silently: the hot ops keep their ufunc forwards.
    for name in ("add", "subtract", "multiply", "divide", "sin", "cos", "exp", "log", "tanh",
                 "negative", "square", "sqrt", "less", "maximum"):
        assert name in UFUNC_PRIMS, name


@pytest.mark.parametrize("name", UNARY)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32])
@pytest.mark.parametrize("shape", [(7,), (), (2, 3)], ids=str)
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_unary_matches_the_generic_forward(name, dtype, shape, rng):
    prim = REGISTRY[name]
    values = _values(name, dtype, rng, shape) * (3 if dtype == np.int32 else 1)
    if prim.float_only and dtype == np.int32:
        with pytest.raises(gt.errors.DTypeError, match=f"{name}: needs a float tensor"):
            _call(name, gt.constant(values))
        return
    result = _call(name, gt.constant(values))
    assert type(result) is gt.Tensor and type(result._data) is np.ndarray
    _same_bits(result._data, prim.forward(np, values))


@pytest.mark.parametrize("name", BINARY)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shapes", [((7,), (7,)), ((2, 1), (3,)), ((), (4,))], ids=str)
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_binary_matches_the_generic_forward(name, dtype, shapes, rng):
    prim = REGISTRY[name]
    a = _values(name, dtype, rng, shapes[0])
    b = _values(name, dtype, rng, shapes[1])
    if name.startswith("logical"):
        a, b = a > 1, b > 1
    result = _call(name, gt.constant(a), gt.constant(b))
    _same_bits(result._data, prim.forward(np, a, b))
    for number in (2.5, -3, 1e-3):
        if name.startswith("logical"):
            break
        scalar = np.asarray(number, dtype=dtype)
        _same_bits(_call(name, gt.constant(a), number)._data, prim.forward(np, a, scalar))
        _same_bits(_call(name, number, gt.constant(b))._data, prim.forward(np, scalar, b))


@pytest.mark.parametrize("name", ["sin", "multiply", "less"])
def test_entries_are_what_apply_records(name, rng):
    prim = REGISTRY[name]
    args = [gt.constant(rng.uniform(size=3)) for _ in prim.arg_names]
    tapes = []
    for run in (lambda: _call(name, *args), lambda: dispatch.apply(prim, *args)):
        with gt.GradientTape() as tape:
            tape.watch(args[0])
            result = run()
        tapes.append((tape, result))
    (fast, fast_out), (general, general_out) = tapes
    if prim.differentiable:
        [(p, inputs, params, output, where, kept)] = fast._entries
        [(q, inputs2, params2, output2, _, kept2)] = general._entries
        assert p is q is prim and output is fast_out and where is None and kept is kept2 is None
        assert [t._uid for t in inputs] == [t._uid for t in args] == [t._uid for t in inputs2]
        assert dict(params) == params2 == {}
        assert fast_out._uid in fast._watched
    else:
        assert fast._entries == general._entries == []
        assert [step[2] for step in fast._blocked] == [step[2] for step in general._blocked]


def test_gradients_through_the_fast_path_match_the_general_path(rng):
    x = gt.constant(rng.uniform(0.5, 1.5, size=5))
    y = gt.constant(rng.uniform(0.5, 1.5, size=5))

    def through(ops):
        with gt.GradientTape() as tape:
            tape.watch([x, y])
            z = ops["add"](ops["multiply"](ops["sin"](x), y), ops["divide"](x, 2.0))
        return [g.numpy() for g in tape.gradient(z, [x, y])]

    fast = {name: (lambda *a, name=name: _call(name, *a)) for name in ("add", "multiply",
                                                                       "sin", "divide")}
    general = {name: (lambda *a, name=name: dispatch.apply(REGISTRY[name], *a))
               for name in fast}
    for got, want in zip(through(fast), through(general)):
        _same_bits(got, want)


def test_array_mode_answers_arrays_and_other_times_tensors():
    a = np.array([0.5, 1.0], dtype=np.float32)
    assert type(gt.sin(a)) is gt.Tensor  # a user's NumPy array becomes a tensor
    outer = recording.arrays
    recording.arrays = True
    try:
        for result in (gt.sin(a), gt.multiply(a, a), gt.add(a, np.float32(1.0)), gt.add(a, 2.0),
                       gt.sin(np.asarray(np.float32(0.5)))):
            assert type(result) is np.ndarray and result.dtype == np.float32
        assert gt.sin(np.asarray(0.5)).dtype == np.float64  # 0-d stays an array, and float64
        reshaped, spread = gt.reshape(a, (2, 1)), gt.broadcast_to(a, (3, 2))
        assert type(reshaped) is np.ndarray and reshaped.shape == (2, 1)
        assert type(spread) is np.ndarray
        np.testing.assert_array_equal(spread, np.broadcast_to(a, (3, 2)))
        assert gt.broadcast_to(a, (2,)) is a
    finally:
        recording.arrays = outer


def test_a_host_implementation_runs_on_the_fast_path_and_goes_away():
    prim = REGISTRY["sin"]
    calls = []

    def counted(xp, x):
        calls.append(1)
        return xp.sin(x)

    implement("sin", "numpy", counted)
    try:
        assert prim.host_ufunc is None and prim.host_generic  # the fast path, not the ufunc
        with gt.GradientTape() as tape:
            x = gt.constant([1.0], device="cpu")
            tape.watch(x)
            y = gt.sin(x)
        assert float(tape.gradient(y, x)) == pytest.approx(np.cos(1.0))
    finally:
        unregister("sin", "numpy")
    assert calls == [1] and prim.host_ufunc is np.sin


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_check_numerics_still_sees_every_result():
    x = gt.constant([0.0, 1.0])
    with gt.debugging.check_numerics():
        assert REGISTRY["log"].host_ufunc is None
        with pytest.raises(FloatingPointError, match="'log'"):
            gt.log(x)
        with pytest.raises(FloatingPointError, match="'divide'"):
            gt.divide(1.0, x)
    assert REGISTRY["log"].host_ufunc is np.log and REGISTRY["divide"].host_ufunc is np.divide


def test_errors_are_the_general_paths():
    with pytest.raises(gt.errors.ShapeError, match="multiply: shapes do not broadcast"):
        gt.multiply(gt.constant([1.0, 2.0]), gt.constant([1.0, 2.0, 3.0]))
    with pytest.raises(gt.errors.DTypeError, match="exp: needs a float tensor"):
        gt.exp(gt.constant([1, 2]))
    with pytest.raises(gt.errors.DTypeError, match="add"):
        gt.add(gt.constant([1.0]), gt.constant([1.0], dtype=gt.float64))


def test_large_operands_and_variables_take_the_general_path(monkeypatch):
    calls = []
    real = dispatch.apply

    def spy(prim, *args, **params):
        calls.append(prim.name)
        return real(prim, *args, **params)

    monkeypatch.setattr(fastpath, "_apply", spy)
    big = gt.constant(np.ones(MIN_BYTES // 4, dtype=np.float32))
    variable = gt.Variable([1.0, 2.0])
    small = gt.constant([1.0, 2.0])
    gt.sin(big)
    gt.multiply(variable, small)
    gt.multiply(small, small)
    gt.add(small, 0.0)  # zero is never cached: -0.0 and 0.0 compare equal
    assert calls == ["sin", "multiply", "add"]
