"""Seed 001: custom derivatives, multi-variable gradients, second derivatives, gradient descent.

Expected values are TensorFlow 2.21's (the post's ``keras.optimizers.SGD(lr=...)`` is spelled
``gt.optimizers.SGD(lr=...)``; gputape accepts the old ``lr`` name).
"""

import numpy as np

import gputape as gt


def g(x1, x2):
    return (x1 + 5) * (x2**2)


def f(x):
    return 3.0 * x**2 + 2.0 * x - 1


def test_multi_variable_persistent(device, capsys):
    x1 = gt.Variable(2.0)
    x2 = gt.Variable(3.0)
    with gt.GradientTape(persistent=True) as tape:
        z = g(x1, x2)
    dz_x1 = tape.gradient(z, x1)
    dz_x2 = tape.gradient(z, x2)
    print(dz_x1, dz_x2)
    del tape
    out = capsys.readouterr().out
    assert out == ("gt.Tensor(9.0, shape=(), dtype=float32) "
                   "gt.Tensor(42.0, shape=(), dtype=float32)\n")


def test_multi_variable_list_of_sources(device):
    x1 = gt.Variable(2.0)
    x2 = gt.Variable(3.0)
    with gt.GradientTape() as tape:
        z = g(x1, x2)
    dz_x1x2 = tape.gradient(z, [x1, x2])
    assert [float(t) for t in dz_x1x2] == [9.0, 42.0]
    assert all(t.dtype == np.float32 for t in dz_x1x2)


def test_constants_need_watch(device):
    x1 = gt.constant(2.0)
    x2 = gt.constant(3.0)
    with gt.GradientTape() as tape:
        tape.watch(x1)
        tape.watch(x2)
        z = g(x1, x2)
    assert [float(t) for t in tape.gradient(z, [x1, x2])] == [9.0, 42.0]


def test_multiple_targets(device, capsys):
    x = gt.Variable(5.0)
    with gt.GradientTape(persistent=True) as tape:
        z1 = 3 * x
        z2 = x**2
    print(tape.gradient([z1, z2], x))
    print(tape.gradient(z1, x))
    print(tape.gradient(z2, x))
    assert capsys.readouterr().out == (
        "gt.Tensor(13.0, shape=(), dtype=float32)\n"
        "gt.Tensor(3.0, shape=(), dtype=float32)\n"
        "gt.Tensor(10.0, shape=(), dtype=float32)\n"
    )


def test_second_derivatives(device):
    x1 = gt.Variable(2.0)
    x2 = gt.Variable(3.0)
    with gt.GradientTape(persistent=True) as outer_tape:
        with gt.GradientTape(persistent=True) as inner_tape:
            z = g(x1, x2)
        inner_grads = inner_tape.gradient(z, [x1, x2])
    outer_grads = [outer_tape.gradient(inner_grad, [x1, x2]) for inner_grad in inner_grads]
    del inner_tape
    del outer_tape
    assert outer_grads[0][0] is None  # dz/dx1 = x2**2 does not depend on x1
    assert [float(outer_grads[0][1]), float(outer_grads[1][0]), float(outer_grads[1][1])] == [
        6.0, 6.0, 14.0]


def test_gradient_descent_by_hand(device, capsys):
    learning_rate = 0.1
    x = gt.Variable(0.0)
    for _ in range(100):
        with gt.GradientTape() as tape:
            z = f(x)
        dz_dx = tape.gradient(z, x)
        x.assign_sub(learning_rate * dz_dx)
    print(x.numpy())
    assert capsys.readouterr().out == "-0.3333333\n"
    assert x.numpy() == np.float32(-0.3333333134651184)


def test_gradient_descent_with_optimizer(device, capsys):
    learning_rate = 0.1
    x = gt.Variable(0.0)
    optimizer = gt.optimizers.SGD(lr=learning_rate)
    for _ in range(100):
        with gt.GradientTape() as tape:
            z = f(x)
        dz_dx = tape.gradient(z, x)
        optimizer.apply_gradients([(dz_dx, x)])
    print(x)
    assert "numpy=-0.3333333>" in capsys.readouterr().out
    assert x.numpy() == np.float32(-0.3333333134651184)
    assert optimizer.iterations == 100
