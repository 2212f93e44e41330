"""``tape.gradient(..., explain=True)``: one warning per unconnected source, with the reason."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import gputape as gt


def _reasons(tape, target, sources, **kwargs) -> "tuple[object, list[str]]":
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        grads = tape.gradient(target, sources, explain=True, **kwargs)
    messages = [str(w.message) for w in caught
                if issubclass(w.category, gt.UnconnectedGradientWarning)]
    return grads, messages


def _one_reason(tape, target, source) -> str:
    grad, messages = _reasons(tape, target, source)
    assert grad is None
    assert len(messages) == 1, messages
    return messages[0]


def test_connected_sources_get_no_warning(device):
    x = gt.constant([1.0, 2.0])
    with gt.GradientTape() as tape:
        tape.watch(x)
        y = gt.reduce_sum(gt.sin(x) * x)
    grad, messages = _reasons(tape, y, x)
    assert messages == []
    x_host = np.array([1.0, 2.0], np.float32)
    np.testing.assert_allclose(grad.numpy(), np.cos(x_host) * x_host + np.sin(x_host),
                               rtol=1e-6)


def test_explain_changes_no_gradient(device):
    x, z = gt.constant([1.0, 2.0]), gt.constant(3.0)
    with gt.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = x * x + z
    plain = tape.gradient(y, [x, z])
    explained, messages = _reasons(tape, y, [x, z])
    assert plain[1] is None and explained[1] is None
    np.testing.assert_array_equal(plain[0].numpy(), explained[0].numpy())
    assert len(messages) == 1 and messages[0].startswith("gradient: source 1 (float32 ())")


def test_without_explain_nothing_is_said():
    x = gt.constant(1.0)
    with gt.GradientTape() as tape:
        y = x * 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert tape.gradient(y, x) is None


def test_never_watched(device):
    x = gt.constant([1.0, 2.0])
    with gt.GradientTape() as tape:
        y = x * x
    reason = _one_reason(tape, y, x)
    assert "never watched" in reason and "tape.watch(x)" in reason and "hint" in reason


def test_integer_source():
    i = gt.constant([1, 2])
    with gt.GradientTape() as tape:
        with pytest.warns(UserWarning, match="floating"):
            tape.watch(i)
        y = i * 2
    reason = _one_reason(tape, y, i)
    assert "int32" in reason and "floating-point" in reason and "gt.cast" in reason


def test_bool_source():
    b = gt.constant([True, False])
    with gt.GradientTape() as tape:
        y = gt.cast(b, gt.float32) * 2.0
    assert "bool" in _one_reason(tape, y, b)


def test_target_computed_before_the_block():
    x = gt.constant(2.0)
    y = x * 3
    with gt.GradientTape() as tape:
        tape.watch(x)
        _ = x + 1
    reason = _one_reason(tape, y, x)
    assert "before this tape's `with` block started" in reason


def test_target_computed_after_the_block():
    x = gt.constant(2.0)
    with gt.GradientTape() as tape:
        tape.watch(x)
    reason = _one_reason(tape, x * 3, x)
    assert "after this tape's `with` block ended" in reason


def test_unwatched_variable_read_after_the_block_says_where():
    w = gt.Variable(2.0, name="w")
    with gt.GradientTape() as tape:
        pass
    reason = _one_reason(tape, w * 3, w)
    assert reason.startswith("gradient: Variable 'w' (float32 ())")
    assert "after this tape's `with` block ended" in reason


def test_variable_never_read_inside_the_block():
    w, u = gt.Variable(2.0, name="w"), gt.Variable(1.0, name="u")
    with gt.GradientTape() as tape:
        y = u * 3
    reason = _one_reason(tape, y, w)
    assert "no op read this Variable" in reason


def test_recorded_by_a_different_tape():
    x = gt.constant(2.0)
    with gt.GradientTape() as first:
        first.watch(x)
        y = x * 4
    with gt.GradientTape() as second:
        second.watch(x)
        _ = x + 1
    assert "different GradientTape" in _one_reason(second, y, x)
    assert float(first.gradient(y, x)) == 4.0


def test_inside_stop_recording():
    x = gt.constant(2.0)
    with gt.GradientTape() as tape:
        tape.watch(x)
        with tape.stop_recording():
            y = x * 5
    assert "stop_recording" in _one_reason(tape, y, x)


def test_watched_too_late():
    x = gt.constant(2.0)
    with gt.GradientTape() as tape:
        y = x * 5
        tape.watch(x)
    assert "watched only after" in _one_reason(tape, y, x)


@pytest.mark.parametrize("how, make", [
    ("round", lambda x: gt.round(x) * 3.0),
    ("cast -> int32", lambda x: gt.cast(gt.cast(x, gt.int32), gt.float32) * 3.0),
    ("greater -> bool", lambda x: gt.cast(x > 1.0, gt.float32) + 1.0),
])
def test_path_only_through_non_differentiable_ops(device, how, make):
    x = gt.constant([0.5, 2.5])
    with gt.GradientTape() as tape:
        tape.watch(x)
        y = make(x)
    reason = _one_reason(tape, y, x)
    assert f"'{how}'" in reason and "without a gradient" in reason


@pytest.mark.parametrize("how, leave", [
    (".numpy()", lambda t: t.numpy()),
    ("float()", lambda t: float(gt.reduce_sum(t))),
    ("np.asarray()", lambda t: np.asarray(t)),
])
def test_value_went_through_numpy(how, leave):
    x = gt.constant([1.0, 2.0])
    with gt.GradientTape() as tape:
        tape.watch(x)
        y = gt.constant(leave(x * 2.0)) * 3.0
    reason = _one_reason(tape, y, x)
    assert f"left gputape through {how}" in reason


def test_value_went_through_numpy_names_the_op():
    x = gt.constant([1.0, 2.0])
    with gt.GradientTape() as tape:
        tape.watch(x)
        y = gt.constant(gt.sin(x).numpy())
    assert "the result of 'sin'" in _one_reason(tape, y, x)


def test_target_does_not_depend_on_the_source():
    x, z = gt.constant(1.0), gt.constant(2.0)
    with gt.GradientTape() as tape:
        tape.watch([x, z])
        _ = x * 2
        y = z * 3
    reason = _one_reason(tape, y, x)
    assert "does not depend on it" in reason and "unconnected_gradients" in reason


def test_variable_with_trainable_false():
    v = gt.Variable(2.0, trainable=False, name="frozen")
    with gt.GradientTape() as tape:
        y = v * 2
    reason = _one_reason(tape, y, v)
    assert "Variable 'frozen'" in reason and "trainable=False" in reason


def test_tape_that_does_not_watch_accessed_variables():
    w = gt.Variable(2.0, name="w")
    with gt.GradientTape(watch_accessed_variables=False) as tape:
        y = w * 2
    assert "watch_accessed_variables=False" in _one_reason(tape, y, w)


def test_zero_mode_is_explained_too():
    x = gt.constant([1.0, 2.0])
    with gt.GradientTape() as tape:
        y = x * 2
    grad, messages = _reasons(tape, y, x, unconnected_gradients="zero")
    np.testing.assert_array_equal(grad.numpy(), [0.0, 0.0])
    assert len(messages) == 1 and "never watched" in messages[0]


def test_warning_points_at_the_callers_line():
    x = gt.constant(1.0)
    with gt.GradientTape() as tape:
        y = x * 2
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tape.gradient(y, x, explain=True)
    assert caught[0].filename == __file__
