"""The exception hierarchy of gputape.

Every error raised on purpose by gputape derives from :class:`GputapeError` *and* from the
built-in exception a Python user would expect (``TypeError`` for a wrong kind of value,
``ValueError`` for a wrong value, ``RuntimeError`` for a wrong moment), so existing
``except ValueError:`` code keeps working.
"""

from __future__ import annotations


class GputapeError(Exception):
    """Base class of every exception gputape raises on purpose."""


class ShapeError(GputapeError, ValueError):
    """Shapes that do not fit together (broadcasting, matmul, reshape, ...)."""


class DTypeError(GputapeError, TypeError):
    """A dtype an op does not accept, or tensors of different dtypes mixed in one op."""


class DeviceMismatchError(GputapeError, TypeError):
    """Tensors living on different devices were mixed in one op."""


class DeviceError(GputapeError, RuntimeError):
    """A device that does not exist or cannot be used (no CuPy, no CUDA device)."""


class TapeError(GputapeError, RuntimeError):
    """A GradientTape used at the wrong moment (consumed, not recording, ...)."""


class TapeValueError(GputapeError, ValueError):
    """A GradientTape given a wrong value (watching a non-tensor, re-entering, ...)."""


class TapeTypeError(GputapeError, TypeError):
    """A GradientTape given a wrong kind of value (``target=None``, ...)."""


class ArgumentError(GputapeError, ValueError):
    """An op argument with a wrong value (bad axis, bad option, ...)."""


class ArgumentTypeError(GputapeError, TypeError):
    """An op argument of a kind that cannot become a tensor (a string, ``None``, an object)."""


class IndexOutOfRangeError(GputapeError, IndexError):
    """An index outside a tensor's bounds."""


class GradientRuleError(GputapeError, RuntimeError):
    """A gradient rule (built in or from ``custom_gradient``) returned something unusable."""


class CustomGradientError(GradientRuleError, ValueError):
    """A ``custom_gradient`` gradient function that returned the wrong number of gradients
    (a ``ValueError``, as TensorFlow raises, and a :class:`GradientRuleError`)."""


class CustomGradientTypeError(GradientRuleError, TypeError):
    """A ``custom_gradient`` function that reads Variables, with a gradient function that does
    not accept ``variables=`` (a ``TypeError``, as TensorFlow raises)."""


class CheckpointError(GputapeError, ValueError):
    """A checkpoint file that cannot be read, or that does not fit the variables or optimizer
    it is loaded into."""


# Shown as gputape.<Name> in tracebacks: the public name (gt.DTypeError), not this module's path.
for _error in list(globals().values()):
    if isinstance(_error, type) and issubclass(_error, GputapeError):
        _error.__module__ = "gputape"
del _error
