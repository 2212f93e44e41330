"""NCCL through CuPy for GPU arrays: one process per GPU, bootstrapped over MPI (which also
carries the signature checks)."""

from __future__ import annotations

from ._comm import Communicator, DistributedError
from ._mpi import MPICommunicator

__all__ = ["NCCLCommunicator", "nccl_available"]

# cupy dtype name -> NCCL data type name in cupy.cuda.nccl
_NCCL_TYPES = {"float16": "NCCL_FLOAT16", "float32": "NCCL_FLOAT32", "float64": "NCCL_FLOAT64",
               "int32": "NCCL_INT32", "int64": "NCCL_INT64", "uint8": "NCCL_UINT8"}


def nccl_available() -> bool:
    """True when CuPy was built with NCCL and sees a GPU."""
    try:
        import cupy
        from cupy.cuda import nccl

        return bool(nccl.available) and cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # noqa: BLE001 - no CuPy, no NCCL, no driver: not available
        return False


class NCCLCommunicator(Communicator):
    """Allreduce and broadcast of CuPy arrays with NCCL; each rank uses its current GPU."""

    backend = "nccl"

    def __init__(self, mpi: "MPICommunicator | None" = None) -> None:
        if not nccl_available():
            raise DistributedError(
                "gputape.distributed: the NCCL backend needs CuPy with NCCL and a GPU; hint: "
                "install cupy-cuda13x (or cuda12x) on a GPU machine, or use backend='mpi'"
            )
        from cupy.cuda import nccl

        self._nccl = nccl
        self._mpi = mpi if mpi is not None else MPICommunicator()
        self.rank, self.size = self._mpi.rank, self._mpi.size
        uid = nccl.get_unique_id() if self.rank == 0 else None
        uid = self._mpi._comm.bcast(uid, root=0)  # a tuple of ints: the out-of-band bootstrap
        self._comm = nccl.NcclCommunicator(self.size, uid, self.rank)

    def _type(self, array) -> int:
        name = _NCCL_TYPES.get(array.dtype.name)
        if name is None:
            raise DistributedError(
                f"nccl: dtype {array.dtype} has no NCCL type; hint: cast to float32 or float64"
            )
        return getattr(self._nccl, name)

    def _allreduce_sum(self, array):
        import cupy

        send = cupy.ascontiguousarray(array)
        out = cupy.empty_like(send)
        stream = cupy.cuda.get_current_stream()
        self._comm.allReduce(send.data.ptr, out.data.ptr, send.size, self._type(send),
                             self._nccl.NCCL_SUM, stream.ptr)
        return out

    def _broadcast(self, array, root: int):
        import cupy

        out = cupy.ascontiguousarray(array).copy()
        stream = cupy.cuda.get_current_stream()
        self._comm.bcast(out.data.ptr, out.size, self._type(out), root, stream.ptr)
        return out

    def _allgather_bytes(self, data: bytes, what: str) -> list:
        return self._mpi._allgather_bytes(data, what)

    def _allgather_text(self, text: str) -> list:
        return self._mpi._allgather_text(text)
