"""gputape.distributed's GPU logic without a GPU: CuPy and NCCL stood in for by
``tests/fake_cupy.py`` (NumPy memory, CuPy's current-device rules, NCCL calls recorded).

The process plays rank 1 of a group of two on a machine with two GPUs whose current device is
GPU 0, with its tensors on GPU 1: everything must happen on GPU 1. The other rank is a stand-in
that makes the same calls (its MPI side) and holds what ``cupy.cuda.nccl.peer`` says (its NCCL
side). The host staging through a real MPI is tested under ``mpiexec`` in test_distributed.py.
"""

from __future__ import annotations

import importlib
import sys

import fake_cupy
import numpy as np
import pytest

import gputape as gt
import gputape.distributed as dist
import gputape.training.distributed as dist_impl
from gputape.core.tensor import Tensor
from gputape.training.distributed._comm import SingleProcess
from gputape.training.distributed._mpi import MPICommunicator
from gputape.training.distributed._nccl import NCCLCommunicator, default_gpu

NCCL = fake_cupy.NCCL_CONSTANTS
RANK, GPU = 1, 1


class _Peer(SingleProcess):
    """The MPI side of a group of two whose other rank makes the same calls; a broadcast from
    the other rank brings ``from_root``."""

    backend = "mpi"
    size = 2

    def __init__(self, rank: int, from_root=None) -> None:
        self.rank, self.from_root = rank, from_root

    def _allgather_bytes(self, data: bytes, what: str) -> list:
        return [data, data]

    def _allgather_text(self, text: str) -> list:
        return [text, text]

    def _broadcast(self, array, root: int):
        return array if root == self.rank else np.array(self.from_root, array.dtype)


@pytest.fixture(params=["14.2.0"])
def cupy(monkeypatch, request):
    """The fake CuPy (14 unless a test parametrizes ``cupy`` indirectly) in place of CuPy,
    gputape seeing its two GPUs, and this process started as rank 1 of 2 (its MPI
    communicator the stand-in peer, whose broadcast brings rank 0's unique id)."""
    fake = fake_cupy.build(devices=2, version=request.param)
    for name, module in fake_cupy.modules(fake).items():
        monkeypatch.setitem(sys.modules, name, module)
    device_module = importlib.import_module("gputape.core.device")
    monkeypatch.setattr(device_module, "_CUPY_STATE", {"module": fake})
    monkeypatch.setattr(device_module, "_RESOLVED_DEFAULT", {})
    made_by_root = (fake_cupy.UNIQUE_ID if request.param.startswith("14")
                    else fake_cupy.UNIQUE_ID_CUPY13)
    peer = _Peer(RANK, from_root=np.array(list(made_by_root), np.int16))
    monkeypatch.setattr(dist_impl, "_communicators", {"mpi": peer})
    monkeypatch.setenv("PMI_RANK", str(RANK))  # as if started by mpiexec
    monkeypatch.delenv("GPUTAPE_DIST_BACKEND", raising=False)
    monkeypatch.setenv("GPUTAPE_DEVICE", "cpu")
    return fake


def _on_gpu(cupy, values, dtype=np.float32):
    return cupy.on(np.asarray(values, dtype), GPU)


def _host(array) -> np.ndarray:
    assert array.device.id == GPU, f"result on gpu:{array.device.id}, not gpu:{GPU}"
    return array.get()


# -- NCCL: the communicator, the calls, their arguments -------------------------------------


def test_nccl_allreduce_runs_on_the_arrays_gpu_with_cupys_arguments(cupy):
    cupy.cuda.nccl.peer = lambda values: values + 10  # the other rank's gradients
    a = _on_gpu(cupy, [1.0, 2.0, 3.0])
    b = _on_gpu(cupy, [[4.0], [6.0]])
    out = dist.allreduce([Tensor._wrap(a), None, Tensor._wrap(b)])
    assert out[1] is None
    np.testing.assert_array_equal(_host(out[0]._data), [6.0, 7.0, 8.0])  # (x + x + 10) / 2
    np.testing.assert_array_equal(_host(out[2]._data), [[9.0], [11.0]])
    assert out[0].device == gt.Device(f"gpu:{GPU}")

    (made,) = fake_cupy.events(cupy, "NcclCommunicator")
    assert made == {"ndev": 2, "comm_id": fake_cupy.UNIQUE_ID, "rank": RANK, "current": GPU}
    assert type(made["comm_id"]) is bytes  # CuPy 14 refuses a tuple
    assert fake_cupy.events(cupy, "get_unique_id") == []  # rank 0 makes the id
    (call,) = fake_cupy.events(cupy, "allReduce")  # one bucket of 5 elements
    assert call["count"] == 5 and call["datatype"] == NCCL["NCCL_FLOAT32"]
    assert call["op"] == NCCL["NCCL_SUM"] and call["sendbuf"] != call["recvbuf"]
    assert call["current"] == GPU and call["stream"] == cupy.streams[GPU].ptr
    assert cupy.current() == 0  # and the current device is given back


@pytest.mark.parametrize("dtype, datatype, per_element", [
    (np.float16, "NCCL_FLOAT16", 1), (np.float32, "NCCL_FLOAT32", 1),
    (np.float64, "NCCL_FLOAT64", 1), (np.complex64, "NCCL_FLOAT32", 2),
    (np.complex128, "NCCL_FLOAT64", 2),
])
def test_nccl_data_types(cupy, dtype, datatype, per_element):
    values = np.array([1.5, -2.0, 4.0], dtype) * (1 + 1j if per_element == 2 else 1)
    out = dist.allreduce(Tensor._wrap(_on_gpu(cupy, values, dtype)))
    (call,) = fake_cupy.events(cupy, "allReduce")
    assert call["datatype"] == NCCL[datatype] and call["count"] == 3 * per_element
    got = _host(out._data)
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, values)  # the peer holds the same: the mean is x


def test_nccl_broadcast_arguments_and_bytes_for_types_nccl_lacks(cupy):
    root_values = {np.dtype(np.float64): np.array([7.0, 8.0]),
                   np.dtype(np.bool_): np.array([True, False, True])}
    cupy.cuda.nccl.peer = lambda values: (
        root_values[np.dtype(np.float64)] if values.dtype == np.float64
        else root_values[np.dtype(np.bool_)].view(np.uint8))
    mine = [_on_gpu(cupy, [1.0, 2.0], np.float64), _on_gpu(cupy, [False, True, False], bool)]
    comm = dist.communicator("nccl", device=GPU)
    out = comm.broadcast(mine, root=0)
    np.testing.assert_array_equal(_host(out[0]), [7.0, 8.0])
    np.testing.assert_array_equal(_host(out[1]), [True, False, True])
    np.testing.assert_array_equal(_host(mine[0]), [1.0, 2.0])  # the input is not written
    calls = fake_cupy.events(cupy, "bcast")
    assert [(c["count"], c["datatype"], c["root"]) for c in calls] == [
        (2, NCCL["NCCL_FLOAT64"], 0), (3, NCCL["NCCL_UINT8"], 0)]
    assert all(c["current"] == GPU and c["stream"] == cupy.streams[GPU].ptr for c in calls)


def test_each_nccl_collective_makes_its_arrays_gpu_current_itself(cupy):
    comm = dist.communicator("nccl", device=GPU)
    assert cupy.current() == 0
    out = comm._allreduce_sum(_on_gpu(cupy, [1.0, 2.0]))  # called with GPU 0 current
    np.testing.assert_array_equal(_host(out), [2.0, 4.0])  # a sum: the peer holds the same
    out = comm._broadcast(_on_gpu(cupy, [3.0]), root=0)
    np.testing.assert_array_equal(_host(out), [3.0])
    calls = fake_cupy.events(cupy, "allReduce") + fake_cupy.events(cupy, "bcast")
    assert [c["current"] for c in calls] == [GPU, GPU]


@pytest.mark.parametrize("cupy", ["14.2.0", "13.6.0"], indirect=True)
def test_rank_zero_makes_the_unique_id_and_sends_it(cupy, monkeypatch):
    peer = _Peer(0)
    monkeypatch.setattr(dist_impl, "_communicators", {"mpi": peer})
    comm = NCCLCommunicator(peer, device=GPU)
    comm.broadcast([_on_gpu(cupy, [1.0])], root=0)
    assert len(fake_cupy.events(cupy, "get_unique_id")) == 1
    (made,) = fake_cupy.events(cupy, "NcclCommunicator")
    assert made["comm_id"] == cupy.cuda.nccl.get_unique_id() and made["rank"] == 0
    assert made["current"] == GPU


@pytest.mark.parametrize("cupy", ["14.2.0", "13.6.0"], indirect=True)
def test_the_unique_id_reaches_other_ranks_as_their_cupy_takes_it(cupy):
    """CuPy 14's NcclCommunicator takes the id as bytes, CuPy 13's as a tuple of chars; the
    id travels over MPI in between (here: the stand-in peer's broadcast from rank 0)."""
    dist.allreduce([Tensor._wrap(_on_gpu(cupy, [1.0]))])
    (made,) = fake_cupy.events(cupy, "NcclCommunicator")
    want = fake_cupy.UNIQUE_ID if cupy.__version__.startswith("14") else (
        fake_cupy.UNIQUE_ID_CUPY13)
    assert made["comm_id"] == want and type(made["comm_id"]) is type(want)


def test_nccl_refuses_a_type_it_cannot_sum(cupy):
    comm = dist.communicator("nccl", device=GPU)
    with pytest.raises(dist.DistributedError) as info:
        comm._allreduce_sum(_on_gpu(cupy, [1, 2], np.int16))
    assert "int16" in str(info.value) and "hint" in str(info.value)


def test_nccl_refuses_an_array_on_another_gpu(cupy):
    comm = dist.communicator("nccl", device=GPU)
    with pytest.raises(dist.DistributedError) as info:
        comm._allreduce_sum(cupy.on(np.ones(2, np.float32), 0))
    assert "gpu:0" in str(info.value) and f"gpu:{GPU}" in str(info.value)
    with pytest.raises(dist.DistributedError, match="one GPU per process"):
        dist.communicator("nccl", device=0)


def test_nccl_gpu_defaults_to_gputapes_device_then_cupys(cupy):
    with gt.device("gpu:1"):
        assert default_gpu() == 1
    with cupy.cuda.Device(1):
        assert default_gpu() == 1  # GPUTAPE_DEVICE=cpu: CuPy's current device
    assert default_gpu() == 0


# -- the backend: chosen from the tensors' device, or given ----------------------------------


def test_backend_from_the_devices(cupy, monkeypatch):
    gpu, host = _on_gpu(cupy, [1.0]), np.ones(1, np.float32)
    choose = dist_impl._communicator_for
    assert choose([gpu, None], None, "x").backend == "nccl"
    assert choose([host], None, "x").backend == "mpi"
    assert choose([gpu, host], None, "x").backend == "mpi"  # NCCL cannot carry the host one
    assert choose([gpu], "mpi", "x").backend == "mpi"
    monkeypatch.setenv("GPUTAPE_DIST_BACKEND", "mpi")
    assert choose([gpu], None, "x").backend == "mpi"
    monkeypatch.setenv("GPUTAPE_DIST_BACKEND", "nccl")
    assert choose([host], None, "x").backend == "mpi"  # the variable is for GPU tensors
    assert choose([gpu], None, "x").backend == "nccl"
    monkeypatch.setenv("GPUTAPE_DIST_BACKEND", "gloo")
    with pytest.raises(dist.DistributedError, match="unknown backend 'gloo'.*GPUTAPE_DIST"):
        choose([gpu], None, "x")
    monkeypatch.delenv("PMI_RANK")  # not started by mpiexec: a group of one
    assert choose([gpu], None, "x").backend == "single"


def test_nccl_for_host_tensors_is_a_clear_error(cupy):
    with pytest.raises(dist.DistributedError) as info:
        dist.allreduce([Tensor._wrap(_on_gpu(cupy, [1.0])), gt.constant([1.0], device="cpu")],
                       backend="nccl")
    assert "element 1 is on the CPU" in str(info.value) and "backend='mpi'" in str(info.value)
    assert fake_cupy.events(cupy, "allReduce") == []


def test_mpi_override_takes_gpu_tensors_to_mpi_not_nccl(cupy, monkeypatch):
    class Recording(_Peer):
        def _allreduce_sum(self, array):
            self.reduced = (type(array), array.device.id)
            return array.copy()  # the other rank is stood in for by zeros: sum = x

    monkeypatch.setattr(dist_impl, "_communicators", {"mpi": Recording(RANK)})
    out = dist.allreduce(Tensor._wrap(_on_gpu(cupy, [1.0, 3.0])), backend="mpi")
    np.testing.assert_array_equal(_host(out._data), [0.5, 1.5])
    assert dist_impl._communicators["mpi"].reduced == (cupy.ndarray, GPU)
    assert fake_cupy.events(cupy, "allReduce") == []
    assert "nccl" not in dist_impl._communicators


# -- MPI with GPU buffers --------------------------------------------------------------------


class _Request:
    def Test(self) -> bool:  # noqa: N802 - mpi4py's name
        return True


class _FakeMPIComm:
    """What a CUDA-aware MPI is handed: records the buffers and when it was called."""

    def __init__(self, log: list) -> None:
        self.log = log

    def Iallreduce(self, send, out, op):  # noqa: N802 - mpi4py's name
        self.log.append(("Iallreduce", {"send": send, "out": out}))
        out._values[...] = send._values * 2
        return _Request()


def _cuda_aware(log: list) -> MPICommunicator:
    comm = object.__new__(MPICommunicator)  # no mpi4py: a stand-in MPI comm of two ranks
    comm._MPI = type("MPI", (), {"SUM": "sum"})
    comm._comm, comm.rank, comm.size, comm.cuda_aware = _FakeMPIComm(log), RANK, 2, True
    return comm


def test_cuda_aware_mpi_gets_buffers_on_the_arrays_gpu_after_its_stream(cupy):
    a = _on_gpu(cupy, [1.0, 2.0])
    out = _cuda_aware(cupy.log)._allreduce_sum(a)
    np.testing.assert_array_equal(_host(out), [2.0, 4.0])
    names = [event for event, _ in cupy.log if event in ("synchronize", "Iallreduce")]
    assert names == ["synchronize", "Iallreduce"]  # the buffer is complete before MPI reads it
    (sync,) = fake_cupy.events(cupy, "synchronize")
    assert sync["stream"] == cupy.streams[GPU].ptr
    (call,) = fake_cupy.events(cupy, "Iallreduce")
    assert call["send"].device.id == GPU and call["out"].device.id == GPU


# -- moving tensors between GPUs -------------------------------------------------------------


def test_to_another_gpu_copies_strided_and_broadcast_views(cupy):
    """CuPy copies between GPUs only from contiguous memory (NotImplementedError otherwise):
    a view is made contiguous on its own GPU first."""
    base = np.arange(12.0).reshape(3, 4)
    views = {"strided": _on_gpu(cupy, base)[:, ::2],
             "broadcast": cupy.ndarray(np.broadcast_to(base[0], (2, 4)), GPU)}
    with pytest.raises(NotImplementedError):  # what the stand-in does, as CuPy
        with cupy.cuda.Device(0):
            cupy.asarray(views["strided"])
    for name, view in views.items():
        moved = Tensor._wrap(view).to("gpu:0")
        assert moved.device == gt.Device("gpu:0"), name
        assert moved._data.device.id == 0 and moved._data.flags.c_contiguous, name
        np.testing.assert_array_equal(moved._data.get(), view._values, err_msg=name)
    contiguous = _on_gpu(cupy, base)
    assert Tensor._wrap(contiguous).to(f"gpu:{GPU}")._data is contiguous  # no copy
