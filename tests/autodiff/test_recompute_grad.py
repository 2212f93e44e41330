"""gt.recompute_grad (tf.recompute_grad): the same gradients, to second order and for the
Variables read inside, while the tape keeps only each block's inputs and output."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import gputape as gt


def _block(w):
    def block(x):
        for _ in range(8):
            x = gt.tanh(gt.matmul(x, w))
        return x
    return block


def _deep(x, w, blocks):
    for block in blocks:
        x = block(x)
    return gt.reduce_sum(x * x)


def test_gradients_equal_to_second_order(device):
    """(A Variable, since only the block's inputs and the Variables it reads get gradients, as
    with tf.recompute_grad: a tensor the block captures from outside gets None.)"""
    rng = np.random.default_rng(0)
    x = gt.constant(rng.standard_normal((3, 4)))
    w = gt.Variable(rng.standard_normal((4, 4)) * 0.5)
    plain, kept = [_block(w)] * 3, [gt.recompute_grad(_block(w))] * 3
    found = []
    for blocks in (plain, kept):
        with gt.GradientTape() as outer:
            outer.watch([x, w])
            with gt.GradientTape() as inner:
                inner.watch([x, w])
                loss = _deep(x, w, blocks)
            gx, gw = inner.gradient(loss, [x, w])
            second = gt.reduce_sum(gx * gx) + gt.reduce_sum(gw)
        found.append([loss, gx, gw, *outer.gradient(second, [x, w])])
    for a, b in zip(*found):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-10, atol=1e-12)


def test_variables_read_inside_get_their_gradient(device):
    w = gt.Variable(np.array([[0.5, -0.2], [0.1, 0.3]]))
    x = gt.constant([[1.0, 2.0]], dtype=gt.float64)
    block = gt.recompute_grad(lambda x: gt.tanh(gt.matmul(x, w)))
    grads = []
    for f in (lambda x: gt.tanh(gt.matmul(x, w)), block):
        with gt.GradientTape() as tape:
            tape.watch(x)
            y = gt.reduce_sum(f(x))
        grads.append(tape.gradient(y, [x, w]))
    for a, b in zip(*grads):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-12)


def test_the_tape_keeps_only_the_blocks_inputs_and_outputs(device):
    """A 48-layer tanh chain on 256 x 256 float64 (512 kB a layer), in 6 blocks of 8: the
    plain tape holds every layer's result (25-50 MB at the end of the forward pass, by route);
    with recompute_grad it holds the 6 block outputs, and the backward pass one block's
    recomputation at a time. Peak memory: tracemalloc on the CPU; on a GPU, the size CuPy's
    pool grows to (it keeps freed blocks, so its size after the run is its peak)."""
    rng = np.random.default_rng(0)
    x = gt.constant(rng.standard_normal((256, 256)))
    w = gt.constant(rng.standard_normal((256, 256)) / 16)

    def run(blocks):
        with gt.GradientTape() as tape:
            tape.watch(x)
            loss = _deep(x, w, blocks)
        return tape.gradient(loss, x).numpy()

    def peak(blocks):
        if device.startswith("gpu"):
            import cupy

            pool = cupy.get_default_memory_pool()
            pool.free_all_blocks()
            return run(blocks), pool.total_bytes()
        tracemalloc.start()
        try:
            return run(blocks), tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    plain_grad, plain_peak = peak([_block(w)] * 6)
    kept_grad, kept_peak = peak([gt.recompute_grad(_block(w))] * 6)
    np.testing.assert_allclose(kept_grad, plain_grad, rtol=1e-10, atol=1e-12)
    assert plain_peak > 16 << 20, plain_peak
    assert kept_peak < plain_peak / 2, (kept_peak, plain_peak)


def test_not_a_function_is_refused():
    with pytest.raises(TypeError, match="recompute_grad: expects a function"):
        gt.recompute_grad(3)
