"""The channel simulator's streaming stages: continuous across blocks, equal to one-shot models."""

import math

import numpy as np
import pytest

from aeradio.cli import build_parser
from aeradio.config import LinkConfig
from aeradio.errors import ConfigError
from aeradio.flowgraphs import channel_sim as cs
from aeradio.flowgraphs import impairments as imp


def _noise(rng, n):
    return ((rng.standard_normal(n) + 1j * rng.standard_normal(n)) / np.sqrt(2)).astype(np.complex64)


def _lowpass(rng, n):
    """A band-limited test signal (within 25 % of Nyquist), unit power."""
    spectrum = np.zeros(n, complex)
    k = n // 8
    spectrum[:k] = rng.standard_normal(k) + 1j * rng.standard_normal(k)
    spectrum[-k:] = rng.standard_normal(k) + 1j * rng.standard_normal(k)
    x = np.fft.ifft(spectrum)
    return (x / np.sqrt(np.mean(np.abs(x) ** 2))).astype(np.complex64)


def _stream(stage, x, rng, max_block=700):
    """Feed ``x`` through ``stage`` in random block sizes, concatenate the outputs."""
    out, pos = [], 0
    while pos < len(x):
        n = int(rng.integers(1, max_block))
        out.append(stage.process(x[pos : pos + n]))
        pos += n
    return np.concatenate(out)


def test_multipath_streaming_equals_one_shot(rng):
    x = _noise(rng, 5000)
    taps = [1.0, 0.3 - 0.2j, 0.0, 0.1j]
    y = _stream(cs.MultipathStage(taps), x, rng)
    ref = np.convolve(x.astype(np.complex128), np.array(taps))[: len(x)]
    np.testing.assert_allclose(y, ref, atol=1e-5)


def test_integer_delay_streaming(rng):
    x = _noise(rng, 3000)
    y = _stream(cs.IntegerDelayStage(37), x, rng)
    assert len(y) == len(x) and np.all(y[:37] == 0)
    np.testing.assert_array_equal(y[37:], x[:-37])


@pytest.mark.parametrize(("sco_ppm", "delay"), [(0.0, 2.5), (200.0, 0.0), (-150.0, 7.25)])
def test_resampler_streaming_equals_one_shot_model(rng, sco_ppm, delay):
    x = _lowpass(rng, 8192)
    y = _stream(cs.ResampleStage(sco_ppm, delay), x, rng)
    ratio = 1 + sco_ppm * 1e-6
    times = np.arange(len(y)) * ratio - delay
    ref = imp.interpolate_at(x, times)  # the same model, evaluated at once
    assert len(y) >= len(x) / ratio - imp.INTERP_HALF_TAPS - 2
    np.testing.assert_allclose(y, ref, atol=2e-5)
    if sco_ppm == 0:
        np.testing.assert_allclose(y[:4000], imp.apply_delay(x, delay)[:4000], atol=2e-5)


def test_resampler_sco_matches_apply_sco(rng):
    x = _lowpass(rng, 6000)
    y = _stream(cs.ResampleStage(500.0, 0.0), x, rng)
    ref = imp.apply_sco(x, 500.0)
    n = min(len(y), len(ref))
    assert n > 5900
    np.testing.assert_allclose(y[:n], ref[:n], atol=2e-5)


def test_cfo_continuous_across_blocks(rng):
    x = _noise(rng, 4000)
    y = _stream(cs.CfoStage(0.0123), x, rng)
    np.testing.assert_allclose(y, imp.apply_cfo(x, 0.0123), atol=2e-5)


def test_phase_noise_wiener_increments_continuous(rng):
    std = 0.01
    x = np.ones(200_000, np.complex64)
    stage = cs.PhaseNoiseStage(std, np.random.default_rng(3))
    y = _stream(stage, x, rng, max_block=5000)
    increments = np.diff(np.unwrap(np.angle(y.astype(np.complex128))))
    # Every increment, block boundaries included, is one N(0, std^2) step: no phase jumps.
    assert np.std(increments) == pytest.approx(std, rel=0.03)
    assert np.max(np.abs(increments)) < 6 * std


def _args(**overrides):
    argv = ["channel", "--tx", "zmq:tcp://127.0.0.1:1", "--rx", "zmq:tcp://127.0.0.1:2",
            "--sample-rate-hz", "1e6"]
    for key, value in overrides.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    return build_parser().parse_args(argv)


def test_snr_relative_to_tx_frame_power_one_over_sps():
    s = cs.settings_from_args(_args(snr_db=10))  # default sps: the link config's (4)
    assert s.signal_power == pytest.approx(1 / 4) and s.noise_power == pytest.approx(0.1 / 4)
    assert "AWGN SNR 10.00 dB" in s.describe(1e6)
    s = cs.settings_from_args(_args(snr_db=10, samples_per_symbol=8, pa_rapp_p=2))
    assert s.noise_power == pytest.approx(0.1 / 8)
    # The PA saturates relative to the frame RMS amplitude sqrt(1/sps), here 6 dB above it.
    assert cs.ChannelModel(s, np.random.default_rng(0)).stages[0].saturation_amplitude == pytest.approx(
        np.sqrt(1 / 8) * 10 ** (6 / 20))


def test_snr_sets_noise_power_and_model_reproducible():
    s = cs.settings_from_args(_args(snr_db=10, samples_per_symbol=1))
    assert s.noise_power == pytest.approx(0.1)
    x = np.zeros(100_000, np.complex64)
    y = cs.ChannelModel(s, np.random.default_rng(1)).process(x)
    assert np.mean(np.abs(y) ** 2) == pytest.approx(0.1, rel=0.03)
    np.testing.assert_array_equal(y, cs.ChannelModel(s, np.random.default_rng(1)).process(x))
    assert not np.array_equal(y, cs.ChannelModel(s, np.random.default_rng(2)).process(x))


def test_ebn0_uses_model_rate_and_samples_per_symbol(monkeypatch):
    cfg = LinkConfig.from_dict({"model": {"k": 8, "n": 7}, "radio": {"samples_per_symbol": 4}})
    model_io = pytest.importorskip("aeradio.learning.model_io")
    monkeypatch.setattr(model_io, "load_link_config", lambda path: cfg)
    s = cs.settings_from_args(_args(ebn0_db=6, model="/some/dir"))
    # Es/N0 = 1 / N per symbol after the matched filter, and Es/N0 = R Eb/N0.
    assert s.noise_power == pytest.approx(1 / (8 / 7 * 10 ** 0.6))
    expected_snr_db = 6 + 10 * math.log10(8 / 7) - 10 * math.log10(4)
    assert 10 * math.log10(s.signal_power / s.noise_power) == pytest.approx(expected_snr_db)
    with pytest.raises(ConfigError, match="--ebn0-db needs --model"):
        cs.settings_from_args(_args(ebn0_db=6))
    with pytest.raises(ConfigError, match="--model DIR or --samples-per-symbol, not both"):
        cs.settings_from_args(_args(snr_db=6, model="/some/dir", samples_per_symbol=2))


def test_full_chain_order_and_units():
    s = cs.settings_from_args(_args(cfo_hz=1000, dc_offset="0.1-0.2j", iq_imbalance_db=0.5,
                                    iq_imbalance_deg=3, multipath="1,0.2j", pa_backoff_db=3,
                                    phase_noise_dbc=-80, delay_samples=3))
    assert s.cfo_cps == pytest.approx(1e-3) and s.pa_rapp_p == cs.DEFAULT_RAPP_P
    assert s.multipath_taps == (1, 0.2j) and s.dc_offset == 0.1 - 0.2j
    assert s.phase_noise_std_rad == pytest.approx(imp.phase_noise_std_per_sample(-80, 10e3, 1e6))
    model = cs.ChannelModel(s, np.random.default_rng(0))
    kinds = [type(st).__name__ for st in model.stages]
    assert kinds == ["RappStage", "MultipathStage", "IntegerDelayStage", "CfoStage",
                     "PhaseNoiseStage", "IqImbalanceStage", "DcOffsetStage"]
    y = model.process(np.zeros(1000, np.complex64))
    np.testing.assert_allclose(y, 0.1 - 0.2j, atol=1e-6)  # silence in: only the DC out
    assert "CFO 1000 Hz" in s.describe(1e6) and "DC offset" in s.describe(1e6)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"cfo_hz": 6e5}, r"--cfo-hz must be in \[-500000, 500000\] Hz, got 600000"),
        ({"snr_db": 500}, r"--snr-db must be in \[-30, 100\] dB, got 500"),
        ({"multipath": "1,x"}, "--multipath tap must be a complex number"),
        ({"dc_offset": "big"}, "--dc-offset must be a complex number"),
        ({"iq_imbalance_db": 10}, r"--iq-imbalance-db must be in \[-6, 6\] dB"),
        ({"delay_samples": -1}, r"--delay-samples must be in \[0, 1e\+06\]"),
        ({"sample_rate_hz": 0}, r"--sample-rate-hz must be in \[1000, 1e\+09\] Hz, got 0"),
    ],
)
def test_bad_arguments_name_parameter_range_and_value(overrides, match):
    args = _args()
    for k, v in overrides.items():
        setattr(args, k, v)
    with pytest.raises(ConfigError, match=match):
        cs.settings_from_args(args)


def test_block_size_tracks_rate():
    assert cs.block_samples_for(1e6) == 4096
    assert cs.block_samples_for(1e3) == cs.MIN_BLOCK_SAMPLES
    assert cs.block_samples_for(1e9) == cs.MAX_BLOCK_SAMPLES


def test_input_queue_takes_across_chunks():
    q = cs.InputQueue(capacity=100)
    q.push(np.arange(5).astype(np.complex64))
    q.push(np.arange(5, 12).astype(np.complex64))
    assert q.take(7).real.tolist() == list(range(7)) and q.size == 5
    assert q.take(100).real.tolist() == list(range(7, 12)) and q.size == 0



def test_cfo_phase_does_not_drift_over_a_long_stream():
    x = np.ones(4096 * 256, np.complex64)
    stage = cs.CfoStage(0.0123)
    y = np.concatenate([stage.process(x[i : i + 4096]) for i in range(0, len(x), 4096)])
    np.testing.assert_allclose(y, imp.apply_cfo(x, 0.0123), atol=1e-6)
