"""A smoke run of the benchmark runner at its smallest size (the real runs are `make bench`)."""

import json

from bench.__main__ import main, parse_args, run
from bench.report import compare, format_table


def test_runner_writes_json_and_a_table(tmp_path, capsys):
    out = tmp_path / "results.json"
    assert main(["--sizes", "small", "--repeat", "1", "--workloads", "sum_xy,tiny_chain",
                 "--devices", "cpu", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    rows = report["results"]
    assert {r["workload"] for r in rows} == {"sum_xy", "tiny_chain"}
    assert all(r["median_s"] > 0 and r["device"] == "cpu" for r in rows)
    assert all("gb_per_s" in r for r in rows if r["workload"] == "sum_xy")
    printed = capsys.readouterr().out
    assert "sum_xy" in printed and "tiny_chain" in printed


def test_table_reports_speedup_against_cpu():
    report = {"results": [
        {"workload": "w", "size": 10, "device": "cpu", "median_s": 2.0, "spread_s": 0.1,
         "elements_per_s": 5.0},
        {"workload": "w", "size": 10, "device": "gpu:0", "median_s": 0.5, "spread_s": 0.1,
         "elements_per_s": 20.0},
    ]}
    assert "4.0x" in format_table(report)


def test_help_lists_the_options(capsys):
    try:
        parse_args(["--help"])
    except SystemExit:
        pass
    text = capsys.readouterr().out
    for option in ("--devices", "--sizes", "--repeat", "--workloads", "--json", "--plot",
                   "--compare"):
        assert option in text
    assert callable(run)


def _report(seconds):
    return {"results": [{"workload": "w", "size": 10, "device": "cpu", "median_s": seconds,
                         "spread_s": 0.0, "elements_per_s": 10 / seconds}]}


def test_compare_flags_regressions_over_ten_percent():
    _, regressions = compare(_report(1.2), _report(1.0))
    assert regressions == 1
    table, regressions = compare(_report(1.05), _report(1.0))
    assert regressions == 0 and "+5.0%" in table


def test_plot_writes_a_png(tmp_path):
    import pytest

    pytest.importorskip("matplotlib", reason="matplotlib is the optional 'bench' extra")
    from bench.report import plot

    report = {"meta": {"gpu": "no GPU found"}, "results": [
        {"workload": "w", "size": n, "device": "cpu", "median_s": n * 1e-6, "spread_s": 0.0,
         "elements_per_s": 1e6} for n in (10, 100, 1000)]}
    path = tmp_path / "plot.png"
    plot(report, str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_table_reports_peer_time_over_gputape_time():
    report = {"results": [
        {"workload": "w", "size": 10, "device": "cpu", "framework": "gputape", "median_s": 1.0,
         "spread_s": 0.0, "elements_per_s": 10.0},
        {"workload": "w", "size": 10, "device": "cpu", "framework": "torch", "median_s": 2.5,
         "spread_s": 0.0, "elements_per_s": 4.0},
    ]}
    last = format_table(report).splitlines()[-1]
    assert "torch" in last and last.rstrip().endswith("2.50")


def test_sizes_take_presets_or_numbers():
    from bench.workloads import SIZES

    assert parse_args(["--sizes", "small"]).sizes == SIZES["small"]
    assert parse_args(["--sizes", "2e3,500"]).sizes == [2000, 500]
    for bad in ("huge", "0", "-5"):
        try:
            parse_args(["--sizes", bad])
        except SystemExit:
            continue
        raise AssertionError(f"--sizes {bad} was accepted")


def test_unknown_peer_names_are_refused():
    import pytest

    from bench.peers import installed

    with pytest.raises(SystemExit, match="unknown peer"):
        installed("torch,mxnet")
    assert set(installed()) <= {"torch", "jax", "tensorflow"}


def test_a_peer_is_timed_in_its_own_process():
    import pytest

    from bench.peers import installed, time_peer

    if "torch" not in installed("torch"):
        pytest.skip("PyTorch is not installed here (an optional peer)")
    rows = time_peer("torch", [("sum_xy", 1000, "cpu"), ("no_such_workload", 10, "cpu")], 1)
    assert [(r["workload"], r["size"], r["device"]) for r in rows] == [("sum_xy", 1000, "cpu")]
    assert rows[0]["median_s"] > 0


def test_memory_column_measures_a_fresh_process(capsys):
    import pytest

    from bench.memory import peak_bytes, supported

    if not supported():
        pytest.skip("peak memory is measured through /proc (Linux only)")
    small = peak_bytes("gputape", "elementwise_grad", 1000)
    large = peak_bytes("gputape", "elementwise_grad", 4_000_000)
    assert small is not None and large is not None
    assert large > 0.9 * 2 * 4 * 4_000_000  # at least the two float32 gradients (new arrays)
    assert small < large
    report = {"results": [{"workload": "sum_xy", "size": 10, "device": "cpu",
                           "framework": "gputape", "median_s": 1.0, "spread_s": 0.0,
                           "elements_per_s": 10.0, "peak_bytes": 3 * 2**20}]}
    assert format_table(report).splitlines()[-1].rstrip().endswith("3.0")
