"""Numerical gradient checks: ``compute_gradient`` (TensorFlow's form) and ``check_gradients``
(finite differences against the tape, to any order)."""

from __future__ import annotations

import numpy as np

from ..autodiff.tape import GradientTape
from ..core.tensor import Tensor, convert_to_tensor

__all__ = ["compute_gradient", "check_gradients"]


def _host(t) -> np.ndarray:
    return np.asarray(t.numpy() if isinstance(t, Tensor) else t)


def _theoretical(f, xs: list) -> "list[np.ndarray]":
    """Jacobians ``(y.size, x.size)`` from the tape, one per argument."""
    with GradientTape() as tape:
        for x in xs:
            tape.watch(x)
        y = convert_to_tensor(f(*xs))
    jacobians = tape.jacobian(y, xs, unconnected_gradients="zero")
    return [_host(j).reshape(y.size, x.size) for j, x in zip(jacobians, xs)]


def _numerical(f, xs: list, delta: float) -> "list[np.ndarray]":
    """Central-difference Jacobians ``(y.size, x.size)``, one per argument."""
    hosts = [_host(x).astype(x.dtype) for x in xs]
    devices = [x.device for x in xs]

    def evaluate(values):
        args = [convert_to_tensor(v, device=d) for v, d in zip(values, devices)]
        return _host(f(*args)).astype(np.float64).ravel()

    y_size = evaluate(hosts).size
    result = []
    for i, base in enumerate(hosts):
        jac = np.zeros((y_size, base.size))
        for j in range(base.size):
            plus, minus = base.copy(), base.copy()
            plus.flat[j] += delta
            minus.flat[j] -= delta
            values_p = hosts[:i] + [plus] + hosts[i + 1:]
            values_m = hosts[:i] + [minus] + hosts[i + 1:]
            step = float(plus.flat[j]) - float(minus.flat[j])
            jac[:, j] = (evaluate(values_p) - evaluate(values_m)) / step
        result.append(jac)
    return result


def compute_gradient(f, x, delta=None):
    """Theoretical and numerical Jacobians of ``f`` at the list of arguments ``x``.

    Returns two lists (theoretical, numerical) with one 2-d NumPy array per argument, of shape
    ``(y.size, x_i.size)``, like ``tf.test.compute_gradient``.

    Examples
    --------
    >>> import numpy as np
    >>> import gputape as gt
    >>> theory, numeric = gt.testing.compute_gradient(gt.square, [np.array([3.0])])
    >>> theory[0], np.round(numeric[0], 6)
    (array([[6.]]), array([[6.]]))
    """
    xs = [convert_to_tensor(v) for v in (x if isinstance(x, (list, tuple)) else [x])]
    if delta is None:
        delta = 1e-3 if all(t.dtype == np.float64 for t in xs) else 1.0 / 256
    return _theoretical(f, xs), _numerical(f, xs, float(delta))


def check_gradients(f, *args, order: int = 1, rtol: float = 1e-5, atol: float = 1e-6,
                    delta: float = 1e-6, seed: int = 0) -> None:
    """Check the tape's derivatives of ``f`` up to ``order`` against finite differences.

    Use float64 arguments. Order ``k`` checks the Jacobian of the ``(k-1)``-th derivative
    contracted with a random direction. Raises ``AssertionError`` naming the worst element.

    Examples
    --------
    >>> import numpy as np
    >>> import gputape as gt
    >>> gt.testing.check_gradients(gt.sin, np.array([0.3, 1.2]), order=2)
    """
    xs = [convert_to_tensor(a) for a in args]
    rng = np.random.default_rng(seed)
    fn = f
    for level in range(1, order + 1):
        _compare(fn, xs, level, rtol, atol, delta)
        if level < order:
            fn = _directional_gradient(fn, xs, rng)


def _compare(f, xs, level: int, rtol: float, atol: float, delta: float) -> None:
    theory = _theoretical(f, xs)
    numeric = _numerical(f, xs, delta)
    for i, (t, n) in enumerate(zip(theory, numeric)):
        if t.shape != n.shape:
            raise AssertionError(f"order {level}, argument {i}: shapes {t.shape} vs {n.shape}")
        err = np.abs(t - n)
        bound = atol + rtol * np.abs(n)
        bad = ~(err <= bound)
        if bad.any():
            worst = np.unravel_index(np.argmax(np.where(bad, err - bound, -np.inf)), err.shape)
            raise AssertionError(
                f"check_gradients: order {level}, argument {i}: d out[{worst[0]}] / d "
                f"x[{worst[1]}]: tape {t[worst]!r} vs finite differences {n[worst]!r} "
                f"(|error| {err[worst]:.3g} > tolerance {bound[worst]:.3g}); {int(bad.sum())} of "
                f"{bad.size} elements off"
            )


def _directional_gradient(f, xs, rng):
    """``x -> concat(d <f(x), u> / dx)`` for a fixed random ``u``: its Jacobian holds the
    next order of derivatives."""
    from ..ops import concat, reduce_sum, reshape

    probe = convert_to_tensor(f(*xs))
    u = rng.standard_normal(probe.shape).astype(probe.dtype)

    def directional(*args):
        with GradientTape() as tape:
            for a in args:
                tape.watch(a)
            y = convert_to_tensor(f(*args))
            weighted = reduce_sum(y * convert_to_tensor(u, device=y.device))
        grads = tape.gradient(weighted, list(args), unconnected_gradients="zero")
        return concat([reshape(g, (-1,)) for g in grads], 0)

    return directional
