"""``aeradio rx --monitor``: the address checks, the handoff, the event stream, and the page
in a real headless browser (Debian's chromium + chromedriver, driven by selenium) while rx
receives a SigMF recording played slowly."""

from __future__ import annotations

import base64
import http.client
import json
import os
import shutil
import socket
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aeradio.apps import monitor as mon
from aeradio.cli import main
from aeradio.core.errors import ConfigError
from aeradio.core.eventlog import EventLog
from aeradio.radio.sigmf_file import SigmfFileDevice

FRAMES = 60
#: The slow playback: at most this many samples per read, after this pause (~10 frames/s).
SLOW_READ_SAMPLES = 512
SLOW_READ_PAUSE_S = 0.05


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def model(tiny_model: Path) -> Path:
    return tiny_model


@pytest.fixture(scope="module")
def recording(model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    rec = tmp_path_factory.mktemp("rec") / "tp.sigmf-meta"
    assert main(["tx", "--model", str(model), "--device", f"file:{rec}", "--frames", str(FRAMES)]) == 0
    return rec


# ---- the address ----------------------------------------------------------------------------
@pytest.mark.parametrize(("spec", "expected"), [
    ("8080", ("127.0.0.1", 8080)),
    ("0", ("127.0.0.1", 0)),
    ("localhost:9000", ("127.0.0.1", 9000)),
    ("0.0.0.0:80", ("0.0.0.0", 80)),
    ("[::1]:8080", ("::1", 8080)),
    (" 127.0.0.2:65535 ", ("127.0.0.2", 65535)),
])
def test_monitor_address_parses(spec: str, expected: tuple[str, int]) -> None:
    assert mon.parse_monitor_address(spec) == expected


@pytest.mark.parametrize(("spec", "message"), [
    ("example.com:8080", "HOST must be an IP address"),
    ("monitor", "must be \\[HOST:\\]PORT"),
    ("127.0.0.1:http", "must be \\[HOST:\\]PORT"),
    ("65536", "PORT must be in \\[0, 65535\\], got 65536"),
    ("127.0.0.1:-1", "PORT must be in \\[0, 65535\\], got -1"),
    ("::1:8080", "IPv6 host goes in brackets"),
    ("", "must be \\[HOST:\\]PORT"),
])
def test_monitor_address_refuses(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        mon.parse_monitor_address(spec)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_monitor_address_fuzz_parses_or_says_why(spec: str) -> None:
    try:
        host, port = mon.parse_monitor_address(spec)
    except ConfigError as exc:
        assert "\n" not in str(exc) and "--monitor" in str(exc)
    else:
        assert 0 <= port <= 65535 and host


def _rx_monitor(model: Path, rec: Path, monitor: str, *extra: str) -> int:
    return main(["rx", "--model", str(model), "--device", f"file:{rec}", "--monitor", monitor, *extra])


def test_rx_monitor_port_in_use_is_one_line_before_receiving(
    model: Path, recording: Path, capsys: pytest.CaptureFixture
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        assert _rx_monitor(model, recording, str(port)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"aeradio rx: error: --monitor 127.0.0.1:{port}: cannot listen: address already in use "
                   "(another aeradio rx --monitor? choose another port)"]


@pytest.mark.parametrize(("spec", "message"), [
    ("monitor.example:8080", "HOST must be an IP address"),
    # TEST-NET-1: an IP address, but of no interface here (bind fails, nothing is sent).
    ("192.0.2.1:8080", "192.0.2.1:8080: cannot listen: not an address of this machine"),
])
def test_rx_monitor_bad_host_is_one_line(
    model: Path, recording: Path, capsys: pytest.CaptureFixture, spec: str, message: str
) -> None:
    assert _rx_monitor(model, recording, spec) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and "ready" not in err[0]


# ---- the handoff and the event stream, without a browser -------------------------------------
class _FakeChain:
    """An RX chain's report, with counters the test sets."""

    def __init__(self) -> None:
        self.counts = dict.fromkeys(mon.REPORT_COUNTERS, 0)
        self.snr_db: float | None = None

    def report(self, sample_rate_hz: float) -> dict[str, Any]:
        return {**self.counts, "snr_db": self.snr_db, "cfo_hz": 100.0 if self.snr_db else None}


def _fake_device() -> SimpleNamespace:
    stats = SimpleNamespace(samples_dropped=7, malformed=0, faults=EventLog())
    return SimpleNamespace(sample_rate_hz=1e6, stats=stats)


def _frame(payload: np.ndarray) -> SimpleNamespace:
    return SimpleNamespace(decisions=np.zeros(len(payload), np.int64), payload=payload)


def test_feed_publishes_bounded_copies_at_most_once_per_interval(rng: np.random.Generator) -> None:
    lut = np.exp(2j * np.pi * np.arange(4) / 4).reshape(4, 1).astype(np.complex64)
    with mon.LiveMonitor(("127.0.0.1", 0), {"link_name": "t"}, lut) as monitor:
        chain, dev = _FakeChain(), _fake_device()
        block = (rng.standard_normal(100_000) + 1j * rng.standard_normal(100_000)).astype(np.complex64)
        payload = block[:64].reshape(64, 1).copy()
        monitor.feed([_frame(payload)] * 100, block, chain, dev)
        first = monitor._latest
        assert first is not None
        monitor.feed([_frame(payload)], block, chain, dev)
        assert monitor._latest is first  # within the interval: nothing new published
        # Bounded: the newest MONITOR_SYMBOLS symbols and SPECTRUM_SLICE_SAMPLES samples.
        assert first.symbols.shape == (mon.MONITOR_SYMBOLS, 1)
        assert first.samples is not None and len(first.samples) == mon.SPECTRUM_SLICE_SAMPLES
        assert len(monitor._frames) <= mon.MONITOR_SYMBOLS // 64 + 1
        # Copies: the RX loop reuses or changes its arrays freely.
        kept = first.samples.copy()
        block[:] = 0
        payload[:] = 0
        assert np.array_equal(first.samples, kept) and np.any(first.symbols != 0)
        time.sleep(mon.MONITOR_INTERVAL_S * 1.2)
        monitor.feed([], block[:0], chain, dev)
        assert monitor._latest is not first and monitor._latest.samples is None


def _floats(b64: str) -> list[float]:
    return np.frombuffer(base64.b64decode(b64), "<f4").tolist()


def _sse_events(port: int, count: int, timeout_s: float = 10.0) -> list[tuple[str, Any]]:
    """The first ``count`` events of the page's stream: ``[(event name, data)]``."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)
    conn.request("GET", "/events")
    response = conn.getresponse()
    assert response.status == 200 and response.getheader("Content-Type") == "text/event-stream"
    events: list[tuple[str, Any]] = []
    name, data = "message", ""
    while len(events) < count:
        line = response.readline().decode().rstrip("\n")
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            data = line[6:]
        elif line == "" and data:
            events.append((name, json.loads(data)))
            name, data = "message", ""
    conn.close()
    return events


def test_event_stream_carries_config_counters_symbols_spectrum_and_the_end(rng: np.random.Generator) -> None:
    lut = (np.array([[1, 1j], [-1, -1j]]) / 1.0).astype(np.complex64)  # M=2, n=2
    monitor = mon.LiveMonitor(("127.0.0.1", 0), {"link_name": "two", "k": 1, "n": 2}, lut).start()
    chain, dev = _FakeChain(), _fake_device()
    try:
        got: dict[str, Any] = {}
        reader = threading.Thread(target=lambda: got.update(events=_sse_events(monitor.port, 4)))
        reader.start()
        noise = (rng.standard_normal(20_000) + 1j * rng.standard_normal(20_000)).astype(np.complex64)
        for step in range(1, 4):
            chain.counts.update(
                frames_decoded=10 * step, blocks=640 * step, block_errors=step, samples=20_000 * step
            )
            chain.snr_db = 12.0
            monitor.feed([_frame(lut[[0, 1, 1, 0]])], noise, chain, dev)
            time.sleep(mon.MONITOR_INTERVAL_S * 1.5)
            monitor._next_s = 0.0  # publish on the next feed
        monitor.finish(chain, dev, "end of source")
        monitor.close()
        reader.join(10)
    finally:
        monitor.close()
    events = got["events"]
    assert [name for name, _ in events[:2]] == ["config", "history"]
    config = events[0][1]
    assert config["link_name"] == "two" and config["lut"]["n"] == 2
    assert _floats(config["lut"]["re"]) == [1, 0, -1, 0] and _floats(config["lut"]["im"]) == [0, 1, 0, -1]
    first, second = events[2][1], events[3][1]
    assert first["counters"]["frames_decoded"] < second["counters"]["frames_decoded"]
    assert first["counters"]["samples_dropped"] == 7
    assert first["symbols"]["n"] == 2
    assert _floats(first["symbols"]["re"]) == [1, 0, -1, 0, -1, 0, 1, 0]
    # Error vectors: each block minus the LUT row decided (here message 0 for every block).
    assert _floats(first["errors"]["re"]) == [0, 0, -2, 0, -2, 0, 0, 0]
    assert _floats(first["errors"]["im"]) == [0, 0, 0, -2, 0, -2, 0, 0]
    psd_db = _floats(first["spectrum"]["psd_db"])
    assert len(psd_db) == mon.SPECTRUM_SEGMENT_SAMPLES and first["spectrum"]["start_hz"] == -5e5
    # White noise of power 2: flat near 10 log10(2 / 1e6) = -57 dB/Hz.
    assert abs(np.median(psd_db) + 57.0) < 1.5
    assert second["point"]["bler"] == pytest.approx(1 / 640) and second["point"]["snr_db"] == 12.0


def test_final_event_says_how_the_run_stopped() -> None:
    lut = np.ones((2, 1), np.complex64)
    monitor = mon.LiveMonitor(("127.0.0.1", 0), {}, lut).start()
    got: dict[str, Any] = {}
    reader = threading.Thread(target=lambda: got.update(events=_sse_events(monitor.port, 3)))
    reader.start()
    time.sleep(0.5)
    monitor.finish(_FakeChain(), _fake_device(), "SIGINT")
    monitor.close()
    reader.join(10)
    assert got["events"][2][1]["finished"] == {"stopped_by": "SIGINT"}


def test_server_refuses_foreign_hosts_and_unknown_files() -> None:
    monitor = mon.LiveMonitor(("127.0.0.1", 0), {}, np.ones((2, 1), np.complex64)).start()
    try:
        def get(path: str, host: str | None = None) -> tuple[int, dict[str, str]]:
            conn = http.client.HTTPConnection("127.0.0.1", monitor.port, timeout=5)
            conn.request("GET", path, headers={"Host": host} if host else {})
            r = conn.getresponse()
            r.read()
            conn.close()
            return r.status, dict(r.getheaders())

        status, headers = get("/")
        assert status == 200 and "default-src 'self'" in headers["Content-Security-Policy"]
        assert get("/static/uPlot.iife.min.js")[0] == 200
        assert get("/", host="attacker.example")[0] == 403  # DNS rebinding
        assert get("/", host=f"localhost:{monitor.port}")[0] == 200
        for path in ("/static/monitor.py", "/static/..%2F..%2Fcli.py", "/static/../rx.py", "/etc/passwd"):
            assert get(path)[0] == 404, path
    finally:
        monitor.close()


# ---- the page in a real browser ------------------------------------------------------------
def _browser() -> Any:
    """A headless chromium driven by selenium; skipped where they are missing, except in CI
    (``make setup`` installs them: scripts/install-chromium.sh)."""
    missing = [name for name in ("chromium", "chromedriver") if shutil.which(name) is None]
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing.append("selenium")
    if missing:
        why = f"{', '.join(missing)} not installed (make setup installs them)"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    options = Options()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1000"):
        options.add_argument(arg)
    options.binary_location = shutil.which("chromium")
    return webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver")))


#: Pixels of the constellation's canvas in the received symbols' colour (blue) and the LUT's (red).
_COUNT_PIXELS = """
const canvas = document.querySelector('#constellation canvas');
const ctx = canvas.getContext('2d');
const d = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
let blue = 0, red = 0;
for (let i = 0; i < d.length; i += 4) {
  if (d[i + 3] < 40) continue;
  if (d[i + 2] > d[i] + 40 && d[i + 2] > 120) blue++;
  if (d[i] > 150 && d[i + 1] < 90 && d[i + 2] < 90) red++;
}
return [blue, red];
"""
_STATE = """
const m = window.aeradioMonitor;
if (!m || !m.state.config || !m.state.last) return null;
return {events: m.state.events, decoded: m.state.last.counters.frames_decoded,
        detected: m.state.last.counters.frames_detected,
        shown: document.getElementById('counter-frames_decoded').textContent,
        symbols: m.charts.constellation.data[1][0].length, lut: m.charts.constellation.data[2][0].length,
        spectrum: m.charts.spectrum.data[0].length, history: m.state.t.length,
        status: document.getElementById('status').textContent};
"""


_ERRORS_VIEW = """
const select = document.getElementById('view-select');
select.value = 'errors';
select.dispatchEvent(new Event('change'));
const chart = window.aeradioMonitor.charts.constellation;
return {points: chart.data[1][0].length, lim: chart.scales.x.max,
        text: document.getElementById('symbol-count').textContent};
"""


def _watch(driver: Any, url: str, done: threading.Event, out: dict[str, Any]) -> None:
    """Open the page once rx serves it; record what it shows until rx is done."""
    try:
        deadline = time.monotonic() + 60
        while True:  # the server starts after the model loads
            try:
                driver.get(url)
                if driver.execute_script("return document.getElementById('counters') !== null"):
                    break
            except Exception:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not load")
            time.sleep(0.2)
        views: list[dict[str, Any]] = []
        pixels: list[list[int]] = []
        while not done.is_set() and time.monotonic() < deadline:
            view = driver.execute_script(_STATE)
            if view is not None:
                views.append(view)
                pixels.append(driver.execute_script(_COUNT_PIXELS))
            time.sleep(0.2)
        time.sleep(1.0)  # the last event, then the stream closes
        out["final"] = driver.execute_script(_STATE)
        out["errors_view"] = driver.execute_script(_ERRORS_VIEW)
        out["views"], out["pixels"] = views, pixels
        out["console"] = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"
                          and "favicon" not in e["message"] and "events" not in e["message"]]
    except Exception as exc:  # reported by the test
        out["error"] = repr(exc)


@pytest.mark.slow
def test_page_in_a_browser_draws_the_constellation_and_counts_frames_as_they_arrive(
    model: Path, recording: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    driver = _browser()
    read = SigmfFileDevice.read

    def slow_read(self: SigmfFileDevice, max_samples: int, timeout_s: float = 1.0) -> np.ndarray | None:
        time.sleep(SLOW_READ_PAUSE_S)
        return read(self, min(max_samples, SLOW_READ_SAMPLES), timeout_s)

    monkeypatch.setattr(SigmfFileDevice, "read", slow_read)
    port = _free_port()
    done, out = threading.Event(), {}
    watcher = threading.Thread(target=_watch, args=(driver, f"http://127.0.0.1:{port}/", done, out))
    watcher.start()
    try:
        code = _rx_monitor(model, recording, f"127.0.0.1:{port}")
        done.set()
        watcher.join(60)
    finally:
        done.set()
        driver.quit()
    assert code == 0
    assert "error" not in out, out.get("error")
    views = out["views"]
    decoded = [v["decoded"] for v in views]
    # The counters advance while frames arrive: several distinct values seen, in order.
    assert len(set(decoded)) >= 3 and decoded == sorted(decoded), decoded
    assert any(0 < d < FRAMES for d in decoded)
    final = out["final"]
    assert final["decoded"] == FRAMES and final["shown"] == str(FRAMES)
    assert final["status"] == "finished: stopped by end of source"
    # The constellation has drawn points: the received symbols and the 4 LUT points.
    assert final["symbols"] >= 64 and final["lut"] == 4
    blue, red = out["pixels"][-1]
    assert blue > 40 and red > 40, out["pixels"][-1]  # (high SNR: the points pile up on 4 spots)
    assert final["spectrum"] == mon.SPECTRUM_SEGMENT_SAMPLES and final["history"] >= 3
    # The error-vector view: as many points, zoomed on the noise (high SNR: a small RMS).
    errors = out["errors_view"]
    assert errors["points"] == final["symbols"] and 0 < errors["lim"] < 0.5, errors
    assert errors["text"].startswith(f"{final['symbols']} error vectors, RMS ")
    assert out["console"] == []
    err = capsys.readouterr().err
    assert f"aeradio rx: monitor at http://127.0.0.1:{port}/" in err


def test_at_most_max_clients_streams_at_once() -> None:
    monitor = mon.LiveMonitor(("127.0.0.1", 0), {}, np.ones((2, 1), np.complex64)).start()
    conns = []
    try:
        for _ in range(mon.MAX_CLIENTS):
            conn = http.client.HTTPConnection("127.0.0.1", monitor.port, timeout=5)
            conn.request("GET", "/events")
            assert conn.getresponse().status == 200
            conns.append(conn)
        extra = http.client.HTTPConnection("127.0.0.1", monitor.port, timeout=5)
        extra.request("GET", "/events")
        assert extra.getresponse().status == 503
        extra.close()
        conns.pop().close()  # one page goes away: its place is free again
        deadline = time.monotonic() + 5
        while True:
            again = http.client.HTTPConnection("127.0.0.1", monitor.port, timeout=5)
            again.request("GET", "/events")
            status = again.getresponse().status
            conns.append(again)
            if status == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert status == 200
    finally:
        for conn in conns:
            conn.close()
        monitor.close()
