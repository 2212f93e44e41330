"""Programs where gputape once disagreed with TensorFlow, each with TensorFlow 2.21's answer.

Every expected value here was obtained by running the same program in TensorFlow 2.21 (CPU);
the docstrings say what TF gives. Each test runs on every device (the ``device`` fixture).
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import check as shared_check

import gputape as gt


def check(t, expected, device, dtype=None):
    """helpers.check, to 1e-6 relative (TF's printed values)."""
    shared_check(t, expected, device, dtype, rtol=1e-6, atol=1e-6)


def check_or_none(t, expected, device, dtype=None):
    """``t`` is None where TF gives None (``expected`` None), else as :func:`check`."""
    if expected is None:
        assert t is None, f"expected None, got {t!r}"
    else:
        check(t, expected, device, dtype)


SAME_SHAPE = {
    "reshape": lambda x: gt.reshape(x, [2]),
    "broadcast_to": lambda x: gt.broadcast_to(x, [2]),
    "squeeze": lambda x: gt.squeeze(x),
}


# == 1. a no-op reshape is a new, recorded result ================================================


@pytest.mark.parametrize("op", list(SAME_SHAPE))
def test_same_shape_reshape_of_an_unwatched_constant_has_no_gradient(device, op):
    """``y = reshape(x, x.shape)`` with ``x`` unwatched: TF 2.21 gives None for
    ``gradient(y, x)`` (gputape returned ``x`` itself, so the seed came back)."""
    x = gt.constant([1.0, 2.0])
    with gt.GradientTape() as tape:
        y = SAME_SHAPE[op](x)
    assert y is not x
    assert tape.gradient(y, x) is None


@pytest.mark.parametrize("op", list(SAME_SHAPE))
def test_same_shape_reshape_of_a_variable_keeps_the_value_it_read(device, op):
    """``y = broadcast_to(v, [2]); v.assign([5., 6.])``: TF 2.21 still prints ``[1. 2.]``
    for ``y`` (gputape's ``y`` was ``v`` and read ``[5, 6]``: a silent wrong value)."""
    v = gt.Variable([1.0, 2.0])
    y = SAME_SHAPE[op](v)
    v.assign([5.0, 6.0])
    check(y, [1.0, 2.0], device, np.float32)


@pytest.mark.parametrize("op", ["reshape", "broadcast_to", "squeeze"])
def test_same_shape_reshape_under_stop_recording_is_not_recorded(device, op):
    """``y = 2x`` recorded, ``z = squeeze(y)`` inside ``stop_recording()``: TF 2.21 gives
    None for ``gradient(3 z, x)`` (gputape gave 12: ``z`` was ``y``)."""
    make = {"reshape": lambda y: gt.reshape(y, []), "broadcast_to": lambda y: gt.broadcast_to(
        y, []), "squeeze": gt.squeeze}[op]
    x = gt.constant(2.0)
    with gt.GradientTape() as tape:
        tape.watch(x)
        y = x * 2.0
        with tape.stop_recording():
            z = make(y)
        w = 3.0 * z
    assert tape.gradient(w, x) is None


# == 2-4, 13, 16. jacobians =====================================================================


def test_batch_jacobian_of_an_unconnected_source_is_zeros(device):
    """TF 2.21 gives zeros of shape (2, 2, 2) for ``batch_jacobian(2x, u)``, ``u`` unconnected,
    with ``unconnected_gradients`` "none" or "zero" (its code ignores the argument there)."""
    x = gt.constant([[1.0, 2.0], [3.0, 4.0]])
    u = gt.constant([[1.0, 1.0], [1.0, 1.0]])
    for mode in ("none", "zero"):
        with gt.GradientTape() as tape:
            tape.watch(x)
            y = x * 2.0
        check(tape.batch_jacobian(y, u, unconnected_gradients=mode), np.zeros((2, 2, 2)),
              device, np.float32)


def test_jacobian_of_an_unwatched_tensor_with_respect_to_itself(device):
    """``x`` never watched: TF 2.21 gives None for ``jacobian(x, x)`` and zeros for
    ``batch_jacobian(x2, x2)`` (gputape gave the identity)."""
    x = gt.constant([1.0, 2.0])
    x2 = gt.constant([[1.0, 2.0], [3.0, 4.0]])
    with gt.GradientTape(persistent=True) as tape:
        pass
    assert tape.jacobian(x, x) is None
    check(tape.batch_jacobian(x2, x2), np.zeros((2, 2, 2)), device, np.float32)
    with gt.GradientTape(persistent=True) as tape:  # watched: the identity, as in TF
        tape.watch(x)
    check(tape.jacobian(x, x), np.eye(2), device, np.float32)


def test_jacobian_of_an_empty_target(device):
    """A size-0 target: TF 2.21 gives an empty (0, 2) jacobian for a connected source and None
    for an unconnected one (zeros of shape (0, 2) with unconnected_gradients="zero")."""
    x = gt.constant([1.0, 2.0])
    with gt.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = x[:0] * 2.0
        z = gt.zeros([0]) + 0.0
    check(tape.jacobian(y, x), np.zeros((0, 2)), device, np.float32)
    assert tape.jacobian(z, x) is None
    check(tape.jacobian(z, x, unconnected_gradients="zero"), np.zeros((0, 2)), device,
          np.float32)


@pytest.mark.parametrize("ranks", [(1, 2), (2, 1), (1, 1)])
def test_batch_jacobian_needs_rank_two(device, ranks):
    """TF 2.21 raises ValueError ("... must have rank at least 2") for a rank-1 target or
    source."""
    x = gt.ones([2] * ranks[1])
    with gt.GradientTape() as tape:
        tape.watch(x)
        y = gt.reduce_sum(x) * gt.ones([2] * ranks[0])
    with pytest.raises(ValueError, match="rank at least 2"):
        tape.batch_jacobian(y, x)


@pytest.mark.parametrize("method", ["jacobian", "batch_jacobian"])
def test_jacobian_without_pfor_needs_a_persistent_tape(device, method):
    """``experimental_use_pfor=False`` on a non-persistent tape: TF 2.21 raises RuntimeError
    ("GradientTape must be created with persistent=True ..."); a persistent tape works."""
    x = gt.constant([[1.0, 2.0]])
    with gt.GradientTape() as tape:
        tape.watch(x)
        y = x * 3.0
    with pytest.raises(RuntimeError, match="persistent=True"):
        getattr(tape, method)(y, x, experimental_use_pfor=False)
    with gt.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = x * 3.0
    want = np.zeros((1, 2, 1, 2)) if method == "jacobian" else np.zeros((1, 2, 2))
    want.reshape(-1, 2)[[0, 1], [0, 1]] = 3.0
    check(getattr(tape, method)(y, x, experimental_use_pfor=False), want, device, np.float32)


# == 6. floor and round are recorded ===========================================================


@pytest.mark.parametrize("op", [gt.floor, gt.round])
def test_floor_and_round_results_can_be_sources(device, op):
    """``y = floor(x); z = 3 y``: TF 2.21 gives ``[3, 3]`` for ``gradient(z, y)`` and None for
    ``gradient(z, x)`` (gputape did not record floor, so ``y`` was unconnected)."""
    x = gt.constant([1.5, 2.5])
    with gt.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = op(x)
        z = 3.0 * y
    check(tape.gradient(z, y), [3.0, 3.0], device, np.float32)
    assert tape.gradient(z, x) is None


# == 9. softmax over an empty axis =============================================================


@pytest.mark.parametrize("op", [gt.softmax, gt.log_softmax])
@pytest.mark.parametrize("shape", [(2, 0), (0, 3)])
def test_softmax_of_an_empty_axis_is_empty(device, op, shape):
    """TF 2.21 returns an empty result of the same shape (and an empty gradient) where gputape
    raised "zero-size array"."""
    x = gt.zeros(shape)
    with gt.GradientTape() as tape:
        tape.watch(x)
        y = op(x)
        loss = gt.reduce_sum(y)
    check(y, np.zeros(shape), device, np.float32)
    check(tape.gradient(loss, x), np.zeros(shape), device, np.float32)


# == 11. the gradient of a gather of a large host array =========================================


def test_gather_gradient_of_a_large_variable(device):
    """``reduce_sum(gather(v, [0, 0]))`` of a (1, 70000) Variable (280 KB, a pooled host
    buffer on the CPU): TF 2.21's gradient densifies to 2.0 everywhere (sum 140000); gputape
    crashed on the CPU looking for CuPy."""
    v = gt.Variable(np.ones((1, 70000), np.float32))
    with gt.GradientTape() as tape:
        y = gt.reduce_sum(gt.gather(v, [0, 0]))
    grad = tape.gradient(y, v)
    check(grad, np.full((1, 70000), 2.0), device, np.float32)


# == 14, 15, 17. what TF refuses =================================================================


@pytest.mark.parametrize("reduce", [gt.reduce_sum, gt.reduce_mean, gt.reduce_max])
@pytest.mark.parametrize("axis", [0, -1, [0]])
def test_reducing_a_scalar_over_an_axis_raises(device, reduce, axis):
    """TF 2.21 raises InvalidArgumentError ("Invalid reduction dimension 0 for input with 0
    dimensions"); ``axis=None`` and ``axis=[]`` reduce nothing."""
    x = gt.constant(3.0)
    with pytest.raises(ValueError, match="rank 0"):
        reduce(x, axis=axis)
    check(reduce(x, axis=[]), 3.0, device)
    check(reduce(x), 3.0, device)


def test_gather_refuses_negative_indices(device):
    """``gather([1., 2., 3.], [-1])``: TF 2.21 raises InvalidArgumentError on the CPU
    ("indices[0] = -1 is not in [0, 3)"); ``x[-1]`` indexing still counts from the end."""
    x = gt.constant([1.0, 2.0, 3.0])
    with pytest.raises(gt.IndexOutOfRangeError, match="0..2"):
        gt.gather(x, [-1])
    check(x[-1], 3.0, device)
    check(gt.gather(x, [2, 0]), [3.0, 1.0], device)


# == 12. a Python list of tensors given to an op ================================================


@pytest.mark.parametrize("op, want, grad", [
    (lambda x: gt.exp([x]), [np.e], np.e),
    (lambda x: gt.identity([x]), [1.0], 1.0),
    (lambda x: gt.add([x], 1.0), [2.0], 1.0),
    (lambda x: gt.reduce_sum([x, x]), 2.0, 2.0),
    (lambda x: gt.exp([x, 2.0]), [np.e, np.exp(2.0)], np.e),
], ids=["exp", "identity", "add", "reduce_sum", "with a number"])
def test_a_list_of_tensors_is_packed_by_a_recorded_stack(device, op, want, grad):
    """``gt.exp([x])`` with a float64 ``x``: TF 2.21 packs the list with a recorded stack, so
    the result is float64 and the gradient flows (gputape copied the list into a float32
    constant: a float32 result and a None gradient); a number in the list takes x's dtype."""
    x = gt.constant(1.0, gt.float64)
    with gt.GradientTape() as tape:
        tape.watch(x)
        y = op(x)
    check(y, want, device, np.float64)
    check(tape.gradient(y, x), grad, device, np.float64)


# == 7, 8. which tensors a rule reads decides where higher orders are None =====================


def _second(fn, x):
    """``(outer.gradient(dy, y), outer.gradient(dy, x))`` for ``y = fn(x)``, ``dy`` the inner
    tape's gradient."""
    with gt.GradientTape(persistent=True) as outer:
        outer.watch(x)
        with gt.GradientTape() as inner:
            inner.watch(x)
            y = fn(x)
        dy = inner.gradient(y, x)
    return outer.gradient(dy, y), outer.gradient(dy, x)


def test_relu_gradient_reads_its_output(device):
    """TF's ReluGrad(g, y) reads the output: TF 2.21 gives zeros ``[0, 0]`` for d(dy/dx)/dy
    and for d(dy/dx)/dx at x = [1, -2] (gputape gave None for the first)."""
    by_y, by_x = _second(gt.relu, gt.constant([1.0, -2.0]))
    check(by_y, [0.0, 0.0], device, np.float32)
    check(by_x, [0.0, 0.0], device, np.float32)


def test_expm1_gradient_reads_its_input(device):
    """TF's rule is ``g * exp(x)``: TF 2.21 gives None for d(dy/dx)/dy and ``exp(x)`` =
    [2.7182817, 0.13533528] for d(dy/dx)/dx (gputape read y: ones and y + 1)."""
    by_y, by_x = _second(gt.expm1, gt.constant([1.0, -2.0]))
    assert by_y is None
    check(by_x, np.exp([1.0, -2.0]), device, np.float32)


def test_logsumexp_reads_its_forward_intermediates(device):
    """An outer tape paused around the forward: TF 2.21's composite logsumexp gives
    ``dy = [0.95257413, 0.04742587]`` and None for ``outer.gradient(dy, x)`` (its rule reads
    intermediates the outer tape never saw); unpaused, zeros."""
    x = gt.constant([1.0, -2.0])
    for paused, want in ((True, None), (False, [0.0, 0.0])):
        with gt.GradientTape() as outer:
            outer.watch(x)
            with gt.GradientTape() as inner:
                inner.watch(x)
                if paused:
                    with outer.stop_recording():
                        y = gt.reduce_logsumexp(x)
                else:
                    y = gt.reduce_logsumexp(x)
            dy = inner.gradient(y, x)
        check(dy, [0.95257413, 0.04742587], device, np.float32)
        check_or_none(outer.gradient(dy, x), want, device, np.float32)


def test_pow_exponent_gradient_reads_the_power(device):
    """``z = 2 ** p`` at p = 3: TF 2.21 gives ``dz/dp = 5.5451775`` and d(dz/dp)/dz =
    ln 2 = 0.6931472 (the rule reads z); for ``z = reduce_sum(x ** p)``, 6.913622 and None.
    The same with the fused route (cpu-fused and GPUs), which gave None for the first."""
    p = gt.constant(3.0)
    x = gt.constant([1.5, 2.0])
    for make, dz_want, by_z in ((lambda p: 2.0 ** p, 5.5451775, 0.6931472),
                                (lambda p: gt.reduce_sum(x ** p), 6.913622, None)):
        with gt.GradientTape() as outer:
            outer.watch(p)
            with gt.GradientTape() as inner:
                inner.watch(p)
                z = make(p)
            dz = inner.gradient(z, p)
        check(dz, dz_want, device, np.float32)
        check_or_none(outer.gradient(dz, z), by_z, device, np.float32)


def test_empty_jacobian_is_a_constant_and_batch_jacobian_zeros_take_the_targets_dtype(device):
    """TF 2.21: the (0, 2) jacobian of a size-0 target is disconnected from an outer tape
    (``outer.gradient(reduce_sum(jacobian), x)`` is None); an unconnected batch_jacobian is
    zeros of the target's dtype (float64 here), of the source's with "zero"."""
    x = gt.constant([1.0, 2.0])
    with gt.GradientTape() as outer:
        outer.watch(x)
        with gt.GradientTape() as inner:
            inner.watch(x)
            y = x[:0] * x[:0]
        total = gt.reduce_sum(inner.jacobian(y, x))
    assert outer.gradient(total, x) is None
    x2 = gt.constant([[1.0, 2.0], [3.0, 4.0]], gt.float64)
    u = gt.constant([[1.0, 1.0], [1.0, 1.0]])
    with gt.GradientTape(persistent=True) as tape:
        tape.watch(x2)
        y = x2 * 2.0
    check(tape.batch_jacobian(y, u), np.zeros((2, 2, 2)), device, np.float64)
    check(tape.batch_jacobian(y, u, unconnected_gradients="zero"), np.zeros((2, 2, 2)),
          device, np.float32)


# == 10. a Variable read before it is watched stays a constant =================================


def test_a_variable_read_before_watch_is_not_connected(device):
    """``y = v * w`` (w not trainable), then ``t.watch(w)``: TF 2.21 gives None for
    ``gradient(y, w)`` and 3.0 for ``gradient(y, v)`` (gputape gave 2.0 for w: all reads of
    a Variable shared its id). A read inside ``stop_recording()`` stays a constant too, while
    a read after the watch is followed (TF 2.21: 5.0)."""
    v, w = gt.Variable(2.0), gt.Variable(3.0, trainable=False)
    with gt.GradientTape() as tape:
        y = v * w
        tape.watch(w)
    gw, gv = tape.gradient(y, [w, v])
    assert gw is None
    check(gv, 3.0, device, np.float32)
    w2 = gt.Variable(3.0, trainable=False)
    with gt.GradientTape() as outer:
        with outer.stop_recording():
            read = w2 * 1.0
        outer.watch(w2)
        y = read * 2.0
        later = w2 * 5.0
    check(outer.gradient([y, later], w2), 5.0, device, np.float32)


def test_a_result_read_before_an_outer_reset_is_not_connected(device):
    """``r = v * 1`` recorded, ``outer.reset()``, then ``y = r * v``: TF 2.21 gives 4.0 on the
    inner tape (both paths) and 2.0 on the reset outer tape (only the read after the reset);
    the same on a single persistent tape reset in between."""
    v = gt.Variable(2.0)
    with gt.GradientTape() as outer:
        with gt.GradientTape() as inner:
            r = v * 1.0
            outer.reset()
            y = r * v
        check(inner.gradient(y, v), 4.0, device, np.float32)
    check(outer.gradient(y, v), 2.0, device, np.float32)
    with gt.GradientTape(persistent=True) as tape:
        r = v * 1.0
        tape.reset()
        y = r * v
    check(tape.gradient(y, v), 2.0, device, np.float32)


def test_stop_gradient_of_a_variable_does_not_watch_it(device):
    """``stop_gradient(v)`` of a trainable Variable inside a tape: TF 2.21's
    ``watched_variables()`` is empty (gputape listed ``v``); a plain read watches it."""
    v = gt.Variable([1.0, 2.0])
    with gt.GradientTape() as tape:
        y = gt.stop_gradient(v) * 2.0
    assert tape.watched_variables() == ()
    check(y, [2.0, 4.0], device, np.float32)
    with gt.GradientTape() as tape:
        y = gt.stop_gradient(v) * v
    assert tape.watched_variables() == (v,)
    check(tape.gradient(y, v), [1.0, 2.0], device, np.float32)
