"""``gt.random``: random numbers under TensorFlow's ``tf.random`` names, from a counter-based
generator (Philox4x32-10), so that one seed gives the same numbers on the CPU and on a GPU.

>>> import gputape as gt
>>> g = gt.random.Generator.from_seed(42)
>>> g.normal((2, 3)).shape
(2, 3)
"""

from .ops.random import (
    Generator,
    categorical,
    get_global_generator,
    normal,
    set_seed,
    shuffle,
    stateless_categorical,
    stateless_normal,
    stateless_truncated_normal,
    stateless_uniform,
    truncated_normal,
    uniform,
)

__all__ = [
    "Generator", "categorical", "get_global_generator", "normal", "set_seed", "shuffle",
    "stateless_categorical", "stateless_normal", "stateless_truncated_normal",
    "stateless_uniform", "truncated_normal", "uniform",
]
