"""``softmax_cross_entropy_with_logits`` as one primitive: the first-order rule reuses the
``softmax * sum(labels) - labels`` its forward kept, higher orders compute it again with tensor
ops, and the jacobian's batched cotangents go through both routes."""

from __future__ import annotations

import numpy as np
import pytest

import gputape as gt
from gputape.ops import nn as nn_ops

xent = gt.nn.softmax_cross_entropy_with_logits


def _softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@pytest.fixture
def problem(rng):
    logits = rng.normal(size=(5, 4))
    labels = rng.uniform(0.0, 1.0, size=(5, 4))  # need not sum to 1
    return logits, labels


def _no_softmax(*args, **kwargs):
    raise AssertionError("the first-order rule computed softmax again")


def _spy_kept(monkeypatch):
    seen = []
    forward = nn_ops.SOFTMAX_XENT.forward

    def spy(xp, labels, logits, axis, kept=None):
        seen.append(kept)
        return forward(xp, labels, logits, axis, kept)

    monkeypatch.setattr(nn_ops.SOFTMAX_XENT, "forward", spy)
    monkeypatch.setattr(nn_ops.SOFTMAX_XENT, "host_forward", spy)
    return seen


def test_the_forward_keeps_the_gradient_only_while_a_tape_records(monkeypatch, problem):
    kept = _spy_kept(monkeypatch)
    logits, labels = (gt.constant(a) for a in problem)
    xent(labels, logits)
    with gt.GradientTape() as tape:
        tape.watch(logits)
        xent(labels, logits)
    assert kept[0] is None
    p = _softmax(problem[0])
    np.testing.assert_allclose(kept[1].value, p * problem[1].sum(-1, keepdims=True) - problem[1],
                               rtol=1e-12, atol=1e-15)


def test_the_first_order_rule_reuses_the_forward(monkeypatch, problem):
    logits, labels = (gt.constant(a) for a in problem)
    weights = np.arange(1.0, 6.0)
    with gt.GradientTape() as tape:
        tape.watch(logits)
        loss = gt.reduce_sum(xent(labels, logits) * weights)

    monkeypatch.setattr(nn_ops, "softmax", _no_softmax)
    grad = tape.gradient(loss, logits)
    lab = problem[1]
    expected = weights[:, None] * (_softmax(problem[0]) * lab.sum(-1, keepdims=True) - lab)
    np.testing.assert_allclose(grad.numpy(), expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("axis", [-1, 0])
def test_second_derivatives_match_the_closed_form(device, problem, axis):
    logits_host, labels_host = problem
    logits = gt.constant(logits_host, device=device)
    labels = gt.constant(labels_host, device=device)
    with gt.GradientTape() as outer:
        outer.watch([logits, labels])
        with gt.GradientTape() as inner:
            inner.watch(logits)
            loss = gt.reduce_sum(xent(labels, logits, axis=axis))
        grad = inner.gradient(loss, logits)
    hessian, mixed = outer.jacobian(grad, [logits, labels])
    # Along one slice: d2/dx2 = mass (diag(p) - p p^T); d2/(dx dlabels_j) = p - e_j.
    p = np.moveaxis(_softmax(logits_host, axis), axis, -1)
    mass = np.moveaxis(labels_host, axis, -1).sum(-1)
    rows, n = p.shape
    want_h = np.zeros((rows, n, rows, n))
    want_m = np.zeros((rows, n, rows, n))
    for r in range(rows):
        want_h[r, :, r, :] = mass[r] * (np.diag(p[r]) - np.outer(p[r], p[r]))
        want_m[r, :, r, :] = p[r][:, None] - np.eye(n)
    if axis == 0:  # the slices run along axis 0: move both index pairs back
        want_h = want_h.transpose(1, 0, 3, 2)
        want_m = want_m.transpose(1, 0, 3, 2)
    np.testing.assert_allclose(hessian.numpy(), want_h, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(mixed.numpy(), want_m, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("vectorize", [True, False])
def test_jacobian_of_the_losses(problem, vectorize):
    logits_host, labels_host = problem
    logits, labels = gt.constant(logits_host), gt.constant(labels_host)
    with gt.GradientTape(persistent=not vectorize) as tape:  # TF: pfor=False needs it
        tape.watch([logits, labels])
        losses = xent(labels, logits)
    j_logits, j_labels = tape.jacobian(losses, [logits, labels],
                                       experimental_use_pfor=vectorize)
    p = _softmax(logits_host)
    logp = np.log(p)
    rows = logits_host.shape[0]
    want_logits = np.zeros((rows,) + logits_host.shape)
    want_labels = np.zeros((rows,) + logits_host.shape)
    for r in range(rows):
        want_logits[r, r] = p[r] * labels_host[r].sum() - labels_host[r]
        want_labels[r, r] = -logp[r]
    np.testing.assert_allclose(j_logits.numpy(), want_logits, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(j_labels.numpy(), want_labels, rtol=1e-10, atol=1e-12)


def test_values_match_the_composition(device, rng):
    logits = rng.normal(size=(64, 10)).astype(np.float32) * 4
    labels = _softmax(rng.normal(size=(64, 10))).astype(np.float32)
    got = xent(gt.constant(labels, device=device), gt.constant(logits, device=device))
    x = logits.astype(np.float64)
    want = -(labels * (x - x.max(-1, keepdims=True)
                       - np.log(np.exp(x - x.max(-1, keepdims=True)).sum(-1, keepdims=True)))
             ).sum(-1)
    np.testing.assert_allclose(got.numpy(), want, rtol=2e-6, atol=1e-6)


def test_the_reuse_also_serves_a_walk_on_tensors(device, problem, monkeypatch):
    """With check_numerics on, the walk runs its rules on tensors (as on a GPU): the kept
    array meets a tensor cotangent."""
    monkeypatch.setattr(nn_ops, "softmax", _no_softmax)
    logits_host, labels_host = problem
    logits = gt.constant(logits_host, device=device)
    labels = gt.constant(labels_host, device=device)
    gt.debugging.enable_check_numerics()
    try:
        with gt.GradientTape() as tape:
            tape.watch(logits)
            loss = gt.reduce_sum(xent(labels, logits))
        grad = tape.gradient(loss, logits)
    finally:
        gt.debugging.disable_check_numerics()
    mass = labels_host.sum(-1, keepdims=True)
    np.testing.assert_allclose(grad.numpy(), _softmax(logits_host) * mass - labels_host,
                               rtol=1e-12, atol=1e-15)
