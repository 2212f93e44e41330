"""The Tensor and Variable API: construction, array facts, Python protocols, operators,
indexing, and the awkward inputs (0-d, empty, non-contiguous, broadcast).

Every expected value is computed with NumPy (in float64) from the same inputs, never read back
from gputape. Tests that take ``device`` run once per available device.
"""

from __future__ import annotations

import operator

import numpy as np
import pytest
from helpers import host, tape_grads

import gputape as gt

TOL = {np.float16: 2e-2, np.float32: 1e-5, np.float64: 1e-12}


# -- helpers --------------------------------------------------------------------------------


def assert_close(actual, expected, dtype=np.float32, atol=None) -> None:
    rtol = TOL[np.dtype(dtype).type]
    np.testing.assert_allclose(host(actual).astype(np.float64), np.asarray(expected, np.float64),
                               rtol=rtol, atol=rtol if atol is None else atol)


def numeric_grad(fn, args, i, eps=1e-6) -> np.ndarray:
    """Central differences of the NumPy scalar function ``fn`` in float64 w.r.t. ``args[i]``."""
    args = [np.array(a, dtype=np.float64) for a in args]
    out = np.zeros_like(args[i])
    for j in range(args[i].size):
        plus = [a.copy() for a in args]
        minus = [a.copy() for a in args]
        plus[i].flat[j] += eps
        minus[i].flat[j] -= eps
        out.flat[j] = (fn(*plus) - fn(*minus)) / (2 * eps)
    return out


def sum_to_shape(array: np.ndarray, shape: tuple) -> np.ndarray:
    """Reverse NumPy broadcasting: sum ``array`` down to ``shape``."""
    extra = array.ndim - len(shape)
    array = array.sum(axis=tuple(range(extra))) if extra else array
    axes = tuple(i for i, s in enumerate(shape) if s == 1 and array.shape[i] != 1)
    return array.sum(axis=axes, keepdims=True) if axes else array


def index_grad(shape: tuple, index, weights: np.ndarray) -> np.ndarray:
    """d sum(weights * x[index]) / dx, via an index map and bincount (repeats accumulate)."""
    size = int(np.prod(shape))
    picked = np.arange(size).reshape(shape)[index]
    return np.bincount(np.ravel(picked), weights=np.ravel(weights), minlength=size).reshape(shape)


# -- construction and array facts -----------------------------------------------------------

CONSTRUCTION_CASES = [
    pytest.param(3.5, (), np.float32, id="python-float"),
    pytest.param(7, (), np.int32, id="python-int"),
    pytest.param(True, (), np.bool_, id="python-bool"),
    pytest.param([1.0, 2.0, 3.0], (3,), np.float32, id="list"),
    pytest.param((1.0, 2.0), (2,), np.float32, id="tuple"),
    pytest.param([[1, 2], [3, 4]], (2, 2), np.int32, id="nested-int-list"),
    pytest.param([[1, 2.5]], (1, 2), np.float32, id="mixed-list"),
    pytest.param(np.arange(6.0).reshape(2, 3), (2, 3), np.float64, id="numpy-f64"),
    pytest.param(np.ones((2, 1), np.float16), (2, 1), np.float16, id="numpy-f16"),
    pytest.param(np.zeros((0, 3), np.float32), (0, 3), np.float32, id="numpy-empty"),
    pytest.param(np.array(2.0), (), np.float64, id="numpy-0d"),
]


@pytest.mark.parametrize("value, shape, dtype", CONSTRUCTION_CASES)
def test_constant_array_facts(device, value, shape, dtype):
    t = gt.constant(value)
    assert isinstance(t, gt.Tensor)
    assert t.shape == shape and isinstance(t.shape, tuple)
    assert t.dtype == np.dtype(dtype) and isinstance(t.dtype, np.dtype)
    assert t.ndim == len(shape)
    assert t.size == int(np.prod(shape))
    assert t.device == device and t.device.name == device
    np.testing.assert_array_equal(host(t), np.asarray(value))


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64", "int32", "int64"])
def test_constant_dtype_argument(device, dtype):
    t = gt.constant([[1, 2, 3]], dtype=dtype)
    assert t.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(host(t), np.array([[1, 2, 3]], dtype=dtype))
    assert gt.constant([1.0], dtype=np.dtype(dtype)).dtype == np.dtype(dtype)


def test_constant_device_argument_overrides_scope(device):
    t = gt.constant([1.0, 2.0], device="cpu")
    assert t.device == "cpu"
    u = gt.constant([1.0, 2.0], device=device)
    assert u.device == device


def test_constant_copies_numpy_input(device):
    source = np.array([1.0, 2.0, 3.0], np.float32)
    t = gt.constant(source)
    v = gt.Variable(source)
    source[0] = 100.0
    np.testing.assert_array_equal(host(t), [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(host(v), [1.0, 2.0, 3.0])


def test_convert_to_tensor(device):
    x = gt.constant([1.0, 2.0])
    assert gt.convert_to_tensor(x) is x
    assert gt.convert_to_tensor(x, dtype="float32") is x
    y = gt.convert_to_tensor([[1.0], [2.0]])
    assert isinstance(y, gt.Tensor) and y.shape == (2, 1) and y.dtype == np.float32
    assert y.device == device
    z = gt.convert_to_tensor(np.array([1, 2], np.int64))
    assert z.dtype == np.int64
    with pytest.raises(gt.DTypeError, match="float64"):
        gt.convert_to_tensor(x, dtype="float64")


def test_numpy_returns_host_copy(device):
    t = gt.constant([[1.0, 2.0], [3.0, 4.0]])
    a = t.numpy()
    assert type(a) is np.ndarray and a.dtype == np.float32
    a[0, 0] = -50.0
    np.testing.assert_array_equal(host(t), [[1.0, 2.0], [3.0, 4.0]])
    scalar = gt.constant(2.5).numpy()
    assert np.ndim(scalar) == 0 and float(scalar) == 2.5


def test_array_protocol_copies_to_host(device):
    t = gt.constant([1.0, 2.0, 3.0])
    a = np.asarray(t)
    assert type(a) is np.ndarray
    np.testing.assert_array_equal(a, [1.0, 2.0, 3.0])
    a[1] = 99.0
    np.testing.assert_array_equal(host(t), [1.0, 2.0, 3.0])
    b = np.asarray(t, dtype=np.float64)
    assert b.dtype == np.float64
    np.testing.assert_array_equal(np.array(t) * 2, [2.0, 4.0, 6.0])


def test_to_device_round_trip(device):
    x = gt.constant(np.arange(6.0).reshape(2, 3))
    on_cpu = x.to("cpu")
    assert on_cpu.device == "cpu"
    back = on_cpu.to(device)
    assert back.device == device
    np.testing.assert_array_equal(host(back), np.arange(6.0).reshape(2, 3))
    assert back.dtype == np.float64


@pytest.mark.parametrize("shape", [(), (1,), (1, 1)])
def test_scalar_conversions_of_one_element(device, shape):
    t = gt.constant(np.full(shape, -2.75, np.float32))
    assert float(t) == -2.75
    assert int(t) == -2  # Python truncates toward zero
    assert bool(t) is True
    assert bool(gt.constant(np.zeros(shape))) is False
    assert isinstance(float(t), float) and isinstance(int(t), int)


@pytest.mark.parametrize("convert", [float, int, bool], ids=["float", "int", "bool"])
@pytest.mark.parametrize("shape", [(2,), (0,), (2, 3)])
def test_scalar_conversions_need_one_element(device, convert, shape):
    with pytest.raises(TypeError, match=r"one element"):
        convert(gt.zeros(shape))


def test_len(device):
    assert len(gt.zeros((4, 2))) == 4
    assert len(gt.zeros((0, 3))) == 0
    with pytest.raises(TypeError, match="0-d"):
        len(gt.constant(1.0))


def test_iteration_yields_rows(device):
    rows = list(gt.constant([[1.0, 2.0], [3.0, 4.0]]))
    assert len(rows) == 2
    np.testing.assert_array_equal(host(rows[1]), [3.0, 4.0])


def test_repr_matches_the_documented_form(device):
    t = gt.constant([1.0, 2.0])
    assert repr(t) == f"<gt.Tensor shape=(2,) dtype=float32 device={device} numpy=[1. 2.]>"
    s = gt.constant(3.0)
    assert repr(s) == f"<gt.Tensor shape=() dtype=float32 device={device} numpy=3.0>"


def test_tensors_are_hashable_by_identity(device):
    a, b = gt.constant(1.0), gt.constant(1.0)
    table = {a: "a", b: "b"}
    assert table[a] == "a" and table[b] == "b"


# -- operators ----------------------------------------------------------------------------

BINARY = {
    "add": (operator.add, np.add),
    "sub": (operator.sub, np.subtract),
    "mul": (operator.mul, np.multiply),
    "truediv": (operator.truediv, np.true_divide),
    "pow": (operator.pow, np.power),
}


def _operands(rng, shape_a, shape_b):
    # Positive operands keep pow's derivative w.r.t. the exponent finite; away from zero
    # keeps division well conditioned.
    a = rng.uniform(0.5, 2.0, shape_a)
    b = rng.uniform(0.5, 2.0, shape_b)
    return a, b


@pytest.mark.parametrize("name", list(BINARY))
@pytest.mark.parametrize("shapes", [((2, 3), (2, 3)), ((2, 3), (3,)), ((4, 1), (1, 3)), ((), (3,))],
                         ids=lambda s: f"{s[0]}x{s[1]}")
def test_binary_operator_forward_and_gradient(device, rng, name, shapes):
    py_op, np_op = BINARY[name]
    a, b = _operands(rng, *shapes)
    w = rng.standard_normal(np.broadcast_shapes(*shapes))
    ta, tb = gt.constant(a.astype(np.float32)), gt.constant(b.astype(np.float32))
    out = py_op(ta, tb)
    assert out.dtype == np.float32 and out.device == device
    assert_close(out, np_op(a.astype(np.float32), b.astype(np.float32)))

    tw = gt.constant(w.astype(np.float32))
    ga, gb = tape_grads(lambda x, y: gt.reduce_sum(tw * py_op(x, y)), ta, tb)
    f = lambda x, y: np.sum(w * np_op(x, y))
    assert ga.shape == shapes[0] and gb.shape == shapes[1]
    assert_close(ga, numeric_grad(f, [a, b], 0), atol=1e-4)
    assert_close(gb, numeric_grad(f, [a, b], 1), atol=1e-4)


@pytest.mark.parametrize("name", list(BINARY))
@pytest.mark.parametrize("other_kind", ["int", "float", "list", "ndarray"])
def test_reflected_operators_with_non_tensors(device, rng, name, other_kind):
    py_op, np_op = BINARY[name]
    a = rng.uniform(0.5, 2.0, (3,)).astype(np.float32)
    other = {"int": 2, "float": 1.5, "list": [1.0, 2.0, 0.5],
             "ndarray": np.array([1.0, 2.0, 0.5], np.float32)}[other_kind]
    t = gt.constant(a)
    left = py_op(other, t)  # other.__op__ fails or defers: Tensor.__rop__ runs
    right = py_op(t, other)
    assert isinstance(left, gt.Tensor) and isinstance(right, gt.Tensor)
    assert left.dtype == np.float32 and right.dtype == np.float32
    o = np.asarray(other, np.float32)
    assert_close(left, np_op(o, a))
    assert_close(right, np_op(a, o))
    g = tape_grads(lambda x: gt.reduce_sum(py_op(other, x)), t)[0]
    assert_close(g, numeric_grad(lambda x: np.sum(np_op(o.astype(np.float64), x)), [a], 0),
                 atol=1e-4)


@pytest.mark.parametrize("shapes", [((2, 3), (3, 4)), ((3,), (3, 2)), ((2, 3), (3,)),
                                    ((3,), (3,)), ((5, 2, 3), (3, 4)), ((2, 1, 2, 3), (4, 3, 2))],
                         ids=lambda s: f"{s[0]}@{s[1]}")
def test_matmul_operator_forward_and_gradient(device, rng, shapes):
    a = rng.standard_normal(shapes[0])
    b = rng.standard_normal(shapes[1])
    ta, tb = gt.constant(a), gt.constant(b)
    out = ta @ tb
    expected = a @ b
    assert out.shape == expected.shape
    assert_close(out, expected, np.float64)
    w = rng.standard_normal(expected.shape)
    ga, gb = tape_grads(lambda x, y: gt.reduce_sum((x @ y) * w), ta, tb)
    f = lambda x, y: np.sum((x @ y) * w)
    assert_close(ga, numeric_grad(f, [a, b], 0), np.float32, atol=1e-6)
    assert_close(gb, numeric_grad(f, [a, b], 1), np.float32, atol=1e-6)


def test_reflected_matmul(device):
    m = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)
    t = gt.constant(m)
    left = [[1.0, 1.0]] @ t
    assert isinstance(left, gt.Tensor)
    assert_close(left, np.array([[1.0, 1.0]]) @ m)
    right = np.eye(2, dtype=np.float32) @ t
    assert isinstance(right, gt.Tensor)
    assert_close(right, m)


def test_unary_negative_and_abs(device):
    x = np.array([-2.0, -0.5, 0.0, 1.5], np.float32)
    t = gt.constant(x)
    assert_close(-t, -x)
    assert_close(abs(t), np.abs(x))
    assert (+t) is t or np.array_equal(host(+t), x)
    g_neg, = tape_grads(lambda v: gt.reduce_sum(-v * 3.0), t)
    assert_close(g_neg, np.full(4, -3.0))
    g_abs, = tape_grads(lambda v: gt.reduce_sum(abs(v)), t)
    assert_close(g_abs, np.sign(x))  # abs'(0) = 0


COMPARISONS = [
    (operator.eq, np.equal), (operator.ne, np.not_equal), (operator.lt, np.less),
    (operator.le, np.less_equal), (operator.gt, np.greater), (operator.ge, np.greater_equal),
]


@pytest.mark.parametrize("py_op, np_op", COMPARISONS, ids=lambda f: getattr(f, "__name__", ""))
def test_comparisons_give_bool_tensors(device, py_op, np_op):
    a = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]], np.float32)
    b = np.array([2.0, 2.0, 2.0], np.float32)
    ta, tb = gt.constant(a), gt.constant(b)
    for left, right, la, rb in [(ta, tb, a, b), (ta, 2.0, a, 2.0), (2, ta, 2.0, a)]:
        out = py_op(left, right)
        assert isinstance(out, gt.Tensor) and out.dtype == np.bool_
        np.testing.assert_array_equal(host(out), np_op(la, rb))


def test_comparisons_are_not_differentiable(device):
    x = gt.constant([0.5, 1.5, 2.5])
    with gt.GradientTape(persistent=True) as tape:
        tape.watch(x)
        mask = x > 1.0
        as_float = gt.cast(mask, gt.float32)
        y = gt.reduce_sum(as_float * x)
    assert tape.gradient(mask, x) is None
    assert tape.gradient(as_float, x) is None
    # the comparison contributes nothing; the product still passes the mask through
    assert_close(tape.gradient(y, x), [0.0, 1.0, 1.0])


# -- indexing -----------------------------------------------------------------------------

INDEXES = [
    pytest.param(1, id="int"),
    pytest.param(-1, id="negative-int"),
    pytest.param((1, 2, 3), id="int-tuple"),
    pytest.param(slice(None, None, 2), id="step-slice"),
    pytest.param((slice(None), slice(None, None, -2)), id="negative-step"),
    pytest.param((Ellipsis, 1), id="ellipsis"),
    pytest.param((None, 0, slice(1, 3)), id="newaxis"),
    pytest.param(([2, 0, 2],), id="int-list-repeats"),
    pytest.param(([],), id="empty-int-list"),
    pytest.param((np.array([0, 2]), slice(None), np.array([4, -1])), id="int-arrays-split"),
    pytest.param((slice(None), np.array([[0, 1], [3, 3]])), id="2d-int-array"),
    pytest.param(np.array([True, False, True]), id="bool-mask"),
    pytest.param((1, np.array([True, False, True, True])), id="bool-mask-after-int"),
    pytest.param(np.arange(60).reshape(3, 4, 5) % 7 == 0, id="full-bool-mask"),
]


@pytest.mark.parametrize("index", INDEXES)
def test_indexing_forward_and_gradient(device, rng, index):
    x = rng.standard_normal((3, 4, 5)).astype(np.float32)
    t = gt.constant(x)
    out = t[index]
    expected = x[index]
    assert out.shape == expected.shape
    np.testing.assert_array_equal(host(out), expected)
    w = rng.standard_normal(expected.shape).astype(np.float32)
    g, = tape_grads(lambda v: gt.reduce_sum(v[index] * w), t)
    assert g.shape == x.shape and g.dtype == np.float32
    assert_close(g, index_grad(x.shape, index, w))


def test_indexing_with_tensors(device):
    x = np.arange(10.0, dtype=np.float32)
    t = gt.constant(x)
    np.testing.assert_array_equal(host(t[gt.constant([3, 3, 1])]), x[[3, 3, 1]])
    np.testing.assert_array_equal(host(t[t > 6.5]), x[x > 6.5])
    np.testing.assert_array_equal(host(t[gt.constant(4)]), x[4])
    g, = tape_grads(lambda v: gt.reduce_sum(v[v > 6.5] * 2.0), t)
    assert_close(g, np.where(x > 6.5, 2.0, 0.0))


def test_indexing_0d_tensor(device):
    s = gt.constant(4.0)
    np.testing.assert_array_equal(host(s[()]), 4.0)
    assert s[None].shape == (1,)
    assert s[...].shape == ()
    g, = tape_grads(lambda v: v[None] * 3.0, s)
    assert g.shape == () and float(g) == 3.0


# -- awkward inputs -------------------------------------------------------------------------

NON_CONTIGUOUS = [
    pytest.param(lambda: np.arange(12.0).reshape(3, 4)[:, ::2], id="strided-columns"),
    pytest.param(lambda: np.arange(12.0).reshape(3, 4).T, id="transposed"),
    pytest.param(lambda: np.arange(12.0).reshape(3, 4)[::-1, 1:], id="reversed"),
    pytest.param(lambda: np.broadcast_to(np.arange(3.0), (4, 3)), id="zero-stride"),
]


@pytest.mark.parametrize("make", NON_CONTIGUOUS)
def test_non_contiguous_inputs_forward_and_gradient(device, make):
    a = make()
    assert not a.flags["C_CONTIGUOUS"]
    t = gt.constant(a)
    assert t.shape == a.shape and t.dtype == np.float64
    np.testing.assert_array_equal(host(t), a)
    w = np.linspace(-1.0, 1.0, a.size).reshape(a.shape)
    out = t * t + 1.0
    assert_close(out, a * a + 1.0, np.float64)
    mm = t @ np.ascontiguousarray(a.T)
    assert_close(mm, a @ a.T, np.float64)
    g, = tape_grads(lambda v: gt.reduce_sum(v * v * w) + gt.reduce_sum(v @ gt.transpose(v)), t)
    expected = 2 * a * w + (np.ones((a.shape[0],) * 2) @ a) * 2
    assert_close(g, expected, np.float64)


@pytest.mark.parametrize("make", NON_CONTIGUOUS)
def test_non_contiguous_as_other_operand_and_variable(device, make):
    a = make()
    x = gt.constant(np.ones(a.shape))
    assert_close(x + a, 1.0 + a, np.float64)
    assert_close(gt.reduce_sum(gt.constant(a), axis=0), a.sum(axis=0), np.float64)
    v = gt.Variable(a)
    with gt.GradientTape() as tape:
        y = gt.reduce_sum(v ** 3)
    assert_close(tape.gradient(y, v), 3 * a ** 2, np.float64)


def test_zero_dimensional_tensors(device):
    s = gt.constant(3.0)
    assert s.shape == () and s.ndim == 0 and s.size == 1
    out = s * s + 2.0 * s
    assert out.shape == ()
    assert float(out) == 15.0
    m = gt.constant(np.arange(6.0, dtype=np.float32).reshape(2, 3))
    g_s, g_m = tape_grads(lambda a, b: gt.reduce_sum(a * b), s, m)
    assert g_s.shape == () and float(g_s) == pytest.approx(15.0)
    assert_close(g_m, np.full((2, 3), 3.0))
    g, = tape_grads(lambda a: a ** 3, s)
    assert float(g) == pytest.approx(27.0)


def test_empty_tensors(device):
    e = gt.constant(np.zeros((0, 3), np.float32))
    b = gt.constant(np.array([1.0, 2.0, 3.0], np.float32))
    out = e * b + 1.0
    assert out.shape == (0, 3) and out.dtype == np.float32
    assert gt.reduce_sum(e, axis=0).shape == (3,)
    assert_close(gt.reduce_sum(e, axis=0), np.zeros(3))
    assert float(gt.reduce_sum(e)) == 0.0
    assert gt.reduce_sum(e, axis=1).shape == (0,)
    assert (e @ gt.ones((3, 2))).shape == (0, 2)
    assert e[:, 1].shape == (0,)
    g_e, g_b = tape_grads(lambda x, y: gt.reduce_sum(x * y), e, b)
    assert g_e.shape == (0, 3) and g_e.dtype == np.float32
    assert_close(g_b, np.zeros(3))
    g_mm, = tape_grads(lambda x: gt.reduce_sum(x @ gt.ones((3, 2))), e)
    assert g_mm.shape == (0, 3)


BROADCAST_SHAPES = [
    ((2, 3), (3,)), ((2, 1), (1, 3)), ((4, 1, 3), (2, 3)), ((), (2, 3)), ((1,), (0,)),
    ((3, 1, 1), (1, 2, 1)), ((2, 3), (1, 1)),
]


@pytest.mark.parametrize("shape_a, shape_b", BROADCAST_SHAPES, ids=str)
def test_broadcasting_forward_and_gradient(device, rng, shape_a, shape_b):
    a = rng.standard_normal(shape_a)
    b = rng.standard_normal(shape_b)
    out_shape = np.broadcast_shapes(shape_a, shape_b)
    ta, tb = gt.constant(a), gt.constant(b)
    out = ta * tb - tb
    assert out.shape == out_shape
    assert_close(out, a * b - b, np.float64)
    w = rng.standard_normal(out_shape)
    ga, gb = tape_grads(lambda x, y: gt.reduce_sum((x * y - y) * w), ta, tb)
    b_full = np.broadcast_to(b, out_shape)
    a_full = np.broadcast_to(a, out_shape)
    assert ga.shape == shape_a and gb.shape == shape_b
    assert_close(ga, sum_to_shape(w * b_full, shape_a), np.float64)
    assert_close(gb, sum_to_shape(w * (a_full - 1.0), shape_b), np.float64)


# -- Variable -------------------------------------------------------------------------------


def test_variable_construction(device):
    v = gt.Variable([1.0, 2.0])
    assert isinstance(v, gt.Tensor)
    assert v.trainable is True
    assert v.shape == (2,) and v.dtype == np.float32 and v.device == device
    named = gt.Variable(np.zeros((2, 2)), trainable=False, name="w", dtype="float16",
                        device="cpu")
    assert named.trainable is False and named.name == "w"
    assert named.dtype == np.float16 and named.device == "cpu"
    made = gt.Variable(lambda: [3.0])
    np.testing.assert_array_equal(host(made), [3.0])
    assert type(v.numpy()) is np.ndarray
    np.testing.assert_array_equal(v.numpy(), [1.0, 2.0])


def test_variable_assign_family_returns_the_variable(device):
    v = gt.Variable(np.array([1.0, 2.0, 3.0], np.float32))
    assert v.assign([4.0, 5.0, 6.0]) is v
    np.testing.assert_array_equal(host(v), [4.0, 5.0, 6.0])
    assert v.assign_add(gt.constant([1.0, 1.0, 1.0])) is v
    np.testing.assert_array_equal(host(v), [5.0, 6.0, 7.0])
    assert v.assign_sub(np.array([0.5, 0.5, 0.5], np.float32)) is v
    np.testing.assert_array_equal(host(v), [4.5, 5.5, 6.5])
    v.assign_add([1, 2, 3])  # Python ints adapt to the variable's dtype
    np.testing.assert_array_equal(host(v), [5.5, 7.5, 9.5])
    assert v.dtype == np.float32 and v.shape == (3,) and v.device == device
    s = gt.Variable(2.0)
    s.assign_sub(0.5).assign_add(2.0)
    assert float(s) == 3.5 and s.shape == ()


def test_variable_assign_wrong_shape_or_dtype(device):
    v = gt.Variable(np.array([1.0, 2.0], np.float32), name="w")
    for method in ("assign", "assign_add", "assign_sub"):
        with pytest.raises(gt.ShapeError) as info:
            getattr(v, method)([1.0, 2.0, 3.0])
        assert isinstance(info.value, ValueError)
        assert method in str(info.value) and "(3,)" in str(info.value)
        assert "(2,)" in str(info.value)
    with pytest.raises(gt.DTypeError) as info:
        v.assign(gt.constant([1.0, 2.0], dtype="float64"))
    message = str(info.value)
    assert "float64" in message and "float32" in message and "gt.cast" in message
    with pytest.raises(gt.ShapeError):
        v.assign(gt.constant([[1.0, 2.0]]))
    np.testing.assert_array_equal(host(v), [1.0, 2.0])  # unchanged by the failures
    assert v.dtype == np.float32


def test_variable_read_value_is_a_snapshot(device):
    v = gt.Variable([1.0, 2.0])
    r = v.read_value()
    assert isinstance(r, gt.Tensor) and not isinstance(r, gt.Variable)
    product = v * 1.0
    v.assign([7.0, 8.0])
    np.testing.assert_array_equal(host(r), [1.0, 2.0])
    np.testing.assert_array_equal(host(product), [1.0, 2.0])
    np.testing.assert_array_equal(host(v.read_value()), [7.0, 8.0])


def test_variable_usable_wherever_a_tensor_is(device):
    a = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)
    v = gt.Variable(a)
    assert_close(v + 1.0, a + 1.0)
    assert_close(2.0 * v, 2.0 * a)
    assert_close(v @ v, a @ a)
    assert_close(gt.exp(v), np.exp(a))
    assert_close(gt.reshape(v, (4,)), a.reshape(4))
    assert_close(gt.concat([v, gt.constant(a)], axis=0), np.concatenate([a, a]))
    assert_close(v[1, ::-1], a[1, ::-1])
    np.testing.assert_array_equal(np.asarray(v), a)
    assert len(v) == 2
    assert float(gt.Variable(2.5)) == 2.5
    np.testing.assert_array_equal(host(v > 2.0), a > 2.0)


def test_variable_gradients_are_watched_automatically(device):
    a = np.array([[1.0, 2.0], [3.0, 4.0]])
    v = gt.Variable(a)
    frozen = gt.Variable(a, trainable=False)
    with gt.GradientTape() as tape:
        y = gt.reduce_sum(v @ v) + gt.reduce_sum(v[0] * 3.0) + gt.reduce_sum(frozen * v)
    g_v, g_frozen = tape.gradient(y, [v, frozen])
    ones = np.ones((2, 2))
    expected = ones @ a.T + a.T @ ones + np.array([[3.0, 3.0], [0.0, 0.0]]) + a
    assert_close(g_v, expected, np.float64)
    assert g_v.dtype == np.float64
    assert g_frozen is None
