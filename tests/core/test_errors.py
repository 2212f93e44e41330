"""Error contract: bad input raises a gputape error of the right family whose message names the
op, the argument, the shapes/dtypes/devices involved and a hint, never a raw NumPy error from
deep inside. After each error, gputape keeps working (also inside the same GradientTape block).

The table is ``(id, callable, required exception classes, substrings of the message)``; every
listed class must be an ancestor of the raised exception. The first class is always one of
gputape's own (also a built-in), except for Python's protocols (``float(x)``, ``len(x)``, ...),
which raise the plain built-in error Python users expect. Mixing devices needs a GPU: those
cases sit in ``GPU_CASES`` and run only where one exists.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from helpers import NO_GPU

import gputape as gt

GPUS = [d.name for d in gt.list_devices() if d.name.startswith("gpu")]


def _x():
    return gt.constant([1.0, 2.0, 3.0])


def _m():
    return gt.constant(np.ones((2, 3), np.float32))


def _enter(spec):
    with gt.device(spec):
        pass


def _taped(persistent=False):
    """A tape that watched ``x`` and recorded ``y = x * x``, with its block closed."""
    x = _x()
    with gt.GradientTape(persistent=persistent) as tape:
        tape.watch(x)
        y = x * x
    return tape, x, y


def _on_tape(call):
    return call(*_taped())


def _spent_tape():
    x = gt.constant(2.0)
    with gt.GradientTape() as tape:
        tape.watch(x)
        y = x * x
    tape.gradient(y, x)
    return tape.gradient(y, x)


def _twice(first, second):
    """A non-persistent tape used by ``first`` and then by ``second``."""
    tape, x, y = _taped()
    first(tape, x, y)
    return second(tape, x, y)


def _stop_recording_outside():
    tape = gt.GradientTape()
    with tape.stop_recording():
        pass


def _reenter_tape():
    tape = gt.GradientTape()
    with tape:
        with tape:
            pass


def _batch_jacobian(source, target_of):
    with gt.GradientTape() as tape:
        tape.watch(source)
        target = target_of(source)
    return tape.batch_jacobian(target, source)


def _custom(grad_fn, result=None):
    """The gradient through a custom_gradient function whose rule is ``grad_fn``."""

    @gt.custom_gradient
    def f(x):
        return (x * 2.0, grad_fn) if result is None else result

    x = gt.constant([1.0, 2.0])
    with gt.GradientTape() as tape:
        tape.watch(x)
        y = f(x)
    return tape.gradient(y, x)


def _sgd(*pairs, **kwargs):
    return gt.optimizers.SGD(**kwargs).apply_gradients(list(pairs))


def _step(opt):
    return opt.apply_gradients([(gt.constant(1.0), gt.Variable(1.0))])


def _square(x):
    return x * x


BINARY = ["add", "subtract", "multiply", "divide", "pow", "maximum", "minimum", "equal",
          "not_equal", "less", "less_equal", "greater", "greater_equal"]

SHAPE = (gt.ShapeError, ValueError, gt.GputapeError)
DTYPE = (gt.DTypeError, TypeError, gt.GputapeError)
ARG_VALUE = (gt.ArgumentError, ValueError, gt.GputapeError)
ARG_TYPE = (gt.ArgumentTypeError, TypeError, gt.GputapeError)
INDEX = (gt.IndexOutOfRangeError, IndexError, gt.GputapeError)
DEVICE = (gt.DeviceError, RuntimeError, gt.GputapeError)
MIXED = (gt.DeviceMismatchError, TypeError, gt.GputapeError)
TAPE = (gt.TapeError, RuntimeError, gt.GputapeError)
TAPE_VALUE = (gt.TapeValueError, ValueError, gt.GputapeError)
TAPE_TYPE = (gt.TapeTypeError, TypeError, gt.GputapeError)
RULE = (gt.GradientRuleError, RuntimeError, gt.GputapeError)
PROTOCOL = (TypeError,)  # Python's own protocols: the built-in error Python users expect

CASES = [
    # -- shapes ---------------------------------------------------------------------------
    *[(f"{name}-broadcast", lambda name=name: getattr(gt, name)(gt.ones((2, 3)), gt.ones((4,))),
       SHAPE, [name, "(2, 3)", "(4,)", "hint"]) for name in BINARY],
    ("logical_and-broadcast",
     lambda: gt.logical_and(gt.ones((2, 3), "bool"), gt.ones((4,), "bool")), SHAPE,
     ["logical_and", "(2, 3)", "(4,)", "hint"]),
    ("logical_or-broadcast", lambda: gt.logical_or(gt.ones(2, "bool"), gt.ones(3, "bool")),
     SHAPE, ["logical_or", "(2,)", "(3,)", "hint"]),
    ("sub-operator-broadcast", lambda: gt.ones((2, 3)) - gt.ones((2, 2)), SHAPE,
     ["subtract", "(2, 3)", "(2, 2)", "hint"]),
    ("truediv-operator-broadcast", lambda: gt.ones((2, 3)) / gt.ones((2,)), SHAPE,
     ["divide", "(2, 3)", "(2,)", "hint"]),
    ("less-operator-broadcast", lambda: gt.ones((2, 3)) < gt.ones((2,)), SHAPE,
     ["less", "(2, 3)", "(2,)", "hint"]),
    ("where-broadcast", lambda: gt.where(gt.constant([True, False]), _x(), _x()), SHAPE,
     ["where", "(2,)", "(3,)", "hint"]),
    ("clip_by_value-broadcast", lambda: gt.clip_by_value(_m(), gt.ones(4), 2.0), SHAPE,
     ["(2, 3)", "(4,)", "hint"]),
    ("matmul-inner", lambda: gt.matmul(gt.ones((2, 3)), gt.ones((4, 2))), SHAPE,
     ["matmul", "(2, 3)", "(4, 2)", "hint"]),
    ("matmul-operator", lambda: gt.ones((2, 3)) @ gt.ones((2, 3)), SHAPE,
     ["matmul", "(2, 3)", "hint"]),
    ("matmul-vectors", lambda: gt.matmul(gt.ones(3), gt.ones(4)), SHAPE,
     ["matmul", "k=3", "k=4", "hint"]),
    ("matmul-batch", lambda: gt.matmul(gt.ones((2, 3, 4)), gt.ones((3, 4, 5))), SHAPE,
     ["matmul", "(2, 3, 4)", "(3, 4, 5)", "hint"]),
    ("matmul-scalar", lambda: gt.matmul(gt.constant(2.0), _x()), SHAPE,
     ["matmul", "()", "hint"]),
    ("matrix_transpose-vector", lambda: gt.matrix_transpose(_x()), SHAPE,
     ["matrix_transpose", "(3,)", "hint"]),
    ("reshape-size", lambda: gt.reshape(_m(), (4,)), SHAPE,
     ["reshape", "6", "(2, 3)", "(4,)", "hint"]),
    ("reshape-infer", lambda: gt.reshape(_m(), (4, -1)), SHAPE,
     ["reshape", "6", "(4, -1)", "hint"]),
    ("reshape-two-unknowns", lambda: gt.reshape(_m(), (-1, -1)), SHAPE,
     ["reshape", "(-1, -1)", "(2, 3)", "hint"]),
    ("concat-shapes", lambda: gt.concat([gt.ones((2, 3)), gt.ones((2, 4))], axis=0), SHAPE,
     ["concat", "(2, 4)", "(2, 3)", "hint"]),
    ("concat-ranks", lambda: gt.concat([gt.ones(2), gt.ones((2, 2))], 0), SHAPE,
     ["concat", "values[1]", "(2, 2)", "(2,)", "hint"]),
    ("concat-scalars", lambda: gt.concat([gt.constant(1.0), gt.constant(2.0)], 0), SHAPE,
     ["concat", "0-d", "hint"]),
    ("stack-shapes", lambda: gt.stack([gt.ones(2), gt.ones(3)]), SHAPE,
     ["stack", "(3,)", "(2,)", "hint"]),
    ("squeeze-non-one", lambda: gt.squeeze(_m(), 0), SHAPE, ["squeeze", "(2, 3)", "hint"]),
    ("split-unequal", lambda: gt.split(_x(), 2), SHAPE, ["split", "(3,)", "2", "hint"]),
    ("split-sizes", lambda: gt.split(_x(), [1, 1]), SHAPE, ["split", "[1, 1]", "(3,)", "hint"]),
    ("tile-multiples", lambda: gt.tile(_m(), [2]), SHAPE, ["tile", "(2,)", "(2, 3)", "hint"]),
    ("broadcast_to", lambda: gt.broadcast_to(_m(), (3, 3)), SHAPE,
     ["broadcast_to", "(2, 3)", "(3, 3)", "hint"]),
    ("ones-negative", lambda: gt.ones((-1, 2)), ARG_VALUE, ["ones", "-1", "hint"]),
    ("eye-negative", lambda: gt.eye(-2), ARG_VALUE, ["eye", "num_rows", "-2", "hint"]),
    ("fill-negative", lambda: gt.fill((-1,), 1.0), ARG_VALUE, ["fill", "-1", "hint"]),
    ("linspace-negative-num", lambda: gt.linspace(0.0, 1.0, -1), ARG_VALUE,
     ["linspace", "num", "-1", "hint"]),
    ("range-zero-delta", lambda: gt.range(0, 5, 0), ARG_VALUE, ["range", "delta", "hint"]),
    ("tile-negative", lambda: gt.tile(_m(), [-1, 1]), ARG_VALUE, ["tile", "-1", "hint"]),
    # -- axes -------------------------------------------------------------------------------
    ("reduce_sum-axis", lambda: gt.reduce_sum(_m(), axis=2), ARG_VALUE,
     ["reduce_sum", "axis", "2", "rank 2", "hint"]),
    ("reduce_max-negative-axis", lambda: gt.reduce_max(_m(), axis=-3), ARG_VALUE,
     ["reduce_max", "axis", "-3", "hint"]),
    ("reduce_min-axis", lambda: gt.reduce_min(_m(), axis=5), ARG_VALUE,
     ["reduce_min", "axis", "5", "rank 2", "hint"]),
    ("reduce_prod-axis", lambda: gt.reduce_prod(_m(), axis=2), ARG_VALUE,
     ["reduce_prod", "axis", "2", "hint"]),
    ("reduce_logsumexp-axis", lambda: gt.reduce_logsumexp(_m(), axis=-3), ARG_VALUE,
     ["reduce_logsumexp", "axis", "-3", "hint"]),
    ("reduce_mean-float-axis", lambda: gt.reduce_mean(_m(), axis=1.0), ARG_TYPE,
     ["reduce_mean", "axis", "float", "hint"]),
    ("reduce_sum-repeated-axis", lambda: gt.reduce_sum(_m(), axis=(0, -2)), ARG_VALUE,
     ["reduce_sum", "axis", "(0, -2)", "hint"]),
    ("transpose-perm", lambda: gt.transpose(_m(), (0, 0)), ARG_VALUE,
     ["transpose", "perm", "(2, 3)", "hint"]),
    ("transpose-short-perm", lambda: gt.transpose(_m(), (0,)), ARG_VALUE,
     ["transpose", "perm", "(0,)", "hint"]),
    ("softmax-axis", lambda: gt.softmax(_x(), axis=1), ARG_VALUE,
     ["softmax", "axis", "1", "hint"]),
    ("log_softmax-axis", lambda: gt.log_softmax(_m(), axis=-3), ARG_VALUE,
     ["log_softmax", "axis", "-3", "rank 2", "hint"]),
    ("xent-axis", lambda: gt.nn.softmax_cross_entropy_with_logits(_m(), _m(), axis=2),
     ARG_VALUE, ["softmax_cross_entropy_with_logits", "axis", "2", "rank 2", "hint"]),
    ("xent-broadcast",
     lambda: gt.nn.softmax_cross_entropy_with_logits(gt.ones((2, 4)), _m()), SHAPE,
     ["softmax_cross_entropy_with_logits", "labels", "(2, 4)", "logits", "(2, 3)", "hint"]),
    ("xent-integer-labels",
     lambda: gt.nn.softmax_cross_entropy_with_logits(gt.ones((2, 3), "int32"), _m()), DTYPE,
     ["softmax_cross_entropy_with_logits", "labels", "int32", "float32", "(2, 3)", "hint"]),
    ("xent-float64-labels",
     lambda: gt.nn.softmax_cross_entropy_with_logits(gt.ones((2, 3), "float64"), _m()), DTYPE,
     ["softmax_cross_entropy_with_logits", "labels", "float64", "logits", "float32", "hint"]),
    ("concat-axis", lambda: gt.concat([_m(), _m()], axis=2), ARG_VALUE,
     ["concat", "axis", "2", "rank 2", "hint"]),
    ("stack-axis", lambda: gt.stack([_x(), _x()], axis=3), ARG_VALUE,
     ["stack", "axis", "3", "hint"]),
    ("expand_dims-axis", lambda: gt.expand_dims(_m(), 4), ARG_VALUE,
     ["expand_dims", "axis", "4", "hint"]),
    ("expand_dims-float-axis", lambda: gt.expand_dims(_m(), 0.5), ARG_TYPE,
     ["expand_dims", "axis", "float", "hint"]),
    ("squeeze-axis", lambda: gt.squeeze(_m(), 5), ARG_VALUE, ["squeeze", "axis", "5", "hint"]),
    ("gather-axis", lambda: gt.gather(_m(), [0], axis=2), ARG_VALUE,
     ["gather", "axis", "2", "hint"]),
    ("split-axis", lambda: gt.split(_m(), 2, axis=3), ARG_VALUE, ["split", "axis", "3", "hint"]),
    # -- indexing -----------------------------------------------------------------------------
    ("index-out-of-range", lambda: _x()[3], INDEX, ["getitem", "3", "(3,)", "hint"]),
    ("index-negative-out-of-range", lambda: _x()[-4], INDEX,
     ["getitem", "-4", "(3,)", "hint"]),
    ("index-second-dim", lambda: _m()[0, 5], INDEX, ["getitem", "5", "(2, 3)", "hint"]),
    ("index-array-out-of-range", lambda: _x()[[0, 5]], INDEX, ["getitem", "5", "3", "hint"]),
    ("index-column-array-out-of-range", lambda: _m()[:, [0, 3]], INDEX,
     ["getitem", "3", "(2, 3)", "hint"]),
    ("index-too-many", lambda: _m()[0, 0, 0], INDEX, ["getitem", "(2, 3)", "hint"]),
    ("gather-out-of-range", lambda: gt.gather(_x(), [0, 5]), INDEX,
     ["gather", "5", "(3,)", "hint"]),
    ("gather-negative-out-of-range", lambda: gt.gather(_m(), [-3], axis=0), INDEX,
     ["gather", "-3", "(2, 3)", "hint"]),
    ("index-float", lambda: _x()[1.0], ARG_TYPE, ["getitem", "float", "hint"]),
    ("index-float-array", lambda: _x()[np.array([0.5])], ARG_TYPE,
     ["getitem", "float64", "hint"]),
    ("index-float-tensor", lambda: _x()[gt.constant([0.5])], ARG_TYPE,
     ["getitem", "float32", "hint"]),
    ("index-float-slice", lambda: _x()[0.5:2], ARG_TYPE, ["getitem", "slice", "float", "hint"]),
    ("index-string", lambda: _x()["a"], ARG_TYPE, ["getitem", "str", "hint"]),
    ("index-bare-bool", lambda: _x()[True], ARG_TYPE, ["getitem", "bool", "hint"]),
    ("mask-wrong-length", lambda: _x()[np.array([True, False])], INDEX,
     ["getitem", "(2,)", "(3,)", "hint"]),
    ("mask-tensor-wrong-length", lambda: _x()[gt.constant([True, False])], INDEX,
     ["getitem", "(2,)", "(3,)", "hint"]),
    ("mask-column-wrong-length", lambda: _m()[:, np.array([True, False])], INDEX,
     ["getitem", "(2,)", "3", "hint"]),
    ("mask-2d-wrong-shape", lambda: _m()[np.ones((2, 2), bool)], INDEX,
     ["getitem", "(2, 2)", "(2, 3)", "hint"]),
    ("gather-float-indices", lambda: gt.gather(_x(), [0.5]), ARG_TYPE,
     ["gather", "float", "hint"]),
    # -- values that are not tensors --------------------------------------------------------
    ("string-argument", lambda: gt.add("a", _x()), ARG_TYPE, ["add", "'x'", "str", "hint"]),
    ("none-argument", lambda: gt.exp(None), ARG_TYPE, ["exp", "'x'", "None", "hint"]),
    ("object-argument", lambda: gt.multiply(object(), _x()), ARG_TYPE,
     ["multiply", "'x'", "object", "hint"]),
    ("object-constant", lambda: gt.constant(object()), ARG_TYPE,
     ["constant", "object", "hint"]),
    ("none-constant", lambda: gt.constant(None), ARG_TYPE, ["constant", "None", "hint"]),
    ("dict-argument", lambda: gt.multiply(_x(), {}), ARG_TYPE,
     ["multiply", "'y'", "dict", "hint"]),
    ("string-operator", lambda: _x() + "abc", ARG_TYPE, ["add", "str", "hint"]),
    ("string-matmul", lambda: gt.matmul(_m(), "a"), ARG_TYPE, ["matmul", "'b'", "str", "hint"]),
    ("none-reduce_sum", lambda: gt.reduce_sum(None), ARG_TYPE,
     ["reduce_sum", "input_tensor", "None", "hint"]),
    ("object-reshape", lambda: gt.reshape(object(), (1,)), ARG_TYPE,
     ["reshape", "'tensor'", "object", "hint"]),
    ("string-softmax", lambda: gt.softmax("logits"), ARG_TYPE,
     ["softmax", "'logits'", "str", "hint"]),
    ("none-in-concat", lambda: gt.concat([_x(), None], 0), ARG_TYPE,
     ["concat", "values[1]", "None", "hint"]),
    ("tensor-as-concat-list", lambda: gt.concat(_m(), 0), ARG_TYPE,
     ["concat", "values", "(2, 3)", "hint"]),
    ("empty-stack", lambda: gt.stack([]), ARG_TYPE, ["stack", "non-empty", "hint"]),
    ("string-ones_like", lambda: gt.ones_like("a"), ARG_TYPE,
     ["ones_like", "'input'", "str", "hint"]),
    ("ragged-list", lambda: gt.constant([[1.0, 2.0], [3.0]]), ARG_TYPE, ["constant", "hint"]),
    ("string-list", lambda: gt.constant(["a", "b"]), ARG_TYPE, ["constant", "list", "hint"]),
    ("string-ndarray", lambda: gt.add(_x(), np.array(["a", "b", "c"])), ARG_TYPE,
     ["add", "'y'", "hint"]),
    ("string-fill", lambda: gt.fill((2,), "a"), ARG_TYPE, ["fill", "str", "hint"]),
    ("string-reshape-shape", lambda: gt.reshape(_x(), "abc"), ARG_TYPE,
     ["reshape", "shape", "str", "hint"]),
    ("float-reshape-shape", lambda: gt.reshape(_m(), (2.0, 3)), ARG_TYPE,
     ["reshape", "shape", "float", "hint"]),
    ("string-variable", lambda: gt.Variable("w"), ARG_TYPE,
     ["Variable", "initial_value", "str", "hint"]),
    ("string-split-size", lambda: gt.split(_x(), [1, "a"]), ARG_TYPE,
     ["split", "'a'", "hint"]),
    ("float-split-count", lambda: gt.split(_x(), 1.5), ARG_TYPE, ["split", "1.5", "hint"]),
    ("string-range", lambda: gt.range("a"), ARG_TYPE, ["range", "'a'", "hint"]),
    ("string-linspace", lambda: gt.linspace("a", 1.0, 3), ARG_TYPE,
     ["linspace", "start", "'a'", "hint"]),
    ("string-eye", lambda: gt.eye("a"), ARG_TYPE, ["eye", "num_rows", "'a'", "hint"]),
    ("where-one-branch", lambda: gt.where(gt.constant([True]), 1.0), ARG_VALUE,
     ["where", "y", "hint"]),
    # -- dtypes ---------------------------------------------------------------------------------
    ("float32-float64", lambda: _x() * gt.constant([1.0, 2.0, 3.0], dtype="float64"), DTYPE,
     ["multiply", "float32", "float64", "gt.cast", "hint"]),
    ("float16-float32", lambda: gt.add(gt.ones(2, "float16"), gt.ones(2)), DTYPE,
     ["add", "float16", "float32", "gt.cast", "hint"]),
    ("matmul-dtypes", lambda: gt.ones((2, 2)) @ gt.ones((2, 2), "float64"), DTYPE,
     ["matmul", "float32", "float64", "gt.cast", "hint"]),
    ("concat-dtypes", lambda: gt.concat([gt.ones(2), gt.ones(2, "float64")], 0), DTYPE,
     ["concat", "float32", "float64", "gt.cast", "hint"]),
    ("int-and-float-tensors", lambda: gt.constant([1]) + gt.constant([1.0]), DTYPE,
     ["add", "int32", "float32", "gt.cast", "hint"]),
    ("float-into-int", lambda: gt.constant([1, 2]) + 1.5, DTYPE,
     ["add", "1.5", "int32", "hint"]),
    ("int-overflow", lambda: gt.constant(np.array([1], np.int8)) + 300, DTYPE,
     ["add", "300", "int8", "hint"]),
    ("sqrt-int", lambda: gt.sqrt(gt.constant([1, 4])), DTYPE, ["sqrt", "int32", "gt.cast", "hint"]),
    ("softmax-int", lambda: gt.softmax(gt.constant([1, 2])), DTYPE,
     ["softmax", "logits", "int32", "hint"]),
    ("where-condition", lambda: gt.where(_x(), _x(), _x()), DTYPE,
     ["where", "condition", "float32", "hint"]),
    ("bad-dtype-name", lambda: gt.constant(1.0, dtype="banana"), DTYPE, ["banana", "hint"]),
    ("cast-bad-dtype", lambda: gt.cast(_x(), "banana"), DTYPE, ["banana", "hint"]),
    ("cast-to-none", lambda: gt.cast(_x(), None), DTYPE, ["None", "hint"]),
    ("zeros-bad-dtype", lambda: gt.zeros(2, "banana"), DTYPE, ["banana", "hint"]),
    ("convert-dtype", lambda: gt.convert_to_tensor(_x(), dtype="float64"), DTYPE,
     ["convert_to_tensor", "float32", "float64", "gt.cast", "hint"]),
    # -- Variables ------------------------------------------------------------------------------
    ("assign-shape", lambda: gt.Variable([1.0, 2.0]).assign([1.0, 2.0, 3.0]), SHAPE,
     ["assign", "(3,)", "(2,)", "hint"]),
    ("assign_add-shape", lambda: gt.Variable([1.0, 2.0]).assign_add([[1.0, 2.0]]), SHAPE,
     ["assign_add", "(1, 2)", "(2,)", "hint"]),
    ("assign_sub-shape", lambda: gt.Variable([1.0, 2.0]).assign_sub(gt.ones(3)), SHAPE,
     ["assign_sub", "(3,)", "(2,)", "hint"]),
    ("assign-dtype", lambda: gt.Variable([1.0, 2.0]).assign(gt.constant([1.0, 2.0], "float64")),
     DTYPE, ["assign", "float64", "float32", "gt.cast", "hint"]),
    ("assign-int-tensor", lambda: gt.Variable([1.0, 2.0]).assign(gt.constant([1, 2])), DTYPE,
     ["assign", "int32", "float32", "gt.cast", "hint"]),
    ("assign-string", lambda: gt.Variable([1.0, 2.0]).assign("a"), ARG_TYPE,
     ["Variable.assign", "str", "hint"]),
    ("variable-device-name", lambda: gt.Variable([1.0], device="tpu"), DEVICE,
     ["device", "tpu", "cpu", "hint"]),
    ("assign-device-name", lambda: gt.Variable([1.0]).assign(gt.constant([1.0], device="tpu:0")),
     DEVICE, ["tpu:0", "hint"]),
    # -- devices --------------------------------------------------------------------------------
    ("device-name", lambda: gt.constant(1.0, device="tpu"), DEVICE, ["tpu", "cpu", "hint"]),
    ("to-device-name", lambda: _x().to("tpu"), DEVICE, ["tpu", "cpu", "hint"]),
    ("device-scope-name", lambda: _enter("gpu:x"), DEVICE, ["device", "gpu:x", "hint"]),
    ("device-type", lambda: gt.Device(3), DEVICE, ["device", "int", "3"]),
    # -- tapes: watch -----------------------------------------------------------------------
    ("watch-string", lambda: gt.GradientTape().watch("a"), TAPE_VALUE,
     ["watch", "str", "hint"]),
    ("watch-float", lambda: gt.GradientTape().watch(1.5), TAPE_VALUE,
     ["watch", "float", "1.5", "hint"]),
    ("watch-none", lambda: gt.GradientTape().watch(None), TAPE_VALUE,
     ["watch", "None", "hint"]),
    ("watch-list-holding-a-string", lambda: gt.GradientTape().watch([_x(), "b"]), TAPE_VALUE,
     ["watch", "str", "'b'", "hint"]),
    ("watch-ndarray", lambda: gt.GradientTape().watch(np.ones(3)), TAPE_VALUE,
     ["watch", "ndarray", "hint"]),
    # -- tapes: gradient --------------------------------------------------------------------
    ("gradient-none-target", lambda: gt.GradientTape().gradient(None, _x()), TAPE_TYPE,
     ["gradient", "target", "None"]),
    ("gradient-string-target", lambda: _on_tape(lambda t, x, y: t.gradient("y", x)), TAPE_TYPE,
     ["gradient", "target", "str", "hint"]),
    ("gradient-none-sources", lambda: _on_tape(lambda t, x, y: t.gradient(y, None)), TAPE_TYPE,
     ["gradient", "sources", "None", "hint"]),
    ("gradient-float-source", lambda: _on_tape(lambda t, x, y: t.gradient(y, 1.5)), TAPE_TYPE,
     ["gradient", "sources", "float", "hint"]),
    ("gradient-ndarray-source", lambda: _on_tape(lambda t, x, y: t.gradient(y, [x, np.ones(3)])),
     TAPE_TYPE, ["gradient", "sources", "ndarray", "hint"]),
    ("gradient-unconnected-option",
     lambda: _on_tape(lambda t, x, y: t.gradient(y, x, unconnected_gradients="maybe")),
     TAPE_VALUE, ["unconnected_gradients", "'maybe'", "hint"]),
    ("jacobian-unconnected-option",
     lambda: _on_tape(lambda t, x, y: t.jacobian(y, x, unconnected_gradients=3)),
     TAPE_VALUE, ["unconnected_gradients", "3", "hint"]),
    ("output_gradients-count",
     lambda: _on_tape(lambda t, x, y: t.gradient(y, x, output_gradients=[_x(), _x()])),
     TAPE_VALUE, ["output_gradients", "2", "1", "hint"]),
    ("output_gradients-shape",
     lambda: _on_tape(lambda t, x, y: t.gradient(y, x, output_gradients=gt.ones(4))),
     TAPE_VALUE, ["output_gradients", "(4,)", "(3,)"]),
    ("output_gradients-none",
     lambda: _on_tape(lambda t, x, y: t.gradient(y, x, output_gradients=[None])),
     TAPE_VALUE, ["output_gradients[0]", "None", "hint"]),
    ("output_gradients-string",
     lambda: _on_tape(lambda t, x, y: t.gradient(y, x, output_gradients=["a"])),
     ARG_TYPE, ["output_gradients", "str", "hint"]),
    # -- tapes: jacobian --------------------------------------------------------------------
    ("jacobian-none-target", lambda: _on_tape(lambda t, x, y: t.jacobian(None, x)), TAPE_TYPE,
     ["jacobian", "target", "None", "hint"]),
    ("jacobian-float-source", lambda: _on_tape(lambda t, x, y: t.jacobian(y, [x, 2.0])),
     TAPE_TYPE, ["jacobian", "sources", "float", "hint"]),
    ("batch_jacobian-batch-sizes", lambda: _batch_jacobian(_m(), gt.transpose), TAPE_VALUE,
     ["batch_jacobian", "(3, 2)", "(2, 3)", "hint"]),
    ("batch_jacobian-scalar-target", lambda: _batch_jacobian(_m(), gt.reduce_sum), TAPE_VALUE,
     ["batch_jacobian", "()", "(2, 3)", "hint"]),
    ("batch_jacobian-scalar-source",
     lambda: _batch_jacobian(gt.constant(2.0), lambda s: s * gt.ones(2)), TAPE_VALUE,
     ["batch_jacobian", "(2,)", "()", "hint"]),
    ("batch_jacobian-none-source", lambda: _on_tape(lambda t, x, y: t.batch_jacobian(y, None)),
     TAPE_TYPE, ["batch_jacobian", "source", "None", "hint"]),
    # -- tapes: state -----------------------------------------------------------------------
    ("tape-spent", _spent_tape, TAPE, ["non-persistent", "persistent", "hint"]),
    ("jacobian-after-gradient",
     lambda: _twice(lambda t, x, y: t.gradient(y, x), lambda t, x, y: t.jacobian(y, x)),
     TAPE, ["non-persistent", "jacobians", "hint"]),
    ("gradient-after-jacobian",
     lambda: _twice(lambda t, x, y: t.jacobian(y, x), lambda t, x, y: t.gradient(y, x)),
     TAPE, ["non-persistent", "persistent=True", "hint"]),
    ("batch_jacobian-after-gradient",
     lambda: _twice(lambda t, x, y: t.gradient(y, x),
                    lambda t, x, y: t.batch_jacobian(gt.reshape(y, (3, 1)), x)),
     TAPE, ["non-persistent", "hint"]),
    ("stop-recording-outside", _stop_recording_outside, TAPE,
     ["stop_recording", "not recording", "hint"]),
    ("tape-reentered", _reenter_tape, TAPE_VALUE, ["already recording", "hint"]),
    # -- custom_gradient --------------------------------------------------------------------
    ("custom_gradient-count", lambda: _custom(lambda g: (g, g)), RULE,
     ["custom_gradient", "'f'", "2 gradient(s)", "1 tensor input(s)", "hint"]),
    ("custom_gradient-shape", lambda: _custom(lambda g: gt.ones(3)), RULE,
     ["custom_gradient", "'f'", "(3,)", "(2,)", "hint"]),
    ("custom_gradient-string", lambda: _custom(lambda g: "grad"), RULE,
     ["custom_gradient", "'f'", "str", "(2,)", "hint"]),
    ("custom_gradient-object", lambda: _custom(lambda g: [object()]), RULE,
     ["custom_gradient", "'f'", "object", "hint"]),
    ("custom_gradient-no-pair", lambda: _custom(None, result=gt.ones(2)), RULE,
     ["custom_gradient", "'f'", "(y, grad_fn)", "Tensor", "hint"]),
    ("custom_gradient-not-callable", lambda: gt.custom_gradient(3), ARG_TYPE,
     ["custom_gradient", "int", "hint"]),
    # -- function transforms ----------------------------------------------------------------
    ("grad-not-callable", lambda: gt.grad(3.0), ARG_TYPE, ["grad", "float", "hint"]),
    ("grad-argnums-range", lambda: gt.grad(_square, argnums=2)(1.0), ARG_VALUE,
     ["grad", "argnums", "2", "'_square'", "1 positional", "hint"]),
    ("grad-argnums-type", lambda: gt.grad(_square, argnums="x"), ARG_TYPE,
     ["grad", "argnums", "str", "hint"]),
    ("value_and_grad-not-callable", lambda: gt.value_and_grad("f"), ARG_TYPE,
     ["value_and_grad", "str", "hint"]),
    ("value_and_grad-argnums-range",
     lambda: gt.value_and_grad(gt.multiply, argnums=(0, 3))(1.0, 2.0), ARG_VALUE,
     ["value_and_grad", "argnums", "3", "2 positional", "hint"]),
    ("gradients_function-param-name", lambda: gt.gradients_function(_square, ["y"])(1.0),
     ARG_VALUE, ["gradients_function", "'_square'", "'y'", "hint"]),
    ("hessian-argnums-range", lambda: gt.hessian(_square, argnums=1)(1.0), ARG_VALUE,
     ["hessian", "argnums", "1", "hint"]),
    # -- optimizers -------------------------------------------------------------------------
    ("optimizer-tensor-variable", lambda: _sgd((gt.constant(1.0), gt.constant(1.0))), ARG_TYPE,
     ["SGD.apply_gradients", "gt.Variable", "Tensor", "hint"]),
    ("optimizer-float-variable", lambda: _sgd((gt.constant(1.0), 1.0)), ARG_TYPE,
     ["SGD.apply_gradients", "gt.Variable", "float", "hint"]),
    ("optimizer-shapes", lambda: _sgd((gt.ones(3), gt.Variable([1.0, 2.0], name="w"))), SHAPE,
     ["SGD.apply_gradients", "(3,)", "'w'", "(2,)", "hint"]),
    ("optimizer-no-gradients", lambda: _sgd((None, gt.Variable(1.0, name="w"))), ARG_VALUE,
     ["apply_gradients", "No gradients provided for any variable", "'w'", "hint"]),
    ("optimizer-not-pairs", lambda: _sgd(gt.Variable(1.0)), ARG_TYPE,
     ["apply_gradients", "pairs", "Variable", "hint"]),
    ("optimizer-string-learning-rate", lambda: gt.optimizers.SGD(learning_rate="fast"),
     ARG_TYPE, ["SGD", "learning_rate", "str", "'fast'", "hint"]),
    ("optimizer-none-learning-rate", lambda: _step(gt.optimizers.Adam(learning_rate=None)),
     ARG_TYPE, ["Adam", "learning_rate", "None", "hint"]),
    ("optimizer-schedule-returns-string",
     lambda: _step(gt.optimizers.SGD(learning_rate=lambda step: "x")), ARG_TYPE,
     ["SGD", "learning_rate", "str", "hint"]),
    ("optimizer-momentum", lambda: gt.optimizers.SGD(0.1, momentum=1.5), ARG_VALUE,
     ["SGD", "momentum", "1.5", "hint"]),
    ("optimizer-unknown-argument", lambda: gt.optimizers.Adam(0.1, beta=0.5), ARG_TYPE,
     ["Adam", "'beta'", "hint"]),
    ("optimizer-minimize-value", lambda: gt.optimizers.SGD(0.1).minimize(1.0, []), ARG_TYPE,
     ["SGD.minimize", "loss", "callable", "float", "hint"]),
    # -- clip_by_global_norm ----------------------------------------------------------------
    ("clip-negative-norm", lambda: gt.clip_by_global_norm([_x()], -1.0), ARG_VALUE,
     ["clip_by_global_norm", "clip_norm", "-1.0", "hint"]),
    ("clip-zero-norm", lambda: gt.clip_by_global_norm([_x()], 0), ARG_VALUE,
     ["clip_by_global_norm", "clip_norm", "0", "hint"]),
    ("clip-string-norm", lambda: gt.clip_by_global_norm([_x()], "1"), ARG_TYPE,
     ["clip_by_global_norm", "clip_norm", "str", "hint"]),
    ("clip-tensor-not-list", lambda: gt.clip_by_global_norm(_x(), 1.0), ARG_TYPE,
     ["clip_by_global_norm", "t_list", "Tensor", "hint"]),
    ("clip-all-none", lambda: gt.clip_by_global_norm([None, None], 1.0), ARG_VALUE,
     ["clip_by_global_norm", "t_list", "None", "hint"]),
    # -- Python protocols (plain built-in errors, as Python users expect) ------------------
    ("float-of-many", lambda: float(_x()), PROTOCOL, ["one element", "(3,)", "hint"]),
    ("int-of-empty", lambda: int(gt.zeros((0,))), PROTOCOL, ["one element", "(0,)", "hint"]),
    ("bool-of-many", lambda: bool(_m()), PROTOCOL, ["bool", "(2, 3)", "hint"]),
    ("len-of-scalar", lambda: len(gt.constant(1.0)), PROTOCOL, ["len()", "0-d", "hint"]),
    ("iter-of-scalar", lambda: iter(gt.constant(1.0)), PROTOCOL, ["iteration", "0-d", "hint"]),
]


def _gpu_tensor(value):
    return gt.constant(np.asarray(value, np.float32), device="gpu:0")


def _cpu_tensor(value):
    return gt.constant(np.asarray(value, np.float32), device="cpu")


# Mixed devices need a GPU: these run only where one exists and do not count toward the table.
GPU_CASES = [
    ("add-cpu-gpu", lambda: gt.add(_cpu_tensor([1.0, 2.0]), _gpu_tensor([1.0, 2.0])), MIXED,
     ["add", "cpu", "gpu:0", ".to(", "hint"]),
    ("matmul-gpu-cpu",
     lambda: gt.matmul(_gpu_tensor(np.ones((2, 2))), _cpu_tensor(np.ones((2, 2)))), MIXED,
     ["matmul", "cpu", "gpu:0", ".to(", "hint"]),
    ("concat-cpu-gpu", lambda: gt.concat([_cpu_tensor([1.0]), _gpu_tensor([2.0])], 0), MIXED,
     ["concat", "cpu", "gpu:0", "hint"]),
    ("assign-gpu-into-cpu-variable",
     lambda: gt.Variable([1.0], device="cpu").assign(_gpu_tensor([2.0])), MIXED,
     ["Variable.assign", "gpu:0", "cpu", "hint"]),
    ("optimizer-gradient-on-other-device",
     lambda: _sgd((_gpu_tensor([1.0]), gt.Variable([1.0], device="cpu", name="w"))), MIXED,
     ["SGD.apply_gradients", "gpu:0", "cpu", "'w'", "hint"]),
]


def test_table_is_large_and_unique():
    ids = [case[0] for case in CASES + GPU_CASES]
    assert len(set(ids)) == len(ids), sorted(i for i in ids if ids.count(i) > 1)
    counted = [case for case in CASES if case[2] is not PROTOCOL]
    assert len(counted) >= 80, len(counted)


def test_every_case_expects_a_gputape_class_and_a_builtin():
    """Apart from Python's own protocols, each case names one specific class of gputape's
    hierarchy (never the bare base class), which is also a built-in exception."""
    for name, _, classes, _ in CASES + GPU_CASES:
        if classes is PROTOCOL:
            continue
        first = classes[0]
        assert issubclass(first, gt.GputapeError) and first is not gt.GputapeError, name
        assert any(issubclass(first, b) for b in (ValueError, TypeError, RuntimeError,
                                                  IndexError)), name


def test_most_messages_promise_a_hint():
    with_hint = [case for case in CASES if "hint" in case[3]]
    assert len(with_hint) >= 0.9 * len(CASES), [c[0] for c in CASES if c not in with_hint]


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


PARAMS = [pytest.param(*case[1:], id=case[0]) for case in CASES] + [
    pytest.param(*case[1:], id=case[0],
                 marks=[pytest.mark.gpu, pytest.mark.skipif(not GPUS, reason=NO_GPU)])
    for case in GPU_CASES
]


@pytest.mark.parametrize("fn, classes, fragments", PARAMS)
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


@pytest.mark.parametrize("fn, classes, fragments", PARAMS)
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
