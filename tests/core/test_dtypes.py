"""dtype rules: what Python values and NumPy arrays become, weak typing of Python numbers, no
silent float promotion, and gradients in the dtype of their source.

Expected values come from NumPy computations in float64, never from gputape itself.
"""

from __future__ import annotations

import operator
import warnings

import numpy as np
import pytest
from helpers import host, tape_grads

import gputape as gt

FLOATS = ["float16", "float32", "float64"]
TOL = {"float16": 1e-2, "float32": 1e-5, "float64": 1e-12}


def assert_close(actual, expected, dtype="float32") -> None:
    tol = TOL[str(np.dtype(dtype))]
    np.testing.assert_allclose(host(actual).astype(np.float64), np.asarray(expected, np.float64),
                               rtol=tol, atol=tol)


# -- what values become -------------------------------------------------------------------

PYTHON_VALUES = [
    pytest.param(1.5, np.float32, id="float"),
    pytest.param(2, np.int32, id="int"),
    pytest.param(True, np.bool_, id="bool"),
    pytest.param([1.0, 2.0], np.float32, id="float-list"),
    pytest.param([1, 2], np.int32, id="int-list"),
    pytest.param([[1, 2.5], [3, 4]], np.float32, id="int-and-float-list"),
    pytest.param([True, False], np.bool_, id="bool-list"),
    pytest.param(2**40, np.int64, id="int-beyond-int32"),
]


@pytest.mark.parametrize("value, dtype", PYTHON_VALUES)
def test_python_values_default_dtypes(device, value, dtype):
    t = gt.constant(value)
    assert t.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(host(t), np.asarray(value, dtype=dtype))
    assert gt.convert_to_tensor(value).dtype == np.dtype(dtype)


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64", "int8", "int16", "int64",
                                   "uint8", "bool", "complex64"])
def test_numpy_arrays_keep_their_dtype(device, dtype):
    a = (np.arange(6).reshape(2, 3) % 3).astype(dtype)
    t = gt.constant(a)
    assert t.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(host(t), a)
    assert gt.convert_to_tensor(a).dtype == np.dtype(dtype)
    assert gt.Variable(a).dtype == np.dtype(dtype)


@pytest.mark.parametrize("spelling", ["float64", np.float64, np.dtype("float64"), gt.float64])
def test_dtype_spellings(device, spelling):
    t = gt.constant([1, 2], dtype=spelling)
    assert t.dtype == np.float64
    assert gt.as_dtype(spelling) == np.float64


def test_dtype_argument_converts_python_data(device):
    assert gt.constant(1.5, dtype=gt.float16).dtype == np.float16
    assert gt.constant([1, 2], dtype="float32").dtype == np.float32
    np.testing.assert_array_equal(host(gt.constant([1.0, 2.0], dtype="int32")), [1, 2])
    with pytest.raises(gt.DTypeError):
        gt.constant([1.5], dtype="int32")  # would silently round


# -- weak Python numbers ----------------------------------------------------------------------

OPS = {
    "add": (gt.add, np.add), "subtract": (gt.subtract, np.subtract),
    "multiply": (gt.multiply, np.multiply), "divide": (gt.divide, np.true_divide),
    "pow": (gt.pow, np.power), "maximum": (gt.maximum, np.maximum),
}


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", list(OPS))
@pytest.mark.parametrize("number", [2, 1.5, np.float64(0.5)], ids=["int", "float", "np-float64"])
@pytest.mark.parametrize("side", ["left", "right"])
def test_python_numbers_take_the_tensor_dtype(device, dtype, name, number, side):
    gt_op, np_op = OPS[name]
    a = np.array([0.5, 1.0, 2.0], dtype=dtype)
    t = gt.constant(a)
    out = gt_op(number, t) if side == "left" else gt_op(t, number)
    assert out.dtype == np.dtype(dtype)
    a64, n64 = a.astype(np.float64), float(number)
    expected = np_op(n64, a64) if side == "left" else np_op(a64, n64)
    assert_close(out, expected, dtype)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("py_op", [operator.add, operator.sub, operator.mul, operator.truediv,
                                   operator.pow], ids=lambda f: f.__name__)
def test_operators_with_numbers_keep_dtype(device, dtype, py_op):
    t = gt.constant(np.array([1.0, 2.0], dtype=dtype))
    assert py_op(t, 3).dtype == np.dtype(dtype)
    assert py_op(3, t).dtype == np.dtype(dtype)
    assert py_op(t, 0.5).dtype == np.dtype(dtype)
    assert py_op(0.5, t).dtype == np.dtype(dtype)


@pytest.mark.parametrize("dtype", ["int8", "int32", "int64", "uint8"])
def test_python_ints_take_integer_tensor_dtypes(device, dtype):
    t = gt.constant(np.array([1, 2, 3], dtype=dtype))
    for out in (t + 2, 2 * t, t - 1, gt.maximum(t, 2)):
        assert out.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(host(t * 3), np.array([3, 6, 9], dtype=dtype))


@pytest.mark.parametrize("dtype", ["int32", "int64"])
def test_python_float_next_to_integer_tensor_raises(device, dtype):
    t = gt.constant(np.array([1, 2], dtype=dtype))
    with pytest.raises(gt.DTypeError) as info:
        t + 1.5
    assert "1.5" in str(info.value) and dtype in str(info.value)


def test_python_int_out_of_range_for_integer_tensor(device):
    t = gt.constant(np.array([1, 2], np.int8))
    with pytest.raises(gt.GputapeError) as info:
        t + 300
    message = str(info.value)
    assert "add" in message and "300" in message and "int8" in message


@pytest.mark.parametrize("x, y, expected", [
    (1, 3.0, 3.0), (3.0, 1, 3.0), (2, 0.5, 1.0), (True, 2.5, 2.5),
])
def test_python_int_with_python_float_is_float32(device, x, y, expected):
    out = gt.multiply(x, y)
    assert out.dtype == np.float32 and out.shape == ()
    assert float(out) == expected
    assert out.device == device


def test_python_numbers_alone(device):
    assert gt.add(1, 2).dtype == np.int32 and int(gt.add(1, 2)) == 3
    assert gt.add(1.0, 2.0).dtype == np.float32
    assert gt.subtract(1.5, 1).dtype == np.float32 and float(gt.subtract(1.5, 1)) == 0.5
    assert gt.add([1.0, 2.0], 1).dtype == np.float32


# -- no silent promotion ------------------------------------------------------------------

MIXERS = {
    "add": lambda a, b: gt.add(a, b),
    "operator+": lambda a, b: a + b,
    "subtract": lambda a, b: a - b,
    "multiply": lambda a, b: a * b,
    "divide": lambda a, b: a / b,
    "pow": lambda a, b: a ** b,
    "matmul": lambda a, b: a @ b,
    "maximum": gt.maximum,
    "where": lambda a, b: gt.where(gt.constant([[True, False], [False, True]]), a, b),
    "concat": lambda a, b: gt.concat([a, b], 0),
    "equal": lambda a, b: a == b,
}


@pytest.mark.parametrize("pair", [("float32", "float64"), ("float64", "float32"),
                                  ("float16", "float32"), ("float16", "float64")],
                         ids=lambda p: f"{p[0]}-{p[1]}")
@pytest.mark.parametrize("name", list(MIXERS))
def test_mixing_float_dtypes_raises(device, pair, name):
    a = gt.ones((2, 2), dtype=pair[0])
    b = gt.ones((2, 2), dtype=pair[1])
    with pytest.raises(gt.DTypeError) as info:
        MIXERS[name](a, b)
    err = info.value
    assert isinstance(err, TypeError) and isinstance(err, gt.GputapeError)
    message = str(err)
    assert "gt.cast" in message
    assert pair[0] in message and pair[1] in message
    # a follow-up in one dtype works
    assert (a + gt.cast(b, pair[0])).dtype == np.dtype(pair[0])


def test_mixing_int_and_float_tensors_raises(device):
    with pytest.raises(gt.DTypeError, match="int32"):
        gt.constant([1, 2]) + gt.constant([1.0, 2.0])


# -- float16/32/64 support ----------------------------------------------------------------

UNARY = [
    ("exp", gt.exp, np.exp), ("log", gt.log, np.log), ("sqrt", gt.sqrt, np.sqrt),
    ("tanh", gt.tanh, np.tanh), ("sin", gt.sin, np.sin), ("square", gt.square, np.square),
]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name, gt_fn, np_fn", UNARY, ids=[u[0] for u in UNARY])
def test_float_dtypes_are_preserved_by_ops(device, dtype, name, gt_fn, np_fn):
    a = np.array([0.25, 1.0, 2.5], dtype=dtype)
    out = gt_fn(gt.constant(a))
    assert out.dtype == np.dtype(dtype)
    assert_close(out, np_fn(a.astype(np.float64)), dtype)


@pytest.mark.parametrize("dtype", FLOATS)
def test_reductions_and_matmul_keep_float_dtype(device, dtype):
    a = np.arange(6, dtype=dtype).reshape(2, 3) / 4
    t = gt.constant(a)
    for out, expected in [
        (gt.reduce_sum(t, axis=1), a.astype(np.float64).sum(1)),
        (gt.reduce_mean(t), a.astype(np.float64).mean()),
        (gt.reduce_max(t, axis=0), a.astype(np.float64).max(0)),
        (t @ gt.transpose(t), a.astype(np.float64) @ a.astype(np.float64).T),
    ]:
        assert out.dtype == np.dtype(dtype)
        assert_close(out, expected, dtype)


# -- gradient dtypes ----------------------------------------------------------------------

GRAD_FUNCTIONS = [
    ("poly", lambda x: gt.reduce_sum(x * x * 0.5 + 3 * x),
     lambda a: a + 3.0),
    ("reflected", lambda x: gt.reduce_sum(2.0 / x + 1 - x),
     lambda a: -2.0 / a ** 2 - 1.0),
    ("mean-exp", lambda x: gt.reduce_mean(gt.exp(x)),
     lambda a: np.exp(a) / a.size),
    ("matmul", lambda x: gt.reduce_sum(gt.reshape(x, (1, 4)) @ gt.ones((4, 2), x.dtype)),
     lambda a: np.full(a.shape, 2.0)),
    ("index", lambda x: gt.reduce_sum(x[[0, 0, 3]] * 2),
     lambda a: np.array([4.0, 0.0, 0.0, 2.0])),
    ("through-cast", lambda x: gt.reduce_sum(gt.cast(x, gt.float32) * 3.0),
     lambda a: np.full(a.shape, 3.0)),
    ("broadcast", lambda x: gt.reduce_sum(gt.reshape(x, (4, 1)) * gt.ones((4, 3), x.dtype)),
     lambda a: np.full(a.shape, 3.0)),
]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name, fn, expected", GRAD_FUNCTIONS, ids=[g[0] for g in GRAD_FUNCTIONS])
def test_gradients_have_the_source_dtype(device, dtype, name, fn, expected):
    a = np.array([0.5, 1.0, 1.5, 2.0], dtype=dtype)
    x = gt.constant(a)
    g, = tape_grads(fn, x)
    assert g is not None
    assert g.dtype == np.dtype(dtype)
    assert g.shape == a.shape and g.device == device
    assert_close(g, expected(a.astype(np.float64)), dtype)


@pytest.mark.parametrize("dtype", FLOATS)
def test_variable_gradient_has_variable_dtype(device, dtype):
    v = gt.Variable(np.array([1.0, -2.0], dtype=dtype))
    with gt.GradientTape() as tape:
        y = gt.reduce_sum(v ** 3) * 0.5
    g = tape.gradient(y, v)
    assert g.dtype == np.dtype(dtype)
    assert_close(g, 1.5 * np.array([1.0, 4.0]), dtype)


def test_integer_source_gets_no_gradient(device):
    i = gt.constant([1, 2, 3])
    with gt.GradientTape() as tape:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tape.watch(i)
        y = gt.reduce_sum(gt.cast(i, gt.float32) * 2.0)
    assert tape.gradient(y, i) is None


def test_comparisons_are_bool_for_every_dtype(device):
    for dtype in FLOATS + ["int32", "int64"]:
        t = gt.constant(np.array([1, 2, 3], dtype=dtype))
        out = t >= 2
        assert out.dtype == np.bool_
        np.testing.assert_array_equal(host(out), [False, True, True])


@pytest.mark.parametrize("make, hint", [
    (lambda w: gt.constant(np.ones((4, 3))) @ w, "gt.cast(a, gt.float32)"),  # float64 data
    (lambda w: w @ gt.constant(np.ones((2, 4))), "gt.cast(b, gt.float32)"),
    (lambda w: w + gt.constant(np.ones((3, 2), np.int32)), "gt.cast(y, gt.float32)"),
    (lambda w: gt.constant(np.ones((3, 2), np.int32)) + w, "gt.cast(x, gt.float32)"),
], ids=["float64-data-first", "float64-data-second", "int-second", "int-first"])
def test_dtype_mismatch_hint_casts_the_data_not_the_weights(make, hint):
    """float64 data meeting float32 weights: the hint casts the data (the wider float) down,
    and an integer operand up to the float's dtype, whichever side it is on."""
    w = gt.Variable(np.ones((3, 2), np.float32))
    with pytest.raises(gt.DTypeError) as info:
        make(w)
    assert hint in str(info.value), str(info.value)
