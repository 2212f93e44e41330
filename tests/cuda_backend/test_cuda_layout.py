"""The launcher's collapse of N-d problems to (K1, R, K2), checked by replaying each plan with
NumPy strided views: the same addresses the kernels read, no GPU needed."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from numpy.lib.stride_tricks import as_strided

from gputape.cuda import launch, layout
from gputape.ops.reduction import _sum_to_forward


def _replay(operands, shape, batch):
    """What the kernels compute for ``sum_to(prod(operands), shape)``, or None (no plan)."""
    full = np.broadcast_shapes(*(op.shape for op in operands))
    kept = launch.kept_shape(full, shape, batch)
    strides = [layout.operand_strides(op.shape, op.strides, op.itemsize, full)
               for op in operands]
    plan, partial = launch._plan_with_finish(full, kept, strides)
    if plan is None:
        return None
    product = np.ones((plan.K1, plan.R, plan.K2))
    for op, (a, b, c) in zip(operands, plan.strides):
        size = op.itemsize
        product = product * as_strided(op, (plan.K1, plan.R, plan.K2), (a * size, b * size,
                                                                         c * size))
    out = product.sum(axis=1).reshape(partial)
    axes = tuple(i for i, (a, b) in enumerate(zip(partial, kept)) if a != b)
    return out.sum(axis=axes, keepdims=True).reshape(full[:batch] + shape)


def _reference(operands, shape, batch):
    full = np.broadcast_shapes(*(op.shape for op in operands))
    product = np.ones(full)
    for op in operands:
        product = product * op
    return _sum_to_forward(np, product, shape, batch)


def _targets(full):
    """Every sum_to target of ``full``: drop leading dims, set any others to 1."""
    for drop in range(len(full) + 1):
        rest = full[drop:]
        for ones in itertools.product([False, True], repeat=len(rest)):
            yield tuple(1 if one else n for one, n in zip(ones, rest))


CONTIGUOUS_FULLS = [(), (7,), (3, 5), (2, 3, 4), (4, 1, 6), (2, 3, 2, 5)]


@pytest.mark.parametrize("full", CONTIGUOUS_FULLS, ids=str)
def test_every_sum_to_of_a_contiguous_array_replays_exactly(full, rng):
    x = rng.standard_normal(full)
    planned = 0
    for shape in _targets(full):
        got = _replay([x], shape, 0)
        if got is None:
            continue
        planned += 1
        np.testing.assert_allclose(got, _reference([x], shape, 0), rtol=1e-12, atol=1e-12)
    assert planned > 0


@pytest.mark.parametrize("full", CONTIGUOUS_FULLS, ids=str)
def test_leading_trailing_and_full_reductions_always_get_a_plan(full):
    x = np.zeros(full)
    for k in range(len(full) + 1):
        leading = tuple(1 for _ in full[:k]) + full[k:]
        trailing = full[:k] + tuple(1 for _ in full[k:])
        for shape in (leading, trailing, full[k:]):
            assert _replay([x], shape, 0) is not None, (full, shape)


VIEWS = {
    "contiguous": lambda a: a,
    "columns": lambda a: a[:, ::2],
    "transposed": lambda a: a.reshape(12, 6).T,
    "reversed": lambda a: a[::-1],
    "row-broadcast": lambda a: np.broadcast_to(a[:1], a.shape),
}


@pytest.mark.parametrize("view", list(VIEWS))
@pytest.mark.parametrize("other", [(1,), (6,), (6, 1), (1, 6), (6, 6)], ids=str)
def test_strided_and_broadcast_operands_replay_exactly(view, other):
    rng = np.random.default_rng(2)
    x = VIEWS[view](rng.standard_normal((6, 12)))[:, :6]
    y = rng.standard_normal(other)
    for shape in [(6, 6), (1, 6), (6, 1), (6,), (1, 1), ()]:
        got = _replay([x, y], shape, 0)
        if got is not None:
            np.testing.assert_allclose(got, _reference([x, y], shape, 0), rtol=1e-12)


def test_batch_dimensions_are_kept():
    rng = np.random.default_rng(3)
    g = rng.standard_normal((4, 3, 5))
    y = rng.standard_normal((5,))
    for shape in [(5,), (1, 5), (3, 1), (1, 1), ()]:
        got = _replay([g, y], shape, 1)
        assert got is not None
        np.testing.assert_allclose(got, _reference([g, y], shape, 1), rtol=1e-12)


def test_an_interleaved_reduction_is_finished_generically():
    """kept, reduced, kept, reduced: the kernel keeps the last reduced dimension."""
    x = np.random.default_rng(4).standard_normal((2, 3, 4, 5))
    np.testing.assert_allclose(_replay([x], (2, 1, 4, 1), 0), _reference([x], (2, 1, 4, 1), 0),
                               rtol=1e-12)


def test_a_full_sum_with_a_row_broadcast_operand_gets_a_plan():
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((300, 7)), rng.standard_normal(7)
    np.testing.assert_allclose(_replay([x, y], (), 0), _reference([x, y], (), 0), rtol=1e-12)


def test_a_transposed_operand_without_reduction_replays_exactly():
    rng = np.random.default_rng(6)
    x, y = rng.standard_normal((4, 6)).T, rng.standard_normal((6, 4))
    np.testing.assert_allclose(_replay([x, y], (6, 4), 0), x * y, rtol=1e-12)


def test_three_unmergeable_kept_groups_have_no_plan():
    """The generic path runs these."""
    x = np.zeros((2, 3, 4)).transpose(1, 0, 2)[:, :, ::2]
    assert _replay([x, np.zeros((3, 2, 2))], (3, 2, 2), 0) is None


@pytest.mark.parametrize("case", ["reduced-first", "reduced-last"])
def test_a_reduction_beside_two_unmergeable_kept_groups_gets_a_plan(case):
    """A row-broadcast operand keeps two kept dimensions apart; the reduced one may come
    before or after them (operands are read through explicit strides)."""
    rng = np.random.default_rng(7)
    if case == "reduced-first":
        operands, shape = [rng.standard_normal((5, 6, 7)), rng.standard_normal(7)], (6, 7)
    else:
        operands, shape = [rng.standard_normal((6, 7, 5)), rng.standard_normal((7, 1))], (6, 7, 1)
    full = np.broadcast_shapes(*(op.shape for op in operands))
    strides = [layout.operand_strides(op.shape, op.strides, op.itemsize, full)
               for op in operands]
    assert layout.plan(full, launch.kept_shape(full, shape, 0), strides) is not None
    np.testing.assert_allclose(_replay(operands, shape, 0), _reference(operands, shape, 0),
                               rtol=1e-12)
