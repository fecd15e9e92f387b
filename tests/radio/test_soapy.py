"""The SoapySDR backend: the real bindings against driver=null, the data path on a fake device."""

import numpy as np
import pytest

from aeradio.core.errors import ConfigError, DeviceError, StreamError
from aeradio.radio import DeviceSettings, open_device
from aeradio.radio import soapy as s
from aeradio.radio.soapy import SoapyDevice

SETTINGS = DeviceSettings(sample_rate_hz=1e6, freq_hz=915e6, gain_db=30.4, bandwidth_hz=1.5e6, antenna="RX2")


def test_constants_match_the_bindings():
    soapy = pytest.importorskip("SoapySDR")
    for name in ("TX", "RX", "CF32", "TIMEOUT", "STREAM_ERROR", "CORRUPTION", "OVERFLOW",
                 "NOT_SUPPORTED", "TIME_ERROR", "UNDERFLOW", "END_BURST", "HAS_TIME"):
        assert getattr(s, f"SOAPY_SDR_{name}") == getattr(soapy, f"SOAPY_SDR_{name}"), name


@pytest.mark.parametrize("direction", ["rx", "tx"])
def test_null_driver_has_no_channels_clear_error(direction):
    pytest.importorskip("SoapySDR")
    with pytest.raises(DeviceError, match=f"no {direction.upper()} channel 0"):
        open_device("soapy:driver=null", direction, DeviceSettings(sample_rate_hz=1e6))


def test_absent_device_clear_error():
    pytest.importorskip("SoapySDR")
    with pytest.raises(DeviceError, match="no SoapySDR device matches 'driver=nosuchradio'"):
        open_device("soapy:driver=nosuchradio", "rx", DeviceSettings(sample_rate_hz=1e6))


def test_missing_bindings_clear_error(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "SoapySDR", None)
    with pytest.raises(DeviceError, match="apt-get install python3-soapysdr"):
        open_device("soapy:driver=hackrf", "rx", DeviceSettings(sample_rate_hz=1e6))


def test_settings_applied_and_read_back(fake_soapy):
    fake = fake_soapy.Device()
    with SoapyDevice("driver=fake", "rx", DeviceSettings(sample_rate_hz=1_000_400.0, freq_hz=915e6,
                     gain_db=30.4, bandwidth_hz=1.5e6, antenna="RX2"), sdr=fake) as dev:
        assert dev.sample_rate_hz == 1_000_000.0  # what the hardware set, not what was asked
        d = dev.describe()
        assert d["freq_hz"] == 915e6 + 3.0 and d["gain_db"] == 30.0
        assert d["bandwidth_hz"] == 1.5e6 and d["antenna"] == "RX2" and d["driver"] == "fake"
    assert fake.closed


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        (DeviceSettings(sample_rate_hz=5e7), r"sample rate must be in \[100000, 2e\+07\] Hz.*got 5e\+07"),
        (DeviceSettings(sample_rate_hz=1e6, gain_db=80.0), r"gain must be in \[0, 70\] dB.*got 80"),
        (DeviceSettings(sample_rate_hz=1e6, freq_hz=10e6), r"frequency must be in .*got 1e\+07"),
        (DeviceSettings(sample_rate_hz=1e6, antenna="LNAW"), r"antenna must be one of .*'LNAW'"),
    ],
)
def test_invalid_settings_name_range_and_value(settings, match, fake_soapy):
    fake = fake_soapy.Device()
    with pytest.raises(ConfigError, match=match):
        SoapyDevice("driver=fake", "rx", settings, sdr=fake)


def test_rx_timeout_overflow_and_time_gap_counted(fake_soapy):
    fake = fake_soapy.Device()
    t0 = 5_000_000_000
    fake.rx_results = [
        fake_soapy.Result(s.SOAPY_SDR_TIMEOUT),
        fake_soapy.Result(100, s.SOAPY_SDR_HAS_TIME, t0),
        fake_soapy.Result(s.SOAPY_SDR_OVERFLOW),
        # 100 us after the end of the first block at 1 MS/s: 100 samples lost.
        fake_soapy.Result(50, s.SOAPY_SDR_HAS_TIME, t0 + 200_000),
        fake_soapy.Result(s.SOAPY_SDR_TIMEOUT),  # nothing more queued
    ]
    with SoapyDevice("driver=fake", "rx", DeviceSettings(sample_rate_hz=1e6), sdr=fake) as dev:
        assert dev.read(500, timeout_s=0.1).size == 0
        x = dev.read(500)
        assert x.dtype == np.complex64 and len(x) == 100 and np.all(x == fake.rx_value)
        assert len(dev.read(500)) == 50  # the overflow was survived
        assert dev.stats.timeouts == 1 and dev.stats.overflows == 1
        assert dev.stats.samples_dropped == 100 and dev.stats.samples == 150


def test_rx_read_gathers_what_the_driver_holds(fake_soapy):
    fake = fake_soapy.Device()
    fake.rx_results = [fake_soapy.Result(300), fake_soapy.Result(200), fake_soapy.Result(s.SOAPY_SDR_TIMEOUT),
                       fake_soapy.Result(400), fake_soapy.Result(200), fake_soapy.Result(100),
                       fake_soapy.Result(s.SOAPY_SDR_TIMEOUT)]
    with SoapyDevice("driver=fake", "rx", DeviceSettings(sample_rate_hz=1e6), sdr=fake) as dev:
        assert len(dev.read(10_000)) == 500  # two driver reads, then nothing queued
        assert len(dev.read(600)) == 600  # up to max_samples: the 100 stay queued
        assert len(dev.read(600)) == 100
        assert dev.stats.samples == 1200 and dev.stats.timeouts == 0


def test_rx_persistent_stream_error_raises(fake_soapy):
    fake = fake_soapy.Device()
    fake.rx_results = [fake_soapy.Result(s.SOAPY_SDR_STREAM_ERROR)] * s.MAX_CONSECUTIVE_ERRORS
    with SoapyDevice("driver=fake", "rx", DeviceSettings(sample_rate_hz=1e6), sdr=fake) as dev:
        with pytest.raises(StreamError, match="STREAM_ERROR"):
            dev.read(100, timeout_s=1.0)


def test_tx_burst_split_by_mtu_with_end_burst_and_timing(fake_soapy):
    fake = fake_soapy.Device(hardware_time=True)
    x = (np.arange(2500) * (1 + 1j)).astype(np.complex64)
    with SoapyDevice("driver=fake", "tx", DeviceSettings(sample_rate_hz=1e6), sdr=fake) as dev:
        dev.write(x, end_burst=True)
        counts = [w[0] for w in fake.writes]
        flags = [w[1] for w in fake.writes]
        assert counts == [1000, 1000, 500]
        assert flags[0] & s.SOAPY_SDR_HAS_TIME and not flags[1] & s.SOAPY_SDR_HAS_TIME
        assert flags[-1] & s.SOAPY_SDR_END_BURST and not flags[0] & s.SOAPY_SDR_END_BURST
        assert fake.writes[0][2] == fake.time_ns + s.TX_BURST_LEAD_NS
        np.testing.assert_array_equal(np.concatenate(fake.written), x)
        # The next burst is timed after the end of this one, not inside it.
        dev.write(x[:10], end_burst=True)
        assert fake.writes[-1][2] == fake.time_ns + s.TX_BURST_LEAD_NS + 2500 * 1000


def test_tx_partial_writes_timeouts_and_underflows_survived(fake_soapy):
    fake = fake_soapy.Device()
    result = fake_soapy.Result
    fake.tx_results = [result(300), result(s.SOAPY_SDR_TIMEOUT), result(s.SOAPY_SDR_UNDERFLOW)]
    fake.status_results = [result(s.SOAPY_SDR_UNDERFLOW), result(s.SOAPY_SDR_TIMEOUT)]
    x = np.ones(1000, np.complex64)
    with SoapyDevice("driver=fake", "tx", DeviceSettings(sample_rate_hz=1e6), sdr=fake) as dev:
        dev.write(x, end_burst=True)
        assert sum(w[0] for w in fake.writes) == 1000
        assert dev.stats.timeouts == 1 and dev.stats.underflows == 2
        assert not any(w[1] & s.SOAPY_SDR_HAS_TIME for w in fake.writes)  # no hardware clock


def test_tx_gives_up_after_timeout(fake_soapy):
    fake = fake_soapy.Device()
    fake.tx_results = [fake_soapy.Result(s.SOAPY_SDR_TIMEOUT)] * 1000
    with SoapyDevice("driver=fake", "tx", DeviceSettings(sample_rate_hz=1e6), sdr=fake) as dev:
        with pytest.raises(StreamError, match="accepted 0 of 10 samples"):
            dev.write(np.ones(10, np.complex64), timeout_s=0.05)
