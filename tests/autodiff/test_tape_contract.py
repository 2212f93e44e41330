"""The GradientTape contract: one or more tests per rule of ../shared/SEMANTICS.md.

Test names follow the rules; each docstring quotes or paraphrases its rule. Every expected value
is derived by hand or from a NumPy formula written here, never from running gputape.
"""

from __future__ import annotations

import gc
import math
import re
import warnings
import weakref

import numpy as np
import pytest
from helpers import check, count_calls

import gputape as gt
from gputape.autodiff import backward

ONE_SET = (
    "A non-persistent GradientTape can only be used to compute one set of gradients "
    "(or jacobians)"
)


def no_warnings():
    """A context that turns every warning into an error."""
    ctx = warnings.catch_warnings()
    ctx.__enter__()
    warnings.simplefilter("error")
    return ctx


# == Recording ==================================================================================


def test_recording_ops_recorded_only_inside_with_block(device):
    """An op is recorded only while the tape is recording (inside its ``with`` block)."""
    with gt.device(device):
        x = gt.constant(3.0)
        with gt.GradientTape(persistent=True) as tape:
            tape.watch(x)
            y = x * x
        z = y * 5.0  # after the block: not recorded
        check(tape.gradient(y, x), 6.0, device)
        assert tape.gradient(z, x) is None


def test_recording_needs_a_watched_input(device):
    """An op is recorded only if at least one input is watched by the tape."""
    with gt.device(device):
        x = gt.constant(3.0)
        with gt.GradientTape() as tape:
            y = x * x
        assert len(tape._entries) == 0
        assert tape.gradient(y, x) is None


def test_recording_inputs_derived_from_watched_tensors(device):
    """An op is recorded when an input derives from a watched tensor (chains are followed)."""
    with gt.device(device):
        x = gt.constant(1.5)
        with gt.GradientTape() as tape:
            tape.watch(x)
            y = x * 2.0
            z = y * y  # inputs are not watched themselves, but derive from x
        check(tape.gradient(z, x), 8 * 1.5, device)  # z = 4 x^2


def test_recording_integer_and_bool_tensors_never_recorded(device):
    """Integer and bool tensors are never recorded; float uses of them are constants."""
    with gt.device(device):
        x = gt.constant(2.7)
        with gt.GradientTape(persistent=True) as tape:
            tape.watch(x)
            n = gt.cast(x, gt.int32)  # 2, an integer: not recorded
            m = n * 2  # 4, integer arithmetic: not recorded
            b = gt.greater(x, 1.0)  # a bool: not recorded
            y = gt.cast(m, gt.float32) * x + gt.cast(gt.cast(b, gt.int32), gt.float32)
        assert all(output.dtype.kind in "fc" for _, _, _, output, _, _ in tape._entries)
        check(tape.gradient(y, x), 4.0, device)  # y = 4 x + 1
        assert tape.gradient(m, x) is None


def test_recording_complex_tensors_are_recorded(device):
    """An op with a watched complex input is recorded (floating or complex dtypes)."""
    with gt.device(device):
        x = gt.constant(np.array([1 + 2j, -3j], dtype=np.complex64))
        with gt.GradientTape() as tape:
            tape.watch(x)
            y = x * 3.0
        check(tape.gradient(y, x), np.array([3, 3], dtype=np.complex64), device, np.complex64)


def test_recording_trainable_variable_watched_automatically(device):
    """Trainable Variables are watched automatically when they are read inside the block."""
    with gt.device(device):
        v = gt.Variable(3.0)
        with gt.GradientTape() as tape:
            y = v * v
        assert tape.watched_variables() == (v,)
        check(tape.gradient(y, v), 6.0, device)


def test_recording_variable_read_before_block_is_watched_when_read_inside(device):
    """Auto-watching happens at a read inside the block, whatever happened before it."""
    with gt.device(device):
        v = gt.Variable(2.0)
        before = v * 10.0
        with gt.GradientTape() as tape:
            y = v * before  # y = 20 v, and `before` is a constant here
        check(tape.gradient(y, v), 20.0, device)


def test_recording_watch_accessed_variables_false_disables_auto_watch(device):
    """``watch_accessed_variables=False``: a trainable Variable is watched only via watch()."""
    with gt.device(device):
        v = gt.Variable(3.0)
        w = gt.Variable(4.0)
        with gt.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(w)
            y = v * w
        assert tape.watched_variables() == (w,)
        v_grad, w_grad = tape.gradient(y, [v, w])
        assert v_grad is None
        check(w_grad, 3.0, device)


def test_recording_non_trainable_variable_needs_explicit_watch(device):
    """A Variable with ``trainable=False`` is watched only if ``watch()`` is called on it."""
    with gt.device(device):
        v = gt.Variable(3.0, trainable=False)
        with gt.GradientTape() as tape:
            y = v * v
        assert tape.watched_variables() == ()
        assert tape.gradient(y, v) is None
        # still unwatched when it meets a watched tensor in a recorded op (TF: None)
        w = gt.constant(4.0)
        with gt.GradientTape() as tape:
            tape.watch(w)
            y = v * w
        v_grad, w_grad = tape.gradient(y, [v, w])
        assert v_grad is None
        check(w_grad, 3.0, device)
        with gt.GradientTape() as tape:
            tape.watch(v)
            y = v * v
        assert tape.watched_variables() == (v,)
        check(tape.gradient(y, v), 6.0, device)


def test_recording_constants_watched_only_through_watch(device):
    """Constants are watched only through ``watch()``."""
    with gt.device(device):
        x = gt.constant([1.0, 2.0])
        with gt.GradientTape() as tape:
            y = x * x
        assert tape.gradient(y, x) is None
        with gt.GradientTape() as tape:
            tape.watch(x)
            y = x * x
        check(tape.gradient(y, x), [2.0, 4.0], device)


def test_unwatched_constant_read_by_a_recorded_op_gets_none(device):
    """A recorded op (recorded because another input is watched) does not make its unwatched
    constant inputs sources: TensorFlow 2.21 gives ``[x * 2, None]`` here."""
    with gt.device(device):
        x, z = gt.constant([1.0, 2.0]), gt.constant(3.0)
        with gt.GradientTape(persistent=True) as tape:
            tape.watch(x)
            y = x * x + z
        grads = tape.gradient(y, [x, z])
        check(grads[0], [2.0, 4.0], device)
        assert grads[1] is None
        assert tape.gradient(y, z, unconnected_gradients="zero").numpy() == 0.0
        assert tape.jacobian(y, z) is None


def test_watch_accepts_tensor_variable_and_nests(device):
    """``watch(x)`` takes a tensor, a Variable, or a nested list/tuple/dict of them."""
    with gt.device(device):
        a, b, c = gt.constant(1.0), gt.constant(2.0), gt.constant(3.0)
        v = gt.Variable(4.0, trainable=False)
        with gt.GradientTape() as tape:
            tape.watch({"first": [a, (b,)], "second": {"inner": c}, "var": v})
            y = a * b * c * v
        grads = tape.gradient(y, [a, b, c, v])
        for grad, expected in zip(grads, [24.0, 12.0, 8.0, 6.0]):
            check(grad, expected, device)


@pytest.mark.parametrize(
    "value, type_name",
    [(1.5, "float"), (np.array([1.0, 2.0]), "ndarray"), ([gt.constant(1.0), 2.5], "float")],
    ids=["python-float", "numpy-array", "float-in-a-list"],
)
def test_watch_non_tensor_raises_value_error_naming_the_type(device, value, type_name):
    """Watching anything but tensors/Variables (a float, a NumPy array) raises ValueError naming
    the type."""
    with gt.device(device):
        with gt.GradientTape() as tape:
            with pytest.raises(ValueError, match=type_name):
                tape.watch(value)


def test_watch_integer_tensor_warns_and_gradient_is_none(device):
    """Watching an integer tensor logs a warning ("must be floating"); its gradient is None."""
    with gt.device(device):
        n = gt.constant([1, 2, 3])
        assert n.dtype.kind == "i"
        with gt.GradientTape(persistent=True) as tape:
            with pytest.warns(Warning, match="floating"):
                tape.watch(n)
            y = gt.cast(n, gt.float32) * 2.0
        assert len(tape._entries) == 0, "an op whose only watched input is an integer was recorded"
        assert tape.gradient(y, n) is None
        assert tape.gradient(n, n) is None


def test_target_built_outside_block_contributes_nothing(device):
    """A target built outside the block contributes nothing (TF's surprise ``None``)."""
    with gt.device(device):
        x = gt.constant(2.0)
        with gt.GradientTape(persistent=True) as tape:
            tape.watch(x)
            inside = x * x
        outside = x * 3.0
        assert tape.gradient(outside, x) is None
        # a list target: only the part built inside counts (2x, not 2x + 3)
        check(tape.gradient([inside, outside], x), 4.0, device)


@pytest.mark.parametrize(
    "method, new_value",
    [("assign", 6.0), ("assign_add", 7.0), ("assign_sub", -5.0)],
)
def test_variable_assign_ops_not_differentiable(device, method, new_value):
    """``assign/assign_add/assign_sub`` are not differentiable: gradient flows to reads only."""
    with gt.device(device):
        x = gt.constant(2.0)
        v = gt.Variable(1.0)
        with gt.GradientTape(persistent=True) as tape:
            tape.watch(x)
            getattr(v, method)(x * 3.0)
            y = v * v
        check(gt.identity(v), new_value, device)
        assert tape.gradient(y, x) is None
        check(tape.gradient(y, v), 2 * new_value, device)


def test_numpy_round_trip_is_a_constant(device):
    """A value that round-trips through ``.numpy()`` is a constant."""
    with gt.device(device):
        x = gt.constant(3.0)
        with gt.GradientTape(persistent=True) as tape:
            tape.watch(x)
            c = gt.constant((x * x).numpy())
            y = c * x  # 9 x with a constant 9, not x^3
        assert tape.gradient(c, x) is None
        check(tape.gradient(y, x), 9.0, device)


def test_reentering_a_recording_tape_raises_value_error(device):
    """Re-entering a tape that is already recording raises ValueError."""
    with gt.device(device):
        x = gt.constant(2.0)
        with gt.GradientTape() as tape:
            tape.watch(x)
            with pytest.raises(ValueError):
                with tape:
                    pass
            y = x * x  # the tape is still recording after the failed re-entry
        check(tape.gradient(y, x), 4.0, device)


# == gradient(): targets ========================================================================


def test_gradient_list_target_is_summed(device):
    """A list target is flattened and summed: the result is the gradient of the sum."""
    with gt.device(device):
        x = gt.constant(2.0)
        with gt.GradientTape(persistent=True) as tape:
            tape.watch(x)
            y1 = x * x
            y2 = x * 3.0
            y3 = x ** 3
        check(tape.gradient([y1, y2], x), 2 * 2.0 + 3.0, device)
        check(tape.gradient((y1, [y2, (y3,)]), x), 4.0 + 3.0 + 12.0, device)


def test_gradient_dict_target_is_summed(device):
    """A dict target is flattened and summed like a list."""
    with gt.device(device):
        x = gt.constant(2.0)
        with gt.GradientTape() as tape:
            tape.watch(x)
            target = {"square": x * x, "cube": x ** 3}
        check(tape.gradient(target, x), 4.0 + 12.0, device)


def test_gradient_non_scalar_target_is_seeded_with_ones(device):
    """A non-scalar target is seeded with ones (the gradient of its sum)."""
    with gt.device(device):
        xv = np.array([1.0, -2.0, 0.5], dtype=np.float32)
        w = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=np.float32)
        x = gt.constant(xv)
        with gt.GradientTape(persistent=True) as tape:
            tape.watch(x)
            y = x * x
            z = gt.matmul(gt.constant(w), gt.reshape(x, (3, 1)))  # shape (2, 1)
        check(tape.gradient(y, x), 2 * xv, device)
        check(tape.gradient(z, x), w.T @ np.ones(2), device)


def test_gradient_target_none_raises_type_error(device):
    """``target=None`` raises TypeError."""
    with gt.device(device):
        x = gt.constant(1.0)
        with gt.GradientTape() as tape:
            tape.watch(x)
            x * x
        with pytest.raises(TypeError):
            tape.gradient(None, x)


# == gradient(): sources ========================================================================


def test_gradient_sources_nest_structure_preserved(device):
    """Sources may be any nest; the result has exactly the same structure."""
    with gt.device(device):
        a, b, c = gt.constant(1.0), gt.constant(2.0), gt.constant(3.0)
        with gt.GradientTape() as tape:
            tape.watch([a, b, c])
            y = a * b * c
        grads = tape.gradient(y, {"ab": [a, (b,)], "c": c, "empty": []})
        assert isinstance(grads, dict) and set(grads) == {"ab", "c", "empty"}
        assert isinstance(grads["ab"], list) and len(grads["ab"]) == 2
        assert isinstance(grads["ab"][1], tuple) and len(grads["ab"][1]) == 1
        assert grads["empty"] == []
        check(grads["ab"][0], 6.0, device)
        check(grads["ab"][1][0], 3.0, device)
        check(grads["c"], 2.0, device)


def test_gradient_single_source_and_tuple_of_sources(device):
    """A single source gives a single gradient; a tuple of sources gives a tuple."""
    with gt.device(device):
        a, b = gt.constant(2.0), gt.constant(5.0)
        with gt.GradientTape(persistent=True) as tape:
            tape.watch([a, b])
            y = a * b
        check(tape.gradient(y, a), 5.0, device)
        grads = tape.gradient(y, (a, b))
        assert isinstance(grads, tuple) and len(grads) == 2
        check(grads[0], 5.0, device)
        check(grads[1], 2.0, device)


def test_gradient_source_listed_twice_gets_full_gradient_each(device):
    """A source listed twice gets the full gradient at each position."""
    with gt.device(device):
        x = gt.constant(3.0)
        with gt.GradientTape() as tape:
            tape.watch(x)
            y = x * x
        first, second = tape.gradient(y, [x, x])
        check(first, 6.0, device)
        check(second, 6.0, device)


def test_gradient_intermediate_tensor_as_source(device):
    """An intermediate tensor can be a source."""
    with gt.device(device):
        x = gt.constant(0.7)
        with gt.GradientTape() as tape:
            tape.watch(x)
            y = gt.sin(x)
            z = y * y
        dz_dy, dz_dx = tape.gradient(z, [y, x])
        check(dz_dy, 2 * math.sin(0.7), device)
        check(dz_dx, 2 * math.sin(0.7) * math.cos(0.7), device)


def test_gradient_source_is_target_gives_ones_even_unwatched(device):
    """A source that is itself the target (no ops in between) gets ones, even if unwatched."""
    with gt.device(device):
        x = gt.constant([[1.0, 2.0, 3.0]])
        v = gt.Variable([4.0, 5.0], trainable=False)
        with gt.GradientTape(persistent=True) as tape:
            pass
        check(tape.gradient(x, x), np.ones((1, 3)), device, np.float32)
        check(tape.gradient(v, v), np.ones(2), device, np.float32)


# == gradient(): unconnected sources ============================================================


def _unconnected_cases():
    """A persistent tape, a target, and sources of every unconnected kind (with their values)."""
    x = gt.constant([1.5, 2.5])
    unused = gt.constant(np.array([[1.0, 2.0]], dtype=np.float64))
    never = gt.constant([3.0, 4.0, 5.0])
    integer = gt.constant([1, 2])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with gt.GradientTape(persistent=True) as tape:
            tape.watch([x, unused, integer])
            via_numpy = gt.constant(x.numpy())
            y = gt.reduce_sum(x * x) + gt.reduce_sum(gt.floor(x) + gt.round(x))
            y = y + gt.reduce_sum(gt.cast(gt.cast(x, gt.int32), gt.float32)) + never[0]
            y = y + gt.reduce_sum(via_numpy) + gt.reduce_sum(gt.cast(integer, gt.float32))
    return tape, y, x, {"unused": unused, "never_watched": never, "integer": integer,
                        "via_numpy": via_numpy}


def test_gradient_unconnected_sources_none_by_default(device):
    """Unconnected sources (unused, never watched, integer, through ``.numpy()``) get None."""
    with gt.device(device):
        tape, y, x, sources = _unconnected_cases()
        grads = tape.gradient(y, sources)
        for name, grad in grads.items():
            assert grad is None, f"{name}: expected None, got {grad!r}"
        # floor, round and a cast to int contribute nothing: only x * x reaches x
        check(tape.gradient(y, x), 2 * np.array([1.5, 2.5]), device)


@pytest.mark.parametrize("mode", ["none", gt.UnconnectedGradients.NONE])
def test_gradient_unconnected_none_spelled_explicitly(device, mode):
    """``unconnected_gradients="none"`` / ``UnconnectedGradients.NONE`` give None."""
    with gt.device(device):
        tape, y, _, sources = _unconnected_cases()
        grads = tape.gradient(y, sources, unconnected_gradients=mode)
        assert all(g is None for g in grads.values())


def test_gradient_path_only_through_non_differentiable_ops_is_none(device):
    """A path only through non-differentiable ops (floor, round, cast to int) gives None."""
    with gt.device(device):
        x = gt.constant([1.5, 2.5])
        with gt.GradientTape(persistent=True) as tape:
            tape.watch(x)
            targets = {
                "floor": gt.floor(x) * 2.0,
                "round": gt.round(x) * 2.0,
                "cast_to_int": gt.cast(gt.cast(x, gt.int32), gt.float32) * 2.0,
            }
        for name, target in targets.items():
            assert tape.gradient(target, x) is None, name
        zero = tape.gradient(targets["floor"], x, unconnected_gradients="zero")
        check(zero, [0.0, 0.0], device, np.float32)


@pytest.mark.parametrize("mode", ["zero", gt.UnconnectedGradients.ZERO])
def test_gradient_unconnected_zero_gives_zeros_of_source_shape_and_dtype(device, mode):
    """``"zero"`` / ``UnconnectedGradients.ZERO`` give zeros of the source's shape and dtype."""
    with gt.device(device):
        tape, y, x, sources = _unconnected_cases()
        grads = tape.gradient(y, sources, unconnected_gradients=mode)
        for name, source in sources.items():
            check(grads[name], np.zeros(source.shape), device, source.dtype)
        # connected sources are untouched by the mode
        check(tape.gradient(y, x, unconnected_gradients=mode), [3.0, 5.0], device)


@pytest.mark.parametrize("mode", ["zeros", "ZERO_", "ignore", 0, 1.5])
def test_gradient_unconnected_other_values_raise_value_error(device, mode):
    """Any other ``unconnected_gradients`` value raises ValueError."""
    with gt.device(device):
        x = gt.constant(1.0)
        with gt.GradientTape(persistent=True) as tape:
            tape.watch(x)
            y = x * x
        with pytest.raises(ValueError):
            tape.gradient(y, x, unconnected_gradients=mode)
        with pytest.raises(ValueError):
            tape.jacobian(y, x, unconnected_gradients=mode)


# == gradient(): dtypes and output_gradients ====================================================


def test_gradient_has_dtype_of_source_float64(device):
    """The gradient has the dtype of its source (float64 source, float64 gradient)."""
    with gt.device(device):
        xv = np.array([0.5, 1.5])
        x = gt.constant(xv)
        assert x.dtype == np.float64
        with gt.GradientTape(persistent=True) as tape:
            tape.watch(x)
            y = gt.reduce_sum(x * x)
            y32 = gt.cast(x, gt.float32) * 4.0  # a float32 target from a float64 source
        check(tape.gradient(y, x), 2 * xv, device, np.float64, rtol=1e-12)
        check(tape.gradient(y32, x), [4.0, 4.0], device, np.float64)


def test_gradient_has_dtype_of_source_float32_from_float64_target(device):
    """A float32 source gets a float32 gradient even when the target is float64."""
    with gt.device(device):
        x = gt.constant([1.0, 2.0])
        with gt.GradientTape() as tape:
            tape.watch(x)
            y = gt.cast(x, gt.float64) * 3.0
        check(tape.gradient(y, x), [3.0, 3.0], device, np.float32)


def test_output_gradients_weight_each_target_seed(device):
    """``output_gradients``: one entry per flattened target, multiplied into its seed."""
    with gt.device(device):
        xv = np.array([1.0, 2.0, 3.0], dtype=np.float32)
        w1 = np.array([0.5, -1.0, 2.0], dtype=np.float32)
        x = gt.constant(xv)
        with gt.GradientTape(persistent=True) as tape:
            tape.watch(x)
            y1 = x * x
            y2 = gt.reduce_sum(x * 3.0)
        check(tape.gradient(y1, x, output_gradients=[gt.constant(w1)]), w1 * 2 * xv, device)
        grad = tape.gradient([y1, y2], x, output_gradients=[gt.constant(w1), gt.constant(10.0)])
        check(grad, w1 * 2 * xv + 10.0 * 3.0, device)


def test_output_gradients_broadcast_to_target(device):
    """Each output gradient is broadcast to its target's shape."""
    with gt.device(device):
        xv = np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32)
        x = gt.constant(xv)
        with gt.GradientTape(persistent=True) as tape:
            tape.watch(x)
            y = x * x
        check(tape.gradient(y, x, output_gradients=[gt.constant(0.5)]), xv, device)
        row = np.array([1.0, -1.0], dtype=np.float32)
        check(tape.gradient(y, x, output_gradients=[gt.constant(row)]), 2 * xv * row, device)


def test_output_gradients_count_mismatch_raises_value_error(device):
    """gputape raises ValueError when output_gradients has a different count than the targets."""
    with gt.device(device):
        x = gt.constant([1.0, 2.0])
        with gt.GradientTape(persistent=True) as tape:
            tape.watch(x)
            y1, y2 = x * x, x * 3.0
        with pytest.raises(ValueError):
            tape.gradient([y1, y2], x, output_gradients=[gt.ones_like(y1)])
        with pytest.raises(ValueError):
            tape.gradient(y1, x, output_gradients=[gt.ones_like(y1), gt.ones_like(y1)])


def test_output_gradients_none_entry_raises_value_error(device):
    """gputape raises ValueError for a ``None`` entry in output_gradients."""
    with gt.device(device):
        x = gt.constant([1.0, 2.0])
        with gt.GradientTape() as tape:
            tape.watch(x)
            y1, y2 = x * x, x * 3.0
        with pytest.raises(ValueError):
            tape.gradient([y1, y2], x, output_gradients=[gt.ones_like(y1), None])


def test_output_gradients_non_broadcastable_shape_raises_value_error(device):
    """gputape raises ValueError for an output gradient that does not broadcast to its target."""
    with gt.device(device):
        x = gt.constant([1.0, 2.0])
        with gt.GradientTape(persistent=True) as tape:
            tape.watch(x)
            y = x * x
        with pytest.raises(ValueError):
            tape.gradient(y, x, output_gradients=[gt.constant([1.0, 2.0, 3.0])])
        with pytest.raises(ValueError):
            tape.gradient(y, x, output_gradients=[gt.ones((2, 2))])


# == gradient(): non-persistent and persistent tapes ============================================


def test_non_persistent_second_gradient_raises_runtime_error(device):
    """A non-persistent tape's second gradient() raises RuntimeError with TF's message."""
    with gt.device(device):
        x = gt.constant(2.0)
        with gt.GradientTape() as tape:
            tape.watch(x)
            y = x * x
        check(tape.gradient(y, x), 4.0, device)
        with pytest.raises(RuntimeError, match=re.escape(ONE_SET)):
            tape.gradient(y, x)
        with pytest.raises(RuntimeError, match=re.escape(ONE_SET)):
            tape.jacobian(y, x)


def test_non_persistent_jacobian_then_gradient_raises_runtime_error(device):
    """A jacobian() also consumes a non-persistent tape."""
    with gt.device(device):
        x = gt.constant([1.0, 2.0])
        with gt.GradientTape() as tape:
            tape.watch(x)
            y = x * x
        check(tape.jacobian(y, x), np.diag([2.0, 4.0]), device)
        with pytest.raises(RuntimeError, match=re.escape(ONE_SET)):
            tape.gradient(y, x)
        with pytest.raises(RuntimeError, match=re.escape(ONE_SET)):
            tape.jacobian(y, x)


def _tape_with_big_intermediate(persistent: bool):
    """A tape whose only reference to a large intermediate tensor is its own record."""
    x = gt.constant(np.linspace(0.0, 1.0, 1_000_000, dtype=np.float32))
    tape = gt.GradientTape(persistent=persistent)
    with tape:
        tape.watch(x)
        hidden = gt.exp(x)
        y = gt.reduce_sum(hidden * hidden)
    ref = weakref.ref(hidden)
    del hidden
    gc.collect()
    return tape, x, y, ref


def test_non_persistent_releases_saved_intermediates_after_first_gradient(device):
    """A non-persistent tape's saved intermediates are released right after the first call."""
    with gt.device(device):
        tape, x, y, ref = _tape_with_big_intermediate(persistent=False)
        assert ref() is not None, "precondition: the tape keeps the intermediate for backward"
        assert len(tape._entries) > 0
        grad = tape.gradient(y, x)
        assert grad is not None and grad.shape == x.shape
        assert len(tape._entries) == 0
        gc.collect()
        assert ref() is None, "the intermediate outlived the first gradient() call"


def test_persistent_tape_allows_many_calls(device):
    """A persistent tape answers any number of gradient/jacobian calls."""
    with gt.device(device):
        xv = np.array([1.0, 2.0], dtype=np.float32)
        x = gt.constant(xv)
        with gt.GradientTape(persistent=True) as tape:
            tape.watch(x)
            y = x * x
            z = y * y
        for _ in range(3):
            check(tape.gradient(y, x), 2 * xv, device)
            check(tape.gradient(z, x), 4 * xv**3, device)
        check(tape.gradient(z, y), 2 * xv**2, device)
        check(tape.jacobian(y, x), np.diag(2 * xv), device)
        check(tape.gradient(y, x), 2 * xv, device)


def test_persistent_tape_released_when_deleted(device):
    """Everything a persistent tape recorded is released when the tape is deleted."""
    with gt.device(device):
        tape, x, y, ref = _tape_with_big_intermediate(persistent=True)
        assert tape.gradient(y, x) is not None
        assert ref() is not None, "a persistent tape must keep its intermediates"
        del tape
        gc.collect()
        assert ref() is None


def test_persistent_tape_released_by_reset(device):
    """Everything a persistent tape recorded is released by ``reset()``."""
    with gt.device(device):
        tape, x, y, ref = _tape_with_big_intermediate(persistent=True)
        assert tape.gradient(y, x) is not None
        with tape:  # reset() only while recording (as TF): re-entered to reset
            tape.reset()
        gc.collect()
        assert ref() is None
        assert len(tape._entries) == 0
        assert tape.gradient(y, x) is None


def test_persistent_gradient_inside_context_warns_once(device):
    """gradient() inside a persistent tape's block works but warns once."""
    with gt.device(device):
        x = gt.constant(2.0)
        with gt.GradientTape(persistent=True) as tape:
            tape.watch(x)
            y = x ** 3
            with pytest.warns(Warning, match="record"):
                g1 = tape.gradient(y, x)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                g2 = tape.gradient(y, x)
                tape.jacobian(y, x)
            assert caught == [], [str(w.message) for w in caught]
        check(g1, 12.0, device)
        check(g2, 12.0, device)


def test_persistent_gradient_inside_context_records_gradient_ops(device):
    """gradient() inside a persistent block records the gradient ops (higher order from one
    tape)."""
    with gt.device(device):
        x = gt.constant(2.0)
        with gt.GradientTape(persistent=True) as tape:
            tape.watch(x)
            y = x ** 3
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                dy_dx = tape.gradient(y, x)  # 3 x^2
        check(dy_dx, 12.0, device)
        check(tape.gradient(dy_dx, x), 12.0, device)  # 6 x


def test_non_persistent_gradient_inside_context_stops_recording(device):
    """A non-persistent gradient() inside the block stops recording (no warning)."""
    with gt.device(device):
        x = gt.constant(2.0)
        with gt.GradientTape() as tape:
            tape.watch(x)
            y = x * x
            ctx = no_warnings()
            try:
                check(tape.gradient(y, x), 4.0, device)
            finally:
                ctx.__exit__(None, None, None)
            z = x * y
            assert len(tape._entries) == 0, "ops after the gradient call were recorded"
            with pytest.raises(RuntimeError):
                with tape.stop_recording():
                    pass
        with pytest.raises(RuntimeError, match=re.escape(ONE_SET)):
            tape.gradient(z, x)


# == Higher order ===============================================================================


def test_nested_tapes_third_derivative(device):
    """Nested tapes: each inner gradient is recorded by the outer tapes (x**3 -> 6)."""
    with gt.device(device):
        x = gt.constant(2.0)
        with gt.GradientTape() as t1:
            t1.watch(x)
            with gt.GradientTape() as t2:
                t2.watch(x)
                with gt.GradientTape() as t3:
                    t3.watch(x)
                    y = x ** 3
                d1 = t3.gradient(y, x)
            d2 = t2.gradient(d1, x)
        d3 = t1.gradient(d2, x)
        check(d1, 3 * 2.0**2, device)
        check(d2, 6 * 2.0, device)
        check(d3, 6.0, device)


def test_nested_tapes_vector_second_derivative(device):
    """Nested tapes work elementwise on vectors: d2/dx2 sin(x) = -sin(x)."""
    with gt.device(device):
        xv = np.array([0.1, 1.0, 2.5], dtype=np.float32)
        x = gt.constant(xv)
        with gt.GradientTape() as outer:
            outer.watch(x)
            with gt.GradientTape() as inner:
                inner.watch(x)
                y = gt.sin(x)
            dy = inner.gradient(y, x)
        check(dy, np.cos(xv), device)
        check(outer.gradient(dy, x), -np.sin(xv), device)


def test_nested_tapes_inner_gradient_recorded_only_while_outer_records(device):
    """The inner gradient is recorded by an outer tape only if the outer tape is recording."""
    with gt.device(device):
        x = gt.Variable(3.0)
        with gt.GradientTape() as outer:
            with gt.GradientTape() as inner:
                y = x * x * x
            dy = inner.gradient(y, x)  # inside the outer block: recorded
        check(dy, 27.0, device)
        check(outer.gradient(dy, x), 18.0, device)

        with gt.GradientTape() as outer:
            with gt.GradientTape() as inner:
                y = x * x * x
        dy = inner.gradient(y, x)  # after the outer block closed: not recorded
        check(dy, 27.0, device)
        assert outer.gradient(dy, x) is None


def test_outer_tape_must_watch_x_itself(device):
    """An inner tape's watch does not propagate outward: outer.gradient(dy_dx, x) is None."""
    with gt.device(device):
        x = gt.constant(3.0)
        with gt.GradientTape() as outer:
            with gt.GradientTape() as inner:
                inner.watch(x)
                y = x * x
            dy_dx = inner.gradient(y, x)
        check(dy_dx, 6.0, device)
        assert outer.gradient(dy_dx, x) is None


def test_recorded_gradient_op_depends_only_on_what_its_formula_reads(device):
    """z = (x1 + 5) * x2**2 at x1=2, x2=3: d(dz/dx1)/dx1 is None; mixed = 6 and 6;
    d2z/dx2^2 = 14."""
    with gt.device(device):
        x1, x2 = gt.constant(2.0), gt.constant(3.0)
        with gt.GradientTape(persistent=True) as outer:
            outer.watch([x1, x2])
            with gt.GradientTape() as inner:
                inner.watch([x1, x2])
                z = (x1 + 5.0) * x2 ** 2
            dz_dx1, dz_dx2 = inner.gradient(z, [x1, x2])
        check(dz_dx1, 9.0, device)  # x2^2
        check(dz_dx2, 42.0, device)  # 2 (x1 + 5) x2
        assert outer.gradient(dz_dx1, x1) is None
        check(outer.gradient(dz_dx1, x1, unconnected_gradients="zero"), 0.0, device)
        check(outer.gradient(dz_dx1, x2), 6.0, device)  # 2 x2
        check(outer.gradient(dz_dx2, x1), 6.0, device)  # 2 x2
        check(outer.gradient(dz_dx2, x2), 14.0, device)  # 2 (x1 + 5)


# == Other tape methods =========================================================================


def test_stop_recording_ops_inside_not_recorded(device):
    """``stop_recording()``: ops inside are not recorded; recording resumes after it."""
    with gt.device(device):
        x = gt.constant(2.0)
        with gt.GradientTape(persistent=True) as tape:
            tape.watch(x)
            with tape.stop_recording():
                paused = x * x
            resumed = x * x * x
        assert tape.gradient(paused, x) is None
        check(tape.gradient(resumed, x), 12.0, device)


def test_stop_recording_pauses_only_its_own_tape(device):
    """``stop_recording()`` pauses its own tape; another recording tape keeps recording."""
    with gt.device(device):
        x = gt.constant(2.0)
        with gt.GradientTape() as outer:
            outer.watch(x)
            with gt.GradientTape() as inner:
                inner.watch(x)
                with outer.stop_recording():
                    y = x * x
        check(inner.gradient(y, x), 4.0, device)
        assert outer.gradient(y, x) is None


def test_stop_recording_outside_recording_tape_raises_runtime_error(device):
    """``stop_recording()`` outside a recording tape raises RuntimeError."""
    with gt.device(device):
        tape = gt.GradientTape()
        with pytest.raises(RuntimeError):
            with tape.stop_recording():
                pass
        with tape:
            pass
        with pytest.raises(RuntimeError):
            with tape.stop_recording():
                pass


def test_reset_drops_recorded_ops_and_recording_continues(device):
    """``reset()`` drops everything recorded so far; recording continues inside the block."""
    with gt.device(device):
        x = gt.constant(2.0)
        v = gt.Variable(5.0)
        with gt.GradientTape(persistent=True) as tape:
            tape.watch(x)
            before = x * x * v
            tape.reset()
            unwatched_now = x * 3.0  # reset forgot the watch on x
            tape.watch(x)
            after = x * 3.0 * v
        assert tape.gradient(before, x) is None
        assert tape.gradient(before, v) is None
        assert tape.gradient(unwatched_now, x) is None
        check(tape.gradient(after, x), 15.0, device)
        check(tape.gradient(after, v), 6.0, device)  # v is auto-watched again on its read


def test_reset_forgets_watched_variables(device):
    """``reset()`` drops the watched variables too."""
    with gt.device(device):
        v1, v2 = gt.Variable(1.0), gt.Variable(2.0)
        with gt.GradientTape() as tape:
            v1 * 2.0
            tape.reset()
            v2 * 2.0
        assert tape.watched_variables() == (v2,)


def test_watched_variables_in_creation_order(device):
    """``watched_variables()``: the Variables watched so far, in the order the Variables were
    created. TF 2.21 gives ``[a, b]`` for ``y = b * a`` with ``a`` created first."""
    with gt.device(device):
        a, b, c = gt.Variable(1.0, name="a"), gt.Variable(2.0, name="b"), gt.Variable(3.0, name="c")
        frozen = gt.Variable(4.0, trainable=False, name="frozen")
        with gt.GradientTape() as tape:
            y = c * 2.0
            assert tape.watched_variables() == (c,)
            y = y + b * a
            tape.watch(frozen)
            y = y + c * a * frozen
        watched = tape.watched_variables()
        assert [v.name for v in watched] == ["a", "b", "c", "frozen"]
        assert all(w is v for w, v in zip(watched, (a, b, c, frozen)))
        assert isinstance(tape.watched_variables(), tuple)


def test_reset_only_while_recording(device):
    """``reset()`` outside the ``with`` block, or inside ``stop_recording()``: TF 2.21 raises
    ``ValueError: Tape is not recording.``"""
    with gt.device(device):
        x = gt.constant(2.0)
        tape = gt.GradientTape(persistent=True)
        with tape:
            tape.watch(x)
            y = x * x
            with tape.stop_recording():
                with pytest.raises(ValueError, match="Tape is not recording"):
                    tape.reset()
        with pytest.raises(ValueError, match="Tape is not recording"):
            tape.reset()
        check(tape.gradient(y, x), 4.0, device)  # the failed resets dropped nothing


# == jacobian / batch_jacobian ==================================================================


def test_jacobian_shape_is_target_shape_plus_source_shape(device):
    """``jacobian``: shape ``target.shape + source.shape``."""
    with gt.device(device):
        x = gt.constant(np.ones((4,), dtype=np.float32))
        s = gt.constant(2.0)
        with gt.GradientTape(persistent=True) as tape:
            tape.watch([x, s])
            y = gt.reshape(gt.tile(gt.reshape(x * s, (1, 4)), (6, 1)), (2, 3, 4))
            scalar = gt.reduce_sum(x)
        assert tape.jacobian(y, x).shape == (2, 3, 4, 4)
        assert tape.jacobian(y, s).shape == (2, 3, 4)
        assert tape.jacobian(scalar, x).shape == (4,)
        assert tape.jacobian(scalar, s, unconnected_gradients="zero").shape == ()


def test_jacobian_elementwise_square_is_diagonal(device):
    """``jacobian`` of y = x**2 is diag(2x)."""
    with gt.device(device):
        xv = np.array([1.0, -2.0, 0.5, 3.0], dtype=np.float32)
        x = gt.constant(xv)
        with gt.GradientTape() as tape:
            tape.watch(x)
            y = x ** 2
        check(tape.jacobian(y, x), np.diag(2 * xv), device, np.float32)


def test_jacobian_of_matmul_is_the_matrix(device):
    """``jacobian`` of W @ x is W (w.r.t. x), and x in the right slots (w.r.t. W)."""
    with gt.device(device):
        wv = np.arange(6, dtype=np.float32).reshape(2, 3) - 2.0
        xv = np.array([[0.5], [-1.0], [2.0]], dtype=np.float32)
        w, x = gt.constant(wv), gt.constant(xv)
        with gt.GradientTape() as tape:
            tape.watch([w, x])
            y = gt.matmul(w, x)  # (2, 1)
        jw, jx = tape.jacobian(y, [w, x])
        check(jx, wv.reshape(2, 1, 3, 1), device)
        expected_jw = np.zeros((2, 1, 2, 3), dtype=np.float32)
        for i in range(2):
            expected_jw[i, 0, i, :] = xv[:, 0]  # dy_i / dW_kl = delta_ik x_l
        check(jw, expected_jw, device)


def test_jacobian_2d_elementwise_and_nested_sources(device):
    """``jacobian`` accepts nested sources and keeps full index structure for 2-d tensors."""
    with gt.device(device):
        xv = np.array([[0.1, 0.2], [0.3, 0.4]], dtype=np.float32)
        x, c = gt.constant(xv), gt.constant(3.0)
        with gt.GradientTape() as tape:
            tape.watch([x, c])
            y = gt.sin(x) * c
        jac = tape.jacobian(y, {"x": x, "c": [c]})
        expected = np.zeros((2, 2, 2, 2), dtype=np.float32)
        for i in range(2):
            for j in range(2):
                expected[i, j, i, j] = 3.0 * np.cos(xv[i, j])
        check(jac["x"], expected, device)
        check(jac["c"][0], np.sin(xv), device)


def test_jacobian_non_persistent_usable_once(device):
    """The jacobian of a non-persistent tape can be taken once; the second call raises."""
    with gt.device(device):
        x = gt.constant([1.0, 2.0])
        with gt.GradientTape() as tape:
            tape.watch(x)
            y = x * 3.0
        check(tape.jacobian(y, x), 3 * np.eye(2), device)
        with pytest.raises(RuntimeError, match=re.escape(ONE_SET)):
            tape.jacobian(y, x)


def test_jacobian_unconnected_sources_none_or_zeros(device):
    """``jacobian`` of an unconnected source: None, or zeros of target.shape + source.shape."""
    with gt.device(device):
        x = gt.constant([1.0, 2.0])
        other = gt.constant(np.ones((3, 1), dtype=np.float64))
        with gt.GradientTape(persistent=True) as tape:
            tape.watch([x, other])
            y = x * x
        assert tape.jacobian(y, other) is None
        zeros = tape.jacobian(y, [x, other], unconnected_gradients=gt.UnconnectedGradients.ZERO)
        check(zeros[0], np.diag([2.0, 4.0]), device)
        check(zeros[1], np.zeros((2, 3, 1)), device, np.float64)


def test_jacobian_through_custom_gradient_function(device):
    """``jacobian`` through a ``custom_gradient`` function uses its rule (row-by-row)."""

    @gt.custom_gradient
    def fake_square(x):
        def grad_fn(upstream):
            return upstream * 7.0  # deliberately not 2x: proves the custom rule is used

        return x * x, grad_fn

    with gt.device(device):
        xv = np.array([0.5, 1.0, 2.0], dtype=np.float32)
        x = gt.constant(xv)
        with gt.GradientTape(persistent=True) as tape:
            tape.watch(x)
            y = gt.sin(fake_square(x))
        check(y, np.sin(xv**2), device)
        check(tape.jacobian(y, x), np.diag(7.0 * np.cos(xv**2)), device)
        xb = gt.constant(xv.reshape(3, 1))
        with gt.GradientTape() as tape:
            tape.watch(xb)
            yb = fake_square(xb) * 2.0
        check(tape.batch_jacobian(yb, xb), np.full((3, 1, 1), 14.0), device)


def test_jacobian_is_vectorized_for_large_targets(device, monkeypatch):
    """``jacobian`` is vectorized where it can be: not one backward walk per target element."""
    calls = count_calls(monkeypatch, backward, "walk")
    with gt.device(device):
        xv = np.linspace(-1.0, 1.0, 300).astype(np.float32)
        x = gt.constant(xv)
        with gt.GradientTape() as tape:
            tape.watch(x)
            y = gt.tanh(x) * 2.0
        jac = tape.jacobian(y, x)
    check(jac, np.diag(2.0 * (1 - np.tanh(xv) ** 2)), device, rtol=1e-4)
    assert len(calls) < 10, f"{len(calls)} backward walks for a 300-element target"


def test_batch_jacobian_shape_and_values(device):
    """``batch_jacobian``: per-example Jacobian, shape (batch,) + target[1:] + source[1:]."""
    with gt.device(device):
        xv = np.array([[1.0, 2.0], [-1.0, 0.5], [3.0, -2.0]], dtype=np.float32)  # (3, 2)
        wv = np.array([[1.0, 0.0], [2.0, -1.0], [0.5, 3.0], [-2.0, 1.0]], dtype=np.float32)
        x = gt.constant(xv)
        with gt.GradientTape() as tape:
            tape.watch(x)
            y = gt.matmul(x * x, gt.constant(wv.T))  # y[b, i] = sum_j W[i, j] x[b, j]^2
        jac = tape.batch_jacobian(y, x)
        expected = wv[None, :, :] * 2 * xv[:, None, :]  # J[b, i, j] = 2 W[i, j] x[b, j]
        check(jac, expected, device)
        assert jac.shape == (3, 4, 2)


def test_batch_jacobian_mismatched_batch_sizes_raise_value_error(device):
    """``batch_jacobian`` with different leading (batch) sizes raises ValueError."""
    with gt.device(device):
        x = gt.constant(np.ones((3, 2), dtype=np.float32))
        other = gt.constant(np.ones((2, 2), dtype=np.float32))
        with gt.GradientTape() as tape:
            tape.watch([x, other])
            y = x * 2.0 + gt.reduce_sum(other)
        with pytest.raises(ValueError):
            tape.batch_jacobian(y, other)


def test_batch_jacobian_unconnected_is_zeros(device):
    """``batch_jacobian`` of an unconnected source: zeros of the batched shape whatever
    ``unconnected_gradients`` says. TF 2.21 gives zeros (its code ignores the argument there
    on purpose), for a watched and for a never-watched source."""
    with gt.device(device):
        x = gt.constant(np.ones((3, 2), dtype=np.float32))
        other = gt.constant(np.ones((3, 4), dtype=np.float32))
        never = gt.constant(np.ones((3, 2), dtype=np.float32))
        with gt.GradientTape(persistent=True) as tape:
            tape.watch([x, other])
            y = x * 2.0
        for mode in ("none", "zero"):
            zeros = tape.batch_jacobian(y, other, unconnected_gradients=mode)
            check(zeros, np.zeros((3, 2, 4)), device, np.float32)
        check(tape.batch_jacobian(never, never), np.zeros((3, 2, 2)), device, np.float32)


# == Ops, dtypes, numbers =======================================================================


@pytest.mark.parametrize(
    "expression",
    [lambda x: 3 * x, lambda x: x * 2.5, lambda x: 2.5 - x, lambda x: x / 3, lambda x: 1 + x,
     lambda x: x ** 2, lambda x: gt.maximum(x, 0.0)],
    ids=["3*x", "x*2.5", "2.5-x", "x/3", "1+x", "x**2", "maximum(x,0.)"],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_python_numbers_take_the_tensor_dtype(device, expression, dtype):
    """Python numbers mixed with tensors take the tensor's dtype (weak typing)."""
    with gt.device(device):
        x = gt.constant(np.array([1.0, 2.0], dtype=dtype))
        with gt.GradientTape() as tape:
            tape.watch(x)
            y = expression(x)
        assert y.dtype == dtype
        assert tape.gradient(y, x).dtype == dtype


def test_python_float_alone_becomes_float32_and_numpy_keeps_dtype(device):
    """Python floats alone become float32 tensors; NumPy arrays keep their dtype."""
    with gt.device(device):
        assert gt.constant(2.5).dtype == np.float32
        assert gt.constant([1.5, 2.5]).dtype == np.float32
        assert gt.multiply(2.0, 3.0).dtype == np.float32
        assert gt.constant(np.array([1.5, 2.5])).dtype == np.float64
        assert gt.constant(np.array([1.5], dtype=np.float16)).dtype == np.float16
        assert gt.Variable(np.array([1.5])).dtype == np.float64


def test_weak_typing_gradient_values(device):
    """``3 * x`` keeps float32 and its gradient is 3 (float32); float64 stays float64."""
    with gt.device(device):
        x32 = gt.constant([1.0, 2.0])
        x64 = gt.constant(np.array([1.0, 2.0]))
        with gt.GradientTape() as tape:
            tape.watch([x32, x64])
            y = gt.reduce_sum(3 * x32) + gt.cast(gt.reduce_sum(0.1 * x64), gt.float32)
        g32, g64 = tape.gradient(y, [x32, x64])
        check(g32, [3.0, 3.0], device, np.float32)
        check(g64, [0.1, 0.1], device, np.float64, rtol=1e-12)


def test_broadcasting_gradients_summed_back_to_input_shapes(device):
    """Broadcasting follows NumPy; gradients are summed back to each input's shape."""
    with gt.device(device):
        xv = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=np.float32)  # (2, 3)
        bv = np.array([0.5, -1.0, 2.0], dtype=np.float32)  # (3,)
        cv = np.array([[2.0], [-3.0]], dtype=np.float32)  # (2, 1)
        sv = np.float32(1.5)
        x, b, c, s = gt.constant(xv), gt.constant(bv), gt.constant(cv), gt.constant(sv)
        with gt.GradientTape() as tape:
            tape.watch([x, b, c, s])
            y = x * b + s * c  # (2, 3)
        gx, gb, gc_, gs = tape.gradient(y, [x, b, c, s])
        check(gx, np.broadcast_to(bv, (2, 3)), device)
        check(gb, xv.sum(axis=0), device)
        check(gc_, np.full((2, 1), 3 * sv), device)
        check(gs, 3 * cv.sum(), device)


def test_broadcasting_gradient_with_leading_and_inner_ones(device):
    """Gradients are summed over size-1 and leading axes: (1, 3, 1) against (2, 3, 4)."""
    with gt.device(device):
        av = np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 10
        bv = np.array([1.0, 2.0, 3.0], dtype=np.float32).reshape(1, 3, 1)
        a, b = gt.constant(av), gt.constant(bv)
        with gt.GradientTape() as tape:
            tape.watch([a, b])
            y = a * b
        ga, gb = tape.gradient(y, [a, b])
        check(ga, np.broadcast_to(bv, (2, 3, 4)), device)
        check(gb, av.sum(axis=(0, 2), keepdims=True), device)


def test_maximum_minimum_ties_send_gradient_to_x(device):
    """maximum/minimum send the gradient to x where x >= y (resp. x <= y)."""
    with gt.device(device):
        x = gt.constant([1.0, 2.0, 3.0])
        y = gt.constant([2.0, 2.0, 2.0])
        with gt.GradientTape(persistent=True) as tape:
            tape.watch([x, y])
            hi = gt.maximum(x, y)
            lo = gt.minimum(x, y)
        gx, gy = tape.gradient(hi, [x, y])
        check(gx, [0.0, 1.0, 1.0], device)
        check(gy, [1.0, 0.0, 0.0], device)
        gx, gy = tape.gradient(lo, [x, y])
        check(gx, [1.0, 1.0, 0.0], device)
        check(gy, [0.0, 0.0, 1.0], device)


def test_reduce_max_min_share_gradient_among_ties(device):
    """reduce_max/min share the gradient equally among tied extremes."""
    with gt.device(device):
        a = gt.constant([1.0, 3.0, 3.0, 2.0])
        b = gt.constant([1.0, 1.0, 3.0])
        m = gt.constant([[1.0, 1.0, 1.0], [2.0, 0.0, 2.0]])
        with gt.GradientTape(persistent=True) as tape:
            tape.watch([a, b, m])
            amax = gt.reduce_max(a)
            bmin = gt.reduce_min(b)
            rows = gt.reduce_max(m, axis=1)
        check(tape.gradient(amax, a), [0.0, 0.5, 0.5, 0.0], device)
        check(tape.gradient(bmin, b), [0.5, 0.5, 0.0], device)
        check(tape.gradient(rows, m), [[1 / 3, 1 / 3, 1 / 3], [0.5, 0.0, 0.5]], device)


def test_relu_derivative_at_zero_is_zero(device):
    """relu'(0) = 0."""
    with gt.device(device):
        x = gt.constant([-1.0, 0.0, 2.0])
        with gt.GradientTape() as tape:
            tape.watch(x)
            y = gt.relu(x)
        check(tape.gradient(y, x), [0.0, 0.0, 1.0], device)


def test_abs_derivative_at_zero_is_zero(device):
    """abs'(0) = 0."""
    with gt.device(device):
        x = gt.constant([-2.0, 0.0, 3.0])
        with gt.GradientTape() as tape:
            tape.watch(x)
            y = gt.abs(x)
        check(tape.gradient(y, x), [-1.0, 0.0, 1.0], device)


def test_pow_derivative_wrt_base_is_p_x_to_p_minus_1(device):
    """d/dx x**p uses p * x**(p-1) (negative bases and x = 0 included)."""
    with gt.device(device):
        xv = np.array([-2.0, 0.0, 0.5, 3.0], dtype=np.float32)
        x = gt.constant(xv)
        with gt.GradientTape(persistent=True) as tape:
            tape.watch(x)
            cube = x ** 3
            linear = x ** 1
            square = gt.pow(x, gt.constant(2.0))
        check(tape.gradient(cube, x), 3 * xv**2, device)
        check(tape.gradient(linear, x), [1.0, 1.0, 1.0, 1.0], device)  # 1 * x**0 = 1, even at 0
        check(tape.gradient(square, x), 2 * xv, device)


def test_pow_derivative_wrt_exponent_is_zero_where_base_not_positive(device):
    """d/dp x**p = x**p log x, and 0 where x <= 0."""
    with gt.device(device):
        xv = np.array([-2.0, 0.0, 2.0, 3.0], dtype=np.float32)
        x, p = gt.constant(xv), gt.constant(2.0)
        with gt.GradientTape() as tape:
            tape.watch(p)
            y = x ** p
        expected = np.array([0.0, 0.0, 4 * np.log(2.0), 9 * np.log(3.0)])
        grad = tape.gradient(y, p)
        check(grad, expected.sum(), device)
        with gt.GradientTape() as tape:
            pv = gt.constant([2.0, 2.0, 2.0, 2.0])
            tape.watch(pv)
            y = x ** pv
        check(tape.gradient(y, pv), expected, device)


def test_custom_gradient_rule_is_used(device):
    """custom_gradient: ``f(*x)`` returns ``(y, grad_fn)``; grad_fn gives one gradient per input."""

    @gt.custom_gradient
    def scaled_product(a, b):
        def grad_fn(upstream):
            return upstream * 10.0, upstream * 20.0

        return a * b, grad_fn

    with gt.device(device):
        a, b = gt.constant([1.0, 2.0]), gt.constant([3.0, 4.0])
        with gt.GradientTape() as tape:
            tape.watch([a, b])
            y = scaled_product(a, b)
        check(y, [3.0, 8.0], device)
        ga, gb = tape.gradient(y, [a, b])
        check(ga, [10.0, 10.0], device)
        check(gb, [20.0, 20.0], device)


def test_custom_gradient_none_means_no_gradient(device):
    """custom_gradient: a ``None`` from grad_fn means no gradient for that input."""

    @gt.custom_gradient
    def first_only(a, b):
        def grad_fn(upstream):
            return upstream * b, None

        return a * b, grad_fn

    with gt.device(device):
        a, b = gt.constant(2.0), gt.constant(5.0)
        with gt.GradientTape(persistent=True) as tape:
            tape.watch([a, b])
            y = first_only(a, b)
        ga, gb = tape.gradient(y, [a, b])
        check(ga, 5.0, device)
        assert gb is None
        check(tape.gradient(y, b, unconnected_gradients="zero"), 0.0, device)


def test_custom_gradient_composes_with_nested_tapes(device):
    """custom_gradient composes with nested tapes: the ops of grad_fn are recorded (2nd order)."""

    @gt.custom_gradient
    def cube(x):
        def grad_fn(upstream):
            return upstream * 3.0 * x * x

        return x * x * x, grad_fn

    with gt.device(device):
        x = gt.constant(2.0)
        with gt.GradientTape() as outer:
            outer.watch(x)
            with gt.GradientTape() as inner:
                inner.watch(x)
                y = cube(x)
            dy = inner.gradient(y, x)
        check(y, 8.0, device)
        check(dy, 12.0, device)  # 3 x^2
        check(outer.gradient(dy, x), 12.0, device)  # 6 x


def test_custom_gradient_with_variable_input(device):
    """custom_gradient accepts a Variable as input; its read is watched automatically."""

    @gt.custom_gradient
    def double(x):
        def grad_fn(upstream):
            return upstream * 2.0

        return x * 2.0, grad_fn

    with gt.device(device):
        v = gt.Variable([1.0, -1.0])
        with gt.GradientTape() as tape:
            y = double(v)
        check(tape.gradient(y, v), [2.0, 2.0], device)


def test_stop_gradient_identity_forward_no_gradient(device):
    """``stop_gradient(x)``: identity forward, no gradient."""
    with gt.device(device):
        xv = np.array([1.0, -2.0], dtype=np.float32)
        x = gt.constant(xv)
        with gt.GradientTape(persistent=True) as tape:
            tape.watch(x)
            s = gt.stop_gradient(x)
            y = s * x
        check(s, xv, device)
        assert tape.gradient(s, x) is None
        check(tape.gradient(y, x), xv, device)  # the stopped factor is a constant


# == Optimizers =================================================================================


@pytest.mark.parametrize(
    "wrap",
    [list, tuple, iter, lambda pairs: (p for p in pairs), lambda pairs: [list(p) for p in pairs]],
    ids=["list", "tuple", "iterator", "generator", "list-pairs"],
)
def test_apply_gradients_accepts_any_iterable_of_pairs(device, wrap):
    """``apply_gradients`` accepts any iterable of ``(grad, variable)`` pairs."""
    with gt.device(device):
        v1, v2 = gt.Variable([1.0, 2.0]), gt.Variable(3.0)
        g1, g2 = gt.constant([0.5, -1.0]), gt.constant(2.0)
        opt = gt.optimizers.SGD(learning_rate=0.1)
        opt.apply_gradients(wrap(list(zip([g1, g2], [v1, v2]))))
        check(gt.identity(v1), [1.0 - 0.05, 2.0 + 0.1], device)
        check(gt.identity(v2), 3.0 - 0.2, device)


def test_apply_gradients_accepts_zip(device):
    """``apply_gradients`` accepts ``zip(grads, vars)`` straight from ``tape.gradient``."""
    with gt.device(device):
        v = gt.Variable([1.0, -2.0])
        with gt.GradientTape() as tape:
            loss = gt.reduce_sum(v * v)
        grads = tape.gradient(loss, [v])
        gt.optimizers.SGD(learning_rate=0.25).apply_gradients(zip(grads, [v]))
        check(gt.identity(v), [1.0 - 0.5, -2.0 + 1.0], device)  # v - 0.25 * 2 v


def test_apply_gradients_skips_none_with_warning_naming_variable(device):
    """Pairs whose gradient is None are skipped with a warning naming the variables."""
    with gt.device(device):
        frozen = gt.Variable(1.0, name="frozen_weight")
        live = gt.Variable(2.0, name="live_weight")
        opt = gt.optimizers.SGD(learning_rate=0.5)
        with pytest.warns(Warning, match="frozen_weight"):
            opt.apply_gradients([(None, frozen), (gt.constant(1.0), live)])
        check(gt.identity(frozen), 1.0, device)
        check(gt.identity(live), 1.5, device)


def test_apply_gradients_all_none_raises_value_error(device):
    """If every gradient is None, ``apply_gradients`` raises ValueError("No gradients provided
    for any variable")."""
    with gt.device(device):
        v1, v2 = gt.Variable(1.0), gt.Variable(2.0)
        opt = gt.optimizers.SGD(learning_rate=0.5)
        with pytest.raises(ValueError, match="No gradients provided for any variable"):
            opt.apply_gradients([(None, v1), (None, v2)])
        check(gt.identity(v1), 1.0, device)
        check(gt.identity(v2), 2.0, device)


def test_sgd_plain_update(device):
    """SGD: ``v -= lr * g``."""
    with gt.device(device):
        v = gt.Variable([1.0, 2.0])
        opt = gt.optimizers.SGD(learning_rate=0.1)
        grads = [np.array([0.5, -1.0]), np.array([2.0, 4.0])]
        expected = np.array([1.0, 2.0])
        for g in grads:
            opt.apply_gradients([(gt.constant(g.astype(np.float32)), v)])
            expected = expected - 0.1 * g
            check(gt.identity(v), expected, device, np.float32)


@pytest.mark.parametrize("nesterov", [False, True], ids=["momentum", "nesterov"])
def test_sgd_momentum_update(device, nesterov):
    """SGD with momentum: ``m = momentum * m - lr * g; v += m`` (Nesterov:
    ``v += momentum * m - lr * g``)."""
    with gt.device(device):
        v = gt.Variable(1.0)
        opt = gt.optimizers.SGD(learning_rate=0.1, momentum=0.9, nesterov=nesterov)
        opt.apply_gradients([(gt.constant(1.0), v)])
        # m1 = -0.1; plain: v1 = 0.9; Nesterov: v1 = 1 + 0.9 * -0.1 - 0.1 = 0.81
        check(gt.identity(v), 0.81 if nesterov else 0.9, device)
        opt.apply_gradients([(gt.constant(2.0), v)])
        # m2 = 0.9 * -0.1 - 0.2 = -0.29; plain: v2 = 0.61; Nesterov: v2 = 0.81 - 0.261 - 0.2
        check(gt.identity(v), 0.349 if nesterov else 0.61, device)


def test_adam_matches_keras_reference_over_three_steps(device):
    """Adam with Keras defaults (epsilon=1e-7, bias correction in the learning rate)."""
    target = np.array([1.0, -2.0, 0.5])
    start = np.array([0.3, 0.7, -1.2])
    lr, beta_1, beta_2, eps = 0.01, 0.9, 0.999, 1e-7
    var, m, vel = start.copy(), np.zeros(3), np.zeros(3)
    reference = []
    for step in range(1, 4):  # Keras' Adam.update_step, in NumPy float64
        g = 2 * (var - target)
        alpha = lr * np.sqrt(1 - beta_2**step) / (1 - beta_1**step)
        m = m + (g - m) * (1 - beta_1)
        vel = vel + (g * g - vel) * (1 - beta_2)
        var = var - m * alpha / (np.sqrt(vel) + eps)
        reference.append(var.copy())
    with gt.device(device):
        v = gt.Variable(start.astype(np.float32))
        t = gt.constant(target.astype(np.float32))
        opt = gt.optimizers.Adam(learning_rate=lr)
        for expected in reference:
            with gt.GradientTape() as tape:
                loss = gt.reduce_sum((v - t) ** 2)
            opt.apply_gradients(zip(tape.gradient(loss, [v]), [v]))
            check(gt.identity(v), expected, device, np.float32, rtol=1e-5, atol=1e-6)


def test_adam_default_epsilon_matters_for_tiny_gradients(device):
    """Adam's default epsilon is Keras' 1e-7 (not 1e-8): visible on a tiny gradient."""
    g = 1e-7
    # step 1: m = 0.1 g, v = 0.001 g^2, alpha = lr * sqrt(0.001) / 0.1
    alpha = 1.0 * math.sqrt(1 - 0.999) / (1 - 0.9)
    step = alpha * (0.1 * g) / (math.sqrt(0.001) * g + 1e-7)
    with gt.device(device):
        v = gt.Variable(np.array([0.0]))
        gt.optimizers.Adam(learning_rate=1.0).apply_gradients([(gt.constant(np.array([g])), v)])
        check(gt.identity(v), [-step], device, np.float64, rtol=1e-9)
