"""gt.nn's activations, normalizations and losses: values from their formulas, TF's gradient
choices at the kinks, and finite-difference checks of the compositions (first and second
order) on every device."""

from __future__ import annotations

import math

import numpy as np
import pytest

import gputape as gt

POINTS = np.array([-2.5, -0.7, 0.3, 1.2, 4.0])


def _phi(x):
    return 0.5 * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))


@pytest.mark.parametrize("fn, formula", [
    (gt.nn.gelu, lambda x: x * _phi(x)),
    (lambda x: gt.nn.gelu(x, approximate=True),
     lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))),
    (gt.nn.leaky_relu, lambda x: np.where(x > 0, x, 0.2 * x)),
    (gt.nn.elu, lambda x: np.where(x > 0, x, np.expm1(x))),
    (gt.nn.selu, lambda x: 1.0507009873554805 * np.where(x > 0, x, 1.6732632423543772
                                                          * np.expm1(x))),
    (gt.nn.silu, lambda x: x / (1 + np.exp(-x))),
    (gt.nn.relu6, lambda x: np.clip(x, 0, 6)),
    (gt.nn.log_sigmoid, lambda x: -np.log1p(np.exp(-x))),
])
def test_values(device, fn, formula):
    np.testing.assert_allclose(fn(gt.constant(POINTS, dtype=gt.float64)).numpy(),
                               formula(POINTS), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("fn, smooth", [
    (gt.nn.gelu, True), (lambda x: gt.nn.gelu(x, approximate=True), True),
    (gt.nn.leaky_relu, False), (gt.nn.elu, False), (gt.nn.selu, False), (gt.nn.silu, True),
    (gt.nn.relu6, False), (lambda x: gt.nn.l2_normalize(x, axis=0), True),
    (gt.nn.l2_loss, True),
    # (first order only: TF's variance is taken around stop_gradient(mean), so its second
    # derivative leaves out the mean's share, which finite differences of the first see)
    (lambda x: gt.nn.moments(x, axes=[0])[1], False),
    (lambda x: gt.nn.sigmoid_cross_entropy_with_logits(
        gt.constant([0.0, 1.0, 0.3, 1.0, 0.0], dtype=gt.float64), x), True),
    (lambda x: gt.nn.batch_normalization(x, 0.5, 2.0, x * 0.1, 3.0, 1e-3), True),
])
def test_gradients_match_finite_differences(device, fn, smooth):
    gt.testing.check_gradients(fn, POINTS, order=2 if smooth else 1, rtol=1e-5, atol=1e-6)


def test_kinks_follow_tf():
    """TF 2.21: leaky_relu'(0) = alpha, elu'(0) = 1, relu6' is 0 at 0 and at 6."""
    def grad(fn, at):
        x = gt.constant(at)
        with gt.GradientTape() as tape:
            tape.watch(x)
            y = fn(x)
        return tape.gradient(y, x).numpy().tolist()

    assert grad(gt.nn.leaky_relu, [0.0]) == [pytest.approx(0.2)]
    assert grad(gt.nn.elu, [0.0]) == [1.0]
    assert grad(gt.nn.relu6, [0.0, 3.0, 6.0]) == [0.0, 1.0, 0.0]


def test_moments_stop_the_gradient_at_the_mean():
    """TF's moments compute the variance around stop_gradient(mean): d var / d x_i is
    2 (x_i - mean) / n all the same (the mean's share sums to 0), but the variance's rule
    never reaches the mean's ops, so a function of the mean alone is unaffected."""
    x = gt.constant([1.0, 2.0, 6.0])
    with gt.GradientTape() as tape:
        tape.watch(x)
        mean, variance = gt.nn.moments(x, axes=[0])
    assert (float(mean), float(variance)) == (3.0, pytest.approx(14 / 3))
    np.testing.assert_allclose(tape.gradient(variance, x).numpy(), [-4 / 3, -2 / 3, 2.0],
                               rtol=1e-6)


def test_cross_entropies_and_their_gradients():
    logits = gt.constant([[2.0, -1.0, 0.5], [0.0, 3.0, -2.0]])
    labels = [0, 1]
    with gt.GradientTape() as tape:
        tape.watch(logits)
        loss = gt.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
    z = logits.numpy()
    soft = np.exp(z) / np.exp(z).sum(-1, keepdims=True)
    np.testing.assert_allclose(loss.numpy(), -np.log(soft[[0, 1], labels]), rtol=1e-6)
    np.testing.assert_allclose(tape.gradient(loss, logits).numpy(),
                               soft - np.eye(3)[labels], rtol=1e-6, atol=1e-7)
    x, t = gt.constant([-30.0, 0.0, 30.0]), gt.constant([1.0, 0.5, 0.0])
    with gt.GradientTape() as tape:
        tape.watch(x)
        xent = gt.nn.sigmoid_cross_entropy_with_logits(t, x)
    np.testing.assert_allclose(xent.numpy(), [30.0, math.log(2), 30.0], rtol=1e-6)
    np.testing.assert_allclose(tape.gradient(xent, x).numpy(),
                               1 / (1 + np.exp(-x.numpy())) - t.numpy(), atol=1e-6)


def test_one_hot_as_tf():
    assert gt.one_hot([0, 2, -1, 3], 3).numpy().tolist() == [[1, 0, 0], [0, 0, 1], [0, 0, 0],
                                                            [0, 0, 0]]
    found = gt.one_hot([1, 0], 2, on_value=5, off_value=-1, axis=0, dtype=gt.int32)
    assert found.dtype == gt.int32 and found.numpy().tolist() == [[-1, 5], [5, -1]]


def test_dropout_keeps_the_expectation_and_repeats_with_a_seed():
    x = gt.ones((20000,))
    gt.random.set_seed(3)
    a = gt.nn.dropout(x, rate=0.25, seed=1).numpy()
    assert set(np.unique(a)) == {0.0, np.float32(1 / 0.75)}
    assert abs(a.mean() - 1.0) < 0.02 and abs((a == 0).mean() - 0.25) < 0.01
    gt.random.set_seed(3)
    assert np.array_equal(gt.nn.dropout(x, rate=0.25, seed=1).numpy(), a)


def test_embedding_lookup_adds_gradients_of_repeated_ids():
    table = gt.Variable([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    with gt.GradientTape() as tape:
        rows = gt.nn.embedding_lookup(table, [2, 0, 2])
        total = gt.reduce_sum(rows)
    assert tape.gradient(total, table).numpy().tolist() == [[1, 1], [0, 0], [2, 2]]


@pytest.mark.parametrize("call, error, words", [
    (lambda: gt.nn.dropout(gt.ones(2), rate=1.0), ValueError, ["rate", "[0, 1)"]),
    (lambda: gt.nn.gelu([1, 2]), TypeError, ["gelu", "int32", "hint"]),
    (lambda: gt.one_hot([0.5], 2), TypeError, ["one_hot", "integers", "hint"]),
    (lambda: gt.nn.sparse_softmax_cross_entropy_with_logits([3], [[0.0, 1.0]]), IndexError,
     ["0..1", "hint"]),
    (lambda: gt.nn.sparse_softmax_cross_entropy_with_logits([[0.0, 1.0]], [[0.0, 1.0]]),
     ValueError, ["integer class indices", "hint"]),
    (lambda: gt.nn.sigmoid_cross_entropy_with_logits([1.0], [0.0, 1.0]), ValueError,
     ["(1,)", "(2,)", "hint"]),
])
def test_bad_arguments_are_refused(call, error, words):
    with pytest.raises(error) as info:
        call()
    for word in words:
        assert word in str(info.value), str(info.value)


# -- cases found comparing with TensorFlow 2.21 side by side (its values copied here) ---------


def test_elu_and_selu_gradients_stay_finite_for_large_inputs():
    """TF 2.21: f'(100) is 1 for elu and 1.050701 for selu in float32 (the unused branch's
    exp overflowing must not make it NaN); at 0 both take the positive side (selu'(0) =
    1.050701, elu''(0) = 0)."""
    for fn, slope in ((gt.nn.elu, 1.0), (gt.nn.selu, 1.0507009873554805)):
        x = gt.constant([100.0, 1e4, 0.0])
        with gt.GradientTape() as tape:
            tape.watch(x)
            y = gt.reduce_sum(fn(x))
        np.testing.assert_allclose(tape.gradient(y, x).numpy(), [slope] * 3, rtol=1e-6)


def test_relu6_keeps_nan_and_gelu_keeps_its_tail():
    """TF 2.21: relu6(nan) is nan; gelu(-10.0) in float64 is -7.6199e-23 (1 + erf(x / sqrt 2)
    would cancel to 0)."""
    assert np.isnan(gt.nn.relu6([math.nan]).numpy()[0])
    found = float(gt.nn.gelu(gt.constant(-10.0, dtype=gt.float64)))
    assert found == pytest.approx(-7.619853e-23, rel=1e-6)


def test_one_hot_takes_the_dtype_of_its_values_as_tf():
    """TF 2.21: Python ints as on/off give int32, a NumPy float64 gives float64."""
    assert gt.one_hot([0, 1], 2, on_value=5, off_value=-1).dtype == gt.int32
    assert gt.one_hot([0], 2, on_value=np.float64(2.0)).dtype == gt.float64


def test_moments_takes_tfs_signature_and_axes():
    """TF's moments(x, axes, shift=None, keepdims=False): the third positional argument is
    shift; axes may be None or an int."""
    x = gt.constant([[1.0, 2.0], [3.0, 4.0]])
    mean, variance = gt.nn.moments(x, [0], None, True)
    assert mean.shape == (1, 2) and variance.shape == (1, 2)
    assert float(gt.nn.moments(x, None)[0]) == 2.5 and gt.nn.moments(x, 1)[0].shape == (2,)


def test_embedding_lookup_over_shards_numbers_their_rows_in_order():
    """TF 2.21: two shards of 3 rows (rows 0..5), ids [0, 4] give rows 0 and 4."""
    first = gt.constant([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]])
    second = gt.constant([[6.0, 7.0], [8.0, 9.0], [10.0, 11.0]])
    found = gt.nn.embedding_lookup([first, second], [0, 4])
    assert found.numpy().tolist() == [[0.0, 1.0], [8.0, 9.0]]


def test_an_op_seed_advances_between_calls_and_restarts_at_set_seed():
    """TF 2.21 in eager mode: dropout(x, seed=5) twice gives two masks; after set_seed the
    same two again."""
    x = gt.ones((50,))
    gt.random.set_seed(1)
    a, b = gt.nn.dropout(x, 0.5, seed=5).numpy(), gt.nn.dropout(x, 0.5, seed=5).numpy()
    assert not np.array_equal(a, b)
    gt.random.set_seed(1)
    assert np.array_equal(gt.nn.dropout(x, 0.5, seed=5).numpy(), a)
