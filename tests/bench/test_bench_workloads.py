"""Every benchmark workload, run once at its smallest size on the CPU, computes what its
description says: results against a NumPy computation of the same inputs (closed-form
gradients), inputs never all zeros. A peer's workloads compute the same values."""

from __future__ import annotations

import numpy as np
import pytest

from gputape.bench import peers
from gputape.bench.workloads import SIZES, WORKLOADS


def _f64(inputs: dict) -> dict:
    return {name: np.asarray(value, np.float64) for name, value in inputs.items()}


def _tiny_chain(x):
    y, dy = x, np.ones_like(x)  # forward-mode derivative alongside: dy/dx, elementwise
    for _ in range(50):
        y, dy = np.sin(y) * x + x, np.cos(y) * dy * x + np.sin(y) + 1
    return dy


def _softmax_loss(images, labels, w1, b1, w2, b2):
    """Loss of the MLP and its gradients, by hand."""
    pre = images @ w1 + b1
    hidden = np.maximum(pre, 0)
    logits = hidden @ w2 + b2
    shifted = logits - logits.max(-1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    loss = -(labels * log_p).sum(-1).mean()
    d_logits = (np.exp(log_p) * labels.sum(-1, keepdims=True) - labels) / len(images)
    d_hidden = (d_logits @ w2.T) * (pre > 0)
    return loss, [images.T @ d_hidden, d_hidden.sum(0), hidden.T @ d_logits, d_logits.sum(0)]


def _mlp_losses(images, labels, w1, b1, w2, b2):
    """The loss before the step and after one SGD step (learning rate 0.01)."""
    params = [w1, b1, w2, b2]
    first, grads = _softmax_loss(images, labels, *params)
    second, _ = _softmax_loss(images, labels, *(p - 0.01 * g for p, g in zip(params, grads)))
    return first, second


def _hessian(x, a):
    u = a @ x
    return -a.T @ np.diag(np.sin(u) * x) @ a + a.T * np.cos(u) + np.cos(u)[:, None] * a


def _jacobian(x, w):
    t = np.tanh(w @ x)
    return (1 - t**2)[:, None] * w * x[:, None] + np.diag(t)


REFERENCES = {  # the workload's result from its inputs, in float64
    "tiny_chain": lambda i: _tiny_chain(i["x"]),
    "elementwise_grad": lambda i: [i["y"] + 3 * i["x"] ** 2 * np.sin(i["y"]),
                                   i["x"] + i["x"] ** 3 * np.cos(i["y"])],
    "sum_xy": lambda i: [i["y"], i["x"]],
    "sum_pow": lambda i: 3 * i["x"] ** 2,
    "mlp_step": lambda i: _mlp_losses(i["images"], i["labels"], i["w1"], i["b1"], i["w2"],
                                      i["b2"]),
    "cnn_step": lambda i: _cnn_loss(i),
    "third_derivative": lambda i: -4 * np.sin(2 * i["x"]),
    "hessian_64": lambda i: _hessian(i["x"], i["a"]),
    "jacobian_256": lambda i: _jacobian(i["x"], i["w"]),
}


def _cnn_loss(i):
    """cnn_step's first loss, in float64 NumPy (windows by NumPy's sliding_window_view)."""
    from numpy.lib.stride_tricks import sliding_window_view

    def conv_same(x, k, bias):
        padded = np.pad(x, [(0, 0), (1, 1), (1, 1), (0, 0)])
        windows = sliding_window_view(padded, (3, 3), axis=(1, 2))  # N, H, W, C, 3, 3
        return np.einsum("nhwcij,ijco->nhwo", windows, k) + bias

    def pool(x):
        n, h, w, c = x.shape
        return x.reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))

    h = pool(np.maximum(conv_same(i["images"], i["c1"], i["b1"]), 0))
    h = pool(np.maximum(conv_same(h, i["c2"], i["b2"]), 0))
    logits = h.reshape(64, 784) @ i["w"] + i["b"]
    shifted = logits - logits.max(-1, keepdims=True)
    log_soft = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    return float(-(i["labels"] * log_soft).sum(-1).mean())


def _smallest(workload) -> int:
    return min(SIZES["small"]) if workload.sized else workload.fixed_size


def _close(got, want, rtol=2e-4):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * np.abs(want).max())


def test_every_workload_has_a_reference():
    assert sorted(REFERENCES) == sorted(w.name for w in WORKLOADS)


@pytest.mark.parametrize("workload", WORKLOADS, ids=[w.name for w in WORKLOADS])
def test_workload_computes_its_description(workload):
    run = workload.build(_smallest(workload), "cpu", np.random.default_rng(0))
    want = REFERENCES[workload.name](_f64(run.inputs))
    if workload.name == "cnn_step":  # a step: its loss, and the next one lower
        first, second = float(run()), float(run())
        _close(first, want, rtol=1e-5)
        assert second < first
        return
    if workload.name == "mlp_step":  # a step: the loss, then the loss the update leads to
        first, second = float(run()), float(run())
        _close(first, want[0], rtol=1e-5)
        _close(first - second, want[0] - want[1], rtol=1e-2)
        assert want[0] - want[1] > 1e-4 * want[0]  # the step moves the loss measurably
        return
    got = run()
    if isinstance(want, list):
        assert len(got) == len(want)
        for g, w in zip(got, want):
            _close(g, w)
    else:
        _close(got, want)


@pytest.mark.parametrize("workload", WORKLOADS, ids=[w.name for w in WORKLOADS])
def test_workload_inputs_are_never_all_zero(workload):
    run = workload.build(_smallest(workload), "cpu", np.random.default_rng(0))
    assert run.inputs
    for name, value in run.inputs.items():
        _not_zero(value, f"{workload.name}: input {name}")


def test_peer_inputs_are_never_all_zero():
    rng = np.random.default_rng(0)
    images, labels, params = peers._mlp_data(rng)
    for value in [*peers._inputs(1000, rng), images, labels, *params]:
        _not_zero(value, value.shape)


def _not_zero(value, what):
    """Not all zeros, nor any row of them (one-hot labels have one 1 a row)."""
    rows = value.reshape(len(value), -1) if value.ndim > 1 else value.reshape(1, -1)
    assert np.all(np.any(rows != 0, axis=1)), what


def _host(value):
    if isinstance(value, (tuple, list)):
        return [_host(v) for v in value]
    return np.asarray(value, np.float64)


@pytest.mark.parametrize("workload", WORKLOADS, ids=[w.name for w in WORKLOADS])
def test_autograd_peer_computes_what_gputape_computes(workload):
    pytest.importorskip("autograd", reason="HIPS autograd is an optional peer (--peers)")
    builders, _ = peers.PEERS["autograd"][1]("cpu")
    size = _smallest(workload)
    theirs = _host(builders[workload.name](size, np.random.default_rng(0))())
    ours = _host(workload.build(size, "cpu", np.random.default_rng(0))())
    if isinstance(ours, list):
        for a, b in zip(theirs, ours, strict=True):
            _close(a, b, rtol=1e-4)
    else:
        _close(theirs, ours, rtol=1e-4)
