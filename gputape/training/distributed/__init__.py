"""Data-parallel training: every process computes gradients on its shard of the batch, the
gradients are averaged across processes, every replica applies the same update.

The transport is MPI (mpi4py, NumPy buffers; GPU buffers passed straight to a CUDA-aware MPI or
staged through the host) or NCCL (CuPy, for GPU tensors), chosen from the tensors' device: NCCL
when every tensor is on a GPU and CuPy has NCCL, else MPI. ``GPUTAPE_DIST_BACKEND`` changes the
choice for GPU tensors, and the ``backend=`` argument of :func:`allreduce`,
:func:`broadcast_variables` and :class:`DistributedGradientTape` overrides it for one call
(``"mpi"``, ``"nccl"`` or ``"single"``). Start the processes with ``mpiexec -n N python
train.py``, one process per GPU, each with its tensors on its own GPU
(``gt.device(f"gpu:{dist.local_rank()}")``); a script started without ``mpiexec`` is a group of
one, and everything here still works (and communicates nothing).

Examples
--------
>>> import gputape as gt
>>> import gputape.training.distributed as dist
>>> w = gt.Variable([1.0, 2.0], device="cpu")
>>> dist.broadcast_variables([w])
>>> with dist.DistributedGradientTape() as tape:
...     loss = gt.reduce_sum(w * w)
>>> tape.gradient(loss, w).numpy()  # averaged over the dist.size() processes
array([2., 4.], dtype=float32)
"""

from __future__ import annotations

import os

from ...autodiff.tape import GradientTape, UnconnectedGradients
from ...core import nest
from ...core.tensor import Tensor, Variable
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


BACKENDS = ("mpi", "nccl", "single")


def communicator(backend: "str | None" = None, gpu: bool = False,
                 device: "int | None" = None) -> Communicator:
    """The communicator for ``backend`` (``"mpi"``, ``"nccl"``, ``"single"``), or the one that
    suits host (``gpu=False``) or GPU arrays; created once per process. An NCCL communicator
    is bound to one GPU: ``device`` (by default gputape's default device when it is a GPU).

    Examples
    --------
    >>> import gputape.training.distributed as dist
    >>> dist.communicator().size >= 1
    True
    """
    name = _check_backend(backend, "communicator") if backend is not None else (
        _default_backend(gpu))
    comm = _communicators.get(name)
    if comm is None:
        if name == "single":
            comm = SingleProcess()
        elif name == "mpi":
            from ._mpi import MPICommunicator

            comm = MPICommunicator()
        else:
            from ._nccl import NCCLCommunicator

            comm = NCCLCommunicator(communicator("mpi"), device=device)
        _communicators[name] = comm
    elif name == "nccl" and device is not None and device != comm.device:
        raise DistributedError(
            f"communicator: this process's NCCL communicator is on gpu:{comm.device}, not "
            f"gpu:{device}; hint: one GPU per process, every tensor on it"
        )
    return comm


def _check_backend(name, what: str, source: str = "backend") -> str:
    if name not in BACKENDS:
        raise DistributedError(
            f"{what}: unknown backend {name!r} (from {source}); hint: use 'mpi', 'nccl' or "
            f"'single', or leave it unset (NCCL for GPU tensors when CuPy has it, else MPI)"
        )
    return name


def _default_backend(gpu: bool) -> str:
    if not any(v in os.environ for v in _LAUNCHER_VARIABLES):
        return "single"  # not started by mpiexec: do not initialise MPI behind the user's back
    if gpu:
        chosen = os.environ.get("GPUTAPE_DIST_BACKEND")
        if chosen:
            return _check_backend(chosen, "gputape.distributed", "GPUTAPE_DIST_BACKEND")
        from ._nccl import nccl_available

        if nccl_available():
            return "nccl"
    return "mpi"


def _communicator_for(arrays: list, backend: "str | None", what: str) -> Communicator:
    """The communicator for the ``None``-or-array list ``arrays``: ``backend`` when given,
    else NCCL or MPI by their devices. NCCL needs every array on this process's GPU."""
    host = [i for i, a in enumerate(arrays) if a is not None and _on_host(a)]
    gpus = [a.device.id for a in arrays if a is not None and not _on_host(a)]
    if backend is None:
        name = _default_backend(gpu=bool(gpus) and not host)
    else:
        name = _check_backend(backend, what)
    if name == "nccl" and host:
        raise DistributedError(
            f"{what}: NCCL carries GPU tensors only, and element {host[0]} is on the CPU; "
            f"hint: place the tensors on this process's GPU "
            f"(gt.device(f'gpu:{{dist.local_rank()}}')) or use backend='mpi'"
        )
    return communicator(name, device=gpus[0] if name == "nccl" and gpus else None)


def rank() -> int:
    """This process's rank in the group (0 when not started by ``mpiexec``).

    Examples
    --------
    >>> import gputape.training.distributed as dist
    >>> 0 <= dist.rank() < dist.size()
    True
    """
    return communicator().rank


def size() -> int:
    """The number of processes in the group (1 when not started by ``mpiexec``).

    Examples
    --------
    >>> import gputape.training.distributed as dist
    >>> dist.size() >= 1
    True
    """
    return communicator().size


def local_rank() -> int:
    """This process's rank among the processes on its host: the GPU it should use.

    Examples
    --------
    >>> import gputape.training.distributed as dist
    >>> dist.local_rank() >= 0
    True
    """
    for variable in ("MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK", "PMIX_LOCAL_RANK"):
        if variable in os.environ:
            return int(os.environ[variable])
    return rank()


def barrier() -> None:
    """Wait until every process has called ``barrier`` (at most ``GPUTAPE_DIST_TIMEOUT``
    seconds, then :class:`DistributedError`).

    Examples
    --------
    >>> import gputape.training.distributed as dist
    >>> dist.barrier()  # a group of one waits for nobody
    """
    communicator().barrier()


def allreduce(tensors, bucket_bytes: int = DEFAULT_BUCKET_BYTES, *,
              backend: "str | None" = None):
    """The element-wise mean over all processes of each tensor in ``tensors`` (a tensor or any
    nest of tensors and ``None``; ``None`` stays ``None``). Not recorded on tapes.

    ``backend`` (``"mpi"``, ``"nccl"``, ``"single"``) overrides the choice from the tensors'
    device; every process must pass the same.

    Examples
    --------
    >>> import gputape as gt
    >>> import gputape.training.distributed as dist
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
    reduced = _allreduce_arrays(arrays, bucket_bytes, "allreduce", backend)
    return nest.pack_as(tensors, [Tensor._wrap(a) if a is not None else None for a in reduced])


def _allreduce_arrays(arrays: list, bucket_bytes: int, what: str,
                      backend: "str | None" = None) -> list:
    comm = _communicator_for(arrays, backend, what)
    present = [i for i, a in enumerate(arrays) if a is not None]
    values = [arrays[i] for i in present]
    buckets = _buckets.plan(values, bucket_bytes) if comm.size > 1 else []
    if comm.size > 1:
        # The plan is part of the call: ranks that bucket differently would sum unrelated
        # buffers of equal total size without noticing.
        comm.agree(what, arrays, f"buckets {buckets}")
    for i in present:  # after agree(): every rank sees the same dtypes and raises alike
        if arrays[i].dtype.kind not in "fc":
            raise DistributedError(
                f"{what}: element {i} has dtype {arrays[i].dtype}; the mean over processes is "
                f"taken of floating-point tensors only; hint: gt.cast(x, gt.float32)"
            )
    out = list(arrays)
    if comm.size == 1 or not present:
        return out
    for bucket in buckets:
        members = [values[j] for j in bucket]
        with _buckets.on_device(members[0]):  # pack and divide on the bucket's own GPU
            flat = comm._allreduce_sum(_buckets.pack(members))
            flat /= comm.size
        for j, array in zip(bucket, _buckets.unpack(flat, members)):
            out[present[j]] = array
    return out


def broadcast_variables(variables, root: int = 0, *, backend: "str | None" = None) -> None:
    """Give every process ``root``'s values of ``variables`` (a Variable or any nest of them),
    so that all replicas start identical. ``backend`` as in :func:`allreduce`.

    Examples
    --------
    >>> import gputape as gt
    >>> import gputape.training.distributed as dist
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
    comm = _communicator_for(arrays, backend, "broadcast_variables")
    for v, array in zip(flat, comm.broadcast(arrays, root, "broadcast_variables")):
        v.assign(Tensor._wrap(array))


def _on_host(array) -> bool:
    import numpy as np

    return isinstance(array, np.ndarray)


class DistributedGradientTape:
    """A gradient tape whose ``gradient()`` averages the gradients over all processes.

    It wraps a :class:`gt.GradientTape` (a new one by default, kept as ``.tape``) and forwards
    everything else to it; it is not a subclass, so ``isinstance(t, gt.GradientTape)`` is
    False. Every process must ask for gradients of the same sources in the same order, with the
    same ``bucket_bytes`` and ``backend``; a process whose gradients differ in structure,
    shape, dtype or ``None`` pattern, or that buckets or transports them differently, makes
    every process raise :class:`DistributedError` instead of hanging or averaging unrelated
    numbers. Small gradients travel together in buffers of about ``bucket_bytes`` (``0``: one
    collective per gradient). ``backend`` as in :func:`allreduce`.

    Examples
    --------
    >>> import gputape as gt
    >>> import gputape.training.distributed as dist
    >>> w = gt.Variable(3.0, device="cpu")
    >>> with gt.GradientTape() as tape:
    ...     loss = w * w
    >>> float(dist.DistributedGradientTape(tape).gradient(loss, w))
    6.0
    """

    def __init__(self, tape: "GradientTape | None" = None, *,
                 bucket_bytes: int = DEFAULT_BUCKET_BYTES, backend: "str | None" = None) -> None:
        if tape is not None and not isinstance(tape, GradientTape):
            raise DistributedError(
                f"DistributedGradientTape: expected a gt.GradientTape, got {type(tape).__name__}"
                f"; hint: DistributedGradientTape(gt.GradientTape())"
            )
        self.tape = tape if tape is not None else GradientTape()
        self.bucket_bytes = int(bucket_bytes)
        self.backend = None if backend is None else _check_backend(
            backend, "DistributedGradientTape")

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
        reduced = _allreduce_arrays(arrays, self.bucket_bytes, "DistributedGradientTape.gradient",
                                    self.backend)
        wrapped = [Tensor._wrap(a) if a is not None else None for a in reduced]
        return nest.pack_as(sources, wrapped)
