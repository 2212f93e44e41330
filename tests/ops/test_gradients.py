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


def test_check_gradients_catches_a_wrong_rule():
    """The checker itself must fail on a wrong gradient (else the tests above prove nothing)."""

    @gt.custom_gradient
    def wrong_sin(x):
        return gt.sin(x), lambda g: g * gt.sin(x)

    with pytest.raises(AssertionError, match="order 1"):
        gt.testing.check_gradients(wrong_sin, np.array([0.3, 1.1]))
