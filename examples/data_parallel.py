"""Data-parallel training of a small MLP on a synthetic dataset.

Every process trains on its shard of each batch; DistributedGradientTape averages the gradients,
so every replica applies the same update and the model equals one trained on the full batch.

    mpiexec -n 2 python examples/data_parallel.py     # two processes
    python examples/data_parallel.py                  # one process, the full batch

On a machine with GPUs, start one process per GPU: each trains on the GPU of its rank on the
host (``dist.local_rank()``), and the gradients are averaged with NCCL (when CuPy has it), each
process on its own GPU; ``--device cpu`` keeps every process on the CPU. Each rank prints the
loss of the full batch (the mean of the ranks' shard losses): the same on every rank, and the
same as in a single process up to float rounding.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

import gputape as gt
import gputape.distributed as dist


def make_data(rng, samples: int = 512):
    features = rng.standard_normal((samples, 20))
    teacher = rng.standard_normal((20, 3))
    labels = np.tanh(features @ teacher) + 0.1 * rng.standard_normal((samples, 3))
    return features, labels


def init_model(rng, hidden: int = 32) -> list:
    # Each rank draws different weights; broadcast_variables makes rank 0's the common start.
    return [
        gt.Variable(rng.standard_normal((20, hidden)) * 0.2, dtype="float64", name="w1"),
        gt.Variable(np.zeros(hidden), dtype="float64", name="b1"),
        gt.Variable(rng.standard_normal((hidden, 3)) * 0.2, dtype="float64", name="w2"),
        gt.Variable(np.zeros(3), dtype="float64", name="b2"),
    ]


def loss_fn(model, x, y):
    w1, b1, w2, b2 = model
    hidden = gt.tanh(x @ w1 + b1)
    return gt.reduce_mean((hidden @ w2 + b2 - y) ** 2)


def rank_device(choice: str = "auto") -> str:
    """Where this process trains: ``choice``, or with ``"auto"`` the GPU of this rank on its
    host (one process per GPU), or the CPU when there is no GPU."""
    if choice != "auto":
        return choice
    gpus = [d.name for d in gt.list_devices() if d.kind == "gpu"]
    if not gpus:
        return "cpu"
    local = dist.local_rank()
    if local >= len(gpus):
        raise SystemExit(f"{local + 1} processes on this host but {len(gpus)} GPU(s): start one "
                         f"process per GPU, or pass --device cpu")
    # Every tensor of this process lives on its GPU, so the NCCL communicator is made there
    # and each collective runs there.
    return gpus[local]


def train(steps: int, batch: int, seed: int = 0) -> list:
    rank, size = dist.rank(), dist.size()
    if batch % size:
        raise SystemExit(f"the batch ({batch}) must split evenly over {size} processes")
    data_rng = np.random.default_rng(seed)  # the same data on every rank
    features, labels = make_data(data_rng)
    model = init_model(np.random.default_rng(seed + 1 + rank))
    dist.broadcast_variables(model, root=0)
    opt = gt.optimizers.SGD(learning_rate=0.1, momentum=0.9)
    losses = []
    for step in range(steps):
        start = (step * batch) % len(features)
        rows = slice(start + rank, start + batch, size)  # this rank's shard of the batch
        x, y = gt.constant(features[rows]), gt.constant(labels[rows])
        with dist.DistributedGradientTape() as tape:
            loss = loss_fn(model, x, y)
        grads = tape.gradient(loss, model)
        opt.apply_gradients(zip(grads, model))
        losses.append(float(dist.allreduce(loss)))  # the full batch's loss
    return losses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--device", default="auto",
                        help="auto (this rank's GPU, else the CPU), cpu or gpu:N")
    args = parser.parse_args()
    device = rank_device(args.device)
    with gt.device(device):
        losses = train(args.steps, args.batch)
    who = f"rank {dist.rank()}/{dist.size()}"
    lines = [f"{who} trains on {device}\n"]
    lines += [f"{who} step {step:3d} loss {losses[step]:.12f}\n"
              for step in (0, len(losses) // 2, len(losses) - 1)]
    sys.stdout.write("".join(lines))  # one write: the ranks' lines do not interleave
    sys.stdout.flush()


if __name__ == "__main__":
    main()
