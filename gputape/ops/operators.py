"""Python operators and methods of Tensor, each calling one op of the library."""

from __future__ import annotations

from ..tensor import Tensor
from . import elementwise as ew
from .indexing import getitem
from .linalg import matmul


def _reflected(op):
    return lambda self, other: op(other, self)


_OPERATORS = {
    "__add__": ew.add, "__radd__": _reflected(ew.add),
    "__sub__": ew.subtract, "__rsub__": _reflected(ew.subtract),
    "__mul__": ew.multiply, "__rmul__": _reflected(ew.multiply),
    "__truediv__": ew.divide, "__rtruediv__": _reflected(ew.divide),
    "__pow__": ew.pow, "__rpow__": _reflected(ew.pow),
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


def install() -> None:
    """Attach the operators to Tensor (and so to Variable)."""
    for name, op in _OPERATORS.items():
        setattr(Tensor, name, op)
    Tensor.__pos__ = _pos
    Tensor.T = property(_transposed)
    Tensor.__hash__ = object.__hash__  # defining __eq__ must not make tensors unhashable
