"""Error contract: bad input raises a gputape error of the right family whose message names the
op, the argument, the shapes/dtypes/devices involved and a hint, never a raw NumPy error from
deep inside. After each error, gputape keeps working (also inside the same GradientTape block).

The table is ``(id, callable, required exception classes, substrings of the message)``; every
listed class must be an ancestor of the raised exception.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import gputape as gt


def _x():
    return gt.constant([1.0, 2.0, 3.0])


def _m():
    return gt.constant(np.ones((2, 3), np.float32))


def _enter(spec):
    with gt.device(spec):
        pass


def _spent_tape():
    x = gt.constant(2.0)
    with gt.GradientTape() as tape:
        tape.watch(x)
        y = x * x
    tape.gradient(y, x)
    return tape.gradient(y, x)


def _stop_recording_outside():
    tape = gt.GradientTape()
    with tape.stop_recording():
        pass


def _reenter_tape():
    tape = gt.GradientTape()
    with tape:
        with tape:
            pass


SHAPE = (gt.ShapeError, ValueError, gt.GputapeError)
DTYPE = (gt.DTypeError, TypeError, gt.GputapeError)
ARG_VALUE = (gt.ArgumentError, ValueError, gt.GputapeError)
ARG_TYPE = (gt.ArgumentTypeError, TypeError, gt.GputapeError)
INDEX = (gt.IndexOutOfRangeError, IndexError, gt.GputapeError)
DEVICE = (gt.DeviceError, RuntimeError, gt.GputapeError)

CASES = [
    # -- shapes ---------------------------------------------------------------------------
    ("add-broadcast", lambda: gt.add(gt.ones((2, 3)), gt.ones((4,))), SHAPE,
     ["add", "(2, 3)", "(4,)", "hint"]),
    ("sub-operator-broadcast", lambda: gt.ones((2, 3)) - gt.ones((2, 2)), SHAPE,
     ["subtract", "(2, 3)", "(2, 2)"]),
    ("where-broadcast", lambda: gt.where(gt.constant([True, False]), _x(), _x()), SHAPE,
     ["where", "(2,)", "(3,)"]),
    ("matmul-inner", lambda: gt.matmul(gt.ones((2, 3)), gt.ones((4, 2))), SHAPE,
     ["matmul", "(2, 3)", "(4, 2)", "hint"]),
    ("matmul-operator", lambda: gt.ones((2, 3)) @ gt.ones((2, 3)), SHAPE,
     ["matmul", "(2, 3)"]),
    ("matmul-batch", lambda: gt.matmul(gt.ones((2, 3, 4)), gt.ones((3, 4, 5))), SHAPE,
     ["matmul", "(2, 3, 4)", "(3, 4, 5)"]),
    ("matmul-scalar", lambda: gt.matmul(gt.constant(2.0), _x()), SHAPE,
     ["matmul", "()", "hint"]),
    ("reshape-size", lambda: gt.reshape(_m(), (4,)), SHAPE,
     ["reshape", "6", "(2, 3)", "(4,)"]),
    ("reshape-infer", lambda: gt.reshape(_m(), (4, -1)), SHAPE,
     ["reshape", "6", "(4, -1)"]),
    ("concat-shapes", lambda: gt.concat([gt.ones((2, 3)), gt.ones((2, 4))], axis=0), SHAPE,
     ["concat", "(2, 4)", "(2, 3)"]),
    ("stack-shapes", lambda: gt.stack([gt.ones(2), gt.ones(3)]), SHAPE,
     ["stack", "(3,)", "(2,)"]),
    ("squeeze-non-one", lambda: gt.squeeze(_m(), 0), SHAPE, ["squeeze", "(2, 3)"]),
    ("split-unequal", lambda: gt.split(_x(), 2), SHAPE, ["split", "(3,)", "2"]),
    ("broadcast_to", lambda: gt.broadcast_to(_m(), (3, 3)), SHAPE,
     ["broadcast_to", "(2, 3)", "(3, 3)"]),
    ("ones-negative", lambda: gt.ones((-1, 2)), (ValueError, gt.GputapeError),
     ["ones", "-1"]),
    ("eye-negative", lambda: gt.eye(-2), (ValueError, gt.GputapeError), ["eye", "-2"]),
    ("fill-negative", lambda: gt.fill((-1,), 1.0), (ValueError, gt.GputapeError),
     ["fill", "-1"]),
    # -- axes -------------------------------------------------------------------------------
    ("reduce_sum-axis", lambda: gt.reduce_sum(_m(), axis=2), ARG_VALUE,
     ["reduce_sum", "axis", "2", "rank 2"]),
    ("reduce_max-negative-axis", lambda: gt.reduce_max(_m(), axis=-3), ARG_VALUE,
     ["reduce_max", "axis", "-3"]),
    ("reduce_mean-float-axis", lambda: gt.reduce_mean(_m(), axis=1.0), ARG_TYPE,
     ["reduce_mean", "axis", "float"]),
    ("reduce_sum-repeated-axis", lambda: gt.reduce_sum(_m(), axis=(0, -2)), ARG_VALUE,
     ["reduce_sum", "axis"]),
    ("transpose-perm", lambda: gt.transpose(_m(), (0, 0)), ARG_VALUE,
     ["transpose", "perm", "(2, 3)"]),
    ("softmax-axis", lambda: gt.softmax(_x(), axis=1), ARG_VALUE, ["softmax", "axis", "1"]),
    # -- indexing -----------------------------------------------------------------------------
    ("index-out-of-range", lambda: _x()[3], INDEX, ["getitem", "3", "(3,)"]),
    ("index-negative-out-of-range", lambda: _x()[-4], INDEX, ["getitem", "-4", "(3,)"]),
    ("index-second-dim", lambda: _m()[0, 5], INDEX, ["getitem", "5", "(2, 3)"]),
    ("index-array-out-of-range", lambda: _x()[[0, 5]], INDEX, ["getitem", "5", "3"]),
    ("index-too-many", lambda: _m()[0, 0, 0], INDEX, ["getitem", "(2, 3)"]),
    ("index-float", lambda: _x()[1.0], ARG_TYPE, ["getitem", "float"]),
    ("index-float-array", lambda: _x()[np.array([0.5])], ARG_TYPE, ["getitem", "float64"]),
    ("index-float-slice", lambda: _x()[0.5:2], ARG_TYPE, ["getitem", "slice", "float"]),
    ("index-string", lambda: _x()["a"], ARG_TYPE, ["getitem", "str"]),
    ("mask-wrong-length", lambda: _x()[np.array([True, False])], (IndexError, gt.GputapeError),
     ["getitem", "(2,)", "(3,)"]),
    ("mask-tensor-wrong-length", lambda: _x()[gt.constant([True, False])],
     (IndexError, gt.GputapeError), ["getitem", "(2,)", "(3,)"]),
    ("mask-column-wrong-length", lambda: _m()[:, np.array([True, False])],
     (IndexError, gt.GputapeError), ["getitem", "(2,)", "3"]),
    ("mask-2d-wrong-shape", lambda: _m()[np.ones((2, 2), bool)], (IndexError, gt.GputapeError),
     ["getitem", "(2, 2)", "(2, 3)"]),
    ("gather-float-indices", lambda: gt.gather(_x(), [0.5]), ARG_TYPE, ["gather", "float"]),
    # -- values that are not tensors --------------------------------------------------------
    ("string-argument", lambda: gt.add("a", _x()), ARG_TYPE, ["add", "'x'", "str", "hint"]),
    ("none-argument", lambda: gt.exp(None), ARG_TYPE, ["exp", "'x'", "None"]),
    ("object-constant", lambda: gt.constant(object()), ARG_TYPE, ["object", "hint"]),
    ("dict-argument", lambda: gt.multiply(_x(), {}), ARG_TYPE, ["multiply", "'y'", "dict"]),
    ("string-operator", lambda: _x() + "abc", ARG_TYPE, ["add", "str"]),
    ("ragged-list", lambda: gt.constant([[1.0, 2.0], [3.0]]), ARG_TYPE, ["hint"]),
    ("string-list", lambda: gt.constant(["a", "b"]), ARG_TYPE, ["list"]),
    ("string-ndarray", lambda: gt.add(_x(), np.array(["a", "b", "c"])), ARG_TYPE,
     ["add", "'y'"]),
    ("string-fill", lambda: gt.fill((2,), "a"), ARG_TYPE, ["fill", "str"]),
    ("string-reshape-shape", lambda: gt.reshape(_x(), "abc"), ARG_TYPE, ["reshape", "shape"]),
    ("string-variable", lambda: gt.Variable("w"), ARG_TYPE, ["str"]),
    ("string-split-size", lambda: gt.split(_x(), [1, "a"]), (TypeError, gt.GputapeError),
     ["split", "'a'"]),
    ("float-split-count", lambda: gt.split(_x(), 1.5), (TypeError, gt.GputapeError),
     ["split", "1.5"]),
    ("string-range", lambda: gt.range("a"), (TypeError, gt.GputapeError), ["range", "'a'"]),
    ("string-linspace", lambda: gt.linspace("a", 1.0, 3), (TypeError, gt.GputapeError),
     ["linspace", "'a'"]),
    ("string-eye", lambda: gt.eye("a"), (TypeError, gt.GputapeError), ["eye", "'a'"]),
    # -- dtypes ---------------------------------------------------------------------------------
    ("float32-float64", lambda: _x() * gt.constant([1.0, 2.0, 3.0], dtype="float64"), DTYPE,
     ["multiply", "float32", "float64", "gt.cast"]),
    ("float16-float32", lambda: gt.add(gt.ones(2, "float16"), gt.ones(2)), DTYPE,
     ["add", "float16", "float32", "gt.cast"]),
    ("matmul-dtypes", lambda: gt.ones((2, 2)) @ gt.ones((2, 2), "float64"), DTYPE,
     ["matmul", "float32", "float64", "gt.cast"]),
    ("concat-dtypes", lambda: gt.concat([gt.ones(2), gt.ones(2, "float64")], 0), DTYPE,
     ["concat", "float32", "float64", "gt.cast"]),
    ("int-and-float-tensors", lambda: gt.constant([1]) + gt.constant([1.0]), DTYPE,
     ["add", "int32", "float32", "gt.cast"]),
    ("float-into-int", lambda: gt.constant([1, 2]) + 1.5, DTYPE, ["add", "1.5", "int32"]),
    ("int-overflow", lambda: gt.constant(np.array([1], np.int8)) + 300, (gt.GputapeError,),
     ["add", "300", "int8"]),
    ("sqrt-int", lambda: gt.sqrt(gt.constant([1, 4])), DTYPE, ["sqrt", "int32", "gt.cast"]),
    ("where-condition", lambda: gt.where(_x(), _x(), _x()), DTYPE, ["where", "condition"]),
    ("bad-dtype-name", lambda: gt.constant(1.0, dtype="banana"), DTYPE, ["banana"]),
    ("cast-bad-dtype", lambda: gt.cast(_x(), "banana"), DTYPE, ["banana"]),
    ("cast-to-none", lambda: gt.cast(_x(), None), DTYPE, ["None"]),
    ("convert-dtype", lambda: gt.convert_to_tensor(_x(), dtype="float64"), DTYPE,
     ["convert_to_tensor", "float32", "float64", "gt.cast"]),
    # -- Variables ------------------------------------------------------------------------------
    ("assign-shape", lambda: gt.Variable([1.0, 2.0]).assign([1.0, 2.0, 3.0]), SHAPE,
     ["assign", "(3,)", "(2,)"]),
    ("assign_add-shape", lambda: gt.Variable([1.0, 2.0]).assign_add([[1.0, 2.0]]), SHAPE,
     ["assign_add", "(1, 2)", "(2,)"]),
    ("assign-dtype", lambda: gt.Variable([1.0, 2.0]).assign(gt.constant([1.0, 2.0], "float64")),
     DTYPE, ["assign", "float64", "float32", "gt.cast"]),
    # -- devices --------------------------------------------------------------------------------
    ("device-name", lambda: gt.constant(1.0, device="tpu"), DEVICE, ["tpu", "cpu", "hint"]),
    ("device-scope-name", lambda: _enter("gpu:x"), DEVICE, ["gpu:x"]),
    ("device-type", lambda: gt.Device(3), DEVICE, ["int", "3"]),
    # -- tapes -------------------------------------------------------------------------------
    ("watch-string", lambda: gt.GradientTape().watch("a"), (gt.TapeValueError, ValueError),
     ["watch", "str"]),
    ("gradient-none-target", lambda: gt.GradientTape().gradient(None, _x()),
     (gt.TapeTypeError, TypeError), ["target", "None"]),
    ("tape-spent", _spent_tape, (gt.TapeError, RuntimeError), ["non-persistent", "persistent"]),
    ("stop-recording-outside", _stop_recording_outside, (gt.TapeError, RuntimeError),
     ["stop_recording", "not recording"]),
    ("tape-reentered", _reenter_tape, (gt.TapeValueError, ValueError), ["already recording"]),
    # -- Python protocols (plain built-in errors, as Python users expect) ------------------
    ("float-of-many", lambda: float(_x()), (TypeError,), ["one element", "(3,)"]),
    ("int-of-empty", lambda: int(gt.zeros((0,))), (TypeError,), ["one element", "(0,)"]),
    ("len-of-scalar", lambda: len(gt.constant(1.0)), (TypeError,), ["0-d"]),
]


def test_table_is_large_and_unique():
    ids = [case[0] for case in CASES]
    assert len(ids) >= 30
    assert len(set(ids)) == len(ids)


def _follow_up_works(dev_before) -> None:
    """A small differentiable computation still gives NumPy's answer, and no scope leaked."""
    assert gt.default_device() == dev_before
    a = np.array([[0.5, 1.0], [1.5, 2.0]], np.float32)
    x = gt.constant(a)
    with gt.GradientTape() as tape:
        tape.watch(x)
        y = gt.reduce_sum(x @ x + x * 2.0)
    np.testing.assert_allclose(float(y), np.sum(a @ a + a * 2.0), rtol=1e-6)
    ones = np.ones_like(a)
    np.testing.assert_allclose(tape.gradient(y, x).numpy(), ones @ a.T + a.T @ ones + 2.0,
                               rtol=1e-6)


@pytest.mark.parametrize("fn, classes, fragments",
                         [pytest.param(*case[1:], id=case[0]) for case in CASES])
def test_error_contract(device, fn, classes, fragments):
    before = gt.default_device()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(classes[0]) as info:
            fn()
    err = info.value
    for cls in classes:
        assert isinstance(err, cls), f"{type(err).__mro__} lacks {cls}"
    message = str(err)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} missing from: {message}"
    _follow_up_works(before)


@pytest.mark.parametrize("fn, classes, fragments",
                         [pytest.param(*case[1:], id=case[0]) for case in CASES])
def test_error_inside_a_tape_leaves_the_tape_usable(device, fn, classes, fragments):
    w = gt.constant([1.0, -2.0, 0.5])
    with gt.GradientTape() as tape:
        tape.watch(w)
        first = w * w
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:  # whether it raises the right error is test_error_contract's business
                fn()
            except Exception:
                pass
        y = gt.reduce_sum(first * 3.0 + w)
    g = tape.gradient(y, w)
    np.testing.assert_allclose(g.numpy(), 6.0 * np.array([1.0, -2.0, 0.5]) + 1.0, rtol=1e-6)


def test_hierarchy():
    expected = {
        gt.ShapeError: ValueError, gt.DTypeError: TypeError, gt.DeviceMismatchError: TypeError,
        gt.DeviceError: RuntimeError, gt.TapeError: RuntimeError, gt.ArgumentError: ValueError,
        gt.ArgumentTypeError: TypeError, gt.IndexOutOfRangeError: IndexError,
        gt.TapeValueError: ValueError, gt.TapeTypeError: TypeError,
        gt.GradientRuleError: RuntimeError,
    }
    for cls, builtin in expected.items():
        assert issubclass(cls, gt.GputapeError), cls
        assert issubclass(cls, builtin), cls
    assert issubclass(gt.GputapeError, Exception)


def test_errors_are_raised_before_any_work_is_recorded():
    x = gt.constant([1.0, 2.0])
    with gt.GradientTape(persistent=True) as tape:
        tape.watch(x)
        with pytest.raises(gt.ShapeError):
            gt.add(x, gt.ones((3,)))
        y = gt.reduce_sum(x * 2.0)
    np.testing.assert_array_equal(tape.gradient(y, x).numpy(), [2.0, 2.0])
    np.testing.assert_array_equal(tape.gradient(y, x).numpy(), [2.0, 2.0])
