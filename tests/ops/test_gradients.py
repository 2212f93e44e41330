"""The one gradient check: every registered differentiable primitive x every device x dtype x
shape group, against finite differences (float64), to second order for smooth ops, and float32
against float64."""

from __future__ import annotations

import numpy as np
import pytest
from op_specs import SPECS, cases, inputs

import gputape as gt
from gputape.core.registry import differentiable_primitives

CASES = cases()
SMOOTH = [(name, i) for name, i in CASES if SPECS[name].smooth]


def _ids(pairs):
    return [f"{name}-{i}" for name, i in pairs]


def test_every_differentiable_primitive_has_a_spec():
    registered = {p.name for p in differentiable_primitives()}
    missing = registered - set(SPECS)
    assert not missing, f"primitives without a gradient spec in tests/op_specs.py: {missing}"
    unknown = set(SPECS) - registered
    assert not unknown, f"specs for primitives that are not registered: {unknown}"


@pytest.mark.parametrize("name,index", CASES, ids=_ids(CASES))
def test_first_order_matches_finite_differences(name, index, device, rng):
    fn, args, _ = inputs(name, index, np.float64, rng, device)
    gt.testing.check_gradients(fn, *args, order=1, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name,index", SMOOTH, ids=_ids(SMOOTH))
def test_second_order_matches_finite_differences(name, index, device, rng):
    fn, args, _ = inputs(name, index, np.float64, rng, device)
    gt.testing.check_gradients(fn, *args, order=2, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name,index", CASES, ids=_ids(CASES))
def test_float32_gradients_match_float64(name, index, device, rng):
    fn, args64, arrays = inputs(name, index, np.float64, rng, device)
    args32 = [gt.constant(a.astype(np.float32), device=device) for a in arrays]
    grads = {}
    for key, args in (("64", args64), ("32", args32)):
        with gt.GradientTape() as tape:
            tape.watch(args)
            y = fn(*args)
        grads[key] = tape.gradient(y, args, unconnected_gradients="zero")
    for g32, g64 in zip(grads["32"], grads["64"]):
        assert g32.dtype == np.float32
        np.testing.assert_allclose(g32.numpy(), g64.numpy(), rtol=2e-3, atol=2e-4)


def _central_difference(fn, arrays, tangents, device, eps=1e-6):
    """(f(x + eps t) - f(x - eps t)) / (2 eps), in float64, f's outputs flattened."""
    def at(sign):
        shifted = [gt.constant(a + sign * eps * t, device=device) for a, t in zip(arrays, tangents)]
        return [np.asarray(o.numpy(), dtype=np.float64) for o in gt.nest.flatten(fn(*shifted))]

    return [(p - m) / (2 * eps) for p, m in zip(at(1), at(-1))]


@pytest.mark.parametrize("name,index", CASES, ids=_ids(CASES))
def test_forward_mode_matches_finite_differences(name, index, device, rng):
    """gt.jvp of every primitive (forward mode, from the pullback's linearity) against a
    central difference along a random tangent."""
    fn, args, arrays = inputs(name, index, np.float64, rng, device)
    tangents = [rng.standard_normal(a.shape) for a in arrays]
    _, found = gt.jvp(fn, args, [gt.constant(t, device=device) for t in tangents])
    expected = _central_difference(fn, arrays, tangents, device)
    for got, want in zip(gt.nest.flatten(found), expected):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-6)


def test_the_forward_check_catches_a_wrong_rule(rng):
    """A wrong gradient rule makes a wrong forward rule too, and the check above sees it."""
    @gt.custom_gradient
    def wrong_sin(x):
        return gt.sin(x), lambda g: g * gt.sin(x)

    arrays = [np.array([0.3, 1.1])]
    _, found = gt.jvp(wrong_sin, [gt.constant(arrays[0])], [gt.constant([1.0, 1.0],
                                                                         dtype=gt.float64)])
    expected = _central_difference(gt.sin, arrays, [np.ones(2)], "cpu")
    with pytest.raises(AssertionError):
        np.testing.assert_allclose(found.numpy(), expected[0], rtol=1e-5, atol=1e-6)


def test_check_gradients_catches_a_wrong_rule():
    """The checker itself must fail on a wrong gradient (else the tests above prove nothing)."""

    @gt.custom_gradient
    def wrong_sin(x):
        return gt.sin(x), lambda g: g * gt.sin(x)

    with pytest.raises(AssertionError, match="order 1"):
        gt.testing.check_gradients(wrong_sin, np.array([0.3, 1.1]))
