import argparse
import json

import pytest

from aeradio.apps import bench as benchmarking
from aeradio.apps.bench import discover, figure, format_results, run_benchmarks, select
from aeradio.core.errors import ConfigError

BENCH = """
from aeradio.apps.bench import figure

def fast(ctx):
    ctx.memo["x"] = 3
    return {"figures": [figure("speed", 2.5, "MS/s", target=">= 2", passed=True)]}

def uses_memo(ctx):
    return {"figures": [figure("memo", ctx.memo["x"], "", target="== 4", passed=ctx.memo["x"] == 4)]}

def broken(ctx):
    raise RuntimeError("boom")

BENCHMARKS = {"demo.fast": fast, "demo.memo": uses_memo, "other.broken": broken}
"""


@pytest.fixture
def bench_dir(tmp_path):
    (tmp_path / "bench_demo.py").write_text(BENCH)
    (tmp_path / "helper.py").write_text("raise SystemExit('not a benchmark module')")
    return tmp_path


def test_discover_select_run_and_format(bench_dir, tmp_path):
    found = discover(bench_dir)
    assert list(found) == ["demo.fast", "demo.memo", "other.broken"]
    assert list(select(found, "demo.")) == ["demo.fast", "demo.memo"]
    with pytest.raises(ConfigError, match="unknown benchmark 'nope'"):
        select(found, "nope")
    results = run_benchmarks(found, tmp_path)
    assert results["demo.fast"]["figures"][0]["status"] == "PASS"
    assert results["demo.memo"]["figures"][0]["status"] == "FAIL"
    assert "RuntimeError: boom" in results["other.broken"]["error"]
    table = format_results(results)
    assert "MS/s" in table and "ERROR" in table and "FAIL" in table


def test_cmd_bench_writes_json_and_fails_on_a_failed_target(bench_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(benchmarking, "checkout_path", lambda name: bench_dir)
    out = tmp_path / "bench.json"
    assert benchmarking.cmd_bench(argparse.Namespace(json=str(out), only="demo.fast")) == 0
    doc = json.loads(out.read_text())
    assert doc["results"]["demo.fast"]["figures"][0]["value"] == 2.5
    assert benchmarking.cmd_bench(argparse.Namespace(json=None, only=None)) == 1


def test_cmd_bench_refuses_an_unwritable_json_before_running(bench_dir, tmp_path, monkeypatch):
    """Found by a new-user trial (eval's --json): a --json naming a directory was a
    traceback after the whole run; now refused before any benchmark runs."""
    monkeypatch.setattr(benchmarking, "checkout_path", lambda name: bench_dir)
    ran = []
    monkeypatch.setattr(benchmarking, "run_benchmarks", lambda *a, **k: ran.append(1) or {})
    with pytest.raises(ConfigError, match="is a directory"):
        benchmarking.cmd_bench(argparse.Namespace(json=str(tmp_path), only="demo.fast"))
    assert not ran


def test_figure_without_target_is_informational():
    assert figure("t", 1.0, "s")["status"] == "-"
