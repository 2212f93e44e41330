"""Broadcast views of host arrays: the same values, shape and errors as np.broadcast_to, read-only,
and never a view that would read the wrong memory."""

from __future__ import annotations

import gc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gputape as gt
from gputape.host.views import broadcast_view

LAYOUTS = {
    "contiguous": lambda a: a,
    "fortran": lambda a: np.asfortranarray(a) if a.ndim else a,
    "every-other": lambda a: np.repeat(a, 2, axis=-1)[..., ::2] if a.ndim else a,
    "reversed": lambda a: a[..., ::-1] if a.ndim else a,
    "offset-view": lambda a: np.concatenate([a.reshape(-1), a.reshape(-1)])[a.size:].reshape(
        a.shape),
    "read-only": lambda a: _read_only(a),
}


def _read_only(a):
    a = a.copy()
    a.flags.writeable = False
    return a


@st.composite
def _broadcasts(draw):
    """A source shape and a target shape it broadcasts to (dimensions of 1 and new leading ones)."""
    target = tuple(draw(st.lists(st.integers(0, 4), min_size=0, max_size=4)))
    kept = draw(st.integers(0, len(target)))
    source = tuple(1 if draw(st.booleans()) else n for n in target[len(target) - kept:])
    return source, target


@settings(max_examples=300, deadline=None)
@given(shapes=_broadcasts(), layout=st.sampled_from(sorted(LAYOUTS)),
       dtype=st.sampled_from([np.float16, np.float32, np.float64, np.int64, np.complex64,
                              np.bool_]))
def test_same_view_as_numpy(shapes, layout, dtype):
    source, target = shapes
    rng = np.random.default_rng(abs(hash((source, target, layout))) % 2**32)
    a = LAYOUTS[layout](np.asarray(rng.normal(size=source) + 1).astype(dtype))
    got = broadcast_view(a, target)
    want = np.broadcast_to(a, target)
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)
    assert not got.flags.writeable
    assert np.shares_memory(got, a) or a.size == 0 or got.size == 0


def test_values_follow_the_source_memory_and_keep_it_alive():
    a = np.arange(6.0).reshape(2, 3)[1:]  # a view at an offset into its base
    view = broadcast_view(a, (4, 1, 3))
    del a
    gc.collect()
    np.testing.assert_array_equal(view, np.broadcast_to([[3.0, 4.0, 5.0]], (4, 1, 3)))


@pytest.mark.parametrize("source, target", [((3,), (4,)), ((2, 3), (3,)), ((2,), (2, 3))])
def test_shapes_that_do_not_broadcast_raise_numpys_error(source, target):
    with pytest.raises(ValueError) as ours:
        broadcast_view(np.ones(source), target)
    with pytest.raises(ValueError) as numpys:
        np.broadcast_to(np.ones(source), target)
    assert str(ours.value) == str(numpys.value)


def test_object_arrays_fall_back_to_numpy():
    a = np.array([None, "x"], dtype=object)
    view = broadcast_view(a, (3, 2))
    assert view.tolist() == [[None, "x"]] * 3 and not view.flags.writeable


def test_a_scalar_loss_seed_stays_one_across_gradients():
    # The seed of a scalar host target is one shared read-only array; nothing may write into it.
    x = gt.constant(np.linspace(0.5, 1.5, 8, dtype=np.float32))
    for _ in range(3):
        with gt.GradientTape() as tape:
            tape.watch(x)
            loss = gt.reduce_sum(x * x)
        grad = tape.gradient(loss, x)
        np.testing.assert_allclose(grad.numpy(), 2 * x.numpy(), rtol=1e-6)
        with gt.GradientTape() as tape:
            tape.watch(x)
            loss = gt.reduce_sum(x)
        np.testing.assert_array_equal(tape.gradient(loss, loss).numpy(), 1.0)
