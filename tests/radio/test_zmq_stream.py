"""The gr-zeromq wire format and the ZMQ devices over real sockets."""

import struct
import time

import numpy as np
import pytest

from aeradio.core.errors import DeviceError, StreamError
from aeradio.radio import DeviceSettings, open_device
from aeradio.radio import zmq_stream as zs
from aeradio.radio.zmq_stream import free_endpoint

SETTINGS = DeviceSettings(sample_rate_hz=1e6)


def test_header_bytes_match_gr_zeromq_layout():
    # gr-zeromq lib/tag_headers.cc gen_tag_header(): uint16 magic 0x5FF0, uint8 version,
    # uint64 offset, uint64 ntags, written back to back in host (little-endian) order.
    samples = np.array([1 + 2j, -0.5 + 0.25j], np.complex64)
    msg = zs.pack_message(0x0102030405060708, samples)
    assert len(msg) == 19 + 16
    assert msg[:2] == b"\xf0\x5f"
    assert msg[2] == 1
    assert msg[3:11] == bytes([8, 7, 6, 5, 4, 3, 2, 1])
    assert msg[11:19] == b"\x00" * 8
    assert msg[19:] == struct.pack("<4f", 1.0, 2.0, -0.5, 0.25)


def test_pack_unpack_round_trip(rng):
    x = (rng.standard_normal(1000) + 1j * rng.standard_normal(1000)).astype(np.complex64)
    offset, y = zs.unpack_message(zs.pack_message(123456789, x))
    assert offset == 123456789 and y.dtype == np.complex64
    np.testing.assert_array_equal(y, x)


def test_version_2_header_without_tags_accepted():
    msg = struct.pack("<HBQQ", 0x5FF0, 2, 7, 0) + struct.pack("<2f", 1.0, -1.0)
    offset, y = zs.unpack_message(msg)
    assert offset == 7 and y.tolist() == [1 - 1j]


@pytest.mark.parametrize(
    ("msg", "match"),
    [
        (b"\x00" * 10, "shorter than the 19-byte"),
        (struct.pack("<HBQQ", 0x1234, 1, 0, 0), "magic 0x1234"),
        (struct.pack("<HBQQ", 0x5FF0, 9, 0, 0), "version 9"),
        (struct.pack("<HBQQ", 0x5FF0, 1, 0, 3), "3 stream tags"),
        (struct.pack("<HBQQ", 0x5FF0, 1, 0, 0) + b"\x00" * 5, "not whole float32 I/Q"),
    ],
)
def test_bad_messages_rejected(msg, match):
    with pytest.raises(StreamError, match=match):
        zs.unpack_message(msg)


def test_offset_tracker_counts_gaps_and_restarts():
    t = zs.OffsetTracker()
    assert t.update(1000, 100) == 0  # the first message sets the reference
    assert t.update(1100, 100) == 0
    assert t.update(1500, 100) == 300
    assert t.update(0, 100) == 0 and t.restarts == 1
    assert t.dropped == 300


def _read_until(dev, count, timeout_s=3.0):
    got, deadline = [], time.monotonic() + timeout_s
    while sum(map(len, got)) < count and time.monotonic() < deadline:
        got.append(dev.read(count, timeout_s=0.2))
    return np.concatenate(got) if got else np.zeros(0, np.complex64)


def test_push_to_bound_pull_delivers_everything_in_order(rng):
    ep = free_endpoint()
    x = (rng.standard_normal(50_000) + 1j * rng.standard_normal(50_000)).astype(np.complex64)
    pull = zs.open_socket("PULL", ep, bind=True, hwm=zs.PUSH_PULL_HWM, role="test")
    try:
        with open_device(f"zmq:{ep}", "tx", SETTINGS) as tx:
            tx.write(x[:20_000])
            tx.write(x[20_000:], end_burst=True)
            offsets, parts = [], []
            while sum(map(len, parts)) < len(x):
                assert pull.poll(2000)
                off, y = zs.unpack_message(pull.recv())
                offsets.append(off)
                parts.append(y)
            assert tx.stats.samples == len(x)
        assert max(map(len, parts)) <= zs.MAX_MESSAGE_SAMPLES
        assert offsets == list(np.cumsum([0] + [len(p) for p in parts[:-1]]))
        np.testing.assert_array_equal(np.concatenate(parts), x)
    finally:
        pull.close(linger=0)


def test_push_blocks_then_times_out_when_nobody_pulls():
    ep = free_endpoint()
    with open_device(f"zmq:{ep}", "tx", SETTINGS) as tx:
        t0 = time.monotonic()
        with pytest.raises(StreamError, match="did not accept samples within 0.2 s"):
            tx.write(np.zeros(10 * zs.MAX_MESSAGE_SAMPLES, np.complex64), timeout_s=0.2)
        assert time.monotonic() - t0 < 2.0


def test_sub_counts_dropped_samples_and_restarts_from_offsets():
    ep = free_endpoint()
    pub = zs.open_socket("PUB", ep, bind=True, hwm=zs.PUB_SUB_HWM, role="test")
    try:
        with open_device(f"zmq:{ep}", "rx", SETTINGS) as rx:
            # PUB drops everything until the subscription arrives: wait for it.
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                pub.send(zs.pack_message(0, np.zeros(1, np.complex64)))
                if len(rx.read(10, timeout_s=0.05)):
                    break
            block = np.arange(100).astype(np.complex64)
            for offset in (1000, 1100, 1400, 1500, 0):  # 200 lost, then a restart
                pub.send(zs.pack_message(offset, block))
            y = _read_until(rx, 500)
            assert len(y) >= 500
            assert rx.stats.samples_dropped >= 200 + 999  # the gap after the probe counts too
            assert rx.stats.events[-1] == (
                "stream restarted at offset 0 (the previous one ended at offset 1600)"
            )
            assert rx.read(10, timeout_s=0.05).size == 0 and rx.stats.timeouts >= 1
    finally:
        pub.close(linger=0)


def test_bad_address_and_wrong_direction():
    with pytest.raises(DeviceError, match="zmq:tcp://HOST:PORT"):
        open_device("zmq:127.0.0.1:5555", "rx", SETTINGS)
    with pytest.raises(DeviceError, match="cannot connect"):
        open_device("zmq:tcp://no such host:x", "tx", SETTINGS)
    ep = free_endpoint()
    with open_device(f"zmq:{ep}", "rx", SETTINGS) as rx, pytest.raises(StreamError, match="cannot write"):
        rx.write(np.zeros(1, np.complex64))
