"""A smoke run of the data-parallel benchmark (``gputape.bench.distributed``) over 2 local MPI
ranks at tiny sizes: it runs, checks its own results, and writes the JSON the runner keeps. The
real numbers come from ``gputape-bench --workloads none --distributed 2``."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import mpi_helpers
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TIMEOUT_S = 60  # the quick run takes a second or two; a hang must not stall the suite


def _needs_mpi():
    reason = mpi_helpers.missing()
    if reason is not None:
        pytest.skip(reason)


def _run_quick(tmp_path):
    out = tmp_path / "distributed.json"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
    command = mpi_helpers.command(2, [sys.executable, "-m", "gputape.bench.distributed", "--quick",
                                      "--json", str(out)])
    done = mpi_helpers.run_group(command, timeout=TIMEOUT_S, cwd=ROOT, env=env)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return json.loads(out.read_text()), done.stdout


def test_two_ranks_write_the_report(tmp_path):
    _needs_mpi()
    report, printed = _run_quick(tmp_path)
    meta = report["meta"]
    assert meta["ranks"] == 2 and meta["quick"] is True
    for key in ("date", "python", "numpy", "gputape", "cpu", "cpu_count", "commit", "mpi",
                "mpi4py", "bucket_bytes", "blas_threads", "timing", "bandwidth"):
        assert key in meta, key
    rows = report["results"]
    variants = {(r["workload"].rsplit("_784", 1)[0], r["variant"]) for r in rows}
    assert {("allreduce_one_tensor", "bucketed"), ("allreduce_one_tensor", "mpi4py"),
            ("allreduce_many_tensors", "bucketed"), ("allreduce_many_tensors", "unbucketed"),
            ("allreduce_many_tensors", "mpi4py"), ("mlp_step", "data_parallel"),
            ("mlp_step", "data_parallel_no_allreduce"), ("mlp_step", "single_half_batch"),
            ("mlp_step", "single_full_batch")} <= variants
    for r in rows:
        for key in ("median_s", "min_s", "size", "bytes", "tensors", "repeats", "loops"):
            assert r[key] > 0, (r["workload"], r["variant"], key)
        assert r["spread_s"] >= 0 and r["min_s"] <= r["median_s"]
        assert r["ranks"] == (1 if r["variant"].startswith("single") else 2)
        if r["workload"].startswith("allreduce"):
            assert r["gb_per_s"] > 0 and r["bus_gb_per_s"] > 0 and r["checked"] is True
            assert r["bytes"] == 4 * r["tensors"] * r["elements_per_tensor"]
    by_name = {(r["workload"], r["variant"]): r for r in rows}
    assert by_name[("allreduce_many_tensors", "unbucketed")]["bucket_bytes"] == 0
    assert by_name[("allreduce_many_tensors", "unbucketed")]["tensors"] > 1
    summary = report["summary"]
    for key in ("bucketing_gain", "large_vs_mpi4py", "dp_speedup_vs_single_full"):
        assert summary[key] > 0, key
    assert "bucketing gain" in printed and "allreduce_many_tensors" in printed


def test_runner_spawns_the_ranks_or_says_why_not(monkeypatch, capsys):
    import gputape.bench.distributed as bd

    _needs_mpi()
    report = bd.spawn(2, repeat=1, quick=True, timeout_s=TIMEOUT_S)
    assert report["meta"]["ranks"] == 2 and report["results"]
    assert "bucketing gain" in bd.format_report(report)

    monkeypatch.setattr(bd, "find_mpiexec", lambda: None)
    assert "mpiexec" in bd.missing()
    skipped = bd.spawn(2, quick=True)
    assert "no mpiexec" in skipped["skipped"]
    assert "distributed benchmark skipped" in capsys.readouterr().out


def test_runner_option_puts_the_results_under_distributed(tmp_path, monkeypatch, capsys):
    import gputape.bench.distributed as bd
    from gputape.bench.__main__ import main, parse_args

    assert parse_args([]).distributed == 0  # `make bench` does not start MPI
    monkeypatch.setattr(bd, "find_mpiexec", lambda: None)
    out = tmp_path / "results.json"
    assert main(["--workloads", "none", "--devices", "cpu", "--distributed", "2",
                 "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["results"] == [] and "mpiexec" in report["distributed"]["skipped"]
    assert "--distributed" in _help(parse_args, capsys)


def _help(parse_args, capsys) -> str:
    with pytest.raises(SystemExit):
        parse_args(["--help"])
    return capsys.readouterr().out


def test_ranks_start_on_this_machine_over_the_loopback_interface(monkeypatch, capsys):
    import gputape.bench.distributed as bd

    _needs_mpi()
    version = subprocess.run([mpi_helpers.find_mpiexec(), "--version"], capture_output=True,
                             text=True, timeout=30).stdout
    if "HYDRA" not in version:
        pytest.skip("mpiexec is not MPICH's Hydra, whose -launcher/-iface options these are")
    started = []
    monkeypatch.setattr(bd, "_run_group", lambda command, *args: started.append(command) or "x")
    assert "skipped" in bd.spawn(2, quick=True)
    for command in (started[0], mpi_helpers.command(2, [sys.executable, "-V"])):
        assert command[command.index("-launcher") + 1] == "fork", command
        assert command[command.index("-iface") + 1] == "lo", command
        assert command.index("-iface") < command.index("-n")
    capsys.readouterr()
