"""A smoke run of the benchmark runner at its smallest size (the real runs are `make bench`)."""

import json

from bench.__main__ import format_table, main, parse_args, run


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
    for option in ("--devices", "--sizes", "--repeat", "--workloads", "--json"):
        assert option in text
    assert callable(run)
