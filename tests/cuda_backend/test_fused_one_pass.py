"""Forward and gradient in one pass: a full ``reduce_sum`` of a pending ``x * y``, ``square(x)``
or ``x ** p`` under one tape also computes the inputs' gradients for a unit cotangent, and the
fused rule hands them out when the cotangent is known to be that unit spread.

On ``gpu:0`` the pass is the ``sum_grad_*`` kernels of ``kernels/fused_sum.cu``; on
``cpu-fused`` and in the ``numpy_route`` tests the same route runs on NumPy; on ``cpu`` there is
no route, and the results are the generic ones.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import count_calls, host

import gputape as gt
from gputape.core import registry
from gputape.core.tensor import fill_of
from gputape.cuda import fused, pending, table

TOL = {np.float32: dict(rtol=2e-5, atol=1e-5), np.float64: dict(rtol=1e-12, atol=1e-12)}


@pytest.fixture
def handed_out(monkeypatch) -> list:
    """One entry per fused rule call: whether it returned gradients kept from the forward."""
    calls: list = []
    real = fused._kept_gradients

    def spy(*args):
        kept = real(*args)
        calls.append(kept is not None)
        return kept

    monkeypatch.setattr(fused, "_kept_gradients", spy)
    return calls



def _kept(p):
    """What pattern_sum kept for the entry of the pending ``p`` (a scale and the gradients),
    or None (nothing kept, handed out already, or no longer pending)."""
    recipe = pending.pending_inputs(p)
    return None if recipe is None or recipe.kept is None else recipe.kept.value


PATTERNS = {
    "multiply": (lambda x, y: gt.reduce_sum(x * y), 2),
    "square": (lambda x: gt.reduce_sum(gt.square(x)), 1),
    "pow": (lambda x, p: gt.reduce_sum(gt.pow(x, p)), 2),
    "pow_constant_p": (lambda x: gt.reduce_sum(x ** 2.5), 1),
    "pow_integer_p": (lambda x: gt.reduce_sum(x ** 3.0), 1),
    "keepdims": (lambda x, y: gt.reduce_sum(x * y, axis=(0, 1), keepdims=True), 2),
    "mean": (lambda x, y: gt.reduce_mean(x * y), 2),
    "mean_pow": (lambda x, p: gt.reduce_mean(gt.pow(x, p)), 2),
    "mean_square": (lambda x: gt.reduce_mean(gt.square(x), keepdims=True), 1),
}


def _inputs(rng, name: str, shape: tuple, dtype) -> list:
    x = rng.uniform(0.25, 2.0, shape).astype(dtype)  # x ** p for any p, log x defined
    if PATTERNS[name][1] == 1:
        return [x]
    if name.endswith("pow"):
        return [x, np.asarray(rng.uniform(0.5, 3.0), dtype)]
    return [x, rng.standard_normal(shape).astype(dtype)]


def _values_and_grads(monkeypatch, flag: str, fn, arrays) -> list:
    monkeypatch.setenv("GPUTAPE_FUSED", flag)
    tensors = [gt.constant(a) for a in arrays]
    with gt.GradientTape() as tape:
        tape.watch(tensors)
        total = fn(*tensors)
    return [host(t) for t in [total, *tape.gradient(total, tensors)]]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(2, 3), (1,), (4099,)], ids=str)
@pytest.mark.parametrize("name", list(PATTERNS))
def test_one_pass_equals_the_generic_gradients(device, rng, monkeypatch, handed_out, name,
                                               shape, dtype):
    if name == "keepdims" and len(shape) < 2:
        shape = (3, 5)
    fn = PATTERNS[name][0]
    arrays = _inputs(rng, name, shape, dtype)
    routed = "multiply" in _routed()  # on for CuPy, and for NumPy in the cpu-fused variant
    fused_out = _values_and_grads(monkeypatch, "1", fn, arrays)
    taken = handed_out == [True]
    generic_out = _values_and_grads(monkeypatch, "0", fn, arrays)
    for got, want in zip(fused_out, generic_out):
        assert got.shape == want.shape and got.dtype == want.dtype
        np.testing.assert_allclose(got, want, **TOL[dtype])
    assert taken == routed


def _routed() -> set:
    """The primitives whose fused rule applies to the current default device's arrays."""
    name = "cupy" if gt.default_device().name.startswith("gpu") else "numpy"
    return {p for p in ("multiply", "square", "pow")
            if fused.registry.REGISTRY[p].joint_rules_for.get(name) is not None}


def test_reduce_sum_of_a_product_reads_the_inputs_once(numpy_route, monkeypatch, handed_out):
    pair_calls = count_calls(monkeypatch, fused.MUL_GRAD_PAIR, "forward")
    product_calls = count_calls(monkeypatch, gt.ops.elementwise.MULTIPLY, "forward")
    x, y = gt.constant([1.0, -2.0, 3.0]), gt.constant([4.0, 5.0, -6.0])
    with gt.GradientTape() as tape:
        tape.watch([x, y])
        p = x * y
        total = gt.reduce_sum(p)
    scale, kept = _kept(p)
    assert scale == 1.0
    np.testing.assert_array_equal(kept[0], y.numpy())
    np.testing.assert_array_equal(kept[1], x.numpy())
    gx, gy = tape.gradient(total, [x, y])
    assert float(total) == -24.0
    np.testing.assert_array_equal(gx.numpy(), y.numpy())
    np.testing.assert_array_equal(gy.numpy(), x.numpy())
    assert handed_out == [True] and pair_calls == [] and product_calls == []
    assert _kept(p) is None  # handed out, no longer held


def test_pow_keeps_the_exponent_gradient_as_a_sum(numpy_route, handed_out):
    x = gt.constant([0.5, 2.0, 3.0], dtype="float64")
    p = gt.Variable(2.5, dtype="float64")
    with gt.GradientTape() as tape:
        tape.watch(x)
        total = gt.reduce_sum(x ** p)
    gx, gp = tape.gradient(total, [x, p])
    xs = x.numpy()
    np.testing.assert_allclose(gx.numpy(), 2.5 * xs ** 1.5, rtol=1e-14)
    np.testing.assert_allclose(gp.numpy(), np.sum(xs ** 2.5 * np.log(xs)), rtol=1e-14)
    assert gp.shape == () and handed_out == [True]


def test_only_followed_inputs_get_gradients_kept(numpy_route, handed_out):
    x, y = gt.constant([1.0, 2.0]), gt.constant([3.0, 4.0])
    with gt.GradientTape() as tape:
        tape.watch(x)
        p = x * y
        total = gt.reduce_sum(p)
    assert _kept(p)[1][1] is None
    np.testing.assert_array_equal(tape.gradient(total, x).numpy(), [3.0, 4.0])
    assert handed_out == [True]


@pytest.mark.parametrize("loss", [
    lambda x, y: 2.0 * gt.reduce_sum(x * y),
    lambda x, y: 2.0 * gt.reduce_mean(x * y),
    lambda x, y: (lambda total: total + total)(gt.reduce_sum(x * y)),  # its cotangent: 1 + 1
    lambda x, y: gt.square(gt.reduce_sum(x * y)),
], ids=["scaled", "scaled-mean", "used-twice", "squared"])
def test_a_cotangent_not_known_to_be_one_uses_the_rules(numpy_route, handed_out, loss):
    xs, ys = np.array([1.0, -2.0, 0.5]), np.array([3.0, 0.25, -4.0])
    x, y = gt.constant(xs), gt.constant(ys)
    with gt.GradientTape() as tape:
        tape.watch([x, y])
        total = loss(x, y)
    gx, gy = tape.gradient(total, [x, y])
    with gt.GradientTape() as tape:  # the generic route: no pending result, no kept gradients
        tape.watch([x, y])
        product = gt.multiply(x, y) + 0.0
        want = loss(product, gt.ones_like(product))
    assert type(product) is gt.Tensor
    wx, wy = tape.gradient(want, [x, y])
    np.testing.assert_allclose(gx.numpy(), wx.numpy(), rtol=1e-15)
    np.testing.assert_allclose(gy.numpy(), wy.numpy(), rtol=1e-15)
    assert True not in handed_out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("pattern", ["product", "power", "square"])
def test_a_mean_hands_out_gradients_for_one_over_count(numpy_route, handed_out, pattern,
                                                       dtype):
    """1/3 is not exact: the kept gradients use the value the mean's rule spreads, so they
    equal the rules' bit for bit."""
    rng = np.random.default_rng(9)
    xs, ys = rng.uniform(0.5, 2.0, 3).astype(dtype), rng.standard_normal(3).astype(dtype)
    loss = {"product": lambda x, y: gt.reduce_mean(x * y),
            "power": lambda x, y: gt.reduce_mean(x ** 2.5),
            "square": lambda x, y: gt.reduce_mean(gt.square(x))}[pattern]
    x, y = gt.constant(xs), gt.constant(ys)
    with gt.GradientTape() as tape:
        tape.watch([x, y])
        total = loss(x, y)
    got = tape.gradient(total, [x, y])
    assert handed_out == [True]
    table.unroute("numpy")  # the generic route
    try:
        with gt.GradientTape() as tape:
            tape.watch([x, y])
            want_total = loss(x, y)
        want = tape.gradient(want_total, [x, y])
    finally:
        table.route("numpy")
    np.testing.assert_array_equal(total.numpy(), want_total.numpy())
    for g, w in zip(got, want):
        assert (g is None) == (w is None)
        if g is not None:
            np.testing.assert_array_equal(g.numpy(), w.numpy())


@pytest.mark.parametrize("axis", [0, None], ids=["partial", "full"])
def test_a_mean_over_some_axes_or_with_a_sum_seed_keeps_nothing_it_cannot_use(
        numpy_route, handed_out, axis):
    x = gt.constant(np.arange(1.0, 7.0).reshape(2, 3))
    with gt.GradientTape() as tape:
        tape.watch(x)
        p = x * x
        total = gt.reduce_mean(p, axis=axis)
    assert (_kept(p) is None) == (axis == 0)
    np.testing.assert_allclose(tape.gradient(total, x).numpy(),
                               2 * x.numpy() / (2 if axis == 0 else 6), rtol=1e-15)
    assert handed_out == [axis is None]


def test_given_output_gradients_are_not_taken_for_ones(numpy_route, handed_out):
    x, y = gt.constant([1.0, 2.0]), gt.constant([3.0, 4.0])
    with gt.GradientTape() as tape:
        tape.watch([x, y])
        total = gt.reduce_sum(x * y)
    gx, gy = tape.gradient(total, [x, y], output_gradients=gt.constant(3.0))
    np.testing.assert_array_equal(gx.numpy(), [9.0, 12.0])
    np.testing.assert_array_equal(gy.numpy(), [3.0, 6.0])
    assert handed_out == [False]


def test_a_sum_passed_on_unchanged_keeps_its_unit_cotangent(numpy_route, handed_out):
    x, y = gt.constant([1.0, 2.0]), gt.constant([3.0, 4.0])
    with gt.GradientTape() as tape:
        tape.watch([x, y])
        total = gt.reduce_sum(x * y) + gt.reduce_sum(gt.square(x))
    gx, gy = tape.gradient(total, [x, y])
    np.testing.assert_array_equal(gx.numpy(), [3.0 + 2.0, 4.0 + 4.0])
    np.testing.assert_array_equal(gy.numpy(), [1.0, 2.0])
    assert handed_out.count(True) == 2


def test_kept_gradients_are_handed_out_once(numpy_route, handed_out):
    x, y = gt.constant([1.0, 2.0]), gt.constant([3.0, 4.0])
    with gt.GradientTape(persistent=True) as tape:
        tape.watch([x, y])
        total = gt.reduce_sum(x * y)
    first = [g.numpy() for g in tape.gradient(total, [x, y])]
    second = [g.numpy() for g in tape.gradient(total, [x, y])]
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    assert handed_out == [True, False]


def test_nested_tapes_keep_nothing_and_second_order_holds(numpy_route, handed_out):
    x = gt.constant([0.5, -1.0, 2.0])
    y = gt.constant([1.5, 2.0, -0.5])
    with gt.GradientTape(persistent=True) as outer:
        outer.watch([x, y])
        with gt.GradientTape() as inner:
            inner.watch([x, y])
            p = x * y
            total = gt.reduce_sum(p)
        assert _kept(p) is None
        gx, gy = inner.gradient(total, [x, y])
    np.testing.assert_array_equal(gx.numpy(), y.numpy())
    assert outer.gradient(gx, y) is not None and outer.gradient(gy, y) is None
    assert True not in handed_out


def test_gradient_with_respect_to_the_pending_result_too(numpy_route, handed_out):
    x, y = gt.constant([[1.0, 2.0], [3.0, 4.0]]), gt.constant([[5.0, 6.0], [7.0, 8.0]])
    with gt.GradientTape() as tape:
        tape.watch([x, y])
        p = x * y
        total = gt.reduce_sum(p)
    gp, gx = tape.gradient(total, [p, x])
    np.testing.assert_array_equal(gp.numpy(), np.ones((2, 2)))
    np.testing.assert_array_equal(gx.numpy(), y.numpy())


@pytest.mark.parametrize("case", ["broadcast", "partial", "strided-read"])
def test_patterns_outside_the_one_pass_keep_nothing(numpy_route, case):
    x = gt.constant(np.arange(12.0).reshape(3, 4))
    y = gt.constant(np.arange(4.0)) if case == "broadcast" else gt.constant(np.ones((3, 4)))
    with gt.GradientTape() as tape:
        tape.watch([x, y])
        p = x * y
        total = gt.reduce_sum(p, axis=0 if case == "partial" else None)
        if case == "strided-read":
            p[0]  # another reader: the product is computed, the tensor no longer pending
    assert _kept(p) is None
    gx, gy = tape.gradient(total, [x, y])
    np.testing.assert_array_equal(gx.numpy(), np.broadcast_to(y.numpy(), (3, 4)))
    assert gy.shape == y.shape


def test_fused_off_keeps_nothing(numpy_route, monkeypatch, handed_out):
    monkeypatch.setenv("GPUTAPE_FUSED", "0")
    x = gt.constant([1.0, 2.0])
    with gt.GradientTape() as tape:
        tape.watch(x)
        total = gt.reduce_sum(gt.square(x))
    np.testing.assert_array_equal(tape.gradient(total, x).numpy(), [2.0, 4.0])
    assert handed_out == []


def test_only_default_seeds_are_known_to_be_ones(numpy_route, monkeypatch):
    seen: list = []
    real = fused.reduce_sum_rule

    def spy(g, *rest):
        seen.append(fill_of(g))
        return real(g, *rest)

    registry.register_joint_rule("reduce_sum", "numpy", spy, fused=True)  # (the route ends it)
    x = gt.constant([1.0, 2.0])
    for output_gradients in (None, gt.constant(1.0)):
        with gt.GradientTape() as tape:
            tape.watch(x)
            total = gt.reduce_sum(x * 2.0)
        tape.gradient(total, x, output_gradients=output_gradients)
    assert seen == [1.0, None]
