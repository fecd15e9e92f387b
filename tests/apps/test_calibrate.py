"""``calibrate tx`` / ``calibrate rx`` through the CLI, on in-memory devices."""

import json

import numpy as np
import pytest

from aeradio import cli
from aeradio.apps import calibrate as commands
from aeradio.calibration.bursts import BurstLayout, calibration_burst
from aeradio.calibration.simulate import Impairments, simulate_capture
from aeradio.radio.base import Device


class MemoryDevice(Device):
    """Plays back ``samples`` (RX, then end of source) or records what is written (TX)."""

    def __init__(self, direction, sample_rate_hz, samples=None, block=50_000):
        super().__init__()
        self.direction = direction
        self.sample_rate_hz = sample_rate_hz
        self.samples = samples
        self.block = block
        self.pos = 0
        self.written = []

    def read(self, max_samples, timeout_s=1.0):
        if self.pos >= self.samples.size:
            return None
        n = min(max_samples, self.block)
        out = self.samples[self.pos : self.pos + n]
        self.pos += n
        return out

    def write(self, samples, *, end_burst=False, timeout_s=5.0):
        self.written.append((samples.copy(), end_burst))

    def close(self):
        pass

    def describe(self):
        return {"sample_rate_hz": self.sample_rate_hz, "freq_hz": 2.4e9}


def _patch(monkeypatch, dev):
    opened = []

    def fake_open(uri, direction, settings, **kwargs):
        opened.append((uri, direction, settings))
        assert direction == dev.direction
        return dev

    monkeypatch.setattr(commands, "open_device", fake_open)
    return opened


def test_calibrate_tx_sends_bursts(monkeypatch, capsys):
    dev = MemoryDevice("tx", 2e6)
    opened = _patch(monkeypatch, dev)
    assert cli.main(["calibrate", "tx", "--device", "zmq:tcp://127.0.0.1:1", "--bursts", "3",
                     "--sample-rate-hz", "2e6"]) == 0
    assert opened[0][2].sample_rate_hz == 2e6
    assert len(dev.written) == 3 and all(end for _, end in dev.written)
    np.testing.assert_array_equal(dev.written[0][0], calibration_burst())
    assert "sent 3 calibration bursts" in capsys.readouterr().out


def test_calibrate_rx_writes_the_design_keys(monkeypatch, tmp_path, capsys, rng):
    truth = Impairments(cfo_cps=0.002, sco_ppm=5.0, iq_gain_db=0.5, iq_phase_deg=3.0,
                        dc=0.02 + 0.01j, delay_samples=20.3)
    dev = MemoryDevice("rx", 1e6, simulate_capture(truth, rng, bursts=3))
    _patch(monkeypatch, dev)
    out = tmp_path / "cal.json"
    assert cli.main(["calibrate", "rx", "--device", "file:x.sigmf-meta", "--json", str(out),
                     "--bursts", "2", "--target-snr-db", "25", "--tx-gain-db", "30",
                     "--tx-gain-range-db", "0:40"]) == 0
    data = json.loads(out.read_text())
    for key in ("cfo_hz", "cfo_ppm", "sco_ppm", "iq_gain_db", "iq_phase_deg", "dc_offset",
                "snr_db", "noise_floor_dbfs", "delay_samples"):
        assert key in data
    assert data["format_version"] == 1 and data["sample_rate_hz"] == 1e6
    assert data["cfo_hz"] == pytest.approx(2000.0, abs=2.0)
    assert data["cfo_ppm"] == pytest.approx(2000.0 / 2.4e9 * 1e6, abs=0.01)
    assert data["sco_ppm"] == pytest.approx(5.0, abs=0.4)
    assert data["snr_db"] == pytest.approx(20.0, abs=0.2)
    assert data["recommended"]["tx_gain_db"] == pytest.approx(35.0, abs=0.2)
    assert data["bursts"] == 2  # stopped reading once two whole bursts arrived
    assert "2 bursts: CFO +2000" in capsys.readouterr().out


def test_calibrate_rx_without_bursts_is_one_clear_line(monkeypatch, tmp_path, capsys, rng):
    noise = (rng.standard_normal(300_000) * 0.01).astype(np.complex64)
    _patch(monkeypatch, MemoryDevice("rx", 1e6, noise))
    out = tmp_path / "cal.json"
    assert cli.main(["calibrate", "rx", "--device", "file:x.sigmf-meta", "--json", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("aeradio calibrate: error: no calibration bursts found in 300000 samples read")
    assert "\n" not in err
    assert not out.exists()


def test_bad_gain_range_is_a_config_error(monkeypatch, tmp_path, capsys):
    layout = BurstLayout()
    _patch(monkeypatch, MemoryDevice("rx", 1e6, np.tile(calibration_burst(layout), 2)))
    assert cli.main(["calibrate", "rx", "--device", "file:x.sigmf-meta", "--json",
                     str(tmp_path / "c.json"), "--rx-gain-range-db", "40:10"]) == 2
    assert "--rx-gain-range-db must be LO:HI with LO <= HI, got '40:10'" in capsys.readouterr().err


def test_long_noise_before_the_bursts_is_dropped_but_counted(monkeypatch, tmp_path, rng):
    layout = BurstLayout()
    lead = 400_000
    noise = (rng.standard_normal(lead) * 0.005).astype(np.complex64)
    truth = Impairments(delay_samples=7.6)
    dev = MemoryDevice("rx", 1e6, np.concatenate([noise, simulate_capture(truth, rng, bursts=2)]))
    _patch(monkeypatch, dev)
    out = tmp_path / "cal.json"
    assert cli.main(["calibrate", "rx", "--device", "file:x.sigmf-meta", "--json", str(out),
                     "--bursts", "1"]) == 0
    data = json.loads(out.read_text())
    # The delay is counted from the stream's first sample, dropped noise included.
    assert data["delay_samples"] == pytest.approx((lead + 7.6) % layout.length, abs=0.05)
    assert data["device"]["samples_read"] < lead + 2 * layout.length


def test_sigmf_recording_round_trip(tmp_path, capsys):
    """calibrate tx into a SigMF recording, calibrate rx from it: an ideal link."""
    meta = tmp_path / "cal.sigmf-meta"
    base = ["--device", f"file:{meta}", "--sample-rate-hz", "1e6", "--freq-hz", "2.4e9"]
    assert cli.main(["calibrate", "tx", *base, "--bursts", "2"]) == 0
    assert cli.main(["calibrate", "tx", *base, "--bursts", "2"]) == 2  # refuses to clobber
    assert "exists" in capsys.readouterr().err
    assert cli.main(["calibrate", "tx", *base, "--bursts", "2", "--overwrite"]) == 0
    out = tmp_path / "cal.json"
    assert cli.main(["calibrate", "rx", *base, "--json", str(out), "--bursts", "5"]) == 0
    data = json.loads(out.read_text())
    assert data["bursts"] == 2  # the recording ended first
    assert abs(data["cfo_hz"]) < 0.01 and abs(data["sco_ppm"]) < 0.01
    assert abs(data["delay_samples"]) < 1e-3
    assert data["snr_db"] > 100 and data["center_freq_hz"] == 2.4e9
    assert data["recommended"] is None  # no noise: no meaningful gain advice
    assert "no gain recommendation" in capsys.readouterr().out


class LossyDevice(MemoryDevice):
    """A MemoryDevice that loses ``samples[lost_from:lost_to]`` (counted, as a ZMQ or
    SoapySDR device counts what it lost), like a receiver that fell behind once."""

    def __init__(self, *args, lost_from, lost_to, **kwargs):
        super().__init__(*args, **kwargs)
        self.lost_from, self.lost_to = lost_from, lost_to

    def read(self, max_samples, timeout_s=1.0):
        out = super().read(max_samples, timeout_s)
        if out is not None and self.pos - len(out) <= self.lost_from < self.pos:
            keep = out[: self.lost_from - (self.pos - len(out))]
            rest = len(out) - keep.size  # the block continues after the gap
            self.pos = self.lost_to + rest
            self.stats.samples_dropped += self.lost_to - self.lost_from
            return np.concatenate([keep, self.samples[self.lost_to : self.pos]])
        return out


def test_samples_lost_inside_a_burst_do_not_bias_the_estimates(monkeypatch, tmp_path, capsys, rng):
    """Regression: the loopback calibration test once measured an SCO of -30 ppm for 10 on a
    loaded machine, where calibrate rx lost samples; the bursts around the gap were measured
    as if the stream were contiguous. Now the capture starts again after a loss."""
    layout = BurstLayout()
    truth = Impairments(cfo_cps=0.002, sco_ppm=5.0, delay_samples=20.3)
    samples = simulate_capture(truth, rng, bursts=5)
    gap_at = int(1.5 * layout.length)  # in the middle of the second burst
    dev = LossyDevice("rx", 1e6, samples, lost_from=gap_at, lost_to=gap_at + 777)
    _patch(monkeypatch, dev)
    out = tmp_path / "cal.json"
    assert cli.main(["calibrate", "rx", "--device", "file:x.sigmf-meta", "--json", str(out),
                     "--bursts", "2"]) == 0
    data = json.loads(out.read_text())
    assert data["sco_ppm"] == pytest.approx(5.0, abs=0.4)
    assert data["cfo_hz"] == pytest.approx(2000.0, abs=2.0)
    # The stream index counts the lost samples: the delay is the truth's.
    assert data["delay_samples"] == pytest.approx(20.3, abs=0.05)
    assert data["device"]["samples_dropped"] == 777
    err = capsys.readouterr().err
    assert "lost 777 samples (1 time(s)); the capture started again" in err
