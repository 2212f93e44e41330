"""Python operators and methods of Tensor that are ops, each calling one op of the library.

The core Tensor knows no op; importing :mod:`gputape.ops` attaches these (JAX attaches its
array methods the same way).
"""

from __future__ import annotations

from ..core.tensor import Tensor, Variable
from . import elementwise as ew
from .indexing import getitem
from .linalg import matmul
from .special import floordiv, floormod


def _reflected(op):
    return lambda self, other: op(other, self)


_OPERATORS = {
    "__add__": ew.add, "__radd__": _reflected(ew.add),
    "__sub__": ew.subtract, "__rsub__": _reflected(ew.subtract),
    "__mul__": ew.multiply, "__rmul__": _reflected(ew.multiply),
    "__truediv__": ew.divide, "__rtruediv__": _reflected(ew.divide),
    "__pow__": ew.pow, "__rpow__": _reflected(ew.pow),
    "__floordiv__": floordiv, "__rfloordiv__": _reflected(floordiv),
    "__mod__": floormod, "__rmod__": _reflected(floormod),
    "__matmul__": matmul, "__rmatmul__": _reflected(matmul),
    "__eq__": ew.equal, "__ne__": ew.not_equal,
    "__lt__": ew.less, "__le__": ew.less_equal,
    "__gt__": ew.greater, "__ge__": ew.greater_equal,
    "__and__": ew.logical_and, "__or__": ew.logical_or,
    "__neg__": ew.negative, "__abs__": ew.abs, "__invert__": ew.logical_not,
    "__getitem__": getitem,
}


def _pos(self):
    return self


def _transposed(self):
    """The tensor with its dimensions reversed (NumPy's ``.T``)."""
    from .shape import transpose

    return transpose(self)


def _to(self, device) -> Tensor:
    """A copy on ``device`` (differentiable: gradients flow back to this device).

    >>> import gputape as gt
    >>> gt.constant([1.0, 2.0], device="cpu").to("cpu").device
    Device('cpu')
    """
    from .shape import copy_to_device

    return copy_to_device(self, device)


def _read_value(self) -> Tensor:
    """The current value as a tensor (gradients flow from it to this variable).

    >>> import gputape as gt
    >>> gt.Variable(2.0, device="cpu").read_value()
    <gt.Tensor shape=() dtype=float32 device=cpu numpy=2.0>
    """
    return ew.identity(self)


def _pack(values: list) -> Tensor:
    from .shape import stack

    return stack(values)


def install() -> None:
    """Attach the operators and op methods to Tensor (and so to Variable)."""
    for name, op in _OPERATORS.items():
        setattr(Tensor, name, op)
    Tensor.to = _to
    Tensor._pack = staticmethod(_pack)
    Variable.read_value = _read_value
    Tensor.__pos__ = _pos
    Tensor.T = property(_transposed)
    Tensor.__hash__ = object.__hash__  # defining __eq__ must not make tensors unhashable
