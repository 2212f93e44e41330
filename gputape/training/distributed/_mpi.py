"""MPI through mpi4py: NumPy buffers, and CuPy buffers either passed straight to a CUDA-aware
MPI or staged through the host."""

from __future__ import annotations

import os

import numpy as np

from ._buckets import on_device
from ._comm import Communicator, DistributedError, wait

__all__ = ["MPICommunicator", "import_mpi"]


def import_mpi():
    """``mpi4py.MPI``, or a :class:`DistributedError` saying how to get it."""
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise DistributedError(
            f"gputape.distributed: the MPI backend needs mpi4py ({exc}); hint: pip install "
            f"'gputape[dist]' (mpi4py and an MPI such as the mpich wheel), then start the "
            f"processes with mpiexec -n N"
        ) from None
    return MPI


def cuda_aware(MPI) -> bool:
    """True when MPI can read GPU memory directly (``GPUTAPE_MPI_CUDA_AWARE=0/1`` decides
    where the library cannot tell)."""
    forced = os.environ.get("GPUTAPE_MPI_CUDA_AWARE")
    if forced is not None:
        return forced == "1"
    query = getattr(MPI, "Query_cuda_support", None)
    try:
        return bool(query()) if query is not None else False
    except Exception:  # noqa: BLE001 - an MPI that cannot answer is not CUDA-aware
        return False


class MPICommunicator(Communicator):
    """Collectives over an ``mpi4py`` communicator (``COMM_WORLD`` unless given one)."""

    backend = "mpi"

    def __init__(self, comm=None) -> None:
        MPI = import_mpi()
        self._MPI = MPI
        self._comm = comm if comm is not None else MPI.COMM_WORLD
        self.rank = self._comm.Get_rank()
        self.size = self._comm.Get_size()
        self.cuda_aware = cuda_aware(MPI)

    def _allreduce_sum(self, array):
        if isinstance(array, np.ndarray) or self.cuda_aware:
            send = _contiguous(array)
            out = _empty_like(send)  # reduced straight into a new buffer: no copy of the input
            self._sync(send)
            wait(self._comm.Iallreduce(send, out, op=self._MPI.SUM),
                 "allreduce", self.rank, self.size)
            return out
        return _to_device(self._allreduce_sum(_to_host(array)), array)

    def _broadcast(self, array, root: int):
        if isinstance(array, np.ndarray) or self.cuda_aware:
            out = _copy(array)
            self._sync(out)
            wait(self._comm.Ibcast(out, root=root), "broadcast", self.rank, self.size)
            return out
        return _to_device(self._broadcast(_to_host(array), root), array)

    def _allgather_bytes(self, data: bytes, what: str) -> list:
        send = np.frombuffer(data, dtype=np.uint8)
        recv = np.empty(self.size * send.size, dtype=np.uint8)
        wait(self._comm.Iallgather(send, recv), what, self.rank, self.size)
        return [recv[i * send.size:(i + 1) * send.size].tobytes() for i in range(self.size)]

    def _allgather_text(self, text: str) -> list:
        data = np.frombuffer(text.encode(), dtype=np.uint8)
        sizes = np.zeros(self.size, dtype=np.int64)
        wait(self._comm.Iallgather(np.array([data.size], np.int64), sizes), "describe",
             self.rank, self.size)
        recv = np.empty(int(sizes.sum()), dtype=np.uint8)
        wait(self._comm.Iallgatherv(data, (recv, sizes)), "describe", self.rank, self.size)
        ends = np.cumsum(sizes)
        return [recv[end - n:end].tobytes().decode() for n, end in zip(sizes, ends)]

    @staticmethod
    def _sync(array) -> None:
        # A GPU buffer handed to MPI must be complete: MPI does not know CuPy's stream. The
        # stream to wait for is the current one of the array's GPU, not of the current GPU.
        if not isinstance(array, np.ndarray):
            import cupy

            with on_device(array):
                cupy.cuda.get_current_stream().synchronize()


def _contiguous(array):
    if array.flags.c_contiguous:
        return array
    return _copy(array)


def _empty_like(array):
    if isinstance(array, np.ndarray):
        return np.empty(array.shape, array.dtype)
    import cupy

    with on_device(array):
        return cupy.empty(array.shape, array.dtype)


def _copy(array):
    """A C-contiguous copy of the same shape (0-d stays 0-d), on the array's own device."""
    if isinstance(array, np.ndarray):
        return np.array(array, order="C", copy=True)
    with on_device(array):
        return array.copy(order="C")


def _to_host(array) -> np.ndarray:
    with on_device(array):
        return array.get()


def _to_device(host: np.ndarray, like):
    import cupy

    with on_device(like):
        return cupy.asarray(host)
