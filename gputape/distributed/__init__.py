"""Data-parallel training: every process computes gradients on its shard of the batch, the
gradients are averaged across processes, every replica applies the same update.

The transport is MPI (mpi4py, NumPy buffers; GPU buffers passed straight to a CUDA-aware MPI or
staged through the host) or NCCL (CuPy, for GPU tensors), chosen from the tensors' device;
``backend="mpi"`` / ``"nccl"`` (or ``GPUTAPE_DIST_BACKEND``) overrides the choice. Start the
processes with ``mpiexec -n N python train.py``; a script started without ``mpiexec`` is a
group of one, and everything here still works (and communicates nothing).

Examples
--------
>>> import gputape as gt
>>> import gputape.distributed as dist
>>> w = gt.Variable([1.0, 2.0], device="cpu")
>>> dist.broadcast_variables([w])
>>> with dist.DistributedGradientTape() as tape:
...     loss = gt.reduce_sum(w * w)
>>> tape.gradient(loss, w).numpy()  # averaged over the dist.size() processes
array([2., 4.], dtype=float32)
"""

from __future__ import annotations

import os

from .. import nest
from ..tape import GradientTape, UnconnectedGradients
from ..tensor import Tensor, Variable
from . import _buckets
from ._comm import Communicator, DistributedError, SingleProcess

__all__ = [
    "Communicator", "DistributedError", "DistributedGradientTape", "allreduce", "barrier",
    "broadcast_variables", "communicator", "local_rank", "rank", "size",
]

DEFAULT_BUCKET_BYTES = 4 << 20
_LAUNCHER_VARIABLES = ("PMI_RANK", "PMI_SIZE", "PMIX_RANK", "OMPI_COMM_WORLD_SIZE",
                       "MPI_LOCALNRANKS", "HYDI_CONTROL_FD")
_communicators: dict = {}


def communicator(backend: "str | None" = None, gpu: bool = False) -> Communicator:
    """The communicator for ``backend`` (``"mpi"``, ``"nccl"``, ``"single"``), or the one that
    suits host (``gpu=False``) or GPU arrays; created once per process.

    Examples
    --------
    >>> import gputape.distributed as dist
    >>> dist.communicator().size >= 1
    True
    """
    name = backend or os.environ.get("GPUTAPE_DIST_BACKEND") or _default_backend(gpu)
    if name not in ("mpi", "nccl", "single"):
        raise DistributedError(
            f"gputape.distributed: unknown backend {name!r}; hint: use 'mpi', 'nccl' or 'single'"
        )
    comm = _communicators.get(name)
    if comm is None:
        if name == "single":
            comm = SingleProcess()
        elif name == "mpi":
            from ._mpi import MPICommunicator

            comm = MPICommunicator()
        else:
            from ._nccl import NCCLCommunicator

            comm = NCCLCommunicator(communicator("mpi"))
        _communicators[name] = comm
    return comm


def _default_backend(gpu: bool) -> str:
    if not any(v in os.environ for v in _LAUNCHER_VARIABLES):
        return "single"  # not started by mpiexec: do not initialise MPI behind the user's back
    if gpu:
        from ._nccl import nccl_available

        if nccl_available():
            return "nccl"
    return "mpi"


def rank() -> int:
    """This process's rank in the group (0 when not started by ``mpiexec``)."""
    return communicator().rank


def size() -> int:
    """The number of processes in the group (1 when not started by ``mpiexec``)."""
    return communicator().size


def local_rank() -> int:
    """This process's rank among the processes on its host: the GPU it should use.

    Examples
    --------
    >>> import gputape.distributed as dist
    >>> dist.local_rank() >= 0
    True
    """
    for variable in ("MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK", "PMIX_LOCAL_RANK"):
        if variable in os.environ:
            return int(os.environ[variable])
    return rank()


def barrier() -> None:
    """Wait until every process has called ``barrier``."""
    communicator().barrier()


def allreduce(tensors, bucket_bytes: int = DEFAULT_BUCKET_BYTES):
    """The element-wise mean over all processes of each tensor in ``tensors`` (a tensor or any
    nest of tensors and ``None``; ``None`` stays ``None``). Not recorded on tapes.

    Examples
    --------
    >>> import gputape as gt
    >>> import gputape.distributed as dist
    >>> dist.allreduce([gt.constant([1.0, 3.0], device="cpu"), None])[0].numpy()
    array([1., 3.], dtype=float32)
    """
    flat = nest.flatten(tensors)
    for i, t in enumerate(flat):
        if t is not None and not isinstance(t, Tensor):
            raise DistributedError(
                f"allreduce: element {i} is a {type(t).__name__}, not a gt.Tensor or None; "
                f"hint: gt.constant(value) first"
            )
    arrays = [t._data if t is not None else None for t in flat]
    reduced = _allreduce_arrays(arrays, bucket_bytes, "allreduce")
    return nest.pack_as(tensors, [Tensor._wrap(a) if a is not None else None for a in reduced])


def _allreduce_arrays(arrays: list, bucket_bytes: int, what: str) -> list:
    present = [i for i, a in enumerate(arrays) if a is not None]
    gpu = any(not _on_host(arrays[i]) for i in present)
    comm = communicator(gpu=gpu)
    comm.agree(what, arrays)
    for i in present:  # after agree(): every rank sees the same dtypes and raises alike
        if arrays[i].dtype.kind not in "fc":
            raise DistributedError(
                f"{what}: element {i} has dtype {arrays[i].dtype}; the mean over processes is "
                f"taken of floating-point tensors only; hint: gt.cast(x, gt.float32)"
            )
    out = list(arrays)
    if comm.size == 1 or not present:
        return out
    values = [arrays[i] for i in present]
    for bucket in _buckets.plan(values, bucket_bytes):
        members = [values[j] for j in bucket]
        flat = comm._allreduce_sum(_buckets.pack(members))
        flat /= comm.size
        for j, array in zip(bucket, _buckets.unpack(flat, members)):
            out[present[j]] = array
    return out


def broadcast_variables(variables, root: int = 0) -> None:
    """Give every process ``root``'s values of ``variables`` (a Variable or any nest of them),
    so that all replicas start identical.

    Examples
    --------
    >>> import gputape as gt
    >>> import gputape.distributed as dist
    >>> w = gt.Variable([0.5], device="cpu")
    >>> dist.broadcast_variables({"w": w}, root=0)
    >>> w.numpy()
    array([0.5], dtype=float32)
    """
    flat = nest.flatten(variables)
    for i, v in enumerate(flat):
        if not isinstance(v, Variable):
            raise DistributedError(
                f"broadcast_variables: element {i} is a {type(v).__name__}, not a gt.Variable; "
                f"hint: pass the model's variables (tensors are immutable, only Variables change)"
            )
    arrays = [v._data for v in flat]
    comm = communicator(gpu=any(not _on_host(a) for a in arrays))
    for v, array in zip(flat, comm.broadcast(arrays, root, "broadcast_variables")):
        v.assign(Tensor._wrap(array))


def _on_host(array) -> bool:
    import numpy as np

    return isinstance(array, np.ndarray)


class DistributedGradientTape:
    """A GradientTape whose ``gradient()`` averages the gradients over all processes.

    Wraps a tape (a new one by default) and forwards everything else to it. Every process must
    ask for gradients of the same sources in the same order; a process whose gradients differ
    in structure, shape, dtype or ``None`` pattern makes every process raise
    :class:`DistributedError` instead of hanging. Small gradients travel together in buffers of
    about ``bucket_bytes`` (``0``: one collective per gradient).

    Examples
    --------
    >>> import gputape as gt
    >>> import gputape.distributed as dist
    >>> w = gt.Variable(3.0, device="cpu")
    >>> with gt.GradientTape() as tape:
    ...     loss = w * w
    >>> float(dist.DistributedGradientTape(tape).gradient(loss, w))
    6.0
    """

    def __init__(self, tape: "GradientTape | None" = None, *,
                 bucket_bytes: int = DEFAULT_BUCKET_BYTES) -> None:
        if tape is not None and not isinstance(tape, GradientTape):
            raise DistributedError(
                f"DistributedGradientTape: expected a gt.GradientTape, got {type(tape).__name__}"
                f"; hint: DistributedGradientTape(gt.GradientTape())"
            )
        self.tape = tape if tape is not None else GradientTape()
        self.bucket_bytes = int(bucket_bytes)

    def __enter__(self) -> "DistributedGradientTape":
        self.tape.__enter__()
        return self

    def __exit__(self, *exc_info) -> None:
        self.tape.__exit__(*exc_info)

    def __getattr__(self, name: str):
        return getattr(self.tape, name)

    def gradient(self, target, sources, output_gradients=None,
                 unconnected_gradients=UnconnectedGradients.NONE):
        """The local gradients (``GradientTape.gradient``), averaged over all processes."""
        grads = self.tape.gradient(target, sources, output_gradients, unconnected_gradients)
        flat = nest.flatten(grads)
        arrays = [g._data if g is not None else None for g in flat]
        reduced = _allreduce_arrays(arrays, self.bucket_bytes, "DistributedGradientTape.gradient")
        wrapped = [Tensor._wrap(a) if a is not None else None for a in reduced]
        return nest.pack_as(sources, wrapped)
