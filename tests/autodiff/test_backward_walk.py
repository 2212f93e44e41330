"""The walk's checks of what a gradient rule returns: a result that broadcasts against its
input is summed back; one that cannot be is a GradientRuleError naming the primitive and the
input, in array mode (no outer tape) and with tensors (an outer tape records the walk)."""

from __future__ import annotations

import numpy as np
import pytest

import gputape as gt
from gputape.core.dispatch import apply
from gputape.core.registry import REGISTRY, defvjp, primitive


@pytest.fixture(name="declare")
def declare_fixture():
    """Declare a throw-away primitive ``forward = x * 2`` with the given rule for ``x``."""
    names = []

    def declare(rule):
        name = f"test_rule_{len(names)}"
        names.append(name)
        return defvjp(primitive(name, lambda xp, x: x * 2, ("x",)), rule)

    yield declare
    for name in names:
        del REGISTRY[name]


def _gradient(prim, x, outer: bool):
    x = gt.constant(x)
    with gt.GradientTape() as tape:
        tape.watch(x)
        y = gt.reduce_sum(apply(prim, x))
    if not outer:
        return tape.gradient(y, x)
    with gt.GradientTape():  # a tape records the walk: the rules get tensors
        return tape.gradient(y, x)


@pytest.mark.parametrize("outer", [False, True], ids=["arrays", "tensors"])
def test_a_transposed_result_is_refused_not_reshaped(declare, outer):
    # (3, 2) for a (2, 3) input: a reshape would have "fitted" it, scrambling the values.
    prim = declare(lambda g, ans, x: gt.transpose(g * 2.0))
    with pytest.raises(gt.GradientRuleError,
                       match=r"test_rule_0: the gradient rule for input 'x' returned shape "
                             r"\(3, 2\), which cannot be summed to the input's shape \(2, 3\)"):
        _gradient(prim, np.ones((2, 3)), outer)


@pytest.mark.parametrize("outer", [False, True], ids=["arrays", "tensors"])
def test_a_result_of_another_length_is_refused(declare, outer):
    prim = declare(lambda g, ans, x: gt.ones((4,), dtype=g.dtype))
    with pytest.raises(gt.GradientRuleError, match=r"input 'x' returned shape \(4,\)"):
        _gradient(prim, np.ones(3), outer)


@pytest.mark.parametrize("outer", [False, True], ids=["arrays", "tensors"])
def test_broadcastable_results_are_summed_back(declare, outer):
    # One value per column, broadcast over the rows; and a 0-d constant.
    per_column = declare(lambda g, ans, x: gt.reduce_sum(g, axis=0, keepdims=True))
    got = _gradient(per_column, np.ones((2, 3)), outer)
    np.testing.assert_array_equal(got.numpy(), np.full((2, 3), 2.0, np.float32))
    constant = declare(lambda g, ans, x: gt.constant(5.0))
    np.testing.assert_array_equal(_gradient(constant, np.ones(3), outer).numpy(), [5.0] * 3)


def test_a_jacobian_row_that_lost_its_batch_dimension_is_refused(declare):
    # A rule that returns something shaped like its input from a batched cotangent, where
    # the batch does not broadcast: (3, 2) is neither the batch (4,) + (2,) nor broadcastable.
    prim = declare(lambda g, ans, x: gt.ones((3, 2), dtype=g.dtype))
    x = gt.constant(np.ones(2))
    with gt.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = gt.concat([apply(prim, x), apply(prim, x)], axis=0)
    with pytest.raises(gt.GradientRuleError, match=r"test_rule_0.*\(3, 2\)"):
        tape.jacobian(y, x)
