"""The radio benchmarks run and report what they promise (short settings)."""

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_radio.py"


@pytest.fixture(scope="module")
def bench():
    pytest.importorskip("aeradio.apps.bench")
    spec = importlib.util.spec_from_file_location("bench_radio", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_names(bench):
    assert set(bench.BENCHMARKS) == {
        "radio.channel_throughput",
        "radio.channel_max_realtime_rate",
        "radio.channel_max_realtime_rate_all",
        "radio.loopback_soak",
    }


def test_short_soak_reports_drops_and_memory(bench):
    r = bench.BENCHMARKS["radio.loopback_soak"]({"soak_s": 1.5})
    assert r["rx_samples"] > 0.5 * bench.SOAK_RATE_HZ * 1.5
    assert r["rx_samples_dropped"] == 0
    assert r["channel_rss_mb_first"] > 0 and len(r["channel_rss_mb_over_time"]) >= 1
    status = {f["name"]: f["status"] for f in r["figures"]}
    assert status["soak samples dropped"] == "PASS" and status["soak channel RSS growth"] == "PASS"
