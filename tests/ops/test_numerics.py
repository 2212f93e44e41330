"""Numerical stability of the ops whose naive formulas overflow: softmax, log_softmax,
logsumexp, softplus, sigmoid and softmax cross entropy, with their first and second derivatives,
at logits as large as ``±1e4``.

Each value is compared with a float64 reference written here from a stable formula (shift by
the row maximum, ``np.logaddexp``) on the very numbers the tensor holds, and every forward and
backward pass runs with NumPy's overflow, divide and invalid warnings raised as errors.
Underflow to zero (``exp(-2e4)``) is the right answer, so it stays allowed.
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
import pytest
from helpers import host

import gputape as gt

DTYPES = [pytest.param(np.float32, id="float32"), pytest.param(np.float64, id="float64")]
# A few units in the last place of values of order 1 (absolute) or of any size (relative).
TOLERANCE = {np.float32: {"rtol": 2e-6, "atol": 2e-6}, np.float64: {"rtol": 1e-13, "atol": 1e-13}}

BIG = 1e4
MATRIX = [
    [-BIG, 0.0, BIG, 2.0],
    [-BIG, -BIG, -BIG, -BIG],
    [BIG, BIG, -3.0, BIG],
    [0.5, -2.0, 1.0, 3.0],
    [BIG - 0.5, 20.0, -5e3, BIG],
]
# (values, axis): rows reduced along ``axis``.
ROWS = {
    "spread": ([-BIG, 0.0, BIG], -1),
    "equal-large": ([BIG, BIG], -1),
    "equal-small": ([-BIG, -BIG], -1),
    "wide": ([BIG, BIG - 1.0, 3.0, -BIG, 0.5], -1),
    "moderate": ([0.3, -1.7, 2.5, 0.0], -1),
    "matrix-last": (MATRIX, -1),
    "matrix-first": (MATRIX, 0),
}
ROW_IDS = list(ROWS)
# Rows with some logits masked to -inf, as attention masks do (a finite entry left in each).
MASKED = {
    "masked-row": ([-np.inf, 0.0, BIG, -np.inf], -1),
    "masked-matrix": ([[-np.inf, 1.0, -BIG], [2.0, -np.inf, -np.inf]], -1),
}
POINTS = [-BIG, -100.0, -30.0, -2.5, -1.0, -1e-3, 0.0, 1e-3, 1.0, 2.5, 30.0, 100.0, BIG]


@contextlib.contextmanager
def strict():
    """Raise on any warning, and on NumPy overflow, division by zero or invalid operations."""
    with warnings.catch_warnings(), np.errstate(over="raise", divide="raise", invalid="raise",
                                                under="ignore"):
        warnings.simplefilter("error")
        yield


def held(values, dtype) -> np.ndarray:
    """The float64 copy of exactly what a ``dtype`` tensor of ``values`` holds."""
    return np.asarray(values, dtype=dtype).astype(np.float64)


def assert_close(actual, expected, dtype) -> None:
    actual = host(actual)
    assert actual.dtype == dtype
    finite = np.isfinite(expected)
    assert np.isfinite(actual[finite]).all(), f"non-finite values: {actual}"
    np.testing.assert_allclose(actual.astype(np.float64), expected, **TOLERANCE[dtype])


# -- float64 references ---------------------------------------------------------------------


def ref_softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def ref_log_norm(x, axis):
    """``(peak, rest)`` with ``logsumexp(x) = peak + rest``: the maximum, then logaddexp of the
    values shifted by it (near 0, so ``rest`` keeps full precision however large ``peak`` is)."""
    peak = x.max(axis=axis, keepdims=True)
    return peak, np.logaddexp.reduce(x - peak, axis=axis, keepdims=True)


def ref_logsumexp(x, axis, keepdims=False):
    peak, rest = ref_log_norm(x, axis)
    out = peak + rest
    return out if keepdims else np.squeeze(out, axis=axis)


def ref_log_softmax(x, axis):
    peak, rest = ref_log_norm(x, axis)
    return (x - peak) - rest


def ref_sigmoid(x):
    # 1 / (1 + e^-x) = e^(-log(1 + e^-x)), with the log taken by logaddexp.
    return np.exp(-np.logaddexp(0.0, -x))


def ref_softmax_hvp(p, w, v, axis):
    """d/dx of sum(v * d/dx sum(w * softmax(x))), with p = softmax(x)."""
    def dot(a, b):
        return (a * b).sum(axis=axis, keepdims=True)

    a = dot(w, p)
    return p * ((v - dot(v, p)) * (w - a) - dot(v * p, w - a))


def _weights(rng, shape, dtype):
    return rng.uniform(-1.0, 1.0, size=shape).astype(dtype)


def _axes_of(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    return tuple(a % ndim for a in (axis if isinstance(axis, tuple) else (axis,)))


# -- forward values --------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", ROW_IDS + list(MASKED))
def test_softmax_and_log_softmax_values(device, dtype, case):
    values, axis = {**ROWS, **MASKED}[case]
    x = gt.constant(values, dtype=dtype)
    ref = held(values, dtype)
    with strict():
        p = gt.softmax(x, axis=axis)
        logp = gt.nn.log_softmax(x, axis=axis)
    assert_close(p, ref_softmax(ref, axis), dtype)
    assert_close(logp, ref_log_softmax(ref, axis), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("fn", [gt.logsumexp, gt.reduce_logsumexp],
                         ids=["logsumexp", "reduce_logsumexp"])
@pytest.mark.parametrize("case", ROW_IDS + list(MASKED) + ["matrix-all", "matrix-both"])
def test_logsumexp_values(device, dtype, fn, keepdims, case):
    values, axis = {**ROWS, **MASKED, "matrix-all": (MATRIX, None),
                    "matrix-both": (MATRIX, (0, 1))}[case]
    x = gt.constant(values, dtype=dtype)
    with strict():
        out = fn(x, axis=axis, keepdims=keepdims)
    assert_close(out, ref_logsumexp(held(values, dtype), axis, keepdims), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_and_softplus_values(device, dtype):
    x = gt.constant(POINTS, dtype=dtype)
    ref = held(POINTS, dtype)
    with strict():
        s = gt.sigmoid(x)
        sp = gt.nn.softplus(x)
    assert_close(s, ref_sigmoid(ref), dtype)
    assert_close(sp, np.logaddexp(0.0, ref), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", ROW_IDS)
def test_cross_entropy_values(device, dtype, case, rng):
    values, axis = ROWS[case]
    ref = held(values, dtype)
    labels = rng.dirichlet(np.ones(ref.shape[axis]), size=ref.size // ref.shape[axis])
    labels = np.moveaxis(labels.reshape(np.moveaxis(ref, axis, -1).shape), -1, axis)
    labels = labels.astype(dtype)
    with strict():
        loss = gt.nn.softmax_cross_entropy_with_logits(gt.constant(labels), gt.constant(ref,
                                                       dtype=dtype), axis=axis)
    expected = -(labels.astype(np.float64) * ref_log_softmax(ref, axis)).sum(axis=axis)
    assert_close(loss, expected, dtype)


# -- first derivatives -----------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", ROW_IDS + list(MASKED))
def test_softmax_gradients(device, dtype, case, rng):
    values, axis = {**ROWS, **MASKED}[case]
    ref = held(values, dtype)
    w_host = _weights(rng, ref.shape, dtype)
    x, w = gt.constant(values, dtype=dtype), gt.constant(w_host)
    with strict():
        with gt.GradientTape(persistent=True) as tape:
            tape.watch(x)
            through_softmax = gt.reduce_sum(w * gt.softmax(x, axis=axis))
            through_log = gt.reduce_sum(w * gt.where(gt.equal(x, -np.inf), 0.0,
                                                     gt.nn.log_softmax(x, axis=axis)))
        d_softmax = tape.gradient(through_softmax, x)
        d_log = tape.gradient(through_log, x)
    p, w64 = ref_softmax(ref, axis), w_host.astype(np.float64)
    assert_close(d_softmax, p * (w64 - (w64 * p).sum(axis=axis, keepdims=True)), dtype)
    # Masked logits do not reach the loss through log_softmax, only through the others' norm.
    w_live = np.where(np.isneginf(ref), 0.0, w64)
    assert_close(d_log, w_live - p * w_live.sum(axis=axis, keepdims=True), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("case", ROW_IDS + list(MASKED) + ["matrix-all", "matrix-both"])
def test_logsumexp_gradient_is_softmax(device, dtype, keepdims, case, rng):
    values, axis = {**ROWS, **MASKED, "matrix-all": (MATRIX, None),
                    "matrix-both": (MATRIX, (0, 1))}[case]
    ref = held(values, dtype)
    axes = _axes_of(axis, ref.ndim)
    out_shape = ref_logsumexp(ref, axis, keepdims).shape
    w_host = _weights(rng, out_shape, dtype)
    x, w = gt.constant(values, dtype=dtype), gt.constant(w_host)
    with strict():
        with gt.GradientTape() as tape:
            tape.watch(x)
            y = gt.reduce_sum(w * gt.reduce_logsumexp(x, axis=axis, keepdims=keepdims))
        grad = tape.gradient(y, x)
    w_kept = np.expand_dims(w_host.astype(np.float64), axes) if not keepdims else w_host
    assert_close(grad, w_kept * ref_softmax(ref, axes), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", ROW_IDS)
def test_cross_entropy_gradients(device, dtype, case, rng):
    values, axis = ROWS[case]
    ref = held(values, dtype)
    labels_host = rng.uniform(0.0, 1.0, size=ref.shape).astype(dtype)  # need not sum to 1
    labels, logits = gt.constant(labels_host), gt.constant(values, dtype=dtype)
    with strict():
        with gt.GradientTape() as tape:
            tape.watch([labels, logits])
            loss = gt.reduce_sum(gt.nn.softmax_cross_entropy_with_logits(labels, logits, axis))
        d_labels, d_logits = tape.gradient(loss, [labels, logits])
    lab = labels_host.astype(np.float64)
    p = ref_softmax(ref, axis)
    assert_close(d_logits, p * lab.sum(axis=axis, keepdims=True) - lab, dtype)
    assert_close(d_labels, -ref_log_softmax(ref, axis), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_and_softplus_gradients(device, dtype):
    x = gt.constant(POINTS, dtype=dtype)
    ref = held(POINTS, dtype)
    with strict():
        with gt.GradientTape(persistent=True) as tape:
            tape.watch(x)
            s = gt.sigmoid(x)
            sp = gt.nn.softplus(x)
        d_sigmoid = tape.gradient(s, x)
        d_softplus = tape.gradient(sp, x)
    assert_close(d_sigmoid, ref_sigmoid(ref) * ref_sigmoid(-ref), dtype)
    assert_close(d_softplus, ref_sigmoid(ref), dtype)


# -- second derivatives (nested tapes) --------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_and_softplus_second_derivatives(device, dtype):
    x = gt.constant(POINTS, dtype=dtype)
    ref = held(POINTS, dtype)
    with strict():
        with gt.GradientTape(persistent=True) as outer:
            outer.watch(x)
            with gt.GradientTape(persistent=True) as inner:
                inner.watch(x)
                s = gt.sigmoid(x)
                sp = gt.nn.softplus(x)
            d_sigmoid = inner.gradient(s, x)
            d_softplus = inner.gradient(sp, x)
        dd_sigmoid = outer.gradient(d_sigmoid, x)
        dd_softplus = outer.gradient(d_softplus, x)
    s_ref, s_neg = ref_sigmoid(ref), ref_sigmoid(-ref)
    # sigmoid'' = s (1 - s) (1 - 2s), and 1 - 2s = -tanh(x / 2) without cancellation.
    assert_close(dd_sigmoid, s_ref * s_neg * -np.tanh(ref / 2), dtype)
    assert_close(dd_softplus, s_ref * s_neg, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", ROW_IDS + list(MASKED) + ["matrix-both"])
def test_logsumexp_second_derivative(device, dtype, case, rng):
    values, axis = {**ROWS, **MASKED, "matrix-both": (MATRIX, (0, 1))}[case]
    ref = held(values, dtype)
    v_host = _weights(rng, ref.shape, dtype)
    x, v = gt.constant(values, dtype=dtype), gt.constant(v_host)
    with strict():
        with gt.GradientTape() as outer:
            outer.watch(x)
            with gt.GradientTape() as inner:
                inner.watch(x)
                y = gt.reduce_sum(gt.logsumexp(x, axis=axis))
            hvp = gt.reduce_sum(v * inner.gradient(y, x))
        grad = outer.gradient(hvp, x)
    # The Hessian of logsumexp is diag(p) - p p^T within each row.
    p, v64 = ref_softmax(ref, axis), v_host.astype(np.float64)
    assert_close(grad, p * (v64 - (v64 * p).sum(axis=axis, keepdims=True)), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", ROW_IDS)
def test_softmax_second_derivative(device, dtype, case, rng):
    values, axis = ROWS[case]
    ref = held(values, dtype)
    w_host, v_host = _weights(rng, ref.shape, dtype), _weights(rng, ref.shape, dtype)
    x, w, v = (gt.constant(values, dtype=dtype), gt.constant(w_host), gt.constant(v_host))
    with strict():
        with gt.GradientTape() as outer:
            outer.watch(x)
            with gt.GradientTape() as inner:
                inner.watch(x)
                y = gt.reduce_sum(w * gt.softmax(x, axis=axis))
            hvp = gt.reduce_sum(v * inner.gradient(y, x))
        grad = outer.gradient(hvp, x)
    expected = ref_softmax_hvp(ref_softmax(ref, axis), w_host.astype(np.float64),
                               v_host.astype(np.float64), axis)
    assert_close(grad, expected, dtype)
