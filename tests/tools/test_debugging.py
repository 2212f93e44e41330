"""``gt.debugging.check_numerics``: the first op that makes a NaN/Inf is named, with its line."""

from __future__ import annotations

import numpy as np
import pytest

import gputape as gt

THIS_FILE = __file__


@pytest.fixture(autouse=True)
def _quiet_numpy():
    with np.errstate(all="ignore"):
        yield
    assert not gt.debugging.checking(), "a test left check_numerics on"


def test_forward_op_is_named_with_the_users_line(device):
    x = gt.constant([1.0, 0.0, 4.0])
    with pytest.raises(FloatingPointError) as info, gt.debugging.check_numerics():
        gt.log(x)  # the line the error names
    message = str(info.value)
    assert "'log' made -inf (1 of 3 values) from finite inputs" in message
    assert f"{THIS_FILE}:" in message and "gt.log(x)  # the line the error names" in message
    assert "float32 (3,)" in message and "hint" in message


def test_overflow_is_named(device):
    x = gt.constant([1.0, 100.0])
    with pytest.raises(FloatingPointError, match=r"'exp' made inf \(1 of 2 values\)"):
        with gt.debugging.check_numerics():
            gt.exp(x)


def test_pending_results_are_checked_where_they_are_made(device):
    # On the fused route the product would stay pending inside a tape; checking computes it.
    x, y = gt.constant([3e38, 1.0]), gt.constant([10.0, 1.0])
    with gt.GradientTape() as tape, gt.debugging.check_numerics():
        tape.watch(x)
        with pytest.raises(FloatingPointError, match="'multiply' made inf"):
            gt.reduce_sum(x * y)


def test_nan_from_the_data_is_reported_at_its_first_reader(device):
    data = gt.constant([1.0, np.nan])
    with pytest.raises(FloatingPointError) as info, gt.debugging.check_numerics():
        data * 2.0
    message = str(info.value)
    assert "input 'x' of 'multiply' already holds nan (1 of 2 values)" in message
    assert "came in with the data" in message


def test_backward_rule_is_named_with_the_forward_line(device):
    x = gt.constant([1.0, 0.0])
    with gt.debugging.check_numerics():
        with gt.GradientTape() as tape:
            tape.watch(x)
            y = gt.reduce_sum(gt.sqrt(x))  # recorded here
        with pytest.raises(FloatingPointError) as info:
            tape.gradient(y, x)
    message = str(info.value)
    assert "while computing the gradient of 'sqrt'" in message
    assert "gt.reduce_sum(gt.sqrt(x))  # recorded here" in message
    assert "sqrt's gradient is infinite at 0" in message


def test_gradient_made_without_ops_is_checked_too():
    @gt.custom_gradient
    def bad(x):
        return x * 1.0, lambda g: gt.constant(np.full(x.shape, np.inf, np.float32))

    x = gt.constant([1.0, 2.0])
    with gt.debugging.check_numerics():
        with gt.GradientTape() as tape:
            tape.watch(x)
            y = bad(x)  # custom op
        with pytest.raises(FloatingPointError) as info:
            tape.gradient(y, x)
    message = str(info.value)
    assert "the gradient of 'custom_gradient' w.r.t. 'x' holds inf (2 of 2 values)" in message
    assert "y = bad(x)  # custom op" in message


def test_after_a_backward_error_forward_errors_no_longer_name_it():
    x = gt.constant([0.0])
    with gt.debugging.check_numerics():
        with gt.GradientTape() as tape:
            tape.watch(x)
            y = gt.sqrt(x)
        with pytest.raises(FloatingPointError, match="gradient of 'sqrt'"):
            tape.gradient(y, x)
        with pytest.raises(FloatingPointError) as info:
            gt.log(x)
    assert "gradient" not in str(info.value)


def test_checked_results_equal_unchecked_ones(device, rng):
    x = gt.constant(rng.uniform(0.5, 2.0, (3, 4)))

    def run():
        with gt.GradientTape() as outer:
            outer.watch(x)
            with gt.GradientTape() as inner:
                inner.watch(x)
                y = gt.reduce_sum(gt.log(x) * gt.sin(x) + x ** 3)
            g = inner.gradient(y, x)
        return y.numpy(), g.numpy(), outer.gradient(g, x).numpy()

    plain = run()
    with gt.debugging.check_numerics():
        checked = run()
    for a, b in zip(plain, checked):
        np.testing.assert_array_equal(a, b)


def test_nothing_is_checked_outside_the_block():
    assert gt.log(gt.constant([0.0])).numpy()[0] == -np.inf


def test_global_switch_and_nesting():
    gt.debugging.enable_check_numerics()
    try:
        with gt.debugging.check_numerics():
            pass
        assert gt.debugging.checking()  # the switch outlives the inner block
        with pytest.raises(FloatingPointError):
            gt.log(gt.constant([0.0]))
    finally:
        gt.debugging.disable_check_numerics()
    assert not gt.debugging.checking()
    gt.debugging.disable_check_numerics()  # twice is harmless
    assert not gt.debugging.checking()


def test_check_numerics_of_one_tensor():
    x = gt.constant([1.0, 2.0])
    assert gt.debugging.check_numerics(x, "weights") is x
    with pytest.raises(FloatingPointError, match=r"weights: tensor of shape \(2,\).*nan"):
        gt.debugging.check_numerics(gt.constant([1.0, np.nan]), "weights")
    assert gt.debugging.check_numerics(gt.constant([1, 2])).dtype == np.int32
