"""Complex gradients in TensorFlow's convention: for a holomorphic op, ``g * conj(f'(z))``;
for a real loss L of z, ``dL/dRe(z) + i dL/dIm(z)``.

The expected values in TF_GRADIENTS were obtained by running each expression with
tensorflow-cpu 2.21.0 (``tf.GradientTape``, complex128, x = 1+2j, y = 0.5-1.5j, the default
seed of ones) and are copied here as printed; the finite-difference checks need no TF.
"""

from __future__ import annotations

import numpy as np
import pytest

import gputape as gt

X, Y = 1 + 2j, 0.5 - 1.5j
V = [1 + 2j, 3 - 1j, -0.5 + 0.25j]
A = [[1 + 2j, 3 - 1j], [0.5j, 2 + 0j]]
B = [[2 - 1j, 1j], [1 + 1j, -1 + 0.5j]]

TF_GRADIENTS = {
    "mul_xx": (lambda x: gt.reduce_sum(x * x), [X], [2 - 4j]),
    "mul_xy": (lambda x, y: x * y, [X, Y], [0.5 + 1.5j, 1 - 2j]),
    "div_xy": (lambda x, y: x / y, [X, Y], [0.2 - 0.6j, 0.8 - 0.4j]),
    "sub_xy": (lambda x, y: x - y, [X, Y], [1 + 0j, -1 + 0j]),
    "pow_x3": (lambda x: x ** 3, [X], [-9 - 12j]),
    "pow_xy": (lambda x, y: gt.pow(x, y), [X, Y],
               [-5.516731708482567 + 0.7318731278515058j,
                10.325920804079303 - 3.0676684298975974j]),
    "exp": (gt.exp, [X], [-1.1312043837568135 - 2.4717266720048188j]),
    "log": (gt.log, [X], [0.2 + 0.4j]),
    "sin": (gt.sin, [X], [2.0327230070196656 + 3.0518977991518j]),
    "cos": (gt.cos, [X], [-3.165778513216168 + 1.9596010414216063j]),
    "tanh": (gt.tanh, [X], [-0.30200159823596096 - 0.5681030208920801j]),
    "sqrt": (gt.sqrt, [X], [0.28443224050289156 + 0.17578879212707146j]),
    "square": (gt.square, [X], [2 - 4j]),
    "reciprocal": (lambda x: 1 / x, [X], [0.12 - 0.16j]),
    "log1p": (gt.log1p, [X], [0.25 + 0.25j]),
    "expm1": (gt.expm1, [X], [-1.1312043837568135 - 2.4717266720048188j]),
    "sigmoid": (gt.sigmoid, [X], [0.14088880756994154 + 0.4207182797053216j]),
    "tan": (gt.tan, [X], [-0.028662776164451724 - 0.06862608009951111j]),
    "atan": (gt.atan, [X], [-0.1 + 0.2j]),
    "abs": (gt.abs, [X], [0.4472135954999579 + 0.8944271909999159j]),
    "abs_squared": (lambda x: gt.abs(x) ** 2, [X], [2 + 4j]),
    "real": (gt.real, [X], [1 + 0j]),
    "imag": (gt.imag, [X], [1j]),
    "conj": (gt.conj, [X], [1 + 0j]),
    "reduce_prod": (gt.reduce_prod, [V], [[-1.25 - 1.25j, -1 + 0.75j, 5 - 5j]]),
    "reduce_mean": (gt.reduce_mean, [V], [[1 / 3 + 0j] * 3]),
    "matmul": (lambda a, b: gt.reduce_sum(gt.matmul(a, b)), [A, B],
               [[[2, -1.5j], [2, -1.5j]], [[1 - 2.5j, 1 - 2.5j], [5 + 1j, 5 + 1j]]]),
}


def _c(value):
    return gt.constant(np.asarray(value, dtype=np.complex128))


@pytest.mark.parametrize("name", TF_GRADIENTS)
def test_gradients_are_tensorflows(device, name):
    """Before, gputape gave the conjugates of these (2+4j for sum(x*x) at 1+2j, TF 2-4j)."""
    f, args, expected = TF_GRADIENTS[name]
    xs = [_c(a) for a in args]
    with gt.GradientTape() as tape:
        tape.watch(xs)
        y = f(*xs)
    for got, want in zip(tape.gradient(y, xs), expected):
        np.testing.assert_allclose(got.numpy(), np.asarray(want), rtol=1e-12, atol=1e-14)


def test_an_upstream_gradient_is_conjugated_through_as_tf():
    """TF: tape.gradient(x * x, x, output_gradients=2-1j) at 1+2j is -10j
    (= (2-1j) * conj(2x))."""
    x = _c(X)
    with gt.GradientTape() as tape:
        tape.watch(x)
        y = x * x
    assert complex(tape.gradient(y, x, output_gradients=_c(2 - 1j)).numpy()) == -10j


HOLOMORPHIC = {
    "multiply": lambda z: z * (0.3 - 0.7j) * z,
    "divide": lambda z: (1 + 1j) / z,
    "exp": gt.exp, "log": gt.log, "sin": gt.sin, "cos": gt.cos, "tan": gt.tan,
    "tanh": gt.tanh, "sqrt": gt.sqrt, "square": gt.square, "log1p": gt.log1p,
    "expm1": gt.expm1, "sigmoid": gt.sigmoid, "atan": gt.atan,
    "pow": lambda z: z ** 3, "reduce_prod": lambda z: gt.reduce_prod(z) * gt.ones_like(z),
    "matmul": lambda z: gt.reshape(gt.matmul(gt.reshape(z, (1, 3)), _c(np.eye(3) + 0.5j)),
                                   (3,)),
    "abs": lambda z: gt.cast(gt.abs(z), gt.complex128) * z,
    "real_imag": lambda z: gt.cast(gt.real(z), gt.complex128) * gt.cast(gt.imag(z),
                                                                          gt.complex128),
    "conj": lambda z: gt.conj(z) * z,
}


def _real_loss(f, w):
    return lambda z: gt.reduce_sum(gt.real(w * f(z)))


def _finite_difference(loss, z, eps=1e-6):
    """dL/dRe + i dL/dIm of a real loss, by central differences."""
    z = np.asarray(z)
    out = np.zeros_like(z)
    for i in np.ndindex(z.shape):
        for step, weight in ((eps, 1), (1j * eps, 1j)):
            up, down = z.copy(), z.copy()
            up[i] += step
            down[i] -= step
            out[i] += weight * (float(loss(_c(up))) - float(loss(_c(down)))) / (2 * eps)
    return out


@pytest.mark.parametrize("name", HOLOMORPHIC)
def test_a_real_loss_gets_dl_dre_plus_i_dl_dim(device, name):
    """The convention checked numerically for every op that takes complex inputs (and for
    the non-holomorphic abs, real, imag and conj): the gradient of L = sum(real(w f(z))) is
    dL/dRe + i dL/dIm."""
    z = np.array([0.4 + 0.3j, -0.7 + 0.2j, 0.5 - 0.6j])
    loss = _real_loss(HOLOMORPHIC[name], _c([1 - 0.5j, 0.3 + 2j, -1 + 1j]))
    x = _c(z)
    with gt.GradientTape() as tape:
        tape.watch(x)
        value = loss(x)
    np.testing.assert_allclose(tape.gradient(value, x).numpy(), _finite_difference(loss, z),
                               rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", ["multiply", "exp", "sin", "sqrt", "abs", "conj"])
def test_second_order_is_the_same_convention(device, name):
    """The gradient g(z) of a real loss, through a second real loss M = sum(real(v g(z))):
    the outer tape's gradient of M is dM/dRe + i dM/dIm too."""
    z = np.array([0.4 + 0.3j, -0.7 + 0.2j, 0.5 - 0.6j])
    inner_loss = _real_loss(HOLOMORPHIC[name], _c([1 - 0.5j, 0.3 + 2j, -1 + 1j]))
    v = _c([0.2 + 1j, -1.5 + 0.5j, 1 + 0j])

    def outer_loss(x):
        with gt.GradientTape() as inner:
            inner.watch(x)
            value = inner_loss(x)
        return gt.reduce_sum(gt.real(v * inner.gradient(value, x)))

    x = _c(z)
    with gt.GradientTape() as tape:
        tape.watch(x)
        m = outer_loss(x)
    np.testing.assert_allclose(tape.gradient(m, x).numpy(), _finite_difference(outer_loss, z),
                               rtol=1e-5, atol=1e-7)


def test_a_custom_gradient_speaks_tfs_convention():
    """The user's rule for f(z) = z * z written as TF's would be, upstream * conj(2z), gives
    the same gradient as the built-in multiply."""
    @gt.custom_gradient
    def squared(z):
        return z * z, lambda upstream: upstream * gt.conj(2 * z)

    x = _c(X)
    with gt.GradientTape() as tape:
        tape.watch(x)
        y = squared(x)
    assert complex(tape.gradient(y, x).numpy()) == 2 - 4j


def test_a_python_complex_becomes_complex128_as_in_tf():
    """TF 2.21: tf.constant(1+2j) and tf.constant([1+2j]) are complex128 (a Python float is
    float32); next to a complex64 tensor, a Python complex keeps complex64."""
    assert gt.constant(1 + 2j).dtype == gt.complex128
    assert gt.constant([1 + 2j]).dtype == gt.complex128
    x = gt.constant([1.0 + 0j], dtype=gt.complex64)
    assert (x * (1 + 2j)).dtype == gt.complex64


def _directional(loss, point, direction, eps=1e-6):
    return (float(loss(_c(point + eps * direction))) - float(loss(_c(point - eps * direction)))
            ) / (2 * eps)


def _hermitian(rng, n, positive=False):
    m = rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))
    return m @ m.conj().T + 3 * np.eye(n) if positive else m + m.conj().T


@pytest.mark.parametrize("name", ["cholesky", "logdet", "slogdet", "triangular_solve",
                                  "triangular_solve_adjoint", "cholesky_solve"])
def test_matrix_functions_follow_tfs_convention(device, name):
    """Along a direction D that keeps the input valid (Hermitian, or the triangle a solve
    reads), the real loss changes by Re(sum(conj(gradient) * D)), TF's convention; checked
    by central differences (TF 2.21 agrees; before, gputape's factor and solves did not)."""
    rng = np.random.default_rng(1)
    w = rng.standard_normal((3, 2)) + 1j * rng.standard_normal((3, 2))
    rhs = _c(rng.standard_normal((3, 2)) + 1j * rng.standard_normal((3, 2)))
    a = _hermitian(rng, 3, positive=True)
    d = _hermitian(rng, 3)
    lower = np.tril(rng.standard_normal((3, 3)) + 1j * rng.standard_normal((3, 3)))
    functions = {
        "cholesky": lambda m: gt.reduce_sum(gt.real(_c(w[:, :1] @ np.ones((1, 3)))
                                                    * gt.linalg.cholesky(m))),
        "logdet": lambda m: gt.real(gt.linalg.logdet(m)),
        "slogdet": lambda m: gt.linalg.slogdet(m)[1],
        "triangular_solve": lambda m: gt.reduce_sum(gt.real(
            _c(w) * gt.linalg.triangular_solve(m, rhs))),
        "triangular_solve_adjoint": lambda m: gt.reduce_sum(gt.real(
            _c(w) * gt.linalg.triangular_solve(m, rhs, lower=True, adjoint=True))),
        "cholesky_solve": lambda m: gt.reduce_sum(gt.real(
            _c(w) * gt.linalg.cholesky_solve(m, rhs))),
    }
    point, direction = (a, d) if name in ("cholesky", "logdet", "slogdet") else (
        lower + 3 * np.eye(3), np.tril(_hermitian(rng, 3)))
    loss = functions[name]
    x = _c(point)
    with gt.GradientTape() as tape:
        tape.watch(x)
        value = loss(x)
    grad = tape.gradient(value, x).numpy()
    assert np.real(np.sum(np.conj(grad) * direction)) == pytest.approx(
        _directional(loss, point, direction), rel=1e-5, abs=1e-7)
