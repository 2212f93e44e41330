"""Memory release by tapes: a non-persistent tape lets go of what it saved as soon as
``gradient()`` returns, so a training loop's device memory stays flat.

The CPU tests follow saved intermediates with weak references. The GPU tests carry the ``gpu``
marker (skipped, with the reason, when CuPy sees no CUDA device) and read CuPy's memory pool.
"""

from __future__ import annotations

import contextlib
import gc
import weakref

import numpy as np
import pytest
from helpers import NO_GPU

import gputape as gt
from gputape.core.device import cupy_or_none


def requires_gpu(test):
    return pytest.mark.gpu(pytest.mark.skipif(cupy_or_none() is None, reason=NO_GPU)(test))


@contextlib.contextmanager
def no_cyclic_gc():
    """Only reference counting frees objects inside: memory must come back without a GC pass."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def make_mlp(device: str, batch: int = 64, hidden: int = 32):
    rng = np.random.default_rng(0)
    with gt.device(device):
        x = gt.constant(rng.standard_normal((batch, 16)), dtype="float32")
        y = gt.constant(rng.standard_normal((batch, 4)), dtype="float32")
        params = [
            gt.Variable(rng.standard_normal((16, hidden)) * 0.1, dtype="float32", name="w1"),
            gt.Variable(np.zeros(hidden), dtype="float32", name="b1"),
            gt.Variable(rng.standard_normal((hidden, 4)) * 0.1, dtype="float32", name="w2"),
            gt.Variable(np.zeros(4), dtype="float32", name="b2"),
        ]
    return x, y, params


def forward(x, y, params):
    w1, b1, w2, b2 = params
    h = gt.relu(gt.matmul(x, w1) + b1)
    out = gt.tanh(gt.matmul(h, w2) + b2)
    return h, gt.reduce_mean((out - y) ** 2)


def train_step(x, y, params, optimizer) -> None:
    with gt.GradientTape() as tape:
        _, loss = forward(x, y, params)
    grads = tape.gradient(loss, params)
    optimizer.apply_gradients(zip(grads, params))


# -- CPU: what the tape keeps ----------------------------------------------------------------


def test_non_persistent_tape_drops_saved_tensors_after_gradient():
    x, y, params = make_mlp("cpu")
    with no_cyclic_gc():
        with gt.GradientTape() as tape:
            h, loss = forward(x, y, params)
        saved, saved_array = weakref.ref(h), weakref.ref(h._data)
        del h
        assert saved() is not None, "the tape should keep what the relu's gradient needs"
        grads = tape.gradient(loss, params)
        assert all(g is not None for g in grads)
        assert saved() is None and saved_array() is None, (
            "gradient() returned but the tape (or something it made) still holds an "
            "intermediate tensor; on a GPU this keeps device memory alive")


def test_persistent_tape_keeps_saved_tensors_until_deleted():
    x, y, params = make_mlp("cpu")
    with no_cyclic_gc():
        with gt.GradientTape(persistent=True) as tape:
            h, loss = forward(x, y, params)
        saved = weakref.ref(h)
        del h
        tape.gradient(loss, params)
        tape.gradient(loss, params[0])
        assert saved() is not None
        del tape
        assert saved() is None


def test_training_loop_does_not_grow_the_heap_on_cpu():
    x, y, params = make_mlp("cpu")
    optimizer = gt.optimizers.Adam(learning_rate=1e-3)
    train_step(x, y, params, optimizer)
    gc.collect()
    before = len(gc.get_objects())
    for _ in range(50):
        train_step(x, y, params, optimizer)
    gc.collect()
    assert len(gc.get_objects()) <= before + 5


# -- GPU: CuPy's memory pool -----------------------------------------------------------------


def pool_bytes(nbytes: int) -> int:
    """Bytes the CuPy pool books for an allocation (rounded up to its 512-byte unit)."""
    return -(-nbytes // 512) * 512


@requires_gpu
def test_gpu_tape_releases_device_arrays_right_after_gradient():
    cupy = cupy_or_none()
    pool = cupy.get_default_memory_pool()
    # Large activations next to small parameters, so a leaked intermediate cannot hide.
    x, y, params = make_mlp("gpu:0", batch=2048, hidden=256)
    optimizer = gt.optimizers.Adam(learning_rate=1e-3)
    train_step(x, y, params, optimizer)  # warm-up: optimizer slots, library workspaces
    gc.collect()
    baseline = pool.used_bytes()

    with no_cyclic_gc():
        with gt.GradientTape() as tape:
            h, loss = forward(x, y, params)
        activation_bytes = h.size * h.dtype.itemsize
        del h
        assert pool.used_bytes() - baseline >= activation_bytes  # the tape holds them now
        grads = tape.gradient(loss, params)
        del loss
        grad_bytes = sum(pool_bytes(g.size * g.dtype.itemsize) for g in grads)
        held = pool.used_bytes() - baseline
        assert held <= grad_bytes < activation_bytes, (
            f"{held} bytes above the baseline after gradient(), but the gradients take only "
            f"{grad_bytes}: the tape still holds saved device arrays")
        optimizer.apply_gradients(zip(grads, params))
        del grads, tape
        assert pool.used_bytes() == baseline


@requires_gpu
def test_gpu_memory_stays_flat_over_1000_steps():
    cupy = cupy_or_none()
    pool = cupy.get_default_memory_pool()
    x, y, params = make_mlp("gpu:0")
    optimizer = gt.optimizers.Adam(learning_rate=1e-3)
    train_step(x, y, params, optimizer)  # warm-up: optimizer slots, library workspaces
    gc.collect()
    baseline = pool.used_bytes()
    train_step(x, y, params, optimizer)
    gc.collect()
    after_one = pool.used_bytes()
    assert after_one == baseline
    readings = []
    for step in range(1, 1001):
        train_step(x, y, params, optimizer)
        if step % 100 == 0:
            readings.append(pool.used_bytes())
    gc.collect()
    readings.append(pool.used_bytes())
    assert readings == [after_one] * len(readings), (
        f"used bytes drift from {after_one}: {readings}")
    assert np.isfinite(float(forward(x, y, params)[1]))
