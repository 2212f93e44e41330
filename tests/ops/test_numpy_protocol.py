"""NumPy functions on tensors run gputape's ops: a Tensor comes back, on the tensor's device,
recorded on the tape; NumPy's own meaning of each call is kept; anything without a gputape
counterpart is refused with an error naming it."""

from __future__ import annotations

import numpy as np
import pytest

import gputape as gt
from gputape.ops.numpy_protocol import FUNCTIONS, UFUNCS

X = [[1.0, -2.0, 3.0], [0.5, 4.0, -1.0]]


def test_ufuncs_and_functions_return_recorded_tensors(device):
    x = gt.constant(X)
    with gt.GradientTape() as tape:
        tape.watch(x)
        y = np.sum(np.square(x) * np.float32(0.5), axis=1)
        z = np.mean(np.exp(x))
    for r in (y, z):
        assert isinstance(r, gt.Tensor) and r.device.name == x.device.name
    grads = tape.gradient([y, z], x).numpy()
    np.testing.assert_allclose(grads, np.array(X) + np.exp(X) / 6, rtol=1e-6)


@pytest.mark.parametrize("call, expected", [
    (lambda t: np.sum(t, axis=0), np.sum(X, axis=0)),
    (lambda t: np.prod(t, axis=1, keepdims=True), np.prod(X, axis=1, keepdims=True)),
    (lambda t: np.max(t), np.max(X)),
    (lambda t: np.var(t, axis=1), np.var(X, axis=1)),
    (lambda t: np.std(t), np.std(X)),
    (lambda t: np.argmax(t), np.argmax(X)),  # NumPy's axis=None flattens (TF's means 0)
    (lambda t: np.argmin(t, axis=1), np.argmin(X, axis=1)),
    (lambda t: np.cumsum(t), np.cumsum(X)),
    (lambda t: np.sort(t, axis=0), np.sort(X, axis=0)),
    (lambda t: np.argsort(t), np.argsort(X)),
    (lambda t: np.transpose(t), np.transpose(X)),
    (lambda t: np.reshape(t, (3, 2)), np.reshape(X, (3, 2))),
    (lambda t: np.concatenate([t, t], axis=1), np.concatenate([X, X], axis=1)),
    (lambda t: np.stack([t, t]), np.stack([X, X])),
    (lambda t: np.where(t > 0, t, 0.0), np.where(np.array(X) > 0, X, 0.0)),
    (lambda t: np.clip(t, -1.0, 2.0), np.clip(X, -1.0, 2.0)),
    (lambda t: np.add.reduce(t, axis=1), np.add.reduce(X, axis=1)),
    (lambda t: np.maximum(t, 0.75), np.maximum(X, 0.75)),
    (lambda t: np.arctan2(t, 2.0), np.arctan2(X, 2.0)),
    (lambda t: np.floor_divide(t, 2.0), np.floor_divide(X, 2.0)),
    (lambda t: np.isfinite(t), np.isfinite(X)),
    (lambda t: np.ones((3, 2), np.float32) @ t, np.ones((3, 2)) @ np.array(X)),
    (lambda t: np.dot(t, np.ones(3, np.float32)), np.dot(X, np.ones(3))),
])
def test_numpy_semantics_are_kept(device, call, expected):
    found = call(gt.constant(X))
    assert isinstance(found, gt.Tensor)
    np.testing.assert_allclose(found.numpy(), expected, rtol=1e-6)


@pytest.mark.parametrize("call, words", [
    (lambda t: np.fft.fft(t), ["np.fft", "no gputape counterpart", ".numpy()"]),
    (lambda t: np.sin(t, out=np.empty((2, 3), np.float32)), ["np.sin", "'out'", "hint"]),
    (lambda t: np.var(t, ddof=1), ["np.var", "ddof=1", "n / (n - ddof)"]),
    (lambda t: np.sum(t, where=np.ones((2, 3), bool)), ["np.sum", "'where'", "hint"]),
    (lambda t: np.add.accumulate(t), ["np.add.accumulate", "no gputape counterpart"]),
    (lambda t: np.linalg.det(t), ["no gputape counterpart", "hint"]),
])
def test_what_has_no_counterpart_is_refused_by_name(call, words):
    with pytest.raises(TypeError) as info:
        call(gt.constant(X))
    assert isinstance(info.value, gt.GputapeError)
    for word in words:
        assert word in str(info.value), str(info.value)


def test_np_asarray_still_copies_out():
    assert type(np.asarray(gt.constant(X))) is np.ndarray


def test_every_mapped_function_is_a_gputape_callable():
    for table in (UFUNCS, FUNCTIONS):
        assert all(callable(op) for op in table.values())
