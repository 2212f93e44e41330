"""A NumPy-backed stand-in for the parts of CuPy (and ``cupy.cuda.nccl``) that
``gputape.distributed`` uses, so that its GPU logic is tested without a GPU.

It keeps CuPy's rules that matter for several GPUs per machine: new arrays (``empty``,
``empty_like``, ``asarray``, ``concatenate``, ``ndarray.copy``) land on the *current* device;
work on an array (a kernel: ``concatenate``, a non-contiguous ``ascontiguousarray``, ``/=``)
raises unless its device is current, as CuPy does; ``get_current_stream`` is the current
device's stream; implicit conversion to NumPy raises; a copy between devices needs contiguous
memory; ``flags`` has no ``writeable``; NCCL's unique id is ``bytes`` (CuPy 14; a tuple with
``version="13..."``). NCCL calls take raw pointers, which are
looked up among the live fake allocations (a wrong pointer or size fails the test, it does not
read stray memory), and every call is recorded in ``module.log`` with the device current then.

    cupy = fake_cupy.build(devices=2)
    sys.modules.update(fake_cupy.modules(cupy))
"""

from __future__ import annotations

import importlib.machinery
import types

import numpy as np

# NCCL's unique id as CuPy gives and takes it: bytes from CuPy 14 on, a tuple of C chars before
# (negative ones included where char is signed).
UNIQUE_ID = bytes((i * 37) % 256 for i in range(128))
UNIQUE_ID_CUPY13 = tuple(int(v) for v in np.frombuffer(UNIQUE_ID, np.int8))
# The values of NCCL's ncclDataType_t and ncclRedOp_t, as cupy.cuda.nccl exports them.
NCCL_CONSTANTS = {
    "NCCL_INT8": 0, "NCCL_CHAR": 0, "NCCL_UINT8": 1, "NCCL_INT32": 2, "NCCL_INT": 2,
    "NCCL_UINT32": 3, "NCCL_INT64": 4, "NCCL_UINT64": 5, "NCCL_FLOAT16": 6, "NCCL_HALF": 6,
    "NCCL_FLOAT32": 7, "NCCL_FLOAT": 7, "NCCL_FLOAT64": 8, "NCCL_DOUBLE": 8,
    "NCCL_SUM": 0, "NCCL_PROD": 1, "NCCL_MAX": 2, "NCCL_MIN": 3,
}
NCCL_DTYPES = {0: np.int8, 1: np.uint8, 2: np.int32, 3: np.uint32, 4: np.int64, 5: np.uint64,
               6: np.float16, 7: np.float32, 8: np.float64}


def build(devices: int = 2, version: str = "14.2.0") -> types.ModuleType:
    """A fresh fake ``cupy`` module with ``devices`` GPUs; ``cupy.log`` records the calls.
    ``version`` picks the NCCL unique id's type (CuPy 13: a tuple; 14: bytes)."""
    state = types.SimpleNamespace(stack=[], base=0, allocations=[], log=[])
    cupy = types.ModuleType("cupy")
    cupy.__spec__ = importlib.machinery.ModuleSpec("cupy", None)
    cupy.__version__ = version
    cupy.log = state.log
    id_is_bytes = int(version.split(".")[0]) >= 14

    def current() -> int:
        return state.stack[-1] if state.stack else state.base

    def allocate(values: np.ndarray, device_id: int) -> "ndarray":
        base = np.array(values, order="C", copy=True)
        state.allocations.append((base, device_id))
        return ndarray(base, device_id)

    def kernel(name: str, *arrays: "ndarray") -> None:
        for a in arrays:
            if a.device.id != current():
                raise ValueError(
                    f"{name}: the array is on device {a.device.id}, the current device is "
                    f"{current()} (CuPy refuses this)")

    class Device:
        def __init__(self, device_id: "int | None" = None) -> None:
            self.id = current() if device_id is None else int(device_id)
            if not 0 <= self.id < devices:
                raise RuntimeError(f"cudaErrorInvalidDevice: device {self.id}")

        def __enter__(self) -> "Device":
            state.stack.append(self.id)
            return self

        def __exit__(self, *exc) -> bool:
            state.stack.pop()
            return False

        def use(self) -> None:
            state.base = self.id

        def __eq__(self, other: object) -> bool:
            return isinstance(other, Device) and other.id == self.id

        def __hash__(self) -> int:
            return self.id

    class Stream:
        def __init__(self, device_id: int) -> None:
            self.device_id = device_id
            self.ptr = 0x5000 + device_id

        def synchronize(self) -> None:
            state.log.append(("synchronize", {"stream": self.ptr, "current": current()}))

    streams = [Stream(i) for i in range(devices)]

    class ndarray:
        def __init__(self, values: np.ndarray, device_id: int) -> None:
            self._values, self._device = values, device_id

        shape = property(lambda self: self._values.shape)
        dtype = property(lambda self: self._values.dtype)
        size = property(lambda self: self._values.size)
        nbytes = property(lambda self: self._values.nbytes)
        ndim = property(lambda self: self._values.ndim)
        # CuPy's flags: contiguity and ownership, no ``writeable``
        flags = property(lambda self: types.SimpleNamespace(
            c_contiguous=self._values.flags.c_contiguous,
            f_contiguous=self._values.flags.f_contiguous, owndata=self._values.flags.owndata))
        device = property(lambda self: Device(self._device))

        @property
        def data(self):
            return types.SimpleNamespace(ptr=self._values.__array_interface__["data"][0])

        def __array__(self, *args, **kwargs):
            raise TypeError("Implicit conversion to a NumPy array is not allowed (fake CuPy)")

        def get(self) -> np.ndarray:
            state.log.append(("get", {"device": self._device, "current": current()}))
            return self._values.copy()

        def copy(self, order: str = "C") -> "ndarray":
            return allocate(self._values, current())  # CuPy copies to the current device

        def reshape(self, *shape) -> "ndarray":
            return ndarray(self._values.reshape(*shape), self._device)

        def __getitem__(self, key) -> "ndarray":
            return ndarray(self._values[key], self._device)

        def __itruediv__(self, other) -> "ndarray":
            kernel("true_divide", self)
            self._values /= other
            return self

        def __repr__(self) -> str:
            return f"fake_cupy.ndarray({self._values!r}, device={self._device})"

    def asarray(values) -> ndarray:
        if isinstance(values, ndarray):
            if values.device.id == current():
                return values
            if not values.flags.c_contiguous:  # as CuPy's copy between devices
                raise NotImplementedError(
                    "peer copy of a non-contiguous array (fake CuPy, as CuPy)")
            return allocate(values._values, current())
        return allocate(np.asarray(values), current())

    def ascontiguousarray(a) -> ndarray:
        if isinstance(a, ndarray) and a.flags.c_contiguous:
            return a
        if isinstance(a, ndarray):
            kernel("ascontiguousarray", a)
            return allocate(a._values, current())
        return asarray(a)

    def empty(shape, dtype) -> ndarray:
        junk = np.full(shape, np.nan if np.dtype(dtype).kind in "fc" else 7, dtype)
        return allocate(junk, current())  # never zeros: an unwritten output shows

    def concatenate(arrays) -> ndarray:
        kernel("concatenate", *arrays)
        return allocate(np.concatenate([a._values for a in arrays]), current())

    def memory(ptr: int, count: int, datatype: int, device_id: int) -> np.ndarray:
        """The ``count`` elements of NCCL type ``datatype`` at ``ptr``, a writable view."""
        dtype = np.dtype(NCCL_DTYPES[datatype])
        for base, where in state.allocations:
            start = base.__array_interface__["data"][0]
            offset = ptr - start
            if 0 <= offset and offset + count * dtype.itemsize <= base.nbytes:
                assert where == device_id, (
                    f"pointer {ptr:#x} is on device {where}, NCCL's communicator on {device_id}")
                raw = base.reshape(-1).view(np.uint8)
                return raw[offset:offset + count * dtype.itemsize].view(dtype)
        raise AssertionError(f"pointer {ptr:#x} ({count} x {dtype}) is in no live allocation")

    class NcclCommunicator:
        def __init__(self, ndev: int, comm_id, rank: int) -> None:
            assert type(ndev) is int and type(rank) is int and 0 <= rank < ndev, (ndev, rank)
            wanted = bytes if id_is_bytes else tuple
            if type(comm_id) is not wanted:  # CuPy's own message
                raise TypeError(f"Argument 'commId' has incorrect type (expected "
                                f"{wanted.__name__}, got {type(comm_id).__name__})")
            assert len(comm_id) == 128, comm_id
            self.rank, self.device = rank, current()
            state.log.append(("NcclCommunicator", {"ndev": ndev, "comm_id": comm_id,
                                                   "rank": rank, "current": current()}))

        def allReduce(self, sendbuf, recvbuf, count, datatype, op, stream) -> None:  # noqa: N802
            args = (sendbuf, recvbuf, count, datatype, op, stream)
            assert all(type(a) is int for a in args), [type(a).__name__ for a in args]
            state.log.append(("allReduce", {"sendbuf": sendbuf, "recvbuf": recvbuf,
                                            "count": count, "datatype": datatype, "op": op,
                                            "stream": stream, "current": current()}))
            assert op == NCCL_CONSTANTS["NCCL_SUM"], op
            send = memory(sendbuf, count, datatype, self.device)
            memory(recvbuf, count, datatype, self.device)[:] = send + nccl.peer(send)

        def bcast(self, buff, count, datatype, root, stream) -> None:
            args = (buff, count, datatype, root, stream)
            assert all(type(a) is int for a in args), [type(a).__name__ for a in args]
            state.log.append(("bcast", {"buff": buff, "count": count, "datatype": datatype,
                                        "root": root, "stream": stream, "current": current()}))
            if self.rank != root:
                values = memory(buff, count, datatype, self.device)
                values[:] = nccl.peer(values)

    def get_unique_id():
        state.log.append(("get_unique_id", {"current": current()}))
        return UNIQUE_ID if id_is_bytes else UNIQUE_ID_CUPY13

    nccl = types.ModuleType("cupy.cuda.nccl")
    nccl.available = True
    nccl.__dict__.update(NCCL_CONSTANTS)
    nccl.NcclCommunicator = NcclCommunicator
    nccl.get_unique_id = get_unique_id
    nccl.peer = lambda values: values  # what the other rank holds: by default the same

    cuda = types.ModuleType("cupy.cuda")
    cuda.Device = Device
    cuda.Stream = Stream
    cuda.get_current_stream = lambda: streams[current()]
    cuda.runtime = types.SimpleNamespace(getDeviceCount=lambda: devices)
    cuda.nccl = nccl

    cupy.ndarray = ndarray
    cupy.cuda = cuda
    cupy.asarray = asarray
    cupy.ascontiguousarray = ascontiguousarray
    cupy.empty = empty
    cupy.empty_like = lambda a: empty(a.shape, a.dtype)
    cupy.concatenate = concatenate
    cupy.streams = streams
    cupy.on = lambda values, device_id: allocate(np.asarray(values), device_id)
    cupy.current = current
    return cupy


def modules(cupy: types.ModuleType) -> dict:
    """The ``sys.modules`` entries that make ``import cupy`` and ``from cupy.cuda import nccl``
    find the fake."""
    return {"cupy": cupy, "cupy.cuda": cupy.cuda, "cupy.cuda.nccl": cupy.cuda.nccl}


def events(cupy: types.ModuleType, name: str) -> list:
    """The recorded arguments of every call of ``name``."""
    return [args for event, args in cupy.log if event == name]
