"""Tensor (an immutable wrapper of one NumPy or CuPy array) and Variable (the mutable one).

Operators and methods call the op library (attached in :mod:`gputape.ops.operators`); no math
happens here.
"""

from __future__ import annotations

import itertools

import numpy as np

from . import dtypes
from .device import Device, default_device, device_of, move
from .errors import DeviceMismatchError, DTypeError, ShapeError
from .state import note_escape, recording

__all__ = ["Tensor", "Variable", "constant", "convert_to_tensor"]

_ids = itertools.count(1)


class Tensor:
    """An immutable n-dimensional array on one device, recorded by active GradientTapes.

    Create tensors with :func:`gputape.constant` or :func:`gputape.convert_to_tensor`.

    Examples
    --------
    >>> import gputape as gt
    >>> x = gt.constant([1.0, 2.0], device="cpu")
    >>> x
    <gt.Tensor shape=(2,) dtype=float32 device=cpu numpy=[1. 2.]>
    >>> (x * 3).numpy()
    array([3., 6.], dtype=float32)
    """

    __slots__ = ("_data", "_uid", "__weakref__")
    # NumPy's protocols: until the op library installs its own (gputape.ops.numpy_protocol),
    # NumPy defers to our reflected operators (np.float64(2) * x -> Tensor)
    __array_ufunc__ = None
    __array_priority__ = 1000

    def __init__(self, value, dtype=None, device=None) -> None:
        self._data = _to_array(value, dtype, device, "Tensor", "value")
        self._uid = next(_ids)

    @classmethod
    def _wrap(cls, array) -> "Tensor":
        tensor = object.__new__(Tensor)
        tensor._data = array
        tensor._uid = next(_ids)
        return tensor

    # -- array facts ----------------------------------------------------------------------
    @property
    def shape(self) -> tuple:
        return self._data.shape

    @property
    def dtype(self) -> np.dtype:
        return self._data.dtype

    @property
    def ndim(self) -> int:
        return self._data.ndim

    @property
    def size(self) -> int:
        return self._data.size

    @property
    def device(self) -> Device:
        return device_of(self._data)

    def numpy(self) -> np.ndarray:
        """A host NumPy copy of the value (a NumPy scalar for a 0-d tensor, like TensorFlow).

        The copy is the caller's: writing to it never changes the tensor or a recorded tape.
        """
        if recording.tapes:
            note_escape(self, ".numpy()")
        return self._host_copy()

    def _host_copy(self):
        array = self._data
        host = np.array(array) if isinstance(array, np.ndarray) else array.get()
        return host[()] if host.ndim == 0 else host

    # Methods that are ops (.to, the operators, .T, read_value) are attached by the op library
    # (gputape.ops.operators): the core knows no op.

    def __array__(self, dtype=None, copy=None):
        if recording.tapes:
            note_escape(self, "np.asarray()")
        host = self._data if isinstance(self._data, np.ndarray) else self._data.get()
        return host.astype(dtype) if dtype is not None else np.array(host)

    # -- zero-copy interop ----------------------------------------------------------------
    def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        """A DLPack capsule sharing this tensor's memory (see :func:`gputape.from_dlpack`).

        Consumers such as ``numpy.from_dlpack``, ``cupy.from_dlpack`` and
        ``torch.from_dlpack`` call it; the memory must not be written through the result.
        """
        from .dlpack import export_dlpack

        return export_dlpack(self._data, stream, max_version, dl_device, copy)

    def __dlpack_device__(self) -> tuple:
        """``(device_type, device_id)`` in DLPack codes: ``(1, 0)`` on the CPU, ``(2, N)`` on
        ``gpu:N``."""
        return self._data.__dlpack_device__()

    @property
    def __cuda_array_interface__(self) -> dict:
        """The CUDA Array Interface of a GPU tensor (``cupy.asarray(x)`` shares its memory).

        Only GPU tensors have it: on a CPU tensor it raises ``AttributeError``, so
        ``hasattr(x, "__cuda_array_interface__")`` tells whether ``x`` lives on a GPU.
        """
        if isinstance(self._data, np.ndarray):
            raise AttributeError(
                "__cuda_array_interface__: this tensor lives on the cpu, and only GPU tensors "
                "have a CUDA Array Interface; hint: use np.asarray(x) or np.from_dlpack(x) on "
                "the host, or x.to('gpu') first"
            )
        return self._data.__cuda_array_interface__

    # -- Python protocols -----------------------------------------------------------------
    def _scalar(self, what: str):
        if self.size != 1:
            raise TypeError(
                f"{what}() needs a tensor of one element, got shape {self.shape}; hint: reduce "
                f"it first (gt.reduce_sum, gt.reduce_max) or index one element"
            )
        if recording.tapes:
            note_escape(self, f"{what}()")
        return self._host_copy().reshape(()).item()

    def __float__(self) -> float:
        return float(self._scalar("float"))

    def __int__(self) -> int:
        return int(self._scalar("int"))

    def __bool__(self) -> bool:
        return bool(self._scalar("bool"))

    def __index__(self) -> int:
        if self.dtype.kind not in "iub":
            raise TypeError(f"only integer tensors can be used as an index, not {self.dtype}")
        return int(self._scalar("index"))

    def __complex__(self) -> complex:
        return complex(self._scalar("complex"))

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError(
                "len() of a 0-d tensor (a scalar) is undefined; hint: use x.shape, or "
                "gt.reshape(x, (1,)) for a one-element vector"
            )
        return self.shape[0]

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError(
                "iteration over a 0-d tensor (a scalar); hint: use float(x), or "
                "gt.reshape(x, (1,)) for a one-element vector"
            )
        return (self[i] for i in range(self.shape[0]))

    __hash__ = object.__hash__  # identity: tensors work as dict keys, `==` stays elementwise

    def __repr__(self) -> str:
        return (
            f"<gt.{type(self).__name__}{self._repr_name()} shape={self.shape} dtype={self.dtype} "
            f"device={self.device} numpy={_value_text(self)}>"
        )

    def _repr_name(self) -> str:
        return ""

    def __str__(self) -> str:
        text = _value_text(self)
        sep = "\n" if "\n" in text else ""
        return f"gt.Tensor({sep}{text}, shape={self.shape}, dtype={self.dtype})"

    def __format__(self, spec: str) -> str:
        if spec and self.size == 1:
            return format(self._scalar("format"), spec)
        return format(str(self), spec)


def _value_text(tensor: Tensor) -> str:
    value = tensor._host_copy()
    return str(value)


class FilledTensor(Tensor):
    """A tensor known to hold one value everywhere, known without reading it: a symbolic
    "filled" cotangent (JAX's symbolic zeros, for any value).

    ``gradient()`` seeds each target with one when no ``output_gradients`` is given, a rule
    that spreads such a cotangent over its input may pass the value on (divided by the count,
    for a mean), and a sum of two cotangents is an ordinary tensor again. A backend then knows,
    without a device read, that gradients it computed ahead for that value are the answer
    (``gputape.cuda.fused``). Everything else treats it as the Tensor it is.

    >>> import numpy as np
    >>> seed = FilledTensor.like(Tensor._wrap(np.ones(3)), 1.0)
    >>> seed.fill, fill_of(seed), fill_of(Tensor._wrap(np.ones(3)))
    (1.0, 1.0, None)
    """

    __slots__ = ("fill",)

    @classmethod
    def like(cls, tensor: Tensor, value: float) -> "FilledTensor":
        """``tensor`` (same array, same id: still what a tape recorded) marked as holding
        ``value`` everywhere."""
        out = object.__new__(cls)
        out._data = tensor._data
        out._uid = tensor._uid
        out.fill = value
        return out

    def plain(self) -> Tensor:
        """The same tensor as an ordinary Tensor (same array, same id), which the ops' fast
        paths take: what a rule that does not use the known value gets."""
        out = object.__new__(Tensor)
        out._data = self._data
        out._uid = self._uid
        return out


def fill_of(tensor) -> "float | None":
    """The value a :class:`FilledTensor` holds everywhere; None for any other tensor."""
    return tensor.fill if type(tensor) is FilledTensor else None


class Variable(Tensor):
    """A mutable tensor: the state a model trains. Usable wherever a tensor is.

    ``assign``, ``assign_add`` and ``assign_sub`` replace the value (they are not recorded on
    tapes: gradients flow to reads only). Trainable variables read inside a GradientTape are
    watched automatically.

    Examples
    --------
    >>> import gputape as gt
    >>> v = gt.Variable(2.0, device="cpu")
    >>> v.assign_sub(0.5)
    <gt.Variable 'Variable' shape=() dtype=float32 device=cpu numpy=1.5>
    >>> (v * 2).numpy()
    np.float32(3.0)
    """

    __slots__ = ("trainable", "name")

    def __init__(self, initial_value, trainable: bool = True, name: "str | None" = None,
                 dtype=None, device=None) -> None:
        if callable(initial_value):
            initial_value = initial_value()
        # Tensor.__init__'s work, with errors naming Variable's own argument
        self._data = _to_array(initial_value, dtype, device, "Variable", "initial_value")
        self._uid = next(_ids)
        self.trainable = bool(trainable)
        self.name = name if name is not None else "Variable"

    def _repr_name(self) -> str:
        return f" {self.name!r}"

    def __str__(self) -> str:  # print(variable) shows the repr, as in TensorFlow
        return repr(self)

    def _snapshot(self) -> Tensor:
        tensor = object.__new__(Tensor)
        tensor._data = self._data
        tensor._uid = self._uid
        return tensor

    def _new_value(self, value, method: str):
        if isinstance(value, Tensor):
            array = value._data
            if device_of(array) != self.device:
                raise _device_error(method, value.device, self.device)
        else:
            host = dtypes.infer_host_array(value, self.dtype, f"Variable.{method}")
            array = move(host, self.device)
        if array.shape != self.shape:
            raise ShapeError(
                f"Variable.{method}: value of shape {array.shape} cannot replace variable "
                f"{self.name!r} of shape {self.shape}; hint: reshape the value or create a new "
                f"Variable"
            )
        if array.dtype != self.dtype:
            raise DTypeError(
                f"Variable.{method}: value of dtype {array.dtype} cannot go into variable "
                f"{self.name!r} of dtype {self.dtype}; hint: gt.cast(value, {self.dtype})"
            )
        return array

    def assign(self, value) -> "Variable":
        """Replace the value (same shape and dtype); returns the variable."""
        self._set(self._new_value(value, "assign"))
        return self

    def assign_add(self, delta) -> "Variable":
        """``self += delta``; returns the variable."""
        self._set(self._data + self._new_value(delta, "assign_add"))
        return self

    def assign_sub(self, delta) -> "Variable":
        """``self -= delta``; returns the variable."""
        self._set(self._data - self._new_value(delta, "assign_sub"))
        return self

    def _set(self, array) -> None:
        # NumPy arithmetic on 0-d arrays returns scalars; the variable keeps an array.
        self._data = np.asarray(array) if isinstance(array, np.generic) else array



def _device_error(method: str, got: Device, want: Device) -> DeviceMismatchError:
    return DeviceMismatchError(
        f"Variable.{method}: value lives on {got} but the variable on {want}; hint: "
        f"value.to('{want}')"
    )


def _to_array(value, dtype, device, op: str, arg: str):
    """Array for ``value`` on ``device`` (default: the value's own device for tensors and CuPy
    arrays, else the default device)."""
    if isinstance(value, Tensor):
        array = value._data
        if dtype is not None and dtypes.as_dtype(dtype) != array.dtype:
            array = array.astype(dtypes.as_dtype(dtype))
        return move(array, Device(device)) if device is not None else array
    if not isinstance(value, np.ndarray) and type(value).__module__.startswith("cupy"):
        # Copied like NumPy input (tensors never share the caller's memory; gt.from_dlpack is
        # the zero-copy route), on the array's own GPU unless `device` says otherwise.
        with value.device:  # CuPy allocates on the current device, not the array's
            array = value.copy() if dtype is None else value.astype(dtypes.as_dtype(dtype))
        return move(array, Device(device)) if device is not None else array
    if isinstance(value, (list, tuple)) and _holds_tensor(value):
        value = _host_nested(value)
    host = dtypes.infer_host_array(value, dtype, op, arg)
    target = Device(device) if device is not None else default_device()
    return move(host, target)


def _holds_tensor(value) -> bool:
    return any(isinstance(v, Tensor) or (isinstance(v, (list, tuple)) and _holds_tensor(v))
               for v in value)


def _first_tensor(value) -> Tensor:
    for v in value:
        if isinstance(v, Tensor):
            return v
        if isinstance(v, (list, tuple)) and _holds_tensor(v):
            return _first_tensor(v)
    raise ValueError("no tensor in the list")


def _host_nested(value):
    if isinstance(value, Tensor):
        if recording.tapes:
            note_escape(value, "gt.constant([...])")
        return value._host_copy()
    if isinstance(value, (list, tuple)):
        return [_host_nested(v) for v in value]
    return value


def constant(value, dtype=None, device=None) -> Tensor:
    """A new tensor holding ``value`` (a number, nested list, NumPy array or tensor).

    Python floats become float32 and Python ints int32; NumPy arrays keep their dtype.

    Examples
    --------
    >>> import gputape as gt
    >>> gt.constant(3.0, device="cpu")
    <gt.Tensor shape=() dtype=float32 device=cpu numpy=3.0>
    >>> gt.constant([[1, 2]], dtype="float64", device="cpu").dtype
    dtype('float64')
    """
    return Tensor._wrap(_to_array(value, dtype, device, "constant", "value"))


def convert_to_tensor(value, dtype=None, device=None) -> Tensor:
    """``value`` itself when it is already a tensor (of ``dtype`` if given), else a new tensor.

    Examples
    --------
    >>> import gputape as gt
    >>> x = gt.constant(1.0, device="cpu")
    >>> gt.convert_to_tensor(x) is x
    True
    """
    if isinstance(value, Tensor):
        if dtype is not None and dtypes.as_dtype(dtype) != value.dtype:
            raise DTypeError(
                f"convert_to_tensor: tensor has dtype {value.dtype}, but {dtypes.as_dtype(dtype)} "
                f"was requested; hint: gt.cast(value, {dtypes.as_dtype(dtype)})"
            )
        if device is not None and Device(device) != value.device:
            return value.to(device)
        return value
    if isinstance(value, (list, tuple)) and _holds_tensor(value):
        # A recorded stack, as TF packs a list: numbers in it take the tensors' dtype.
        dtype = dtype if dtype is not None else _first_tensor(value).dtype
        return Tensor._pack([convert_to_tensor(v, dtype, device) for v in value])
    return Tensor._wrap(_to_array(value, dtype, device, "convert_to_tensor", "value"))
