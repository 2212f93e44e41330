"""The backward walk's array mode (rules run on NumPy arrays when no tape records the walk) gives
the gradients that the tensor mode (taken while an outer tape records) gives, for every op."""

from __future__ import annotations

import numpy as np
import pytest
from op_specs import cases, inputs

import gputape as gt
from gputape.core.state import recording
from gputape.ops import elementwise

CASES = cases()
# Ops whose first-order rule reuses what the forward computed, where a recording tape makes the
# rule recompute it with tensor ops: the same formula, rounded in another order.
REUSES_FORWARD = {"softmax_cross_entropy_with_logits"}


def _gradients(fn, args, outer_tape: bool):
    def inner():
        with gt.GradientTape() as tape:
            tape.watch(args)
            y = fn(*args)
        return tape.gradient(y, args, unconnected_gradients="zero")

    if not outer_tape:
        return inner()
    with gt.GradientTape() as outer:  # records the walk: tensor mode
        outer.watch(args)
        return inner()


@pytest.mark.parametrize("name,index", CASES, ids=[f"{n}-{i}" for n, i in CASES])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_array_mode_matches_tensor_mode(name, index, dtype, rng):
    fn, args, _ = inputs(name, index, dtype, rng, "cpu")
    arrays = _gradients(fn, args, outer_tape=False)
    tensors = _gradients(fn, args, outer_tape=True)
    rtol = 1e-12 if dtype == np.float64 else 1e-6
    for a, t, x in zip(arrays, tensors, args):
        assert type(a) is gt.Tensor and a.dtype == x.dtype and a.shape == x.shape
        atol = rtol * np.abs(t.numpy()).max(initial=0) if name in REUSES_FORWARD else 0
        np.testing.assert_allclose(a.numpy(), t.numpy(), rtol=rtol, atol=atol)


def _spy_on_sin_rule(monkeypatch):
    seen = []
    rule = elementwise.SIN.vjps[0]

    def spy(g, ans, x):
        seen.append((recording.arrays, type(g).__name__))
        return rule(g, ans, x)

    monkeypatch.setattr(elementwise.SIN, "vjps", (spy,))
    return seen


def test_rules_get_arrays_only_when_no_tape_records_the_walk(monkeypatch):
    seen = _spy_on_sin_rule(monkeypatch)
    x = gt.constant([0.5, 1.0])
    with gt.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = gt.sin(x)
    tape.gradient(y, x)
    with gt.GradientTape() as outer:
        outer.watch(x)
        tape.gradient(y, x)
    with gt.debugging.check_numerics():
        tape.gradient(y, x)
    # (the seed is a FilledTensor; rules without a backend's joint rule get it as a plain one)
    assert seen == [(True, "ndarray"), (False, "Tensor"), (False, "Tensor")]
    assert recording.arrays is False


def test_large_cotangents_go_through_tensors(monkeypatch):
    seen = _spy_on_sin_rule(monkeypatch)
    x = gt.constant(np.linspace(0.0, 1.0, 1 << 17, dtype=np.float32))
    with gt.GradientTape() as tape:
        tape.watch(x)
        y = gt.sin(x)
    grad = tape.gradient(y, x)
    assert seen == [(False, "Tensor")]
    np.testing.assert_allclose(grad.numpy(), np.cos(x.numpy()), rtol=1e-6)


def test_custom_gradient_functions_get_tensors():
    received = []

    @gt.custom_gradient
    def double(x):
        def grad(upstream):
            received.append(type(upstream))
            return upstream * 2.0 + 0.0 * float(gt.reduce_sum(upstream))  # tensor methods work

        return x * 2.0, grad

    x = gt.constant([1.0, 2.0])
    with gt.GradientTape() as tape:
        tape.watch(x)
        y = gt.sin(double(x))
    grad = tape.gradient(y, x)
    assert received == [gt.Tensor]
    np.testing.assert_allclose(grad.numpy(), 2 * np.cos(2 * np.array([1.0, 2.0])), rtol=1e-6)


def test_zero_dimensional_float64_stays_float64():
    # NumPy turns 0-d results into scalars; they must keep their dtype, not become float32.
    x = gt.constant(np.float64(0.3))
    with gt.GradientTape() as tape:
        tape.watch(x)
        y = gt.cos(gt.sin(x) * 3.0) - x
    grad = tape.gradient(y, x)
    assert grad.dtype == np.float64
    want = -np.sin(np.sin(0.3) * 3.0) * 3.0 * np.cos(0.3) - 1.0
    assert abs(float(grad) - want) < 1e-15


def test_returned_gradients_are_not_shared_with_the_walk():
    x = gt.constant([1.0, 2.0, 3.0])
    with gt.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = x * x + x + x
    first = tape.gradient(y, x).numpy()
    second = tape.gradient(y, x)
    np.testing.assert_array_equal(second.numpy(), first)
    np.testing.assert_array_equal(first, 2 * np.array([1.0, 2.0, 3.0]) + 2)


def test_a_zero_dimensional_target_listed_twice_sums_into_an_array():
    x = gt.constant(2.0)
    with gt.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = x * x
    for target, want in (([x, x], 2.0), ([y, y], 8.0)):
        grad = tape.gradient(target, x)
        assert type(grad._data) is np.ndarray and grad.shape == ()
        assert float(grad) == want and str(grad)


# -- sums of the cotangents that reach one id --------------------------------------------


@pytest.mark.parametrize("count", [1, 2, 7, 8, 9, 100])
@pytest.mark.parametrize("shape", [(16,), (2,), (3, 4), (4, 1), (1,), ()], ids=str)
def test_kept_cotangents_add_up_in_order(count, shape, rng):
    from gputape.autodiff.backward import _total

    first = rng.standard_normal(shape).astype(np.float32)
    more = [rng.standard_normal(shape).astype(np.float32) * 10.0 ** (k % 8) for k in range(count)]
    copies = [first.copy()] + [m.copy() for m in more]
    want = first.copy()
    for m in more:
        want = np.asarray(want + m)
    got = _total(first, list(more))
    assert type(got) is np.ndarray and got.dtype == np.float32 and got.shape == shape
    np.testing.assert_array_equal(got, want)  # the same order: the same bits
    for array, copy in zip([first] + more, copies):
        np.testing.assert_array_equal(array, copy)  # the inputs were not written


@pytest.mark.parametrize("size", [16, 1 << 17])
def test_a_source_reached_many_times_gets_the_tensor_modes_bits(size, rng):
    x = gt.constant(rng.uniform(0.5, 1.5, size).astype(np.float32))

    def chain(x):
        y = x
        for _ in range(20):
            y = gt.sin(y) * x + x
        return gt.reduce_sum(y)

    arrays = _gradients(chain, [x], outer_tape=False)[0].numpy()
    tensors = _gradients(chain, [x], outer_tape=True)[0].numpy()
    np.testing.assert_array_equal(arrays, tensors)


def test_the_tape_knows_when_rules_need_tensors(monkeypatch):
    # Results that stay pending on the host (a fused route for NumPy) need tensor rules.
    from gputape.autodiff import backward
    from gputape.cuda import table

    x = gt.constant([0.5, 1.0])
    for routed in (False, True):
        if routed:
            table.route("numpy")
        try:
            with gt.GradientTape(persistent=True) as tape:
                tape.watch(x)
                y = gt.reduce_sum(gt.sin(x) * x)
            assert tape._host_rules is (not routed)
            assert tape._host_rules is backward._all_host_rules(tape._entries)
        finally:
            if routed:
                table.unroute("numpy")
        seen = _spy_on_sin_rule(monkeypatch)
        grad = tape.gradient(y, x)
        assert seen == [(True, "ndarray")] if not routed else [(False, "Tensor")]
        want = np.cos([0.5, 1.0]) * [0.5, 1.0] + np.sin([0.5, 1.0])
        np.testing.assert_allclose(grad.numpy(), want, rtol=1e-6)
        with tape:  # reset() only while recording
            tape.reset()
        assert tape._host_rules is True
