"""gt.random: Philox4x32-10 against its published known answers, the same numbers for a seed
on every device, TensorFlow's functions and their contracts, and sanity of the distributions."""

from __future__ import annotations

import math

import numpy as np
import pytest

import gputape as gt
from gputape.ops.philox import philox4x32

# Random123's known-answer vectors for Philox4x32-10 (its tests/kat_vectors, the reference
# code of Salmon et al. 2011; TensorFlow's own Philox tests use the same three).
KNOWN_ANSWERS = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


@pytest.mark.parametrize("counter, key, expected", KNOWN_ANSWERS)
def test_philox_matches_the_published_known_answers(device, counter, key, expected):
    xp = gt.Device(device).xp if device.startswith("gpu") else np
    out = philox4x32(xp, xp.asarray([counter], dtype=xp.uint32), key)
    assert tuple(int(v) for v in np.asarray(out.get() if hasattr(out, "get") else out)[0]) \
        == expected


@pytest.mark.parametrize("draw", [
    lambda g, d: g.uniform((5, 7), device=d),
    lambda g, d: g.uniform((9,), -3, 4, dtype=gt.int32, device=d),
    lambda g, d: g.uniform((6,), dtype=gt.float64, device=d),
    lambda g, d: g.normal((4, 5), device=d),
    lambda g, d: g.truncated_normal((101,), device=d),
    lambda g, d: g.permutation(17, device=d),
], ids=["uniform", "uniform_int", "uniform_f64", "normal", "truncated", "permutation"])
def test_a_seed_gives_the_same_numbers_on_every_device(device, draw):
    """The host's numbers, bit for bit, wherever they are drawn (a GPU's included)."""
    here = draw(gt.random.Generator.from_seed(123), device).numpy()
    host = draw(gt.random.Generator.from_seed(123), "cpu").numpy()
    assert here.dtype == host.dtype and np.array_equal(here, host)


def test_known_values_pin_the_stream():
    """The first uniform float32 of seed (0, 0) is the top 23 bits of Philox's first known
    answer word: 0x6627e8d5 >> 9 over 2**23."""
    first = gt.random.stateless_uniform((1,), seed=(0, 0)).numpy()[0]
    assert first == np.float32((0x6627E8D5 >> 9) / 2**23)


def test_stateless_functions_depend_only_on_the_seed():
    a = gt.random.stateless_normal((3, 4), seed=(1, 2))
    assert np.array_equal(a.numpy(), gt.random.stateless_normal((3, 4), seed=(1, 2)).numpy())
    assert not np.array_equal(a.numpy(), gt.random.stateless_normal((3, 4), seed=(2, 1)).numpy())


def test_a_generator_advances_and_repeats_from_its_seed():
    g = gt.random.Generator.from_seed(9)
    first, second = g.normal((8,)).numpy(), g.normal((8,)).numpy()
    assert not np.array_equal(first, second)
    again = gt.random.Generator.from_seed(9)
    assert np.array_equal(again.normal((8,)).numpy(), first)
    assert np.array_equal(again.normal((8,)).numpy(), second)
    left, right = gt.random.Generator.from_seed(9).split(2)
    assert not np.array_equal(left.normal((4,)).numpy(), right.normal((4,)).numpy())


def test_set_seed_makes_the_global_functions_repeat():
    gt.random.set_seed(5)
    a = gt.random.uniform((4,)).numpy(), gt.random.normal((4,)).numpy()
    gt.random.set_seed(5)
    b = gt.random.uniform((4,)).numpy(), gt.random.normal((4,)).numpy()
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    gt.random.set_seed(5)
    with_op_seed = gt.random.normal((4,), seed=1).numpy()
    assert not np.array_equal(with_op_seed, a[1])
    gt.random.set_seed(5)
    assert np.array_equal(gt.random.normal((4,), seed=1).numpy(), with_op_seed)


def test_the_distributions():
    g = gt.random.Generator.from_seed(2024)
    u = g.uniform((40000,), 1.0, 3.0).numpy()
    assert u.min() >= 1.0 and u.max() < 3.0
    assert abs(u.mean() - 2.0) < 0.01 and abs(u.var() - 4 / 12) < 0.01
    z = g.normal((40000,), mean=1.0, stddev=2.0, dtype=gt.float64).numpy()
    assert z.dtype == np.float64 and abs(z.mean() - 1.0) < 0.04 and abs(z.std() - 2.0) < 0.04
    assert abs(np.mean(np.abs(z - 1.0) < 2.0) - math.erf(1 / math.sqrt(2))) < 0.01
    t = g.truncated_normal((40000,)).numpy()
    assert np.abs(t).max() <= 2.0 and abs(t.std() - 0.8796) < 0.01  # the std of N(0,1) on [-2, 2]
    k = g.uniform((40000,), 0, 5, dtype=gt.int64).numpy()
    assert set(np.unique(k)) == {0, 1, 2, 3, 4}
    assert np.all(np.abs(np.bincount(k) / k.size - 0.2) < 0.01)


def test_categorical_follows_the_softmax():
    logits = np.log(np.array([[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]], dtype=np.float32))
    samples = gt.random.Generator.from_seed(7).categorical(logits, 20000).numpy()
    assert samples.shape == (2, 20000) and samples.dtype == np.int64
    for row, p in zip(samples, np.exp(logits)):
        assert np.all(np.abs(np.bincount(row, minlength=3) / row.size - p) < 0.015)


def test_shuffle_and_permutation_reorder_the_first_axis():
    g = gt.random.Generator.from_seed(11)
    perm = g.permutation(50).numpy()
    assert sorted(perm.tolist()) == list(range(50)) and perm.tolist() != list(range(50))
    x = np.arange(12.0).reshape(6, 2)
    shuffled = g.shuffle(gt.constant(x)).numpy()
    assert sorted(map(tuple, shuffled.tolist())) == sorted(map(tuple, x.tolist()))


def test_a_tensor_mean_and_stddev_are_differentiable():
    """normal = mean + stddev * z: d/dmean sum = n, d/dstddev sum = sum(z)."""
    mean, stddev = gt.constant(1.0), gt.constant(2.0)
    with gt.GradientTape() as tape:
        tape.watch([mean, stddev])
        x = gt.random.Generator.from_seed(1).normal((5,), mean=mean, stddev=stddev)
        total = gt.reduce_sum(x)
    g_mean, g_std = tape.gradient(total, [mean, stddev])
    z = gt.random.Generator.from_seed(1).normal((5,)).numpy()
    assert float(g_mean) == 5.0 and float(g_std) == pytest.approx(float(z.sum()), rel=1e-6)


@pytest.mark.parametrize("call, error, words", [
    (lambda: gt.random.Generator.from_seed("a"), TypeError, ["seed", "str", "hint"]),
    (lambda: gt.random.stateless_normal((2,), seed=(1, 2, 3)), TypeError, ["pair of ints"]),
    (lambda: gt.random.uniform((2,), dtype=gt.int32), ValueError, ["maxval", "hint"]),
    (lambda: gt.random.uniform((2,), 5, 5, dtype=gt.int32), ValueError, ["above minval"]),
    (lambda: gt.random.normal((2,), dtype=gt.int32), ValueError, ["floating", "hint"]),
    (lambda: gt.random.categorical([0.0, 1.0], 2), ValueError, ["2-d", "(2,)", "hint"]),
    (lambda: gt.random.normal((-1, 2)), ValueError, ["normal"]),
])
def test_bad_arguments_are_refused(call, error, words):
    with pytest.raises(error) as info:
        call()
    for word in words:
        assert word in str(info.value), str(info.value)
