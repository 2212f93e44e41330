"""Cotangents known to hold one value everywhere, known without reading them.

Under a recording tape, ``reduce_sum`` (or ``reduce_mean``) of a pending ``x * y`` (``x ** p``,
``square(x)``) may compute, in the pass that computes the sum, the gradients its inputs get for
the cotangent the reduction will most likely receive: 1 for a sum, 1/count for a mean
(:func:`gputape.cuda.fused.pattern_sum`). They are the answer only when the cotangent really
holds that value, which the backward walk knows without reading a device array: ``gradient()``
seeds each target with ones when no ``output_gradients`` is given, a rule that passes a
cotangent on keeps its value, and the rules of ``reduce_sum`` and ``reduce_mean`` spread a known
value over their input (divided by the count, for a mean). For the length of one walk,
``recording.units`` maps the ids of those tensors to their value.

>>> import gputape as gt
>>> from gputape.autodiff import unitseed
>>> from gputape.cuda import fused
>>> fused.route("numpy")  # the GPU's fused route, on the CPU (as the tests run it)
>>> seed = gt.ones(())
>>> saved = unitseed.begin([(seed, seed)])  # a walk from a target with its default seed
>>> unitseed.value(seed), unitseed.value(gt.ones(()))
(1.0, None)
>>> unitseed.end(saved)
>>> fused.unroute("numpy")
>>> unitseed.value(seed) is None
True
"""

from __future__ import annotations

import numpy as np

from ..core.state import recording

__all__ = ["ROUTES", "begin", "end", "value", "note"]

# The array namespaces whose seeds are tracked: those with the fused route on ("cupy"; the tests
# turn it on for "numpy", see gputape.cuda.fused.route).
ROUTES: set = set()


def begin(seeds: "list[tuple]"):
    """Start a walk whose ``(target, seed)`` pairs all have the default (ones) seed; returns
    what :func:`end` restores."""
    saved = recording.units
    units = None
    for _, seed in seeds:
        name = "numpy" if type(seed._data) is np.ndarray else "cupy"
        if name in ROUTES:
            units = {s._uid: 1.0 for _, s in seeds}
            break
    recording.units = units
    return saved


def end(saved) -> None:
    """Finish a walk started with :func:`begin`."""
    recording.units = saved


def value(tensor) -> "float | None":
    """The value every element of ``tensor`` is known to hold in the walk now running, or
    None."""
    units = recording.units
    return None if units is None else units.get(getattr(tensor, "_uid", None))


def note(tensor, known: float) -> None:
    """Record that every element of ``tensor`` holds ``known`` (a rule spread a known value)."""
    units = recording.units
    if units is not None:
        units[tensor._uid] = known
