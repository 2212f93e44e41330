"""NCCL through CuPy for GPU arrays: one process per GPU, bootstrapped over MPI (which also
carries the signature checks).

NCCL binds a communicator to the CUDA device that is current when it is created, and runs each
collective on a stream of that device; CuPy allocates on the current device too. So the
communicator is made with this process's GPU current, and every collective runs with its
array's GPU current, on that GPU's current stream.
"""

from __future__ import annotations

import numpy as np

from ._buckets import on_device
from ._comm import Communicator, DistributedError
from ._mpi import MPICommunicator

__all__ = ["NCCLCommunicator", "nccl_available"]

# dtype name -> (NCCL data type name in cupy.cuda.nccl, NCCL elements per array element).
# NCCL has no complex type: a complex array is summed as its (real, imaginary) pairs.
_NCCL_TYPES = {
    "float16": ("NCCL_FLOAT16", 1), "float32": ("NCCL_FLOAT32", 1),
    "float64": ("NCCL_FLOAT64", 1), "complex64": ("NCCL_FLOAT32", 2),
    "complex128": ("NCCL_FLOAT64", 2), "int8": ("NCCL_INT8", 1), "uint8": ("NCCL_UINT8", 1),
    "int32": ("NCCL_INT32", 1), "uint32": ("NCCL_UINT32", 1), "int64": ("NCCL_INT64", 1),
    "uint64": ("NCCL_UINT64", 1),
}


def _unique_id(numbers: np.ndarray, cupy_version: str):
    """NCCL's unique id as this CuPy's NcclCommunicator takes it: ``bytes`` from CuPy 14 on,
    a tuple of C chars before (as its ``get_unique_id`` returns them)."""
    if int(cupy_version.split(".")[0]) >= 14:
        return numbers.astype(np.uint8).tobytes()
    return tuple(int(v) for v in numbers)


def nccl_available() -> bool:
    """True when CuPy was built with NCCL and sees a GPU."""
    try:
        import cupy
        from cupy.cuda import nccl

        return bool(nccl.available) and cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # noqa: BLE001 - no CuPy, no NCCL, no driver: not available
        return False


def default_gpu() -> int:
    """This process's GPU when none is named: gputape's default device when it is a GPU
    (``gt.device("gpu:N")``, ``GPUTAPE_DEVICE``), else CuPy's current device."""
    from ...core.device import default_device

    device = default_device()
    if device.kind == "gpu":
        return device.index
    import cupy

    return cupy.cuda.Device().id


class NCCLCommunicator(Communicator):
    """Allreduce and broadcast of CuPy arrays with NCCL, on one GPU per process (``device``,
    by default :func:`default_gpu`).

    NCCL itself starts at the first collective, after the ranks have agreed over MPI that they
    all use NCCL: a rank that chose another backend makes every rank raise, not hang.
    """

    backend = "nccl"

    def __init__(self, mpi: "MPICommunicator | None" = None, device: "int | None" = None) -> None:
        if not nccl_available():
            raise DistributedError(
                "gputape.distributed: the NCCL backend needs CuPy, NCCL and a GPU; hint: "
                "pip install 'gputape[dist-cuda13]' (or dist-cuda12: CuPy 14 loads NCCL from "
                "NVIDIA's nvidia-nccl-cu13/cu12 wheel), or use backend='mpi'"
            )
        from cupy.cuda import nccl

        self._nccl = nccl
        self._mpi = mpi if mpi is not None else MPICommunicator()
        self.rank, self.size = self._mpi.rank, self._mpi.size
        self.device = int(device) if device is not None else default_gpu()
        self._comm = None

    def _ready(self, array, what: str):
        """The NCCL communicator (made on this process's GPU at the first call), after checking
        that ``array`` lives on that GPU."""
        if array.device.id != self.device:
            raise DistributedError(
                f"{what}: an array on gpu:{array.device.id}, but this process's NCCL "
                f"communicator is on gpu:{self.device}; hint: one GPU per process: make every "
                f"tensor under gt.device(f'gpu:{{dist.local_rank()}}')"
            )
        if self._comm is None:
            import cupy

            # The unique id travels over MPI as 128 numbers (bytes, or chars of either
            # signedness: int16 holds them all).
            uid = np.zeros(128, np.int16)
            if self.rank == 0:
                uid = np.array(list(self._nccl.get_unique_id()), np.int16)
            uid = self._mpi._broadcast(uid, 0)
            with cupy.cuda.Device(self.device):
                self._comm = self._nccl.NcclCommunicator(
                    self.size, _unique_id(uid, cupy.__version__), self.rank)
        return self._comm

    def _type(self, array, what: str) -> "tuple[int, int]":
        """The NCCL data type and element count of ``array``; a broadcast (a copy of bytes)
        sends a type NCCL lacks, such as bool, as bytes."""
        found = _NCCL_TYPES.get(array.dtype.name)
        if found is not None:
            name, per_element = found
            return getattr(self._nccl, name), array.size * per_element
        if what == "broadcast":
            return self._nccl.NCCL_UINT8, array.nbytes
        raise DistributedError(
            f"nccl {what}: dtype {array.dtype} has no NCCL type to sum; hint: cast to "
            f"float32 or float64, or pass backend='mpi'"
        )

    def _allreduce_sum(self, array):
        import cupy

        comm = self._ready(array, "allreduce")
        with on_device(array):
            send = cupy.ascontiguousarray(array)
            out = cupy.empty_like(send)
            datatype, count = self._type(send, "allreduce")
            stream = cupy.cuda.get_current_stream()
            comm.allReduce(send.data.ptr, out.data.ptr, count, datatype, self._nccl.NCCL_SUM,
                           stream.ptr)
        return out

    def _broadcast(self, array, root: int):
        import cupy

        comm = self._ready(array, "broadcast")
        with on_device(array):
            out = array.copy(order="C")
            datatype, count = self._type(out, "broadcast")
            stream = cupy.cuda.get_current_stream()
            comm.bcast(out.data.ptr, count, datatype, root, stream.ptr)
        return out

    def _allgather_bytes(self, data: bytes, what: str) -> list:
        return self._mpi._allgather_bytes(data, what)

    def _allgather_text(self, text: str) -> list:
        return self._mpi._allgather_text(text)
