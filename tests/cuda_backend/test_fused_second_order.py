"""Second order through the fused route: nested tapes over sums and means of ``x * y``,
``square(x)`` and ``x ** p`` (p watched, a constant, an integer; broadcast operands; partial
axes), for each choice of watched inputs, against ``GPUTAPE_FUSED=0``.

While the outer tape records, the inner gradient must use no gradients kept from the forward
and no op whose gradient would connect what TF leaves unconnected: the same values, and
``None`` exactly where the generic rules give ``None`` (e.g. d(dz/dy)/dy of z = sum(x * y)).
"""

from __future__ import annotations

import numpy as np
import pytest
from fused_helpers import assert_same, fused_and_generic

import gputape as gt

# name -> (function, input shapes, the watch choices: indices of the inputs a tape watches)
BOTH = [(0,), (1,), (0, 1)]
PATTERNS = {
    "sum x*y": (lambda x, y: gt.reduce_sum(x * y), [(3, 4), (3, 4)], BOTH),
    "mean x*y": (lambda x, y: gt.reduce_mean(x * y), [(3, 4), (3, 4)], BOTH),
    "sum x*y, y broadcast": (lambda x, y: gt.reduce_sum(x * y), [(3, 4), (4,)], BOTH),
    "sum x*y over axis 0": (lambda x, y: gt.reduce_sum(x * y, axis=0), [(3, 4), (3, 4)], BOTH),
    "mean x*y over axis 1, kept": (lambda x, y: gt.reduce_mean(x * y, axis=1, keepdims=True),
                                   [(3, 4), (1, 4)], BOTH),
    "sum x*y*x": (lambda x, y: gt.reduce_sum(x * y * x), [(3, 4), (3, 4)], BOTH),
    "sum x**p": (lambda x, p: gt.reduce_sum(gt.pow(x, p)), [(3, 4), ()], BOTH),
    "mean x**p": (lambda x, p: gt.reduce_mean(gt.pow(x, p)), [(3, 4), ()], BOTH),
    "sum x**p, p broadcast": (lambda x, p: gt.reduce_sum(gt.pow(x, p)), [(4,), (3, 1)], BOTH),
    "sum square": (lambda x: gt.reduce_sum(gt.square(x)), [(3, 4)], [(0,)]),
    "mean square": (lambda x: gt.reduce_mean(gt.square(x)), [(3, 4)], [(0,)]),
    "sum square over axis 1": (lambda x: gt.reduce_sum(gt.square(x), axis=1), [(3, 4)], [(0,)]),
    "sum x**2.5": (lambda x: gt.reduce_sum(x ** 2.5), [(3, 4)], [(0,)]),
    "sum x**3": (lambda x: gt.reduce_sum(x ** 3), [(3, 4)], [(0,)]),
    "mean x**2 over axis 0": (lambda x: gt.reduce_mean(x ** 2.0, axis=0), [(3, 4)], [(0,)]),
}
CASES = [pytest.param(name, watch, id=f"{name}-watch{''.join('xyp'[i] for i in watch)}")
         for name, (_, _, watches) in PATTERNS.items() for watch in watches]


def _second_order(fn, watch: tuple):
    """``fn``'s value, its gradients and the gradients of each of those, for the inputs
    ``watch`` (the others are constants), under two nested tapes."""
    def run(*tensors):
        sources = [tensors[i] for i in watch]
        with gt.GradientTape(persistent=True) as outer:
            outer.watch(sources)
            with gt.GradientTape() as inner:
                inner.watch(sources)
                value = fn(*tensors)
            firsts = inner.gradient(value, sources)
        seconds = []
        for first in firsts:
            seconds += ([None] * len(sources) if first is None
                        else outer.gradient(first, sources))
        return [value, *firsts, *seconds]

    return run


def _inputs(rng, name: str, dtype) -> list:
    shapes = PATTERNS[name][1]
    arrays = [rng.uniform(0.25, 2.0, shapes[0])]  # x: x ** p and log x defined
    if len(shapes) == 2:
        second = (rng.choice([2.0, 3.0, 0.5, 1.5, -1.0], shapes[1]) if "**p" in name
                  else rng.standard_normal(shapes[1]))
        arrays.append(np.asarray(second))
    return [a.astype(dtype) for a in arrays]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("name", "watch"), CASES)
def test_second_order_fused_equal_generic(device, rng, monkeypatch, name, watch, dtype):
    fn = PATTERNS[name][0]
    fused_out, generic_out = fused_and_generic(monkeypatch, _second_order(fn, watch),
                                               *_inputs(rng, name, dtype))
    assert_same(fused_out, generic_out, dtype)  # None where the generic rules give None


def test_the_cases_include_unconnected_second_derivatives(device, monkeypatch):
    """d(dz/dy)/dy of z = sum(x * y) is None (TF's answer), on both routes."""
    x, y = np.array([0.5, -1.0, 2.0]), np.array([1.5, 2.0, -0.5])
    for out in fused_and_generic(monkeypatch, _second_order(PATTERNS["sum x*y"][0], (0, 1)), x, y):
        assert out[3] is None and out[6] is None  # d(dz/dx)/dx and d(dz/dy)/dy
        assert out[4] is not None and out[5] is not None
