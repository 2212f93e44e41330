"""The op library: declarations grouped by family. Importing it registers every primitive.

Each family module lists its public ops in ``__all__``; together they are the ops of ``gt.*``,
so a new op is its declaration and its name there.
"""

from . import activations as _activations
from . import arrange as _arrange
from . import convolution as _convolution
from . import creation as _creation
from . import decompositions as _decompositions
from . import elementwise as _elementwise
from . import indexing as _indexing
from . import linalg as _linalg
from . import nn as _nn
from . import numpy_protocol as _numpy_protocol
from . import operators as _operators
from . import reduction as _reduction
from . import scan as _scan
from . import shape as _shape
from . import sorting as _sorting
from . import special as _special
from . import tile as _tile
from .activations import *  # noqa: F403
from .arrange import *  # noqa: F403
from .creation import *  # noqa: F403
from .decompositions import *  # noqa: F403
from .elementwise import *  # noqa: F403
from .indexing import *  # noqa: F403
from .linalg import *  # noqa: F403
from .nn import *  # noqa: F403
from .reduction import *  # noqa: F403
from .scan import *  # noqa: F403
from .shape import *  # noqa: F403
from .sorting import *  # noqa: F403
from .special import *  # noqa: F403
from .tile import *  # noqa: F403

_operators.install()
_numpy_protocol.install()

FAMILIES = (_activations, _arrange, _convolution, _creation, _decompositions, _elementwise,
            _indexing, _linalg, _nn, _reduction, _scan, _shape, _sorting, _special, _tile)
__all__ = sorted({name for family in FAMILIES for name in family.__all__})
