"""Seed 000: first, higher and partial derivatives with gradients_function and tapes.

Expected values are the ones TensorFlow 2.21 prints for the same code (``tf.`` -> ``gt.``,
``tfe.gradients_function`` -> ``gt.gradients_function``, ``tf.lin_space`` -> ``gt.lin_space``).
"""

from math import pi

import numpy as np
import pytest

import gputape as gt


def test_first_derivative_of_square_sin(device, capsys):
    def f(x):
        return gt.square(gt.sin(x))

    assert f(pi / 2).numpy() == 1.0
    grad_f = gt.gradients_function(f)
    print(grad_f(np.zeros(1))[0].numpy())
    assert capsys.readouterr().out == "[0.]\n"
    assert grad_f(np.zeros(1))[0].dtype == np.float64


def test_higher_order_derivatives_match_tensorflow(device):
    def f(x):
        return gt.square(gt.sin(x))

    def grad(f):
        return lambda x: gt.gradients_function(f)(x)[0]

    x = gt.lin_space(-2 * pi, 2 * pi, 100)
    x = x.numpy()
    assert x.dtype == np.float32
    # TensorFlow 2.21's first five values of each curve (float32).
    expected = {
        "f": [3.0570967e-14, 1.6025620e-02, 6.3075282e-02, 1.3813299e-01, 2.3638691e-01],
        "d1": [-3.4969111e-07, 2.5114775e-01, 4.8619664e-01, 6.9007903e-01, 8.4972495e-01],
        "d2": [2.0, 1.9358975, 1.7476989, 1.447468, 1.0544523],
        "d3": [1.3987644e-06, -1.0045910e00, -1.9447865e00, -2.7603161e00, -3.3988998e00],
    }
    curves = {"f": f(x), "d1": grad(f)(x), "d2": grad(grad(f))(x), "d3": grad(grad(grad(f)))(x)}
    for name, values in curves.items():
        assert values.dtype == np.float32
        np.testing.assert_allclose(values.numpy()[:5], expected[name], rtol=2e-5, atol=2e-6,
                                   err_msg=name)
    exact = {"d1": np.sin(2 * x), "d2": 2 * np.cos(2 * x), "d3": -4 * np.sin(2 * x)}
    for name, values in exact.items():
        np.testing.assert_allclose(curves[name].numpy(), values, atol=5e-5, err_msg=name)


def test_power_loop_and_its_gradient(device, capsys):
    def f(x, y):
        output = 1
        for _ in range(int(y)):
            output = gt.multiply(output, x)
        return output

    def g(x, y):
        return gt.gradients_function(f)(x, y)[0]

    print(f(3.0, 2).numpy())
    print(g(3.0, 2).numpy())
    print(f(4.0, 3).numpy())
    print(g(4.0, 3).numpy())
    # The post's values; TF 2.21 prints the gradients (6.0, 48.0) but refuses
    # tf.multiply(1, 3.0), which gputape accepts as a float32 3.0.
    assert capsys.readouterr().out.split() == ["9.0", "6.0", "64.0", "48.0"]
    assert gt.gradients_function(f)(3.0, 2)[1] is None


def test_partial_derivatives_on_a_persistent_tape(device, capsys):
    x = gt.ones((2, 2))
    with gt.GradientTape(persistent=True) as t:
        t.watch(x)
        y = gt.reduce_sum(x)
        z = gt.multiply(y, y)
    dz_dy = t.gradient(z, y)
    print(dz_dy.numpy())
    dz_dx = t.gradient(z, x)
    print(dz_dx.numpy())
    for i in [0, 1]:
        for j in [0, 1]:
            print(dz_dx[i][j].numpy())
    assert capsys.readouterr().out == "8.0\n[[8. 8.]\n [8. 8.]]\n8.0\n8.0\n8.0\n8.0\n"
    print(dz_dx)
    expected = "gt.Tensor(\n[[8. 8.]\n [8. 8.]], shape=(2, 2), dtype=float32)\n"
    assert capsys.readouterr().out == expected


def test_second_derivative_needs_the_outer_tape_to_watch(device, capsys):
    x = gt.constant(2.0)
    with gt.GradientTape() as t:
        with gt.GradientTape() as t2:
            t2.watch(x)
            y = x * x * x
        dy_dx = t2.gradient(y, x)
    d2y_dx2 = t.gradient(dy_dx, x)
    print(dy_dx.numpy())
    print(d2y_dx2)  # TF: None, because t never watched x
    assert capsys.readouterr().out == "12.0\nNone\n"
    with pytest.raises(AttributeError):
        d2y_dx2.numpy()


def test_second_derivative_when_the_outer_tape_watches(device):
    x = gt.constant(2.0)
    with gt.GradientTape() as t:
        t.watch(x)
        with gt.GradientTape() as t2:
            t2.watch(x)
            y = x * x * x
        dy_dx = t2.gradient(y, x)
    assert float(t.gradient(dy_dx, x)) == 12.0
