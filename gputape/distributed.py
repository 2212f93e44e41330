"""Data-parallel training, the public ``gputape.distributed`` (the code lives in
:mod:`gputape.training.distributed`); see there."""

from .training.distributed import *  # noqa: F403 - the public names
from .training.distributed import __all__, __doc__  # noqa: F401
