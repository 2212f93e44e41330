"""Cotangents known to be exactly ones, known without reading them.

Under a recording tape, ``reduce_sum`` of a pending ``x * y`` (``x ** p``, ``square(x)``) may
compute, in the pass that computes the sum, the gradients its inputs get when the sum's
cotangent is 1 (:func:`gputape.ops.fused.pattern_sum`). They are the answer only when the
cotangent really is 1, which the backward walk knows without reading a device array:
``gradient()`` seeds each target with ones when no ``output_gradients`` is given, and a rule that
passes such a cotangent on, or spreads it over a sum's input, gives ones again. For the length of
one walk, the ids of those tensors are kept in ``recording.units``.

>>> import gputape as gt
>>> from gputape import unitseed
>>> from gputape.ops import fused
>>> fused.route("numpy")  # the GPU's fused route, on the CPU (as the tests run it)
>>> seed = gt.ones(())
>>> saved = unitseed.begin([(seed, seed)])  # a walk from a target with its default seed
>>> unitseed.known(seed), unitseed.known(gt.ones(()))
(True, False)
>>> unitseed.end(saved)
>>> fused.unroute("numpy")
>>> unitseed.known(seed)
False
"""

from __future__ import annotations

import numpy as np

from ._state import recording

__all__ = ["ROUTES", "begin", "end", "known", "note"]

# The array namespaces whose seeds are tracked: those with the fused route on ("cupy"; the tests
# turn it on for "numpy", see gputape.ops.fused.route).
ROUTES: set = set()


def begin(seeds: "list[tuple]"):
    """Start a walk whose ``(target, seed)`` pairs all have the default (ones) seed; returns
    what :func:`end` restores."""
    saved = recording.units
    units = None
    for _, seed in seeds:
        name = "numpy" if type(seed._data) is np.ndarray else "cupy"
        if name in ROUTES:
            units = {s._uid for _, s in seeds}
            break
    recording.units = units
    return saved


def end(saved) -> None:
    """Finish a walk started with :func:`begin`."""
    recording.units = saved


def known(tensor) -> bool:
    """Whether ``tensor`` is known to hold ones, in the walk now running."""
    units = recording.units
    return units is not None and getattr(tensor, "_uid", None) in units


def note(tensor) -> None:
    """Record that ``tensor`` holds ones (a rule spread a known-ones cotangent into it)."""
    units = recording.units
    if units is not None:
        units.add(tensor._uid)
