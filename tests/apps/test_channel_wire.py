"""``aeradio channel`` against what arrives over the wire: malformed floods, NaN, slow RX.

In-process tests drive :class:`~aeradio.flowgraphs.channel_sim.ChannelSimulator` on real
sockets; process tests run ``aeradio channel`` (the ``channels`` fixture of
test_channel_process.py).
"""

import math
import os
import re
import struct
import threading
import time

import numpy as np
import pytest
import zmq

from aeradio.core.errors import StreamError
from aeradio.flowgraphs import channel_sim as cs
from aeradio.radio import open_device
from aeradio.radio import zmq_stream as zs
from aeradio.radio.zmq_stream import free_endpoint
from tests.apps.test_channel_process import RATE, SETTINGS, _read_for, _wait_for_stream, channels  # noqa: F401
from tests.radio import pmt_wire as pw

MALFORMED = [
    b"\x00" * 10,
    struct.pack("<HBQQ", 0x1234, 1, 0, 0) + bytes(16),
    struct.pack("<HBQQ", 0x5FF0, 7, 0, 0) + bytes(16),
    struct.pack("<HBQQ", 0x5FF0, 1, 0, 0) + bytes(13),
    struct.pack("<HBQQ", 0x5FF0, 1, 0, 2) + b"\x3b" * 30,
    zs.pack_message(2**63, np.ones(4, np.complex64)),
]


class RawPush:
    """A bare PUSH socket: sends whatever bytes a test gives it."""

    def __init__(self, ep: str) -> None:
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.PUSH)
        self.sock.setsockopt(zmq.SNDHWM, 1000)
        self.sock.connect(ep)

    def close(self) -> None:
        self.sock.close(linger=0)
        self.ctx.term()


@pytest.fixture
def sim():
    lines: list[str] = []
    tx_ep, rx_ep = free_endpoint(), free_endpoint()
    settings = cs.ChannelSettings(signal_power=0.25, noise_power=0.025)
    model = cs.ChannelModel(settings, np.random.default_rng(0))
    simulator = cs.ChannelSimulator(model, tx_ep, rx_ep, RATE, speed=1.0, log=lines.append)
    push = RawPush(tx_ep)
    try:
        yield simulator, push, lines
    finally:
        push.close()
        simulator.close()


def _receive_all(simulator, count, timeout_s=5.0):
    deadline = time.monotonic() + timeout_s
    got = 0
    while got < count and time.monotonic() < deadline:
        got += simulator._receive_one(0.2)


def test_fill_after_its_deadline_is_bounded_during_a_flood(sim):
    simulator, push, _ = sim
    for i in range(3000):
        push.sock.send(MALFORMED[i % len(MALFORMED)])
    time.sleep(0.5)  # the flood is queued at the channel
    t0 = time.monotonic()
    simulator._fill(time.monotonic())  # the block is due now
    assert time.monotonic() - t0 < 0.5
    assert 1 <= simulator.stats.malformed <= cs.MAX_LATE_MESSAGES + 1


def test_malformed_and_tagged_messages_are_counted_and_rate_limited(sim):
    simulator, push, lines = sim
    for i in range(600):
        push.sock.send(MALFORMED[i % len(MALFORMED)])
    push.sock.send(pw.tagged_message(0, np.ones(8, np.complex64), pw.GR_PUB_TAGS))
    _receive_all(simulator, 601)
    simulator.notices.flush(force=True)
    assert simulator.stats.malformed == 600 and simulator.stats.samples_in == 8
    # The first at once, the others counted into one line a second (two here, three if
    # receiving took over a second).
    assert 2 <= len(lines) <= 3 and lines[0].startswith("channel: ignored a malformed TX message (")
    assert re.search(r"ignored a malformed TX message \d+x \(last: malformed ZMQ message", lines[-1])
    assert "malformed=600" in simulator.status_line(1.0, 0.025)


def test_non_finite_tx_samples_are_zeroed_and_statistics_stay_finite(sim):
    simulator, push, lines = sim
    x = np.full(1000, 0.5 + 0.0j, np.complex64)
    x[[3, 10, 500]] = [np.nan, np.inf, complex(0, -np.inf)]
    x[600] = 1e30  # finite but absurd: it would overflow the stages
    push.sock.send(zs.pack_message(0, x))
    _receive_all(simulator, 1)
    simulator._emit()
    line = simulator.status_line(1.0, 0.025)
    assert simulator.stats.zeroed_in == 4 and "zeroed_in=4" in line
    power_db = float(line.split("tx_power=")[1].split("dB")[0])
    snr_db = float(line.split("snr=")[1].split("dB")[0])
    assert power_db == pytest.approx(10 * math.log10(0.25), abs=0.01)
    assert snr_db == pytest.approx(10.0, abs=0.01)
    assert any("zeroed non-finite or out-of-range TX samples" in ln for ln in lines)


def test_channel_process_zeroes_nan_and_says_so(channels):  # noqa: F811
    tx_ep, rx_ep = free_endpoint(), free_endpoint()
    ch = channels(tx_ep, rx_ep, "--speed", "4", "--snr-db", "10", "--stats-interval-s", "0.2")
    with open_device(f"zmq:{rx_ep}", "rx", SETTINGS) as rx, open_device(f"zmq:{tx_ep}", "tx", SETTINGS) as tx:
        _wait_for_stream(rx)
        x = np.full(40_000, 0.5, np.complex64)
        x[::100] = np.nan
        tx.write(x, end_burst=True)
        y = _read_for(rx, 0.6)
    assert np.all(np.isfinite(y))
    ch.stop()
    last = [ln for ln in ch.log().splitlines() if "zeroed_in=" in ln][-1]
    assert "zeroed_in=400 " in last and re.search(r"snr=\d+\.\d+dB", last), last


def test_malformed_flood_keeps_the_output_in_real_time_with_few_log_lines(channels):  # noqa: F811
    tx_ep, rx_ep = free_endpoint(), free_endpoint()
    ch = channels(tx_ep, rx_ep, "--realtime", "--snr-db", "10")
    push = RawPush(tx_ep)
    sent = 0

    def flood(stop):
        nonlocal sent
        while not stop.is_set():
            if push.sock.poll(10, zmq.POLLOUT):
                push.sock.send(MALFORMED[sent % len(MALFORMED)])
                sent += 1

    stop = threading.Event()
    flooder = threading.Thread(target=flood, args=(stop,))
    try:
        with open_device(f"zmq:{rx_ep}", "rx", SETTINGS) as rx:
            _wait_for_stream(rx)
            flooder.start()
            t0 = time.monotonic()
            y = _read_for(rx, 2.0)
            elapsed = time.monotonic() - t0
            stop.set()
            flooder.join(5)
            assert len(y) == pytest.approx(RATE * elapsed, rel=0.2)  # measured under load
            assert rx.stats.samples_dropped == 0
            deadline = time.monotonic() + 5
            while f"malformed={sent}" not in ch.log() and time.monotonic() < deadline:
                time.sleep(0.1)
    finally:
        push.close()
    assert ch.stop() == 0
    log = ch.log().splitlines()
    assert sent > 1000 and f"malformed={sent}" in log[-1]
    notices = [ln for ln in log if "ignored a malformed TX message" in ln]
    assert 1 <= len(notices) <= 10  # one line per second at most, with counts
    assert len(log) < 40


def test_fast_mode_keeps_streaming_after_tx_so_a_lost_tail_is_counted(channels):  # noqa: F811
    tx_ep, rx_ep = free_endpoint(), free_endpoint()
    ch = channels(tx_ep, rx_ep, "--snr-db", "30")  # as fast as possible
    assert "an RX slower than TX loses samples" in ch.log()
    burst = 3_000_000
    with open_device(f"zmq:{rx_ep}", "rx", SETTINGS) as rx, open_device(f"zmq:{tx_ep}", "tx", SETTINGS) as tx:
        _wait_for_stream(rx)
        _read_for(rx, 0.2)
        start_dropped = rx.stats.samples_dropped
        tx.write(np.ones(burst, np.complex64), timeout_s=10)  # RX does not read meanwhile
        time.sleep(1.0)  # TX is done; the channel's queues to RX overflowed, the tail is lost
        y = _read_for(rx, 1.5)
    ones = int(np.count_nonzero(np.abs(y) > 0.5))
    dropped = rx.stats.samples_dropped - start_dropped
    assert ones < burst  # a slow RX lost part of the burst, its end included ...
    assert ones + dropped >= burst  # ... and every lost sample is counted
    idle_after = len(y) - np.flatnonzero(np.abs(y) > 0.5)[-1]
    assert idle_after > 0.5 * RATE  # the stream went on after TX stopped (real-time idle noise)


def test_tx_to_a_channel_that_stops_mid_stream_fails(channels):  # noqa: F811
    tx_ep, rx_ep = free_endpoint(), free_endpoint()
    ch = channels(tx_ep, rx_ep, "--realtime")
    with open_device(f"zmq:{tx_ep}", "tx", SETTINGS) as tx:
        tx.write(np.ones(10_000, np.complex64))
        ch.stop()
        with pytest.raises(StreamError, match="disconnected after"):
            for _ in range(100):
                tx.write(np.ones(10_000, np.complex64), timeout_s=2.0)


def test_paced_run_reports_its_lag_and_cpu(sim):
    """The status line says how late blocks went out and how much CPU the channel took:
    what the real-time benchmark reads to tell a late channel from a slow receiver."""
    simulator, _, lines = sim
    simulator.run(lambda: False, duration_s=0.5, stats_interval_s=10.0, noise_power=0.025)
    m = re.search(r"late=0 .*lag_max=([\d.]+)ms cpu=(\d+)%", lines[-1])
    assert m, lines[-1]
    assert 0 < float(m[1]) < 1e3 * cs.MAX_LAG_S and simulator.stats.max_lag_s > 0
    assert 0 <= int(m[2]) <= 100 * (os.cpu_count() or 1)  # % of one core, threads summed
    assert simulator.stats.cpu_s > 0
