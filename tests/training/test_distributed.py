"""gputape.distributed: two processes under ``mpiexec -n 2`` (loopback only, bounded in time),
plus the single-process behaviour and the bucketing."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import gputape as gt
import gputape.distributed as dist
from gputape.training.distributed import _buckets
from gputape.training.distributed._comm import SingleProcess

ROOT = Path(__file__).resolve().parents[2]
WORKER = ROOT / "tests" / "distributed_worker.py"
sys.path.insert(0, str(WORKER.parent))
import distributed_worker as worker  # noqa: E402 - the same model the ranks train
import mpi_helpers  # noqa: E402

needs_mpi = pytest.mark.skipif(mpi_helpers.missing() is not None,
                               reason=mpi_helpers.missing() or "")


def _launch(script: "list[str]", timeout: float = 60, env: "dict | None" = None):
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), "GPUTAPE_DEVICE": "cpu", **(env or {})}
    return mpi_helpers.run_group(mpi_helpers.command(2, [sys.executable, *script]),
                                 timeout=timeout, env=full_env, cwd=ROOT)


def _run(tmp_path, *args, **kwargs) -> list:
    done = _launch([str(WORKER), args[0], str(tmp_path), *map(str, args[1:])], **kwargs)
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]


# -- two processes --------------------------------------------------------------------------


@needs_mpi
@pytest.mark.parametrize("bucket_bytes", [0, 1 << 20])
def test_averaged_gradients_equal_the_full_batch_gradient(tmp_path, bucket_bytes):
    ranks = _run(tmp_path, "train", bucket_bytes)
    assert [r["size"] for r in ranks] == [2, 2]
    x, y = worker.data()
    variables = worker.model(seed=7)  # rank 0's start, which the broadcast gave everyone
    with gt.GradientTape() as tape:
        loss = worker.loss_fn(variables, gt.constant(x), gt.constant(y))
    full = tape.gradient(loss, variables)
    for r in ranks:
        for got, want in zip(r["first_grads"], full):
            np.testing.assert_allclose(got, want.numpy(), rtol=1e-12, atol=1e-14)


@needs_mpi
def test_replicas_stay_bit_identical_over_twenty_steps(tmp_path):
    ranks = _run(tmp_path, "train", 1 << 20)
    assert len(ranks[0]["history"]) == 20
    assert ranks[0]["history"] == ranks[1]["history"]


@needs_mpi
@pytest.mark.parametrize("root", [0, 1])
def test_broadcast_variables(tmp_path, root):
    ranks = _run(tmp_path, "broadcast", root)
    for r in ranks:
        assert r["a"] == [float(root)] * 3 and r["b"] == root * 10.0


@needs_mpi
def test_none_gradients_stay_none_on_every_rank(tmp_path):
    ranks = _run(tmp_path, "nones")
    for r in ranks:
        # d/dw of (rank + 1) * sum(w*w), averaged over ranks 0 and 1: 1.5 * 2w
        assert r["grads"] == [[3.0, 6.0], None]
        assert r["zeros"] == [[3.0, 6.0], 0.0]


@needs_mpi
def test_mismatched_structure_fails_on_every_rank(tmp_path):
    ranks = _run(tmp_path, "mismatch")
    for r in ranks:
        error = r["error"]
        assert error is not None and "the ranks made different calls" in error
        assert "rank 0: DistributedGradientTape.gradient of 2 array(s)" in error
        assert "rank 1: DistributedGradientTape.gradient of 1 array(s)" in error
        assert "hint" in error


@needs_mpi
def test_a_rank_that_never_calls_is_a_clear_error_not_a_hang(tmp_path):
    ranks = _run(tmp_path, "missing", timeout=45, env={"GPUTAPE_DIST_TIMEOUT": "2"})
    assert "waited 2 s and the other ranks did not make the same call" in ranks[0]["error"]
    assert ranks[1]["error"] is None


@needs_mpi
def test_ranks_bucketing_differently_fail_on_every_rank(tmp_path):
    ranks = _run(tmp_path, "bucket_mismatch", timeout=45, env={"GPUTAPE_DIST_TIMEOUT": "10"})
    for r in ranks:
        error = r["error"]
        assert error is not None and "the ranks made different calls" in error, r
        assert "rank 0: DistributedGradientTape.gradient of 2 array(s)" in error
        assert "buckets [[0], [1]]" in error and "buckets [[0, 1]]" in error
        assert "bucket_bytes" in error  # the hint


@needs_mpi
def test_barrier_waits_for_the_last_rank(tmp_path):
    ranks = _run(tmp_path, "barrier")
    early, late = ranks
    assert early["left"] >= late["entered"]  # rank 0 left only after rank 1 arrived
    assert early["left"] - early["entered"] > 0.5  # rank 1 slept 1 s before it came


@needs_mpi
def test_gpu_buffers_staged_through_an_mpi_that_is_not_cuda_aware(tmp_path):
    # CuPy stood in for (tests/fake_cupy.py): rank r's tensors on GPU r, GPU 0 current.
    ranks = _run(tmp_path, "fake_staging", env={"GPUTAPE_MPI_CUDA_AWARE": "0",
                                                "GPUTAPE_DIST_TIMEOUT": "10"})
    for r in ranks:
        assert r["mean"] == [[0.5, 1.5], None, [[1.0, 1.0], [1.0, 1.0]], 5.0]
        assert r["broadcast"] == [6.0, 6.0, 6.0]  # rank 1's values
        assert r["devices"] == [r["rank"]] * 4  # back on the rank's GPU, not the current one
        assert r["dtypes"] == ["float32", "float64", "float32", "float64"]
        # staged with the array's GPU current, and that current device given back after
        assert r["gets"] == [[r["rank"], r["rank"]]] and r["current"] == 0
        assert r["backend_by_default"] == "nccl"  # GPU tensors, and (fake) CuPy has NCCL


@needs_mpi
def test_ranks_on_different_backends_fail_fast_not_hang(tmp_path):
    # Rank 0 averages host tensors (MPI), rank 1 GPU tensors (NCCL): the agreement, over MPI,
    # sees the backends differ before rank 1 starts NCCL.
    start = time.monotonic()
    ranks = _run(tmp_path, "backend_mismatch", timeout=45, env={"GPUTAPE_DIST_TIMEOUT": "20"})
    assert time.monotonic() - start < 15
    for r in ranks:
        error = r["error"]
        assert error is not None and "the ranks made different calls" in error, r
        assert "rank 0: allreduce of 1 array(s): [float32(2,)] over mpi" in error
        assert "rank 1: allreduce of 1 array(s): [float32(2,)] over nccl" in error
    assert ranks[1]["nccl_calls"] == []  # NCCL never started


def test_a_timed_out_group_is_killed_whole(tmp_path):
    # The child starts a grandchild (as mpiexec starts ranks) and both outlive the timeout.
    pid_file = tmp_path / "grandchild"
    code = ("import subprocess, sys, time; "
            "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'], "
            "stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); "
            f"open({str(pid_file)!r}, 'w').write(str(p.pid)); time.sleep(60)")
    start = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired):
        mpi_helpers.run_group([sys.executable, "-c", code], timeout=3)
    assert time.monotonic() - start < 30
    grandchild = int(pid_file.read_text())
    try:
        deadline = time.monotonic() + 10
        while _alive(grandchild) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(grandchild), "the grandchild outlived the timeout"
    finally:
        if _alive(grandchild):
            os.kill(grandchild, 9)


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\tZ" not in status.split("State:")[1].splitlines()[0]  # a zombie is dead


def _example_losses(text: str) -> dict:
    found: dict = {}
    for who, step, loss in re.findall(r"rank (\d+/\d+) step +(\d+) loss ([\d.]+)", text):
        found.setdefault(who, {})[int(step)] = float(loss)
    return found


@needs_mpi
def test_example_matches_single_process_training():
    script = [str(ROOT / "examples" / "data_parallel.py"), "--steps", "12", "--device", "cpu"]
    two = _launch(script)
    assert two.returncode == 0, two.stderr[-3000:]
    one = subprocess.run([sys.executable, *script], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT)
    assert one.returncode == 0, one.stderr[-3000:]
    assert "rank 0/2 trains on cpu" in two.stdout and "rank 1/2 trains on cpu" in two.stdout
    per_rank, single = _example_losses(two.stdout), _example_losses(one.stdout)["0/1"]
    assert set(per_rank) == {"0/2", "1/2"}
    assert per_rank["0/2"] == per_rank["1/2"]  # identical across ranks, to the last digit
    for step, loss in single.items():
        assert per_rank["0/2"][step] == pytest.approx(loss, rel=1e-9)


def _gpu_count() -> int:
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount()
    except Exception:  # noqa: BLE001 - no CuPy or no driver: no GPU
        return 0


@pytest.mark.gpu
@needs_mpi
def test_gpu_tensors_staged_through_mpi(tmp_path):
    if _gpu_count() < 1:
        pytest.skip("no CUDA device (CuPy sees no GPU)")
    ranks = _run(tmp_path, "gpu", env={"GPUTAPE_DEVICE": "", "GPUTAPE_DIST_BACKEND": "mpi",
                                       "GPUTAPE_MPI_CUDA_AWARE": "0"})
    for r in ranks:
        assert r["backend"] == "mpi" and r["device"] == "gpu:0"
        assert r["mean"] == [0.5, 1.5] and r["grad"] == [3.0, 6.0]


@pytest.mark.gpu
@needs_mpi
def test_nccl_on_two_gpus(tmp_path):
    if _gpu_count() < 2:
        pytest.skip("the NCCL tests need 2 GPUs (one process per GPU)")
    ranks = _run(tmp_path, "gpu", env={"GPUTAPE_DEVICE": "", "GPU_PER_RANK": "1"})
    for r in ranks:
        assert r["backend"] == "nccl" and r["device"] == f"gpu:{r['rank']}"
        assert r["mean"] == [0.5, 1.5] and r["grad"] == [3.0, 6.0]


@pytest.mark.gpu
@needs_mpi
def test_example_puts_each_rank_on_its_own_gpu():
    if _gpu_count() < 2:
        pytest.skip("the example's one-process-per-GPU run needs 2 GPUs")
    two = _launch([str(ROOT / "examples" / "data_parallel.py"), "--steps", "6"],
                  env={"GPUTAPE_DEVICE": ""})
    assert two.returncode == 0, two.stderr[-3000:]
    assert "rank 0/2 trains on gpu:0" in two.stdout and "rank 1/2 trains on gpu:1" in two.stdout
    per_rank = _example_losses(two.stdout)
    assert per_rank["0/2"] == per_rank["1/2"]


# -- one process ----------------------------------------------------------------------------


def test_single_process_group_changes_nothing():
    w = gt.Variable([1.0, -2.0], device="cpu")
    with gt.GradientTape() as plain:
        loss = gt.reduce_sum(w ** 3)
    want = plain.gradient(loss, w)
    with dist.DistributedGradientTape() as tape:
        loss = gt.reduce_sum(w ** 3)
    got = tape.gradient(loss, {"w": w, "none": gt.constant(1.0)})
    np.testing.assert_array_equal(got["w"].numpy(), want.numpy())
    assert got["none"] is None
    assert tape.watched_variables() == (w,)  # everything else goes to the wrapped tape


def test_import_does_not_start_mpi():
    code = ("import sys, gputape as gt, gputape.distributed as dist; "
            "assert dist.size() == 1 and dist.rank() == 0; "
            "assert 'mpi4py' not in sys.modules, 'mpi4py imported'; "
            "assert gt.distributed is dist")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "HYDI", "OMPI_"))}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**env, "PYTHONPATH": str(ROOT)}, timeout=60)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("sizes, limit, want", [
    ([10, 10, 10], 1 << 20, [[0, 1, 2]]),
    ([10, 10, 10], 0, [[0], [1], [2]]),
    ([100, 100, 100], 900, [[0, 1], [2]]),
    ([1000, 10, 10], 100, [[0], [1, 2]]),
])
def test_bucket_plan(sizes, limit, want):
    arrays = [np.ones(n, np.float32) for n in sizes]
    assert _buckets.plan(arrays, limit) == want


def test_buckets_keep_dtypes_apart_and_round_trip(rng):
    arrays = [rng.standard_normal((2, 3)).astype(np.float32), rng.standard_normal(4),
              rng.standard_normal(()).astype(np.float32), rng.standard_normal((1, 5))]
    buckets = _buckets.plan(arrays, 1 << 20)
    assert buckets == [[0, 2], [1, 3]]
    for bucket in buckets:
        members = [arrays[i] for i in bucket]
        for got, want in zip(_buckets.unpack(_buckets.pack(members), members), members):
            assert got.shape == want.shape and got.dtype == want.dtype
            np.testing.assert_array_equal(got, want)


class _DisagreeingPeer(SingleProcess):
    """A group of two in which the other rank always reports a different call."""

    size = 2

    def _allgather_bytes(self, data: bytes, what: str) -> list:
        return [data, bytes(len(data))]

    def _allgather_text(self, text: str) -> list:
        return [text, "DistributedGradientTape.gradient of 1 array(s): [float32(3,)]"]


def test_disagreement_names_every_ranks_call():
    with pytest.raises(dist.DistributedError) as info:
        _DisagreeingPeer().agree("DistributedGradientTape.gradient",
                                 [np.zeros(3, np.float32), None])
    message = str(info.value)
    assert "rank 0: DistributedGradientTape.gradient of 2 array(s): [float32(3,), None]" in message
    assert "rank 1: DistributedGradientTape.gradient of 1 array(s)" in message
    assert "unconnected_gradients='zero'" in message


@pytest.mark.parametrize("call, words", [
    (lambda: dist.communicator("gloo"), ["unknown backend 'gloo'", "hint"]),
    (lambda: dist.allreduce([1.0]), ["allreduce", "float", "hint"]),
    (lambda: dist.allreduce(gt.constant([1, 2])), ["allreduce", "int32", "gt.cast"]),
    (lambda: dist.broadcast_variables([gt.constant(1.0)]), ["broadcast_variables", "Tensor"]),
    (lambda: dist.communicator().broadcast([np.ones(2)], root=3), ["root=3", "hint"]),
    (lambda: dist.DistributedGradientTape("tape"), ["GradientTape", "str", "hint"]),
    (lambda: dist.allreduce(gt.constant([1.0]), backend="gloo"),
     ["allreduce", "unknown backend 'gloo'", "hint"]),
    (lambda: dist.allreduce(gt.constant([1.0], device="cpu"), backend="nccl"),
     ["allreduce", "element 0 is on the CPU", "backend='mpi'"]),
    (lambda: dist.broadcast_variables([gt.Variable([1.0], device="cpu")], backend="nccl"),
     ["broadcast_variables", "on the CPU", "hint"]),
    (lambda: dist.DistributedGradientTape(backend="horovod"),
     ["DistributedGradientTape", "unknown backend 'horovod'", "'mpi', 'nccl' or 'single'"]),
])
def test_misuse_is_a_clear_error(call, words):
    with pytest.raises(dist.DistributedError) as info:
        call()
    assert isinstance(info.value, (gt.GputapeError, RuntimeError))
    for word in words:
        assert word in str(info.value)
