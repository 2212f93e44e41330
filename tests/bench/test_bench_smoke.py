"""A smoke run of the benchmark runner at its smallest sizes on the CPU (the real runs are
`make bench`): the JSON it writes, the table, the plot, --compare's exit status, and what it
says about bad options and missing devices. Each workload's own result is checked in
test_bench_workloads.py, the GPU timing path with a stand-in CuPy in test_bench_timing.py."""

from __future__ import annotations

import datetime
import io
import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

import gputape as gt
from gputape.bench import __main__ as runner
from gputape.bench.__main__ import _devices, _progress, main, parse_args
from gputape.bench.report import compare, format_table

ROOT = Path(__file__).resolve().parents[2]
QUICK = ["--sizes", "1e3,2e3", "--repeat", "2", "--devices", "cpu"]
ROW_FIELDS = {"workload", "size", "device", "framework", "median_s", "spread_s", "repeats",
              "loops", "elements_per_s", "unstable"}
PACED = {"reference_s", "relative", "relative_spread", "samples_s", "reference_samples_s"}
COLUMNS = ["workload", "size", "device", "framework", "median", "spread", "throughput", "GB/s",
           "GPU/CPU", "peer/gputape"]


@pytest.fixture
def cpu_only(monkeypatch):
    """This machine as one without a GPU, whatever it has."""
    monkeypatch.setattr(gt, "list_devices", lambda: [gt.Device("cpu")])


def _png_size(data: bytes) -> "tuple[int, int]":
    """Width and height of a PNG, after checking its signature and its IHDR chunk's CRC."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert (length, kind) == (13, b"IHDR")
    body = data[16:29]
    assert struct.unpack(">I", data[29:33])[0] == zlib.crc32(b"IHDR" + body)
    return struct.unpack(">II", body[:8])


def test_runner_writes_json_table_and_plot(tmp_path, capsys, cpu_only):
    out, png = tmp_path / "new" / "folder" / "results.json", tmp_path / "plot.png"
    assert main([*QUICK, "--workloads", "sum_xy,tiny_chain", "--json", str(out),
                 "--plot", str(png)]) == 0
    report = json.loads(out.read_text())
    meta = report["meta"]
    assert datetime.datetime.fromisoformat(meta["date"]).tzinfo is not None
    assert meta["commit"] and meta["gputape"] == gt.__version__ and meta["numpy"]
    assert meta["gpu"] == "no GPU found" and meta["devices"] == {"cpu": meta["cpu"]}
    assert 0 <= meta["noise"]["run_spread"] < 10  # the reference task over the whole run
    ceiling = meta["copy_ceiling"]["cpu"]
    assert ceiling["gb_per_s"] > 0 and ceiling["buffer_bytes"] >= 64 * 2**20
    assert "np.copyto" in ceiling["method"] and "CUDA events" in meta["timing"]
    rows = report["results"]
    assert [(r["workload"], r["size"]) for r in rows] == [
        ("tiny_chain", 16), ("sum_xy", 1000), ("sum_xy", 2000)]
    for r in rows:
        assert set(r) - {"retakes"} == ROW_FIELDS | (
            {"gb_per_s"} if r["workload"] == "sum_xy" else set()) | (
            PACED if r["device"] == "cpu" else set())  # the machine's pace beside it
        assert len(r["samples_s"]) == len(r["reference_samples_s"]) == r["repeats"]
        assert r["relative"] == pytest.approx(np.median(
            np.divide(r["samples_s"], r["reference_samples_s"])))
        assert (r["device"], r["framework"], r["repeats"]) == ("cpu", "gputape", 2)
        assert r["median_s"] > 0 and r["spread_s"] >= 0 and r["loops"] >= 1
        assert r["elements_per_s"] == pytest.approx(r["size"] / r["median_s"])
        if "gb_per_s" in r:
            assert r["gb_per_s"] == pytest.approx(16 * r["size"] / r["median_s"] / 1e9)

    captured = capsys.readouterr()
    assert captured.err == ""  # no progress bar, no note: stderr is not a terminal
    lines = captured.out.splitlines()
    assert "GPU: no GPU found" in lines[0] and meta["commit"] in lines[0]
    header = lines[1]
    assert header.split() == COLUMNS
    table = [line for line in lines if line.startswith(("tiny_chain", "sum_xy"))]
    assert len(table) == 3 and not any("no GPU found" in line for line in table)
    assert sum(line.startswith("GPU/CPU: no GPU found") for line in lines) == 1  # said once
    assert any(line.startswith("copy ceiling") for line in lines)
    assert any(line.split()[:2] == ["cpu", f"{ceiling['gb_per_s']:.2f}"] for line in lines)
    width, height = _png_size(png.read_bytes())
    assert width > 100 and height > 100


def _report(seconds):
    return {"results": [{"workload": "sum_xy", "size": 1000, "device": "cpu",
                         "framework": "gputape", "median_s": seconds, "spread_s": 0.0,
                         "elements_per_s": 1000 / seconds}]}


def test_compare_exits_1_on_a_regression(tmp_path):
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps(_report(1e-9)))  # nothing real is that fast
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--workloads", "sum_xy", "--sizes", "1e3", "--repeat",
         "1", "--devices", "cpu", "--compare", str(baseline)],
        capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "REGRESSION" in done.stdout and "1 regression(s)" in done.stdout
    assert done.stderr == ""  # not a terminal: no progress bar


def test_compare_exits_0_without_regression(tmp_path, capsys, cpu_only):
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps(_report(10.0)))
    assert main(["--workloads", "sum_xy", "--sizes", "1e3", "--repeat", "1", "--devices",
                 "cpu", "--compare", str(baseline)]) == 0
    assert "REGRESSION" not in capsys.readouterr().out


def test_compare_flags_regressions_over_ten_percent():
    _, regressions = compare(_report(1.2), _report(1.0))
    assert regressions == 1
    table, regressions = compare(_report(1.05), _report(1.0))
    assert regressions == 0 and "+5.0%" in table


def test_compare_calls_a_regression_only_beyond_both_runs_noise():
    """+18 % with spreads of 0.1 s and 0.12 s around 1 s (22 % together): two runs of the same
    code on a noisy machine, "within noise"; a 30 % slowdown with small spreads: a regression."""
    def noisy(seconds, spread):
        report = _report(seconds)
        report["results"][0]["spread_s"] = spread
        return report

    table, regressions = compare(noisy(1.18, 0.12), noisy(1.0, 0.1))
    assert regressions == 0 and "within noise" in table and "+18.0%" in table
    table, regressions = compare(noisy(1.3, 0.02), noisy(1.0, 0.02))
    assert regressions == 1 and "  REGRESSION" in table and "4.0%" in table


def test_compare_takes_the_machines_drift_out():
    """The machine 40 % slower in the second run (its reference task too): no regression;
    the same 40 % with the reference as fast as before: a regression."""
    def paced(seconds, reference):
        report = _report(seconds)
        report["results"][0]["reference_s"] = reference
        return report

    table, regressions = compare(paced(1.4, 1.4e-3), paced(1.0, 1e-3))
    assert regressions == 0 and "+40%" in table and "+0.0%" in table
    table, regressions = compare(paced(1.4, 1e-3), paced(1.0, 1e-3))
    assert regressions == 1 and "+40.0%" in table
    _, regressions = compare(paced(1.4, 1.4e-3), _report(1.0))  # no pace before: raw change
    assert regressions == 1


def test_compare_reads_the_relative_times_where_both_runs_have_them():
    """The change is that of the rows' relative times (the median of each sample over the
    reference sample taken right after it), not of their medians over the references': here
    the medians say even (twice the time at half the pace) while each sample took 40 % more of
    the reference beside it."""
    def paced(seconds, reference, relative):
        report = _report(seconds)
        report["results"][0].update(reference_s=reference, relative=relative,
                                    relative_spread=0.0)
        return report

    table, regressions = compare(paced(2.0, 2.0, 1.4), paced(1.0, 1.0, 1.0))
    assert regressions == 1 and "+40.0%" in table and "+100%" in table  # the drift column
    _, regressions = compare(paced(2.0, 1.0, 1.0), paced(1.0, 1.0, 1.0))
    assert regressions == 0


def _sampled(samples, references=None):
    """A CPU row that kept its samples (and the reference samples beside them)."""
    references = references or [1.0] * len(samples)
    report = _report(float(np.median(samples)))
    ratios = np.divide(samples, references)
    q1, q3 = np.quantile(ratios, [0.25, 0.75])
    report["results"][0].update(
        samples_s=list(samples), reference_samples_s=list(references),
        reference_s=float(np.median(references)), relative=float(np.median(ratios)),
        relative_spread=float(q3 - q1))
    return report


def test_compare_calls_a_change_beyond_the_noise_by_the_samples_ranks():
    """Seven samples a run. Every sample now 30 % above every one before: the rank test's p is
    1/3432, a regression. The same +30 % median, but the samples mingled with those before (a
    noisy row): p of about 0.2, "within noise"."""
    before = _sampled([1.0, 1.02, 0.98, 1.01, 0.99, 1.03, 0.97])
    table, regressions = compare(_sampled([1.3, 1.32, 1.28, 1.31, 1.29, 1.33, 1.27]), before)
    assert regressions == 1 and "+30.0%" in table and "0.0003" in table
    noisy_before = _sampled([1.0, 1.5, 0.9, 1.6, 0.95, 1.55, 1.0])
    table, regressions = compare(_sampled([1.3, 0.9, 1.6, 1.3, 1.0, 1.7, 1.2]), noisy_before)
    assert regressions == 0 and "within noise" in table


def test_compare_widens_the_noise_by_a_busy_machines():
    """The baseline's reference task varied by 40 % over its run: a row 30 % slower is
    "unsure", not a regression, and the table says why; one twice as slow is a regression all
    the same; a quiet pair calls 30 % a regression."""
    def run(seconds, noise):
        report = _report(seconds)
        report["meta"] = {"noise": {"relative_spread": 0.01, "run_spread": noise}}
        return report

    table, regressions = compare(run(1.3, 0.02), run(1.0, 0.40))
    assert regressions == -1 and "unsure" in table and "REGRESSION" not in table
    assert "busy machine" in table and "before 40%" in table
    _, regressions = compare(run(1.05, 0.02), run(1.0, 0.40))  # nothing slower: nothing unsure
    assert regressions == 0
    _, regressions = compare(run(2.0, 0.02), run(1.0, 0.40))
    assert regressions == 1
    table, regressions = compare(run(1.3, 0.02), run(1.0, 0.05))
    assert regressions == 1 and "busy" not in table


def test_the_exit_status_says_when_slower_rows_could_not_be_judged(tmp_path, monkeypatch,
                                                                   capsys):
    now = _report(1.3)
    now["meta"] = {"gputape": "x", "cpu": "c", "gpu": "g", "date": "d", "commit": "c",
                   "noise": {"task": "t", "samples": 15, "relative_spread": 0.4,
                             "run_spread": 0.4}}
    monkeypatch.setattr(runner, "run", lambda args: now)
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps(_report(1.0)))
    assert main(["--compare", str(baseline)]) == 3
    assert "1 row(s) slower than" in capsys.readouterr().out


def _scripted_takes(monkeypatch, takes: list):
    """runner._interleaved answering the given (median_s, reference_s) takes in turn, one
    gputape row each (its relative time their ratio); the calls are counted."""
    calls = []

    def take(workload, size, device, *rest):
        median, reference = takes[len(calls)]
        calls.append(workload)
        row = _report(median)["results"][0]
        row.update(workload=workload, reference_s=reference, relative=median / reference,
                   relative_spread=0.0)
        return [row]

    monkeypatch.setattr(runner, "_interleaved", take)
    return calls


def test_rows_measured_in_a_slow_spell_are_taken_again(monkeypatch):
    """Three rows; the second ran while its reference task was 50 % slower than the calmest
    of the run: it is taken again (twice, the first retake still slow), and the calmer take
    is kept; a row within 15 % of the calm is left alone."""
    plan = [("a", 1000, "cpu"), ("b", 1000, "cpu"), ("c", 1000, "cpu")]
    taken = [[{"workload": name, "reference_s": ref, "median_s": t}]
             for (name, _, _), ref, t in zip(plan, (1.0, 1.5, 1.1), (1.0, 3.0, 1.0))]
    calls = _scripted_takes(monkeypatch, [(2.5, 1.4), (2.0, 1.05)])
    runner._retake_slow_spells(plan, taken, None, 1, [], None)
    assert calls == ["b", "b"]
    assert taken[1][0]["median_s"] == 2.0 and taken[1][0]["retakes"] == 2
    assert "retakes" not in taken[0][0] and "retakes" not in taken[2][0]


def test_every_cpu_row_is_taken_twice_keeping_the_lower_relative_time(monkeypatch):
    """The second take replaces the first only where its relative time (here its median over
    its reference) is lower; a GPU row (no reference) is taken once."""
    plan = [("a", 1000, "cpu"), ("b", 1000, "cpu"), ("g", 1000, "gpu:0")]
    taken = [[{"workload": "a", "relative": 1.2, "median_s": 1.2}],
             [{"workload": "b", "relative": 1.0, "median_s": 1.0}],
             [{"workload": "g", "median_s": 1.0}]]
    calls = _scripted_takes(monkeypatch, [(1.0, 1.0), (1.1, 1.0)])
    runner._second_takes(plan, taken, None, 1, [], None)
    assert calls == ["a", "b"]
    assert taken[0][0]["relative"] == 1.0 and taken[1][0]["relative"] == 1.0
    assert taken[1][0]["median_s"] == 1.0 and "relative" not in taken[2][0]


@pytest.mark.parametrize("takes, verdict, confirmations", [
    ([(1.0, 1.0)], "ok", 1),  # a spike: the first retake clears it
    ([(1.5, 1.0), (1.5, 1.0)], "regression", 2),  # every take is slower
])
def test_a_slower_row_is_a_regression_only_when_no_retake_clears_it(
        monkeypatch, takes, verdict, confirmations):
    baseline = _report(1.0)
    baseline["results"][0].update(reference_s=1.0, relative=1.0, relative_spread=0.0)
    plan = [("sum_xy", 1000, "cpu")]
    first = _report(1.5)["results"][0]
    first.update(reference_s=1.0, relative=1.5, relative_spread=0.0)
    taken = [[first]]
    calls = _scripted_takes(monkeypatch, takes)
    runner._confirm_changes(plan, taken, baseline, None, 1, [], None)
    assert len(calls) == confirmations and taken[0][0]["confirmations"] == confirmations
    table, regressions = compare({"results": [taken[0][0]]}, baseline)
    assert regressions == (verdict == "regression")
    assert f"(taken {confirmations + 1} times)" in table


def test_a_missing_gpu_is_named_and_skipped(capsys, cpu_only):
    assert _devices(["cpu", "gpu:0"]) == ["cpu"]
    err = capsys.readouterr().err
    assert "gpu:0: no GPU found" in err and "skipped" in err
    with pytest.raises(SystemExit, match="none of the requested devices"):
        main(["--devices", "gpu:0", "--workloads", "tiny_chain"])


def test_devices_are_chosen_among_those_found(monkeypatch, capsys):
    monkeypatch.setattr(gt, "list_devices", lambda: [gt.Device("cpu"), gt.Device("gpu:0")])
    assert _devices(["all"]) == ["cpu", "gpu:0"]
    assert _devices(["gpu:0", "cpu", "gpu:0"]) == ["gpu:0", "cpu"]
    assert _devices(["gpu:1"]) == []
    assert "gpu:1: no such device here" in capsys.readouterr().err


def _usage_error(argv, capsys) -> str:
    with pytest.raises(SystemExit) as exc:
        parse_args(argv)
    assert exc.value.code == 2
    return capsys.readouterr().err


def test_bad_options_are_refused_before_running(tmp_path, capsys):
    err = _usage_error(["--workloads", "sum_xz"], capsys)
    assert "sum_xz" in err and "sum_xy" in err and "jacobian_256" in err
    err = _usage_error(["--devices", "tpu"], capsys)
    assert "'tpu'" in err and "cpu" in err and "Traceback" not in err
    for bad in ("0", "-3", "two"):
        assert "at least 1" in _usage_error(["--repeat", bad], capsys)
    for bad in ("huge", "0", "-5"):
        assert "--sizes" in _usage_error(["--sizes", bad], capsys)
    assert "unknown peer" in _usage_error(["--peers", "torch,mxnet"], capsys)
    missing = tmp_path / "missing.json"
    assert "cannot read it" in _usage_error(["--compare", str(missing)], capsys)
    (tmp_path / "file").write_text("")
    assert "cannot make its folder" in _usage_error(
        ["--json", str(tmp_path / "file" / "x.json")], capsys)
    (tmp_path / "folder.json").mkdir()  # a path that cannot be opened as a file
    assert "cannot write it" in _usage_error(["--json", str(tmp_path / "folder.json")], capsys)
    assert "nothing to draw" in _usage_error(
        ["--plot", str(tmp_path / "x.png"), "--workloads", "none"], capsys)
    err = _usage_error(["--sizes", "1e12", "--workloads", "sum_xy"], capsys)
    assert "GiB" in err and "free" in err and "hint" in err and "Traceback" not in err
    assert not (tmp_path / "x.png").exists()  # refused before anything was written


def test_writable_outputs_are_left_as_they_were(tmp_path):
    """The check that an output can be written creates nothing that was not there."""
    parse_args(["--json", str(tmp_path / "r.json"), "--workloads", "none"])
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "old.json").write_text("{}")
    parse_args(["--json", str(tmp_path / "old.json"), "--workloads", "none"])
    assert (tmp_path / "old.json").read_text() == "{}"


def test_sizes_take_presets_or_numbers():
    from gputape.bench.workloads import SIZES

    assert parse_args(["--sizes", "small"]).sizes == SIZES["small"]
    assert parse_args(["--sizes", "2e3,500"]).sizes == [2000, 500]
    assert parse_args(["--workloads", "none"]).workloads == []


def test_a_peer_not_installed_gets_a_note(monkeypatch, capsys, cpu_only):
    import gputape.bench.__main__ as runner

    monkeypatch.setattr(runner, "installed", lambda names: [])
    assert main(["--workloads", "tiny_chain", "--repeat", "1", "--devices", "cpu", "--peers",
                 "jax"]) == 0
    captured = capsys.readouterr()
    assert captured.err.strip() == "bench: not installed, skipped: jax (pip install jax)"
    assert "tiny_chain" in captured.out


def test_progress_bar_only_on_a_terminal(monkeypatch):
    pytest.importorskip("tqdm", reason="tqdm draws the progress bar (the 'bench' extra)")

    class Terminal(io.StringIO):
        def __init__(self, tty):
            super().__init__()
            self.tty = tty

        def isatty(self):
            return self.tty

    from gputape.bench.workloads import WORKLOADS

    plan = [(WORKLOADS[0], 16, "cpu"), (WORKLOADS[1], 1000000, "gpu:0")]
    for tty in (False, True):
        stream = Terminal(tty)
        monkeypatch.setattr(sys, "stderr", stream)
        assert list(_progress(plan)) == plan
        assert ("bench" in stream.getvalue()) is tty
        # the bar names the workload, size and device running now
        assert (f"bench {WORKLOADS[1].name} 1,000,000 gpu:0" in stream.getvalue()) is tty


def test_help_lists_the_options(capsys):
    text = _help(capsys)
    for option in ("--devices", "--sizes", "--repeat", "--workloads", "--json", "--plot",
                   "--compare", "--peers", "--memory"):
        assert option in text
    assert "autograd" in text


def _help(capsys) -> str:
    with pytest.raises(SystemExit):
        parse_args(["--help"])
    return capsys.readouterr().out


def _row(workload, size, device, seconds, framework="gputape", **extra):
    return {"workload": workload, "size": size, "device": device, "framework": framework,
            "median_s": seconds, "spread_s": 0.0, "elements_per_s": size / seconds, **extra}


def _column_ends(header: str) -> "list[int]":
    """Where each right-aligned header label ends."""
    return [header.index(name) + len(name) for name in ("median", "GB/s", "GPU/CPU",
                                                        "peer/gputape")]


def test_table_says_no_gpu_found_once_under_the_table():
    report = {"results": [_row("sum_xy", 10, "cpu", 1.0, gb_per_s=0.5),
                          _row("sum_xy", 100, "cpu", 1.0, gb_per_s=0.5),
                          _row("sum_xy", 10, "cpu", 2.5, "torch", gb_per_s=0.2)]}
    header, rule, ours, ours_big, torch, note = format_table(report).splitlines()
    assert len(header) == len(rule) == len(ours) == len(torch)
    gpu_end = _column_ends(header)[2]
    assert ours[gpu_end - 20:gpu_end].split() == ["0.50"]  # the column left empty
    assert "no GPU" not in ours + ours_big + torch
    assert note.startswith("GPU/CPU: no GPU found") and "CuPy" in note
    assert torch.rstrip().endswith("2.50") and len(torch.rstrip()) == _column_ends(header)[3]


def test_table_says_not_run_when_a_gpu_was_left_out():
    report = {"meta": {"gpu": "Fake GPU"}, "results": [_row("sum_xy", 10, "cpu", 1.0)]}
    header, _, row, note = format_table(report).splitlines()
    assert "not run" not in row and "no GPU" not in row
    assert note.startswith("GPU/CPU: not run") and "--devices" in note


def test_table_reports_speedup_against_cpu():
    report = {"results": [_row("w", 10, "cpu", 2.0), _row("w", 10, "gpu:0", 0.5)]}
    header, _, cpu, gpu = format_table(report).splitlines()
    end = _column_ends(header)[2]
    assert gpu[end - 4:end] == "4.0x" and cpu[end - 12:end].strip() == ""
    assert "no GPU found" not in cpu


def test_table_footer_gives_each_devices_copy_ceiling():
    meta = {"copy_ceiling": {
        "cpu": {"gb_per_s": 31.5, "buffer_bytes": 64 * 2**20, "method": "np.copyto; x"},
        "gpu:0": {"gb_per_s": 2950.0, "buffer_bytes": 256 * 2**20, "method": "cupy; x"}}}
    lines = format_table({"meta": meta, "results": []}).splitlines()
    assert lines[2].startswith("copy ceiling")
    assert lines[3].split()[:3] == ["cpu", "31.50", "GB/s"] and "64 MiB" in lines[3]
    assert lines[4].split()[:3] == ["gpu:0", "2950.00", "GB/s"] and "256 MiB" in lines[4]


def _gpu_ceiling(memcpy, kernel, peak=None, device="NVIDIA H100 80GB HBM3"):
    """A GPU's copy ceiling as gputape.bench.timing.copy_ceiling writes it."""
    higher = "kernel" if kernel > memcpy else "memcpy"
    return {"gb_per_s": max(memcpy, kernel), "higher": higher, "memcpy": {"gb_per_s": memcpy},
            "kernel": {"gb_per_s": kernel}, "buffer_bytes": 256 * 2**20,
            "method": "the higher of cudaMemcpy and a copy kernel, CUDA events; x",
            "device": device, "peak_gb_per_s": peak,
            "peak": "H100 SXM5 80GB, NVIDIA H100 datasheet" if peak else "unknown",
            "fraction_of_peak": max(memcpy, kernel) / peak if peak else None}


def test_table_footer_gives_both_gpu_copies_and_the_specified_peak():
    meta = {"copy_ceiling": {"gpu:0": _gpu_ceiling(2410.0, 2948.0, peak=3350.0),
                             "gpu:1": _gpu_ceiling(2500.0, 2000.0, device="Fake GPU")}}
    lines = format_table({"meta": meta, "results": []}).splitlines()
    assert lines[3].split()[:3] == ["gpu:0", "2948.00", "GB/s"]  # the higher: the ceiling
    assert "(copy kernel 2948.00 > cudaMemcpy 2410.00 GB/s, 256 MiB buffer)" in lines[3]
    assert lines[4].split() == ["specified", "peak", "3350", "GB/s", "(H100", "SXM5", "80GB,",
                                "NVIDIA", "H100", "datasheet):", "ceiling", "88.0%", "of", "it"]
    assert lines[5].split()[:3] == ["gpu:1", "2500.00", "GB/s"]
    assert "(cudaMemcpy 2500.00 > copy kernel 2000.00 GB/s, 256 MiB buffer)" in lines[5]
    assert lines[6].split()[:4] == ["specified", "peak:", "unknown", "(no"]
    assert "'Fake GPU'" in lines[6] and len(lines) == 7


def test_plot_draws_gb_per_s_against_each_devices_ceiling(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib", reason="matplotlib is the optional 'bench' extra")
    from matplotlib.axes import Axes

    from gputape.bench.report import plot

    drawn = []
    real = Axes.axhline
    monkeypatch.setattr(Axes, "axhline", lambda ax, y, **kw: drawn.append(y) or real(ax, y, **kw))
    rows = [_row(w, n, d, n * t, gb_per_s=16 / t / 1e9)
            for w in ("sum_xy", "sum_pow") for n in (10, 100, 1000)
            for d, t in (("cpu", 1e-9), ("gpu:0", 1e-11))]
    meta = {"gpu": "Fake GPU", "devices": {"cpu": "a CPU", "gpu:0": "Fake GPU"},
            "copy_ceiling": {"cpu": {"gb_per_s": 30.0}, "gpu:0": {"gb_per_s": 3000.0}}}
    path = tmp_path / "plot.png"
    plot({"meta": meta, "results": rows}, str(path))
    assert sorted(drawn) == [30.0, 30.0, 3000.0, 3000.0]  # one per device per workload
    assert _png_size(path.read_bytes())[0] > 500  # two workload columns


def test_unknown_peer_names_are_refused():
    from gputape.bench.peers import PEERS, installed

    with pytest.raises(SystemExit, match="unknown peer"):
        installed("torch,mxnet")
    assert set(installed()) <= set(PEERS) == {"torch", "jax", "tensorflow", "autograd"}


def test_a_peer_is_timed_in_its_own_process():
    from gputape.bench.peers import PeerProcess, installed

    if "torch" not in installed("torch"):
        pytest.skip("PyTorch is not installed here (an optional peer)")
    process = PeerProcess("torch")
    try:
        seconds, loops = process.sample("sum_xy", 1000, "cpu")
        assert process.sample("no_such_workload", 10, "cpu") is None
    finally:
        process.close()
    assert seconds > 0 and loops >= 1


def test_the_peer_side_answers_one_sample_per_request(monkeypatch):
    import io

    from gputape.bench import peers

    built = []

    def start(name, device):
        def build(size, rng):
            built.append(size)
            return lambda: sum(range(size))

        return {"count": build}, None

    monkeypatch.setattr(peers, "_start", start)
    requests = io.StringIO('["count", 10, "cpu"]\n["count", 10, "cpu"]\n["other", 10, "cpu"]\n'
                           '["count", 20, "cpu"]\n')
    out = io.StringIO()
    peers._serve("fake", requests, out)
    replies = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r is None for r in replies] == [False, False, True, False]
    assert all(r[0] > 0 and r[1] >= 1 for r in replies if r is not None)
    assert built == [10, 20]  # built once per (workload, size), kept for its next request


def test_gputape_and_peer_samples_alternate(monkeypatch):
    from gputape.bench import __main__ as runner
    from gputape.bench.workloads import WORKLOADS

    log = []

    class Take:
        loops = 3

        def __init__(self, run, device):
            log.append("build")

        def __call__(self):
            log.append("gputape")
            return 1e-3

        def summary(self, samples):
            return runner.summarize(samples, self.loops, "host")

    class Peer:
        name = "torch"

        def sample(self, workload, size, device):
            log.append("torch")
            return 2e-3, 5

    monkeypatch.setattr(runner, "Sampler", Take)
    sum_xy = next(w for w in WORKLOADS if w.name == "sum_xy")
    rows = runner._interleaved(sum_xy, 1000, "cpu", np.random.default_rng(0), 3, [Peer()])
    assert log == ["build"] + ["gputape", "torch"] * 3
    assert [(r["framework"], r["median_s"], r["loops"]) for r in rows] == [
        ("gputape", 1e-3, 3), ("torch", 2e-3, 5)]


def test_a_failing_peer_is_reported_once_and_skipped(capsys):
    from gputape.bench.peers import PeerProcess

    process = PeerProcess("no_such_peer")  # its process fails: no such peer
    try:
        assert process.sample("sum_xy", 1000, "cpu") is None
        assert process.sample("sum_xy", 2000, "cpu") is None
    finally:
        process.close()
    out = capsys.readouterr().out
    assert out.count("bench: peer no_such_peer failed: KeyError") == 1, out


def test_memory_column_measures_a_fresh_process(capsys):
    from gputape.bench.memory import peak_bytes, supported

    if not supported():
        pytest.skip("peak memory is measured through /proc (Linux only)")
    small = peak_bytes("gputape", "elementwise_grad", 1000)
    large = peak_bytes("gputape", "elementwise_grad", 4_000_000)
    assert small is not None and large is not None
    assert large > 0.9 * 2 * 4 * 4_000_000  # at least the two float32 gradients (new arrays)
    assert small < large
    report = {"results": [_row("sum_xy", 10, "cpu", 1.0, peak_bytes=3 * 2**20)]}
    assert format_table(report).splitlines()[2].rstrip().endswith("3.0")  # the row


def test_throughput_in_units_that_fit_each_workload():
    """Elements per second where the size is the element count; calls per second for a
    training step or a Hessian, whose "size" names the problem."""
    report = {"results": [_row("sum_xy", 1000, "cpu", 1e-3), _row("mlp_step", 256, "cpu", 4e-3),
                          _row("hessian_64", 64, "cpu", 1e-3)]}
    header, _, sized, step, hessian = format_table(report).splitlines()[:5]
    end = header.index("throughput") + len("throughput")
    assert sized[:end].split()[-2:] == ["1e+06", "elem/s"]
    assert step[:end].split()[-2:] == ["250", "calls/s"]
    assert hessian[:end].split()[-2:] == ["1e+03", "calls/s"]


def test_plot_shows_unsized_workloads_as_bars_and_names_devices(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib", reason="matplotlib is the optional 'bench' extra")
    from matplotlib.axes import Axes

    from gputape.bench.report import plot

    bars, labels = [], []
    real_bar, real_plot = Axes.bar, Axes.plot
    monkeypatch.setattr(Axes, "bar", lambda ax, x, h, **kw: bars.append(
        (kw.get("label"), list(h))) or real_bar(ax, x, h, **kw))
    monkeypatch.setattr(Axes, "plot", lambda ax, *a, **kw: labels.append(kw.get("label"))
                        or real_plot(ax, *a, **kw))
    rows = [_row("sum_xy", n, "cpu", n * 1e-9) for n in (10, 100)]
    rows += [_row("mlp_step", 256, "cpu", 3e-3), _row("hessian_64", 64, "cpu", 4e-4),
             _row("mlp_step", 256, "cpu", 2e-3, framework="torch")]
    meta = {"devices": {"cpu": "Fake CPU @ 3 GHz"}}
    path = tmp_path / "plot.png"
    plot({"meta": meta, "results": rows}, str(path))
    assert labels == ["cpu: Fake CPU @ 3 GHz"]  # the sized workload's line names the CPU
    assert sorted(bars) == [("cpu: Fake CPU @ 3 GHz", [4e-4, 3e-3]),  # hessian_64, mlp_step
                            ("torch (cpu: Fake CPU @ 3 GHz)", [2e-3])]
    assert _png_size(path.read_bytes())[0] > 500  # two columns: sum_xy, the bars


def test_unstable_rows_are_marked_and_the_machine_noise_is_printed():
    steady = _row("sum_xy", 1000, "cpu", 1e-3)
    shaky = {**_row("sum_xy", 2000, "cpu", 1e-3), "spread_s": 2e-4}  # 20 % of the median
    noise = {"task": "np.sort of 20,000 floats", "median_s": 1e-3, "spread_s": 3e-5,
             "samples": 15, "relative_spread": 0.03}
    lines = format_table({"meta": {"noise": noise}, "results": [steady, shaky]}).splitlines()
    header = lines[0]
    mark = header.index("spread") + len("spread")
    assert lines[2][mark:mark + 2] == "  " and lines[3][mark:mark + 2] == " !"
    assert lines[4].startswith("GPU/CPU: no GPU found")
    assert lines[5].startswith("! 1 row(s) unstable: spread over 10% of the median")
    assert lines[6].startswith("machine noise: a fixed task (np.sort of 20,000 floats) varied "
                               "by 3.0%")


def test_machine_noise_times_a_fixed_task():
    from gputape.bench.timing import machine_noise

    noise = machine_noise(samples=5, task_s=0.001)
    assert noise["samples"] == 5 and noise["median_s"] > 0
    assert noise["relative_spread"] == pytest.approx(noise["spread_s"] / noise["median_s"])
