"""``zmq:tcp://HOST:PORT?bind=1``: a radio process binds its socket (GNU Radio's sources connect)."""

import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aeradio.core.errors import DeviceError
from aeradio.radio import DeviceSettings, open_device
from aeradio.radio import zmq_stream as zs
from aeradio.radio.zmq_stream import free_endpoint, parse_zmq_uri

SETTINGS = DeviceSettings(sample_rate_hz=1e6)


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("zmq:tcp://127.0.0.1:5555", ("tcp://127.0.0.1:5555", False)),
        ("zmq:tcp://127.0.0.1:5555?bind=1", ("tcp://127.0.0.1:5555", True)),
        ("zmq:tcp://127.0.0.1:5555?bind=0", ("tcp://127.0.0.1:5555", False)),
        ("tcp://127.0.0.1:5555?bind=1", ("tcp://127.0.0.1:5555", True)),
    ],
)
def test_bind_option_parsed(uri, expected):
    assert parse_zmq_uri(uri) == expected


@pytest.mark.parametrize(
    "query",
    ["", "bind", "bind=", "bind=2", "bind=true", "Bind=1", "foo=1", "bind=1&bind=0", "bind=1&x=2", "&",
     "bind=%31"],
)
def test_bad_bind_option_refused_in_one_line(query):
    uri = f"zmq:tcp://127.0.0.1:5555?{query}"
    with pytest.raises(DeviceError, match=r"only \?bind=0 or \?bind=1") as info:
        parse_zmq_uri(uri)
    assert "\n" not in str(info.value) and repr(query) in str(info.value)


def test_bad_option_refused_before_a_socket_opens():
    with pytest.raises(DeviceError, match=r"\?bind=0 or \?bind=1"):
        open_device("zmq:tcp://127.0.0.1:5555?bind=yes", "tx", SETTINGS)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=30))
def test_any_query_is_parsed_or_refused_with_a_device_error(query):
    try:
        address, bind = parse_zmq_uri(f"zmq:tcp://127.0.0.1:5555?{query}")
    except DeviceError:
        return
    assert address == "tcp://127.0.0.1:5555" and bind is (query == "bind=1")


def test_tx_with_bind_feeds_a_connecting_pull(rng):
    # As GNU Radio's zeromq.pull_source does: it connects to the transmitter.
    ep = free_endpoint()
    x = (rng.standard_normal(20_000) + 1j * rng.standard_normal(20_000)).astype(np.complex64)
    pull = None
    try:
        with open_device(f"zmq:{ep}?bind=1", "tx", SETTINGS) as tx:
            assert tx.describe()["device"] == f"zmq:{ep}?bind=1"
            pull = zs.open_socket("PULL", ep, bind=False, hwm=zs.PUSH_PULL_HWM, role="test")
            tx.write(x)
            parts = []
            while sum(map(len, parts)) < len(x):
                assert pull.poll(3000)
                parts.append(zs.unpack_message(pull.recv())[1])
            np.testing.assert_array_equal(np.concatenate(parts), x)
    finally:  # the consumer goes away after the transmitter closed (a peer that leaves
        # before tx closes is reported by tx as a possible loss)
        if pull is not None:
            pull.close(linger=0)


def test_rx_with_bind_reads_a_connecting_pub():
    ep = free_endpoint()
    with open_device(f"zmq:{ep}?bind=1", "rx", SETTINGS) as rx:
        assert rx.describe()["device"] == f"zmq:{ep}?bind=1"
        pub = zs.open_socket("PUB", ep, bind=False, hwm=zs.PUB_SUB_HWM, role="test")
        try:
            block = np.arange(64).astype(np.complex64)
            got = np.zeros(0, np.complex64)
            deadline = time.monotonic() + 5
            while not len(got) and time.monotonic() < deadline:  # until the subscription arrived
                pub.send(zs.pack_message(0, block))
                got = rx.read(1000, timeout_s=0.05)
            np.testing.assert_array_equal(got[:64], block)
        finally:
            pub.close(linger=0)


def test_two_bound_devices_on_one_port_fail_clearly():
    ep = free_endpoint()
    with open_device(f"zmq:{ep}?bind=1", "rx", SETTINGS):
        with pytest.raises(DeviceError, match="cannot bind RX ZMQ SUB socket"):
            open_device(f"zmq:{ep}?bind=1", "rx", SETTINGS)


@pytest.mark.parametrize("port", ["99999", "0", "x", "", "-1"])
def test_a_port_out_of_range_is_refused_in_one_line(port):
    # A new user's rx on zmq:tcp://127.0.0.1:99999 waited, then said "no samples received".
    with pytest.raises(DeviceError, match=r"port must be in \[1, 65535\]") as info:
        parse_zmq_uri(f"zmq:tcp://127.0.0.1:{port}")
    assert "\n" not in str(info.value)
