"""TF's rearranging, scattering and segment ops: values against NumPy's equivalents, their
gradients (made of indexing, gather and scatter-add) against finite differences, TF's edge
rules, and the errors."""

from __future__ import annotations

import numpy as np
import pytest

import gputape as gt

X = np.arange(12.0).reshape(3, 4)


@pytest.mark.parametrize("fn, expected", [
    (lambda x: gt.pad(x, [[1, 0], [0, 2]]), np.pad(X, [[1, 0], [0, 2]])),
    (lambda x: gt.pad(x, [[1, 1], [2, 1]], "REFLECT"), np.pad(X, [[1, 1], [2, 1]], "reflect")),
    (lambda x: gt.pad(x, [[2, 0], [1, 3]], "symmetric"),
     np.pad(X, [[2, 0], [1, 3]], "symmetric")),
    (lambda x: gt.pad(x, [[0, 0], [1, 1]], constant_values=7),
     np.pad(X, [[0, 0], [1, 1]], constant_values=7)),
    (lambda x: gt.reverse(x, [0, 1]), X[::-1, ::-1]),
    (lambda x: gt.roll(x, [1, -1], [0, 1]), np.roll(X, [1, -1], [0, 1])),
    (lambda x: gt.repeat(x, 2, axis=1), np.repeat(X, 2, axis=1)),
    (lambda x: gt.repeat(x, [1, 0, 2], axis=0), np.repeat(X, [1, 0, 2], axis=0)),
    (lambda x: gt.slice(x, [1, 1], [2, -1]), X[1:3, 1:]),
    (lambda x: gt.strided_slice(x, [0, 3], [3, 0], [2, -1]), X[0:3:2, 3:0:-1]),
    (lambda x: gt.boolean_mask(x, [True, False, True]), X[[True, False, True]]),
    (lambda x: gt.gather_nd(x, [[0, 1], [2, 3]]), X[[0, 2], [1, 3]]),
    (lambda x: gt.unsorted_segment_sum(x, [1, 0, 1], 3),
     np.stack([X[1], X[0] + X[2], np.zeros(4)])),
    (lambda x: gt.unsorted_segment_mean(x, [1, 0, 1], 3),
     np.stack([X[1], (X[0] + X[2]) / 2, np.zeros(4)])),
    (lambda x: gt.segment_sum(x, [0, 0, 1]), np.stack([X[0] + X[1], X[2]])),
])
def test_values_and_gradients(device, fn, expected):
    np.testing.assert_allclose(fn(gt.constant(X)).numpy(), expected)
    gt.testing.check_gradients(fn, X + 0.5, order=2, rtol=1e-6, atol=1e-8)


def test_scatter_ops_add_repeated_indices():
    assert gt.scatter_nd([[1], [3], [1]], [1.0, 2.0, 5.0], [4]).numpy().tolist() == [0, 6, 0, 2]
    rows = gt.scatter_nd([[0], [2]], [[1.0, 2.0], [3.0, 4.0]], [3, 2])
    assert rows.numpy().tolist() == [[1, 2], [0, 0], [3, 4]]
    base = gt.constant([1.0, 1.0, 1.0])
    assert gt.tensor_scatter_nd_add(base, [[2]], [4.0]).numpy().tolist() == [1, 1, 5]
    updated = gt.tensor_scatter_nd_update(base, [[0], [2]], [7.0, 8.0])
    assert updated.numpy().tolist() == [7, 1, 8]


def test_scatter_gradients():
    base, updates = gt.constant([1.0, 2.0, 3.0]), gt.constant([5.0, 6.0])
    with gt.GradientTape() as tape:
        tape.watch([base, updates])
        y = gt.reduce_sum(gt.tensor_scatter_nd_update(base, [[0], [2]], updates)
                          * gt.constant([1.0, 2.0, 3.0]))
    g_base, g_updates = tape.gradient(y, [base, updates])
    assert g_base.numpy().tolist() == [0, 2, 0] and g_updates.numpy().tolist() == [1, 3]


def test_segment_max_as_tf():
    """Empty segments hold the dtype's lowest value; tied maxima share the gradient."""
    data = gt.constant([1.0, 5.0, 5.0, 2.0])
    with gt.GradientTape() as tape:
        tape.watch(data)
        peaks = gt.unsorted_segment_max(data, [0, 0, 0, 1], 3)
        total = gt.reduce_sum(peaks[:2])
    assert peaks.numpy().tolist()[:2] == [5.0, 2.0]
    assert peaks.numpy()[2] == np.finfo(np.float32).min
    assert tape.gradient(total, data).numpy().tolist() == [0.0, 0.5, 0.5, 1.0]


def test_unstack_and_meshgrid():
    parts = gt.unstack(gt.constant(X), axis=1)
    assert len(parts) == 4 and parts[1].numpy().tolist() == X[:, 1].tolist()
    for indexing in ("xy", "ij"):
        found = gt.meshgrid([1.0, 2.0, 3.0], [4.0, 5.0], indexing=indexing)
        for got, want in zip(found, np.meshgrid([1.0, 2.0, 3.0], [4.0, 5.0],
                                                indexing=indexing)):
            np.testing.assert_array_equal(got.numpy(), want)


@pytest.mark.parametrize("call, error, words", [
    (lambda: gt.pad(gt.ones(3), [[1, 1], [0, 0]]), ValueError, ["pad", "1 pairs"]),
    (lambda: gt.pad(gt.ones(3), [[3, 0]], "REFLECT"), ValueError, ["REFLECT", "at most 2"]),
    (lambda: gt.gather_nd(gt.ones((2, 2)), [[0, 5]]), IndexError, ["gather_nd", "hint"]),
    (lambda: gt.scatter_nd([[0]], [1.0, 2.0], [3]), ValueError, ["updates", "expected"]),
    (lambda: gt.segment_sum([1.0, 2.0], [1, 0]), ValueError, ["sorted", "hint"]),
    (lambda: gt.unsorted_segment_sum([1.0], [3], 2), IndexError, ["0..1"]),
    (lambda: gt.boolean_mask(gt.ones(3), [True, False]), ValueError, ["mask", "(2,)"]),
    (lambda: gt.unstack(gt.ones((2, 3)), num=3), ValueError, ["num=3"]),
])
def test_bad_arguments_are_refused(call, error, words):
    with pytest.raises(error) as info:
        call()
    for word in words:
        assert word in str(info.value), str(info.value)
