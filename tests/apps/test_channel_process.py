"""``aeradio channel`` as a real process between real ZMQ TX and RX devices."""

import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from aeradio.apps.processes import stop_process
from aeradio.radio import DeviceSettings, open_device
from aeradio.radio.zmq_stream import free_endpoint

RATE = 1e6
SETTINGS = DeviceSettings(sample_rate_hz=RATE)


class Channel:
    """One ``aeradio channel`` subprocess; its stderr goes to a file."""

    def __init__(self, tmp_path: Path, tx: str, rx: str, *extra: str) -> None:
        self.log_path = tmp_path / f"channel-{time.monotonic_ns()}.log"
        self._log = self.log_path.open("w")
        cmd = [sys.executable, "-m", "aeradio.cli", "channel", "--tx", f"zmq:{tx}", "--rx", f"zmq:{rx}",
               "--sample-rate-hz", str(RATE), "--stats-interval-s", "0.5", *extra]
        self.proc = subprocess.Popen(cmd, stderr=self._log, stdout=subprocess.DEVNULL)

    def wait_started(self, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while "channel: PULL" not in self.log() and time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log()
            time.sleep(0.02)
        assert "channel: PULL" in self.log()

    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self) -> int:
        code = stop_process(self.proc, timeout_s=5)
        self._log.close()
        return code


@pytest.fixture
def channels(tmp_path):
    started: list[Channel] = []

    def start(tx: str, rx: str, *extra: str, wait: bool = True) -> Channel:
        ch = Channel(tmp_path, tx, rx, *extra)
        started.append(ch)
        if wait:
            ch.wait_started()
        return ch

    yield start
    for ch in started:
        ch.stop()


def _read_for(rx, seconds: float, chunk: int = 65536) -> np.ndarray:
    got, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        got.append(rx.read(chunk, timeout_s=0.2))
    return np.concatenate(got)


def _wait_for_stream(rx, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if len(rx.read(65536, timeout_s=0.2)):
            return
    raise AssertionError("no samples from the channel")


def test_idle_channel_streams_noise_in_real_time(channels):
    tx, rx_ep = free_endpoint(), free_endpoint()
    ch = channels(tx, rx_ep, "--realtime", "--snr-db", "10", "--seed", "4")
    with open_device(f"zmq:{rx_ep}", "rx", SETTINGS) as rx:
        _wait_for_stream(rx)
        t0 = time.monotonic()
        y = _read_for(rx, 1.0)
        elapsed = time.monotonic() - t0
        assert len(y) == pytest.approx(RATE * elapsed, rel=0.15)  # paced at the sample rate
        # SNR 10 dB against frames of power 1/sps (sps 4 by default): noise power 0.025.
        assert np.mean(np.abs(y) ** 2) == pytest.approx(0.025, rel=0.05)
        assert rx.stats.samples_dropped == 0
    assert ch.stop() == 0
    assert "AWGN SNR 10.00 dB" in ch.log() and "1x real time" in ch.log()


def test_impairments_applied_to_what_tx_sends(channels):
    tx_ep, rx_ep = free_endpoint(), free_endpoint()
    cfo_hz, dc = 2000.0, 0.05 + 0.02j
    channels(tx_ep, rx_ep, "--speed", "4", "--cfo-hz", str(cfo_hz), "--dc-offset", f"{dc}",
             "--delay-samples", "10")
    with open_device(f"zmq:{rx_ep}", "rx", SETTINGS) as rx, open_device(f"zmq:{tx_ep}", "tx", SETTINGS) as tx:
        _wait_for_stream(rx)
        tx.write(np.ones(50_000, np.complex64), end_burst=True)
        y = _read_for(rx, 1.0) - np.complex64(dc)
        active = np.flatnonzero(np.abs(y) > 0.5)
        assert len(active) == 50_000 and active[-1] - active[0] == 49_999  # contiguous burst
        burst = y[active].astype(np.complex128)
        np.testing.assert_allclose(np.abs(burst), 1.0, atol=1e-4)
        cfo_cps = np.mean(np.angle(burst[1:] * np.conj(burst[:-1]))) / (2 * np.pi)
        assert cfo_cps * RATE == pytest.approx(cfo_hz, rel=1e-3)
        assert np.max(np.abs(np.delete(y, active))) < 1e-5  # silence around it: DC removed, no noise
        assert rx.stats.samples_dropped == 0


def test_tx_restart_and_channel_restart_keep_rx_streaming(channels):
    tx_ep, rx_ep = free_endpoint(), free_endpoint()
    ch = channels(tx_ep, rx_ep, "--speed", "2")
    with open_device(f"zmq:{rx_ep}", "rx", SETTINGS) as rx:
        _wait_for_stream(rx)
        for _ in range(2):  # TX killed and restarted: a new PUSH, offsets from 0 again
            with open_device(f"zmq:{tx_ep}", "tx", SETTINGS) as tx:
                tx.write(np.ones(20_000, np.complex64), end_burst=True)
        y = _read_for(rx, 0.6)
        assert np.count_nonzero(np.abs(y) > 0.5) == 40_000
        deadline = time.monotonic() + 3
        while "TX stream restarted" not in ch.log() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "TX stream restarted" in ch.log()
        ch.stop()
        # The channel restarted: RX reconnects by itself and notes the restart of the offsets.
        channels(tx_ep, rx_ep, "--speed", "2")
        _wait_for_stream(rx)
        assert len(_read_for(rx, 0.3)) > 0
        restarts = [e for e in rx.stats.events if e.startswith("stream restarted at offset")]
        assert len(restarts) == 1 and rx.stats.samples_dropped == 0


def test_slow_rx_counts_dropped_samples(channels):
    tx_ep, rx_ep = free_endpoint(), free_endpoint()
    channels(tx_ep, rx_ep, "--speed", "5")
    with open_device(f"zmq:{rx_ep}", "rx", SETTINGS) as rx:
        _wait_for_stream(rx)
        before = rx.stats.samples
        time.sleep(2.0)  # a receiver that stalls: up to 10 MS produced meanwhile
        _read_for(rx, 0.5)
        # Bounded queues: what was not queued is lost, and counted from the offsets.
        assert rx.stats.samples_dropped > 200_000 and rx.stats.overflows >= 1
        assert rx.stats.samples - before + rx.stats.samples_dropped > 2.0 * 1e6


def test_port_in_use_is_one_clear_line(channels):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        ch = channels(f"tcp://127.0.0.1:{port}", free_endpoint(), wait=False)
        assert ch.proc.wait(10) == 2
        lines = ch.log().strip().splitlines()
        assert len(lines) == 1 and f"cannot bind --tx ZMQ PULL socket to tcp://127.0.0.1:{port}" in lines[0]


def test_bad_rate_is_one_clear_line(channels):
    ch = channels(free_endpoint(), free_endpoint(), "--sample-rate-hz", "-5", wait=False)
    assert ch.proc.wait(10) == 2
    assert "--sample-rate-hz must be in" in ch.log() and "got -5" in ch.log()


def test_snr_measured_on_tx_frames_matches_the_setting(channels):
    tx_ep, rx_ep = free_endpoint(), free_endpoint()
    ch = channels(tx_ep, rx_ep, "--speed", "4", "--snr-db", "10", "--stats-interval-s", "0.2")
    with open_device(f"zmq:{rx_ep}", "rx", SETTINGS) as rx, open_device(f"zmq:{tx_ep}", "tx", SETTINGS) as tx:
        _wait_for_stream(rx)
        rng = np.random.default_rng(7)
        # Frames of power 1/sps = 1/4 (the TX chain's convention at the default sps).
        x = (rng.standard_normal(40_000) + 1j * rng.standard_normal(40_000)) * np.sqrt(1 / 8)
        x = x.astype(np.complex64)
        tx.write(x, end_burst=True)
        _read_for(rx, 0.5)
    ch.stop()
    last = [ln for ln in ch.log().splitlines() if "snr=" in ln][-1]
    snr_db = float(last.split("snr=")[1].split("dB")[0])
    power_db = float(last.split("tx_power=")[1].split("dB")[0])
    assert snr_db == pytest.approx(10.0, abs=0.1) and power_db == pytest.approx(-6.02, abs=0.1)


def test_fast_mode_forwards_faster_than_real_time(channels):
    tx_ep, rx_ep = free_endpoint(), free_endpoint()
    channels(tx_ep, rx_ep, "--snr-db", "30")  # neither --realtime nor --speed
    with open_device(f"zmq:{rx_ep}", "rx", SETTINGS) as rx, open_device(f"zmq:{tx_ep}", "tx", SETTINGS) as tx:
        _wait_for_stream(rx)
        t0 = time.monotonic()
        idle = _read_for(rx, 1.0)
        assert len(idle) == pytest.approx(RATE * (time.monotonic() - t0), rel=0.15)  # idle: real time
        t0 = time.monotonic()
        sender = threading.Thread(target=tx.write, args=(np.ones(2_000_000, np.complex64),))
        sender.start()
        ones = 0
        while ones < 2_000_000 and time.monotonic() - t0 < 10:
            ones += int(np.count_nonzero(np.abs(rx.read(1 << 16, timeout_s=0.2)) > 0.5))
        elapsed = time.monotonic() - t0
        sender.join(5)
        assert ones == 2_000_000 and rx.stats.samples_dropped == 0
        assert elapsed < 1.8  # 2 s of signal at 1 MS/s: real-time pacing would take over 2 s
