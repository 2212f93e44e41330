"""JAX-style transforms on the tape: ``grad``/``value_and_grad`` with ``has_aux``, ``vjp``, and
JAX's refusal of integer inputs. Expected values are derived by hand in each test."""

from __future__ import annotations

import numpy as np
import pytest

import gputape as gt


def test_grad_has_aux_returns_the_gradient_and_the_aux_untouched(device):
    """JAX: ``grad(f, has_aux=True)(x) == (df/dx, aux)``; aux is returned as given (here a
    tensor and a dict), not differentiated."""
    def f(x):
        y = gt.reduce_sum(x ** 2)
        return y, {"mean": gt.reduce_mean(x), "tag": "t"}

    x = gt.constant([1.0, -2.0, 4.0], dtype=gt.float64)
    g, aux = gt.grad(f, has_aux=True)(x)
    np.testing.assert_allclose(g.numpy(), [2.0, -4.0, 8.0])
    assert float(aux["mean"]) == 1.0 and aux["tag"] == "t"


def test_value_and_grad_has_aux_nests_the_value_with_the_aux(device):
    """JAX: ``value_and_grad(f, has_aux=True)(x) == ((f(x)[0], aux), grad)``; with a tuple of
    argnums, a tuple of gradients."""
    def f(x, y):
        return x * y, x + y

    (value, aux), (gx, gy) = gt.value_and_grad(f, argnums=(0, 1), has_aux=True)(2.0, 5.0)
    assert (float(value), float(aux), float(gx), float(gy)) == (10.0, 7.0, 5.0, 2.0)


def test_has_aux_of_a_function_returning_one_value_says_what_to_return():
    with pytest.raises(TypeError, match=r"has_aux=True.*pair \(output, aux\)") as info:
        gt.grad(lambda x: x * x, has_aux=True)(3.0)
    assert "hint" in str(info.value)


def test_second_order_with_has_aux(device):
    """grad of grad with aux at both levels: d2/dx2 x**3 = 6x."""
    def df(x):
        g, aux = gt.grad(lambda y: (y ** 3, "inner"), has_aux=True)(x)
        return g, aux + "+outer"

    h, aux = gt.grad(df, has_aux=True)(2.0)
    assert float(h) == 12.0 and aux == "inner+outer"


def test_vjp_pulls_back_any_cotangent(device):
    """f(x, y) = [x*y, sin(x)]: the pullback of (a, b) is (a*y + b*cos(x), a*x), one entry per
    primal (a tuple, as JAX); it can be called again with another cotangent."""
    x, y = gt.constant(0.5, dtype=gt.float64), gt.constant(3.0, dtype=gt.float64)
    out, pullback = gt.vjp(lambda x, y: [x * y, gt.sin(x)], x, y)
    assert [float(o) for o in out] == [1.5, np.sin(0.5)]
    for a, b in [(1.0, 0.0), (2.0, -1.0)]:
        gx, gy = pullback([gt.constant(a, dtype=gt.float64), gt.constant(b, dtype=gt.float64)])
        assert float(gx) == pytest.approx(a * 3.0 + b * np.cos(0.5))
        assert float(gy) == pytest.approx(a * 0.5)


def test_vjp_gives_zeros_for_an_unused_primal_and_carries_aux(device):
    out, pullback, aux = gt.vjp(lambda x, y: (x * 2.0, "aux"), gt.constant([1.0, 2.0]),
                                gt.constant([3.0]), has_aux=True)
    gx, gy = pullback(gt.ones(2))
    assert gx.numpy().tolist() == [2.0, 2.0] and gy.numpy().tolist() == [0.0] and aux == "aux"


def test_vjp_is_differentiable_again(device):
    """Under an outer tape the pullback records: d/dx of (pullback of 1 through x**3) = 6x."""
    x = gt.constant(2.0, dtype=gt.float64)
    with gt.GradientTape() as tape:
        tape.watch(x)
        _, pullback = gt.vjp(lambda x: x ** 3, x)
        (g,) = pullback(gt.constant(1.0, dtype=gt.float64))
    assert float(g) == 12.0 and float(tape.gradient(g, x)) == 12.0


def test_vjp_refuses_a_cotangent_of_another_shape_dtype_or_structure():
    """JAX raises ValueError for each: a shape or dtype other than the output's, another count
    or another container (a tuple for a list output)."""
    _, pullback = gt.vjp(lambda x: x * 2.0, gt.constant([1.0, 2.0]))
    with pytest.raises(ValueError, match=r"cotangent 0 .* shape \(3,\) .* shape \(2,\)"):
        pullback(gt.ones(3))
    with pytest.raises(ValueError, match="cotangent 0 .* is float64 but output 0 is float32"):
        pullback(gt.ones(2, dtype=gt.float64))
    with pytest.raises(ValueError, match="2 cotangent\\(s\\) in a list for 1 output"):
        pullback([gt.ones(2), gt.ones(2)])
    _, pullback = gt.vjp(lambda x: [x, x * 2.0], gt.constant(1.0))
    with pytest.raises(ValueError, match="in a tuple for 2 output\\(s\\) in a list"):
        pullback((gt.constant(1.0), gt.constant(1.0)))


@pytest.mark.parametrize("call", [
    lambda: gt.grad(lambda x: x ** 2)(3),
    lambda: gt.value_and_grad(lambda x, y: x * y, argnums=1)(2.0, 3),
    lambda: gt.hessian(lambda x: gt.reduce_sum(x ** 3))([1, 2]),
    lambda: gt.vjp(lambda x: x * 2, 3),
], ids=["grad", "value_and_grad", "hessian", "vjp"])
def test_integer_inputs_are_a_type_error_as_in_jax(call):
    """JAX 0.10 raises ``TypeError: grad requires real- or complex-valued inputs ... got
    int32`` (``jacfwd requires real-valued inputs`` for hessian, a tangent dtype mismatch for
    jvp); gputape gave None (grad) or an int32 zero matrix (hessian) with a warning. JAX's vjp
    instead gives an integer primal a float0 cotangent, a dtype gputape does not have: gputape
    raises there too."""
    with pytest.raises(TypeError, match="int32.*floating or complex inputs only") as info:
        call()
    assert isinstance(info.value, gt.ArgumentTypeError) and "hint" in str(info.value)


def test_gradients_function_keeps_tfs_none_for_integer_arguments():
    """TF's eager gradients_function gives None for an integer argument (the seeds rely on
    it); only the JAX-named transforms refuse."""
    grads = gt.gradients_function(lambda x, y: gt.cast(x, gt.float32) * y)(3, 2.0)
    assert grads[0] is None and float(grads[1]) == 3.0


def test_vectorized_map_applies_fn_to_each_example(device):
    """tf.vectorized_map: fn sees one slice along the first axis (a nest of slices for a nest
    of tensors), and its results, a nest too, are stacked."""
    x = gt.constant([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    y = gt.constant([10.0, 20.0, 30.0])
    out = gt.vectorized_map(lambda pair: (gt.reduce_sum(pair[0]) * pair[1], pair[0] * 2.0),
                            (x, y))
    assert isinstance(out, tuple)
    assert out[0].numpy().tolist() == [30.0, 140.0, 330.0]
    assert out[1].numpy().tolist() == [[2.0, 4.0], [6.0, 8.0], [10.0, 12.0]]


def test_vectorized_map_is_differentiable(device):
    """Per-example losses sum(w * x_i)^2: d/dx_i = 2 (w . x_i) w, d/dw = sum_i 2 (w . x_i) x_i."""
    x = gt.constant(np.array([[1.0, 2.0], [-1.0, 0.5]]))
    w = gt.Variable(np.array([0.5, -1.0]))
    with gt.GradientTape() as tape:
        tape.watch(x)
        losses = gt.vectorized_map(lambda row: gt.reduce_sum(w * row) ** 2, x)
        total = gt.reduce_sum(losses)
    gx, gw = tape.gradient(total, [x, w])
    dots = np.array([1.0 * 0.5 - 2.0, -0.5 - 0.5])
    np.testing.assert_allclose(gx.numpy(), 2 * dots[:, None] * np.array([0.5, -1.0]))
    np.testing.assert_allclose(gw.numpy(), 2 * dots @ np.array([[1.0, 2.0], [-1.0, 0.5]]))


@pytest.mark.parametrize("elems, words", [
    ((gt.ones(3), gt.ones(4)), ["same first dimension", "(3,)", "(4,)", "hint"]),
    (gt.constant(1.0), ["same first dimension", "()", "hint"]),
    (gt.zeros((0, 2)), ["no example", "hint"]),
    ([], ["holds no tensor", "hint"]),
])
def test_vectorized_map_refuses_elems_without_a_shared_first_axis(elems, words):
    with pytest.raises(ValueError) as info:
        gt.vectorized_map(lambda e: e, elems)
    for word in words:
        assert word in str(info.value), str(info.value)
