"""Device URIs: dispatch to the backends, clear errors, lazy imports."""

import subprocess
import sys

import numpy as np
import pytest

from aeradio.core.errors import ConfigError
from aeradio.radio import DeviceSettings, open_device
from aeradio.radio.uri import split_uri

SETTINGS = DeviceSettings(sample_rate_hz=1e6)


@pytest.mark.parametrize("uri", ["usb:0", "tcp://127.0.0.1:5555", "hackrf", "", "ZMQ:tcp://x:1"])
def test_unknown_scheme(uri):
    with pytest.raises(ConfigError, match="unknown device URI"):
        open_device(uri, "rx", SETTINGS)


def test_empty_rest_and_bad_direction():
    with pytest.raises(ConfigError, match="nothing after 'zmq:'"):
        split_uri("zmq:")
    with pytest.raises(ConfigError, match="direction must be 'rx' or 'tx', got 'both'"):
        open_device("zmq:tcp://127.0.0.1:5555", "both", SETTINGS)


def test_file_uri_needs_sigmf_suffix():
    with pytest.raises(ConfigError, match=r"\.sigmf-meta or \.sigmf-data file, got 'file:/tmp/x.wav'"):
        open_device("file:/tmp/x.wav", "rx", SETTINGS)


def test_importing_radio_loads_no_backend():
    code = "import sys, aeradio.radio; print('SoapySDR' in sys.modules, 'zmq' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.parametrize("suffix", [".sigmf-meta", ".sigmf-data"])
def test_file_uri_opens_a_sigmf_recording(tmp_path, suffix):
    x = (np.arange(1000) * (1 - 1j)).astype(np.complex64)
    with open_device(f"file:{tmp_path / 'rec'}{suffix}", "tx", SETTINGS) as tx:
        tx.write(x, end_burst=True)
    with open_device(f"file:{tmp_path / 'rec'}{suffix}", "rx", SETTINGS) as rx:
        got = []
        while (block := rx.read(300)) is not None:
            got.append(block)
    np.testing.assert_array_equal(np.concatenate(got), x)
