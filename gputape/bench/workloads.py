"""The workload suite. Each workload builds its inputs once per (size, device) and returns a
closure that runs forward + gradient; inputs are random, never all zeros. The closure's
``inputs`` attribute holds host copies of them, taken before any call (the tests check the
results against NumPy from these)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

import gputape as gt

SIZES = {
    "small": [10**3, 10**4, 10**5],
    "medium": [10**3, 10**4, 10**5, 10**6],
    "large": [10**3, 10**4, 10**5, 10**6, 10**7, 10**8],
}


@dataclass
class Workload:
    name: str
    description: str
    build: Callable  # (size, device, rng) -> run
    sized: bool = True  # runs at every size of the preset, else once
    fixed_size: int = 0
    bytes_per_element: int = 0  # bytes a perfect implementation moves per element


def _random(rng, shape, device, dtype=np.float32, low=0.5, high=1.5):
    return gt.constant(rng.uniform(low, high, shape).astype(dtype), device=device)


def _keeping(run, **inputs):
    run.inputs = {name: np.array(value) for name, value in inputs.items()}
    return run


def _tiny_chain(size, device, rng):
    x = _random(rng, (16,), device)

    def run():
        with gt.GradientTape() as tape:
            tape.watch(x)
            y = x
            for _ in range(50):
                y = gt.sin(y) * x + x
            loss = gt.reduce_sum(y)
        return tape.gradient(loss, x)

    return _keeping(run, x=x)


def _two_input_gradient(expression):
    def build(size, device, rng):
        x, y = _random(rng, (size,), device), _random(rng, (size,), device)

        def run():
            with gt.GradientTape() as tape:
                tape.watch([x, y])
                loss = expression(x, y)
            return tape.gradient(loss, [x, y])

        return _keeping(run, x=x, y=y)

    return build


def _sum_pow(size, device, rng):
    x = _random(rng, (size,), device)

    def run():
        with gt.GradientTape() as tape:
            tape.watch(x)
            loss = gt.reduce_sum(x**3)
        return tape.gradient(loss, x)

    return _keeping(run, x=x)


def _mlp_step(size, device, rng):
    images = _random(rng, (256, 784), device, low=0.0, high=1.0)
    labels_idx = rng.integers(0, 10, 256)
    labels = gt.constant(np.eye(10, dtype=np.float32)[labels_idx], device=device)
    w1 = gt.Variable(rng.normal(0, 0.05, (784, 512)).astype(np.float32), device=device)
    b1 = gt.Variable(np.zeros(512, np.float32) + 0.01, device=device)
    w2 = gt.Variable(rng.normal(0, 0.05, (512, 10)).astype(np.float32), device=device)
    b2 = gt.Variable(np.zeros(10, np.float32) + 0.01, device=device)
    params = [w1, b1, w2, b2]
    opt = gt.optimizers.SGD(learning_rate=0.01)

    def run():
        with gt.GradientTape() as tape:
            hidden = gt.relu(images @ w1 + b1)
            logits = hidden @ w2 + b2
            loss = gt.reduce_mean(gt.nn.softmax_cross_entropy_with_logits(labels, logits))
        opt.apply_gradients(zip(tape.gradient(loss, params), params))
        return loss

    return _keeping(run, images=images, labels=labels, w1=w1, b1=b1, w2=w2, b2=b2)


def cnn_data(rng):
    """cnn_step's batch and weights (shared with the peers): 64 images of 28 x 28 x 1, two
    3 x 3 convolutions (8 and 16 channels), a 784 -> 10 dense layer."""
    images = rng.uniform(0.0, 1.0, (64, 28, 28, 1)).astype(np.float32)
    labels = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 64)]
    params = [rng.normal(0, 0.3, (3, 3, 1, 8)).astype(np.float32),
              np.full(8, 0.01, np.float32),
              rng.normal(0, 0.1, (3, 3, 8, 16)).astype(np.float32),
              np.full(16, 0.01, np.float32),
              rng.normal(0, 0.05, (784, 10)).astype(np.float32),
              np.full(10, 0.01, np.float32)]
    return images, labels, params


def _cnn_step(size, device, rng):
    images, labels, values = cnn_data(rng)
    images = gt.constant(images, device=device)
    labels = gt.constant(labels, device=device)
    params = [gt.Variable(v, device=device) for v in values]
    opt = gt.optimizers.SGD(learning_rate=0.01)

    def run():
        c1, b1, c2, b2, w, b = params
        with gt.GradientTape() as tape:
            h = gt.nn.max_pool2d(gt.nn.relu(gt.nn.conv2d(images, c1, 1, "SAME") + b1),
                                 2, 2, "VALID")
            h = gt.nn.max_pool2d(gt.nn.relu(gt.nn.conv2d(h, c2, 1, "SAME") + b2), 2, 2, "VALID")
            logits = gt.reshape(h, (64, 784)) @ w + b
            loss = gt.reduce_mean(gt.nn.softmax_cross_entropy_with_logits(labels, logits))
        opt.apply_gradients(zip(tape.gradient(loss, params), params))
        return loss

    names = ("c1", "b1", "c2", "b2", "w", "b")
    return _keeping(run, images=images, labels=labels, **dict(zip(names, values)))


def _third_derivative(size, device, rng):
    x = gt.constant(np.linspace(-2 * np.pi, 2 * np.pi, 1000, dtype=np.float32), device=device)

    def f(v):
        return gt.square(gt.sin(v))

    d3 = gt.grad(gt.grad(gt.grad(f)))
    return _keeping(lambda: d3(x), x=x)


def _hessian(size, device, rng):
    x = _random(rng, (64,), device)
    a = _random(rng, (64, 64), device)
    h = gt.hessian(lambda v: gt.reduce_sum(gt.sin(a @ v) * v))
    return _keeping(lambda: h(x), x=x, a=a)


def _jacobian(size, device, rng):
    x = _random(rng, (256,), device)
    w = _random(rng, (256, 256), device, low=0.5 / 256, high=1.5 / 256)  # tanh(w @ x) not flat

    def run():
        with gt.GradientTape() as tape:
            tape.watch(x)
            y = gt.tanh(w @ x) * x
        return tape.jacobian(y, x)

    return _keeping(run, x=x, w=w)


WORKLOADS = [
    Workload("tiny_chain", "50 x (sin, mul, add) on 16 elements, forward + gradient",
             _tiny_chain, sized=False, fixed_size=16),
    Workload("elementwise_grad", "grad of reduce_sum(x*y + x**3*sin(y)) w.r.t. x, y",
             _two_input_gradient(lambda x, y: gt.reduce_sum(x * y + x**3 * gt.sin(y))),
             bytes_per_element=16),
    Workload("sum_xy", "grad of reduce_sum(x*y) w.r.t. x, y",
             _two_input_gradient(lambda x, y: gt.reduce_sum(x * y)), bytes_per_element=16),
    Workload("sum_pow", "grad of reduce_sum(x**3) w.r.t. x", _sum_pow, bytes_per_element=8),
    Workload("mlp_step", "784-512-10 MLP, batch 256, one SGD step", _mlp_step, sized=False,
             fixed_size=256),
    Workload("cnn_step", "two 3x3 conv + relu + 2x2 max pool, dense, softmax cross entropy; "
             "batch 64 of 28x28x1, one SGD step", _cnn_step, sized=False, fixed_size=64),
    Workload("third_derivative", "d3/dx3 sin(x)^2 over 1,000 points (nested tapes)",
             _third_derivative, sized=False, fixed_size=1000),
    Workload("hessian_64", "Hessian of a 64-dim function (nested tapes + jacobian)", _hessian,
             sized=False, fixed_size=64),
    Workload("jacobian_256", "jacobian of a 256-vector function", _jacobian, sized=False,
             fixed_size=256),
]
