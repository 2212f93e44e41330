"""Forward mode: ForwardAccumulator (TensorFlow's contract), gt.jvp and gt.jacfwd (JAX's), and
their nesting with tapes. Expected values are derived by hand in each test; the registry-wide
check against finite differences is in tests/ops/test_gradients.py."""

from __future__ import annotations

import numpy as np
import pytest

import gputape as gt


def _f64(values):
    return gt.constant(values, dtype=gt.float64)


_ONE = gt.constant(1.0)


def test_an_integer_primal_warns_and_carries_no_tangent_as_in_tf(device):
    """TF logs "The dtype of the watched primal must be floating" and gives no tangent; an
    integer target's tangent is None, or integer zeros with unconnected_gradients="zero"."""
    count = gt.constant([1, 2])
    with pytest.warns(UserWarning, match="primal 0 must be floating.*int32"):
        acc = gt.autodiff.ForwardAccumulator(count, gt.constant([1, 1]))
    with acc:
        doubled = count * 2
    assert acc.jvp(doubled) is None
    zeros = acc.jvp(doubled, unconnected_gradients="zero")
    assert zeros.dtype == np.int32 and zeros.numpy().tolist() == [0, 0]


def test_jvp_of_a_chain_is_the_directional_derivative(device):
    """y = sin(x) * x: dy = (cos(x) x + sin(x)) t, elementwise."""
    x, t = np.array([0.3, -1.2, 2.0]), np.array([1.0, -2.0, 0.5])
    primal = _f64(x)
    with gt.autodiff.ForwardAccumulator(primal, _f64(t)) as acc:
        y = gt.sin(primal) * primal
    np.testing.assert_allclose(acc.jvp(y).numpy(), (np.cos(x) * x + np.sin(x)) * t)


def test_jvp_of_the_primal_is_its_tangent_and_structure_is_kept(device):
    x, z = _f64([1.0, 2.0]), _f64(3.0)
    with gt.autodiff.ForwardAccumulator([x, z], [_f64([0.5, -1.0]), _f64(2.0)]) as acc:
        y = x * z
    found = acc.jvp({"x": x, "y": y})
    assert found["x"].numpy().tolist() == [0.5, -1.0]
    assert found["y"].numpy().tolist() == [0.5 * 3 + 1 * 2, -1.0 * 3 + 2 * 2]  # t_x z + x t_z


def test_unconnected_targets_get_none_or_zeros(device):
    """TF: a tensor the primals do not reach has no tangent (None), or zeros on request;
    integer results have none."""
    x, other = _f64([1.0, 2.0]), _f64([5.0])
    with gt.autodiff.ForwardAccumulator(x, _f64([1.0, 1.0])) as acc:
        unrelated = other * 2.0
        count = gt.cast(x, gt.int32)
    assert acc.jvp(unrelated) is None
    assert acc.jvp(unrelated, unconnected_gradients="zero").numpy().tolist() == [0.0]
    assert acc.jvp(count) is None


def test_forward_over_reverse_is_a_hessian_vector_product(device):
    """TF's documented use: acc.jvp(tape.gradient(...)) = H v; f = sum(x^2 y) + sum(x^3):
    H_xx = diag(2y + 6x)."""
    x, y = _f64([1.0, -2.0]), _f64([3.0, 0.5])
    v = _f64([1.0, 2.0])
    with gt.autodiff.ForwardAccumulator(x, v) as acc:
        with gt.GradientTape() as tape:
            tape.watch(x)
            f = gt.reduce_sum(x * x * y) + gt.reduce_sum(x ** 3)
        g = tape.gradient(f, x)
    expected = (2 * np.array([3.0, 0.5]) + 6 * np.array([1.0, -2.0])) * np.array([1.0, 2.0])
    np.testing.assert_allclose(acc.jvp(g).numpy(), expected)


def test_reverse_over_forward_differentiates_the_tangent(device):
    """A tape around the accumulator: d/dx of the JVP of x^3 along t = 6 x t."""
    x, t = _f64([1.0, 2.0]), _f64([1.0, -1.0])
    with gt.GradientTape() as tape:
        tape.watch(x)
        with gt.autodiff.ForwardAccumulator(x, t) as acc:
            y = x ** 3
        tangent = acc.jvp(y)
    np.testing.assert_allclose(tangent.numpy(), [3.0, -12.0])
    np.testing.assert_allclose(tape.gradient(tangent, x).numpy(), [6.0, -12.0])


def test_forward_over_forward_is_a_second_directional_derivative(device):
    """Two accumulators on x along 1: the JVP of the JVP of x^3 is 6x."""
    x = _f64(2.0)
    with gt.autodiff.ForwardAccumulator(x, _f64(1.0)) as outer:
        with gt.autodiff.ForwardAccumulator(x, _f64(1.0)) as inner:
            y = x ** 3
        dy = inner.jvp(y)
    assert float(dy) == 12.0 and float(outer.jvp(dy)) == 12.0


def test_a_variable_as_primal(device):
    v = gt.Variable(np.array([2.0, 3.0]))
    with gt.autodiff.ForwardAccumulator(v, _f64([1.0, 0.0])) as acc:
        y = gt.reduce_sum(v * v)
    assert float(acc.jvp(y)) == 4.0


def test_gt_jvp_and_jacfwd_agree_with_the_reverse_jacobian(device):
    """jacfwd of f: R^3 -> R^2 equals tape.jacobian; each column is a jvp along a basis
    vector."""
    def f(x):
        return gt.stack([gt.reduce_sum(x * x), gt.reduce_prod(x)])

    x = _f64([1.0, 2.0, 3.0])
    forward = gt.jacfwd(f)(x).numpy()
    with gt.GradientTape() as tape:
        tape.watch(x)
        y = f(x)
    np.testing.assert_allclose(forward, tape.jacobian(y, x).numpy())
    np.testing.assert_allclose(forward, [[2.0, 4.0, 6.0], [6.0, 3.0, 2.0]])
    for j in range(3):
        _, column = gt.jvp(f, (x,), (_f64(np.eye(3)[j]),))
        np.testing.assert_allclose(column.numpy(), forward[:, j])


def test_jacfwd_of_a_function_that_ignores_its_argument_is_zero():
    jac = gt.jacfwd(lambda x: gt.constant([1.0, 2.0]))(gt.constant([3.0, 4.0, 5.0]))
    assert jac.shape == (2, 3) and not jac.numpy().any()


def test_jvp_gives_zeros_where_the_output_does_not_depend_on_the_primals():
    out, tangent = gt.jvp(lambda x: (x * 2.0, gt.constant(1.0)), (3.0,), (1.0,))
    assert float(tangent[0]) == 2.0 and float(tangent[1]) == 0.0


@pytest.mark.parametrize("make, error, words", [
    (lambda: gt.autodiff.ForwardAccumulator([gt.constant(1.0)], []), ValueError,
     ["1 primal(s) but 0 tangent(s)", "hint"]),
    (lambda: gt.autodiff.ForwardAccumulator(gt.constant([1.0]), gt.constant([1.0, 2.0])),
     ValueError, ["tangent 0 has shape (2,)", "(1,)", "hint"]),
    (lambda: gt.autodiff.ForwardAccumulator(gt.constant(1.0), _f64(1.0)), ValueError,
     ["tangent 0 is float64", "float32", "hint"]),
    (lambda: gt.autodiff.ForwardAccumulator([_ONE, _ONE], [_ONE, _ONE]), ValueError,
     ["primal 1", "more than once", "hint"]),
    (lambda: gt.jvp(lambda x: x, 1.0, 1.0), TypeError, ["tuples", "hint"]),
    (lambda: gt.jvp(lambda x: x, (1.0,), (1.0, 2.0)), TypeError, ["1 primal(s) but 2", "hint"]),
    (lambda: gt.jvp(lambda x: x * 2, (3,), (1,)), TypeError, ["int32", "hint"]),
], ids=["count", "shape", "dtype", "twice", "not-tuples", "jvp-count", "jvp-int"])
def test_bad_arguments_are_refused_with_a_hint(make, error, words):
    """TF 2.21 raises ValueError for a count, dtype or repeated-primal mismatch (a tangent of
    another shape it does not check: gputape's ValueError is stricter); JAX's jvp raises
    TypeError for non-tuples, a count mismatch and an integer primal."""
    with pytest.raises(error) as info:
        make()
    for word in words:
        assert word in str(info.value), str(info.value)
