"""One rank of a distributed test scenario (started by tests/test_distributed.py through
``mpiexec -n 2``). Each rank writes what it saw to ``OUT/rank<r>.json``."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np

import gputape as gt
import gputape.distributed as dist

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


def main() -> None:
    scenario, out = sys.argv[1], Path(sys.argv[2])
    rank, size = dist.rank(), dist.size()
    if scenario == "train":
        result = train(rank, size, bucket_bytes=int(sys.argv[3]))
    elif scenario == "broadcast":
        result = broadcast(rank, size, root=int(sys.argv[3]))
    else:
        scenarios = {"nones": nones, "mismatch": mismatch, "missing": missing, "gpu": gpu}
        result = scenarios[scenario](rank, size)
    result.update(rank=rank, size=size)
    (out / f"rank{rank}.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main()
