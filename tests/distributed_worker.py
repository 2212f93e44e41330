"""One rank of a distributed test scenario (started by tests/training/test_distributed.py through
``mpiexec -n 2``). Each rank writes what it saw to ``OUT/rank<r>.json``."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import fake_cupy
import numpy as np

import gputape as gt
import gputape.distributed as dist
import gputape.training.distributed as dist_impl
from gputape.core.tensor import Tensor

FEATURES, HIDDEN, BATCH = 6, 8, 16


def data():
    rng = np.random.default_rng(42)
    x = rng.standard_normal((BATCH, FEATURES))
    y = rng.standard_normal((BATCH, 2))
    return x, y


def model(seed: int) -> list:
    rng = np.random.default_rng(seed)
    return [gt.Variable(rng.standard_normal((FEATURES, HIDDEN)), dtype="float64"),
            gt.Variable(rng.standard_normal(HIDDEN), dtype="float64"),
            gt.Variable(rng.standard_normal((HIDDEN, 2)), dtype="float64")]


def loss_fn(variables, x, y):
    w1, b1, w2 = variables
    return gt.reduce_mean((gt.tanh(x @ w1 + b1) @ w2 - y) ** 2)


def shard(array, rank: int, size: int):
    return gt.constant(array[rank::size])


def train(rank: int, size: int, bucket_bytes: int) -> dict:
    x, y = data()
    variables = model(seed=7 + rank)  # different on each rank until the broadcast
    dist.broadcast_variables(variables)
    opt = gt.optimizers.Adam(0.05)
    first_grads, history = None, []
    for _ in range(20):
        with dist.DistributedGradientTape(bucket_bytes=bucket_bytes) as tape:
            loss = loss_fn(variables, shard(x, rank, size), shard(y, rank, size))
        grads = tape.gradient(loss, variables)
        if first_grads is None:
            first_grads = [g.numpy().tolist() for g in grads]
        opt.apply_gradients(zip(grads, variables))
        history.append([v.numpy().tobytes().hex() for v in variables])
    return {"first_grads": first_grads, "history": history}


def broadcast(rank: int, size: int, root: int) -> dict:
    variables = {"a": gt.Variable(np.full(3, float(rank))), "b": gt.Variable(rank * 10.0)}
    dist.broadcast_variables(variables, root=root)
    return {"a": variables["a"].numpy().tolist(), "b": float(variables["b"])}


def nones(rank: int, size: int) -> dict:
    w, unused = gt.Variable([1.0, 2.0]), gt.Variable(5.0)
    with dist.DistributedGradientTape() as tape:
        loss = gt.reduce_sum(w * w) * float(rank + 1)
    grads = tape.gradient(loss, [w, unused])
    with dist.DistributedGradientTape() as tape:
        loss = gt.reduce_sum(w * w) * float(rank + 1)
    zeros = tape.gradient(loss, [w, unused], unconnected_gradients="zero")
    return {"grads": [None if g is None else g.numpy().tolist() for g in grads],
            "zeros": [g.numpy().tolist() for g in zeros]}


def mismatch(rank: int, size: int) -> dict:
    w, b = gt.Variable([1.0, 2.0]), gt.Variable(1.0)
    with dist.DistributedGradientTape() as tape:
        loss = gt.reduce_sum(w * w) + b
    try:
        tape.gradient(loss, [w, b] if rank == 0 else [w])
    except dist.DistributedError as exc:
        return {"error": str(exc)}
    return {"error": None}


def missing(rank: int, size: int) -> dict:
    w = gt.Variable([1.0, 2.0])
    with dist.DistributedGradientTape() as tape:
        loss = gt.reduce_sum(w * w)
    if rank == 0:
        try:
            tape.gradient(loss, w)
        except dist.DistributedError as exc:
            return {"error": str(exc)}
    return {"error": None}


def gpu(rank: int, size: int) -> dict:
    """GPU tensors averaged by the backend the environment picks (NCCL, or MPI staging them
    through the host); each rank on its own GPU when ``GPU_PER_RANK=1``, else all on gpu:0."""
    device = f"gpu:{dist.local_rank()}" if os.environ.get("GPU_PER_RANK") == "1" else "gpu:0"
    with gt.device(device):
        mean = dist.allreduce(gt.constant([float(rank), rank + 1.0]))
        w = gt.Variable([1.0, 2.0])
        with dist.DistributedGradientTape() as tape:
            loss = gt.reduce_sum(w * w) * float(rank + 1)
        grad = tape.gradient(loss, w)
    return {"backend": dist.communicator(gpu=True).backend, "device": str(grad.device),
            "mean": mean.numpy().tolist(), "grad": grad.numpy().tolist()}


def bucket_mismatch(rank: int, size: int) -> dict:
    """The same gradients, bucketed differently on each rank: a clear error, not wrong sums."""
    w, b = gt.Variable([1.0, 2.0]), gt.Variable(1.0)
    with dist.DistributedGradientTape(bucket_bytes=0 if rank == 0 else 1 << 20) as tape:
        loss = gt.reduce_sum(w * w) + b * float(rank + 1)
    try:
        grads = tape.gradient(loss, [w, b])
    except dist.DistributedError as exc:
        return {"error": str(exc)}
    return {"error": None, "grads": [g.numpy().tolist() for g in grads]}


def barrier(rank: int, size: int) -> dict:
    """Rank 1 comes late; rank 0's barrier must wait for it."""
    if rank == 1:
        time.sleep(1.0)
    entered = time.time()
    dist.barrier()
    return {"entered": entered, "left": time.time()}


def _fake_cupy():
    """CuPy with two GPUs, stood in for by tests/fake_cupy.py (NumPy memory), GPU 0 current."""
    cupy = fake_cupy.build(devices=2)
    sys.modules.update(fake_cupy.modules(cupy))
    return cupy


def fake_staging(rank: int, size: int) -> dict:
    """GPU tensors averaged through an MPI that is not CUDA-aware (staged through the host),
    rank r's tensors on GPU r while GPU 0 is current."""
    cupy = _fake_cupy()
    arrays = [cupy.on(np.array([rank, rank + 1.0], np.float32), rank),
              cupy.on(np.full((2, 2), 2.0 * rank), rank),  # float64: a bucket of its own
              cupy.on(np.array(10.0 * rank, np.float32), rank)]  # packed with the first
    tensors = [Tensor._wrap(arrays[0]), None, Tensor._wrap(arrays[1]), Tensor._wrap(arrays[2])]
    mean = dist.allreduce(tensors, backend="mpi")
    sent = dist.communicator("mpi").broadcast([cupy.on(np.full(3, rank + 5.0), rank)], root=1)
    gets = sorted({(e["device"], e["current"]) for e in fake_cupy.events(cupy, "get")})
    results = [t._data for t in mean if t is not None] + sent
    return {"mean": [None if t is None else t._data.get().tolist() for t in mean],
            "broadcast": sent[0].get().tolist(),
            "devices": [a.device.id for a in results],
            "dtypes": [str(a.dtype) for a in results],
            "backend_by_default": dist_impl._communicator_for(arrays, None, "allreduce").backend,
            "current": cupy.current(),
            "gets": gets}


def backend_mismatch(rank: int, size: int) -> dict:
    """Rank 0 averages host tensors (MPI), rank 1 GPU tensors (NCCL by default): both ranks
    must raise at once, before rank 1 starts NCCL."""
    cupy = _fake_cupy()
    if rank == 0:
        tensor = gt.constant([1.0, 2.0], device="cpu")
    else:
        tensor = Tensor._wrap(cupy.on(np.array([1.0, 2.0], np.float32), rank))
    try:
        dist.allreduce(tensor)
    except dist.DistributedError as exc:
        return {"error": str(exc), "nccl_calls": [e for e, _ in cupy.log if e != "get"]}
    return {"error": None}


def main() -> None:
    scenario, out = sys.argv[1], Path(sys.argv[2])
    rank, size = dist.rank(), dist.size()
    if scenario == "train":
        result = train(rank, size, bucket_bytes=int(sys.argv[3]))
    elif scenario == "broadcast":
        result = broadcast(rank, size, root=int(sys.argv[3]))
    else:
        scenarios = {"nones": nones, "mismatch": mismatch, "missing": missing, "gpu": gpu,
                     "bucket_mismatch": bucket_mismatch, "barrier": barrier,
                     "fake_staging": fake_staging, "backend_mismatch": backend_mismatch}
        result = scenarios[scenario](rank, size)
    result.update(rank=rank, size=size)
    (out / f"rank{rank}.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main()
