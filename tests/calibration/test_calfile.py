"""The calibration file: round trip, version, sample rate, physical ranges."""

import json

import pytest

from aeradio.calibration.calfile import (
    CALIBRATION_FORMAT_VERSION,
    Calibration,
    load_calibration,
    save_calibration,
)
from aeradio.core.errors import CalibrationError

DESIGN_KEYS = ("cfo_hz", "cfo_ppm", "sco_ppm", "iq_gain_db", "iq_phase_deg", "dc_offset",
               "snr_db", "noise_floor_dbfs", "delay_samples")


def _cal(**over):
    values = dict(sample_rate_hz=1e6, center_freq_hz=915e6, cfo_hz=1234.5, cfo_ppm=1234.5 / 915,
                  sco_ppm=3.2, iq_gain_db=0.4, iq_phase_deg=-2.5, dc_offset=(0.02, -0.01),
                  snr_db=21.3, noise_floor_dbfs=-33.0, delay_samples=12.5, signal_rms_dbfs=-6.0)
    values.update(over)
    return Calibration(**values)


def test_round_trip_keeps_every_value(tmp_path):
    path = tmp_path / "cal.json"
    cal = _cal(recommended={"tx_gain_change_db": 3.0})
    save_calibration(cal, path)
    data = json.loads(path.read_text())
    assert data["format_version"] == CALIBRATION_FORMAT_VERSION
    assert all(k in data for k in DESIGN_KEYS)
    assert data["dc_offset"] == [0.02, -0.01]
    assert load_calibration(path, 1e6) == cal
    assert cal.cfo_cps == pytest.approx(1234.5e-6)
    assert cal.dc_offset_fs == pytest.approx(complex(0.02, -0.01) * 10 ** (-6 / 20))


def _write(tmp_path, **over):
    data = _cal().to_dict()
    data.update(over)
    path = tmp_path / "cal.json"
    path.write_text(json.dumps(data))
    return path


def test_another_version_is_refused(tmp_path):
    with pytest.raises(CalibrationError, match="format_version must be 1, got 2"):
        load_calibration(_write(tmp_path, format_version=2), 1e6)


def test_another_sample_rate_is_refused(tmp_path):
    with pytest.raises(CalibrationError, match="measured at sample_rate_hz 1e.06, this link runs at 2e.06"):
        load_calibration(_write(tmp_path), 2e6)


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("iq_gain_db", 9.0, r"iq_gain_db must be in \[-6, 6\] dB, got 9.0"),
        ("iq_phase_deg", -50, r"iq_phase_deg must be in \[-45, 45\] deg, got -50"),
        ("sco_ppm", float("nan"), "sco_ppm must be in"),
        ("cfo_hz", 6e5, r"cfo_hz must be in \[-500000, 500000\] Hz"),
        ("dc_offset", [0.1], r"dc_offset must be \[re, im\]"),
        ("snr_db", "high", "snr_db must be a number, got 'high'"),
    ],
)
def test_out_of_range_values_are_refused(tmp_path, key, value, message):
    with pytest.raises(CalibrationError, match=message):
        load_calibration(_write(tmp_path, **{key: value}), 1e6)


def test_missing_key_and_bad_json(tmp_path):
    data = _cal().to_dict()
    del data["snr_db"]
    path = tmp_path / "a.json"
    path.write_text(json.dumps(data))
    with pytest.raises(CalibrationError, match="missing key.* snr_db"):
        load_calibration(path, 1e6)
    path.write_text("{not json")
    with pytest.raises(CalibrationError, match="is not JSON"):
        load_calibration(path, 1e6)
    with pytest.raises(CalibrationError, match="cannot read calibration file"):
        load_calibration(tmp_path / "absent.json", 1e6)
