"""rx.vs_gnuradio (benchmarks/bench_dsp.py) says why it did not run when GNU Radio is missing,
before it trains or records anything."""

from __future__ import annotations

from aeradio.apps.bench import BenchContext, discover


def test_vs_gnuradio_skips_saying_why_without_gnu_radio(tmp_path, monkeypatch):
    bench = discover()["rx.vs_gnuradio"]
    monkeypatch.setitem(bench.__globals__, "GR_PYTHON", str(tmp_path / "no-python"))
    out = bench(BenchContext(work_dir=tmp_path))
    assert "cannot run" in out["skipped"] and str(tmp_path / "no-python") in out["skipped"]
    assert [f["value"] for f in out["figures"]] == [None]
    assert list(tmp_path.iterdir()) == []  # no model trained, no recording written
