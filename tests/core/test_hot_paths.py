"""The shortcuts that make small ops cheap must give exactly what the general path gives.

* dispatch's host fast path (NumPy tensors, Python numbers next to them, cached 0-d scalars);
* the backward walk's in-place sums of cotangents that only the walk holds.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import host

import gputape as gt
from gputape.cuda import pending

BINARY = {
    "add": (gt.add, np.add),
    "subtract": (gt.subtract, np.subtract),
    "multiply": (gt.multiply, np.multiply),
    "divide": (gt.divide, np.true_divide),
    "pow": (gt.pow, np.power),
    "maximum": (gt.maximum, np.maximum),
}
NUMBERS = [2.0, -0.0, 0.0, 3, -1, 0.5, float("nan"), float("inf"), 1e300]


def _same_bits(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)  # NaNs in the same places
    np.testing.assert_array_equal(np.signbit(got), np.signbit(want))  # -0.0 stays -0.0


@pytest.mark.parametrize("name", sorted(BINARY))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("number", NUMBERS, ids=repr)
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_python_numbers_beside_tensors_match_numpy(device, name, dtype, number):
    gt_op, np_op = BINARY[name]
    values = np.array([1.5, -2.0, 0.25, 0.0], dtype)
    x = gt.constant(values)
    scalar = np.asarray(number, dtype=dtype)
    with np.errstate(all="ignore"):
        _same_bits(host(gt_op(x, number)), np_op(values, scalar))
        _same_bits(host(gt_op(number, x)), np_op(scalar, values))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_signed_zeros_are_never_confused(device):
    x = gt.constant([2.0, 4.0])
    assert np.all(host(1.0 / (x * 0.0)) == np.inf)
    assert np.all(host(1.0 / (x * -0.0)) == -np.inf)
    assert np.all(host(1.0 / (x * 0.0)) == np.inf)


def test_many_distinct_numbers_stay_correct(device):
    x = gt.constant([1.0, 2.0], dtype=gt.float64)
    for k in range(3000):  # more than the scalar cache holds
        assert host(x * (k + 0.5)).tolist() == [k + 0.5, 2 * (k + 0.5)]


def test_integer_tensors_keep_their_checks(device):
    x = gt.constant([1, 2], dtype=gt.int8)
    assert host(x + 3).dtype == np.int8
    with pytest.raises(gt.errors.DTypeError, match="does not fit"):
        x + 300
    with pytest.raises(gt.errors.DTypeError, match="fraction"):
        x * 1.5


def test_mismatched_dtypes_still_raise(device):
    with pytest.raises(gt.errors.DTypeError, match="multiply"):
        gt.constant([1.0], dtype=gt.float32) * gt.constant([1.0], dtype=gt.float64)
    with pytest.raises(gt.errors.DTypeError, match="sin"):
        gt.sin(gt.constant([1, 2]))


def test_bad_shapes_still_explained(device):
    with pytest.raises(gt.errors.ShapeError, match=r"add: shapes do not broadcast"):
        gt.constant([1.0, 2.0]) + gt.constant([1.0, 2.0, 3.0])


def test_fused_route_still_defers_on_the_host():
    from gputape.cuda import table

    x, y = gt.constant([1.0, 2.0], device="cpu"), gt.constant([3.0, 4.0], device="cpu")
    table.route("numpy")
    try:
        with gt.GradientTape() as tape:
            tape.watch(x)
            product = x * y
        assert pending.pending_inputs(product) is not None
    finally:
        table.unroute("numpy")
    with gt.GradientTape() as tape:
        tape.watch(x)
        product = x * y
    assert type(product) is gt.Tensor


# -- in-place sums in the backward walk ---------------------------------------------------


def test_summed_cotangents_leave_seeds_and_results_alone(device):
    x = gt.constant([1.0, 2.0])
    u = gt.constant([0.5, 0.25])
    with gt.GradientTape(persistent=True) as tape:
        tape.watch(x)
        a = x * 2.0
        y = a + a + a + x
    first = tape.gradient(y, [a, x], output_gradients=u)
    kept = [host(g) for g in first]
    second = tape.gradient(y, [a, x], output_gradients=u)
    np.testing.assert_array_equal(host(u), [0.5, 0.25])
    np.testing.assert_allclose(kept[0], 3 * host(u))
    np.testing.assert_allclose(kept[1], 7 * host(u))
    for before, again, now in zip(kept, second, first):
        np.testing.assert_array_equal(host(now), before)
        np.testing.assert_array_equal(host(again), before)


def test_summed_cotangents_under_an_outer_tape(device):
    x = gt.constant([1.0, 3.0])
    with gt.GradientTape() as outer:
        outer.watch(x)
        with gt.GradientTape() as inner:
            inner.watch(x)
            y = x * x + x * x + x * x * x
        dy = inner.gradient(y, x)  # 4x + 3x^2, recorded by the outer tape
    np.testing.assert_allclose(host(dy), [7.0, 39.0])
    np.testing.assert_allclose(host(outer.gradient(dy, x)), [10.0, 22.0])


def test_jacobian_rows_sum_without_aliasing(device):
    x = gt.constant([1.0, 2.0, 3.0])
    with gt.GradientTape() as tape:
        tape.watch(x)
        y = x * x + x + x
    np.testing.assert_allclose(host(tape.jacobian(y, x)), np.diag([4.0, 6.0, 8.0]))


# -- integer exponents by multiplication ---------------------------------------------------

POW_EDGES = [0.0, -0.0, 1.0, -1.5, 2.5, 1e-30, 1e30, -1e30, np.inf, -np.inf, np.nan, 3.4e38]


@pytest.mark.parametrize("exponent", [2, 3, 4, 2.0, 3.0, 4.0, 5, 1.5, -1])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_small_integer_powers_match_numpy(device, exponent, dtype):
    values = np.array(POW_EDGES, dtype)
    got = host(gt.constant(values) ** exponent)
    with np.errstate(all="ignore"):
        want = np.power(values, np.asarray(exponent, dtype))
    assert got.dtype == want.dtype
    finite = np.isfinite(want)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(got[~finite & ~np.isnan(want)], want[~finite & ~np.isnan(want)])
    np.testing.assert_array_max_ulp(got[finite], want[finite], maxulp=2)
    np.testing.assert_array_equal(np.signbit(got), np.signbit(want))


# -- a spent tape lets go of the forward's arrays during the walk ---------------------------


def _probe_walk(persistent: bool) -> bool:
    """Whether an intermediate only later ops used is still alive when the walk reaches an
    earlier op (a custom gradient that looks)."""
    import weakref

    seen = []

    @gt.custom_gradient
    def probe(v):
        def grad(upstream):
            seen.append(ref() is not None)
            return upstream

        return gt.identity(v), grad

    x = gt.constant(np.linspace(1.0, 2.0, 1000))
    with gt.GradientTape(persistent=persistent) as tape:
        tape.watch(x)
        t = probe(x) * 2.0
        ref = weakref.ref(t)
        u = gt.sin(t * 3.0)  # sin reads the product: nothing stays pending
        del t
    tape.gradient(u, x)
    return seen[0]


def test_a_spent_tape_frees_saved_tensors_during_the_walk(device):
    assert _probe_walk(persistent=False) is False
    assert _probe_walk(persistent=True) is True


# -- no pruning pass when every watched tensor is a source -------------------------------


def _gradients_both_ways(monkeypatch, run):
    """``run()``'s result with the walk's pruning shortcut, and with pruning forced."""
    from gputape.autodiff import backward

    calls = []
    real = backward._prune

    def spy(entries, sources):
        calls.append(len(entries))
        return real(entries, sources)

    monkeypatch.setattr(backward, "_prune", spy)
    quick = run()
    pruned_calls = len(calls)
    real_walk = backward.walk
    monkeypatch.setattr(backward, "walk",
                        lambda *a, **k: real_walk(*a, **{**k, "followed": None}))
    slow = run()
    return quick, slow, pruned_calls, len(calls) - pruned_calls


def test_every_watched_tensor_a_source_skips_pruning(monkeypatch, rng):
    x = gt.constant(rng.uniform(size=4))
    w = gt.Variable(rng.uniform(size=4))
    unrelated = gt.constant(rng.uniform(size=4))

    def run():
        with gt.GradientTape() as tape:
            tape.watch(x)
            y = gt.sin(x) * w + x
            _ = unrelated * 2.0  # not recorded: nothing watched feeds it
            z = gt.reduce_sum(y * y)
        return [g.numpy() for g in tape.gradient(z, [x, w])]

    quick, slow, quick_prunes, slow_prunes = _gradients_both_ways(monkeypatch, run)
    assert (quick_prunes, slow_prunes) == (0, 1)
    for a, b in zip(quick, slow):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("case", ["one of two watched", "intermediate watched",
                                  "target as source", "persistent, recorded on itself"])
def test_pruning_still_runs_or_agrees_when_sources_are_fewer(monkeypatch, rng, case):
    x = gt.constant(rng.uniform(size=3))
    y = gt.constant(rng.uniform(size=3))

    def run():
        with gt.GradientTape(persistent=True) as tape:
            tape.watch([x, y])
            h = x * y
            if case == "intermediate watched":
                tape.watch(h)
            z = gt.reduce_sum(gt.exp(h) + y)
            if case == "persistent, recorded on itself":
                with pytest.warns(UserWarning, match="inside its context"):
                    first = tape.gradient(z, [x, y])
                z = gt.reduce_sum(first[0] * first[1])
        sources = {"one of two watched": [x], "intermediate watched": [h, x, y],
                   "target as source": [z, x, y],
                   "persistent, recorded on itself": [x, y]}[case]
        return [g.numpy() for g in tape.gradient(z, sources)]

    quick, slow, _, _ = _gradients_both_ways(monkeypatch, run)
    for a, b in zip(quick, slow):
        np.testing.assert_array_equal(a, b)
