"""Each estimator against float64 references and its defining property."""

import math

import numpy as np
import pytest

from aeradio.calibration.bursts import BurstLayout, calibration_burst, sync_sequence
from aeradio.calibration.detection import detect_syncs
from aeradio.calibration.iq import estimate_iq_imbalance, iq_moments
from aeradio.calibration.timing import estimate_circular_delay
from aeradio.calibration.tone import estimate_tone_cps
from aeradio.core.errors import CalibrationError
from aeradio.dsp import impairments as imp


def _tone(n, f_cps, phase=0.3):
    return np.exp(2j * np.pi * f_cps * np.arange(n) + 1j * phase)


def test_tone_frequency_float64_noiseless():
    assert estimate_tone_cps(_tone(8192, 0.1234567)) == pytest.approx(0.1234567, abs=1e-10)


def test_tone_frequency_near_cramer_rao(rng):
    n, snr = 16384, 100.0
    errors = []
    for _ in range(20):
        f = rng.uniform(-0.2, 0.2)
        y = imp.add_awgn(_tone(n, f).astype(np.complex64), 1.0 / snr, rng)
        errors.append(estimate_tone_cps(y) - f)
    crb = math.sqrt(6.0 / ((2 * math.pi) ** 2 * snr * n**3))
    assert np.sqrt(np.mean(np.square(errors))) < 3.0 * crb


def test_tone_search_window_picks_the_weaker_tone():
    y = _tone(4096, 0.2) + 0.1 * _tone(4096, -0.1)
    assert estimate_tone_cps(y, (-0.15, -0.05)) == pytest.approx(-0.1, abs=1e-6)
    with pytest.raises(CalibrationError, match="tone segment must have >= 256 samples, got 100"):
        estimate_tone_cps(y[:100])


@pytest.mark.parametrize("gain_db, phase_deg", [(0.0, 0.0), (1.2, -5.0), (-2.0, 12.0)])
def test_iq_imbalance_float64_reference(gain_db, phase_deg):
    # Float64 through the defining equations (the impairment model rounds to complex64).
    x = _tone(10_000, 0.0731)
    g, phi = 10 ** (gain_db / 20), np.deg2rad(phase_deg)
    y = x.real + 1j * g * (x.imag * np.cos(phi) - x.real * np.sin(phi))
    est = estimate_iq_imbalance(y)
    assert est == pytest.approx((gain_db, phase_deg), abs=1e-3)


def test_iq_noise_moments_remove_the_noise_bias(rng):
    # Noise added after the mixer is circular; its moments, measured on silence, cancel.
    y = imp.apply_iq_imbalance(_tone(200_000, 0.05).astype(np.complex64), 1.0, 5.0)
    y = imp.add_awgn(y, 0.3, rng)
    noise = imp.add_awgn(np.zeros(200_000, np.complex64), 0.3, rng)
    gain_db, phase_deg = estimate_iq_imbalance(y, iq_moments(noise))
    assert gain_db == pytest.approx(1.0, abs=0.02)
    assert phase_deg == pytest.approx(5.0, abs=0.2)
    with pytest.raises(CalibrationError, match="no signal above the noise"):
        estimate_iq_imbalance(noise, iq_moments(y))


@pytest.mark.parametrize("delay", [0.0, 0.37, -2.81, 5.5])
def test_circular_delay_float64(delay):
    seq = sync_sequence(BurstLayout()).astype(np.complex128)
    k = np.fft.fftfreq(seq.size, 1.0 / seq.size)
    shifted = np.fft.ifft(np.fft.fft(seq) * np.exp(-2j * np.pi * k * delay / seq.size)) * np.exp(0.9j)
    assert estimate_circular_delay(shifted, seq) == pytest.approx(delay, abs=1e-4)
    assert estimate_circular_delay(shifted, seq, initial=round(delay)) == pytest.approx(delay, abs=1e-4)


def test_sync_sequence_is_band_limited_and_under_full_scale():
    layout = BurstLayout()
    seq = sync_sequence(layout)
    spectrum = np.abs(np.fft.fft(seq.astype(np.complex128)))
    k = np.abs(np.fft.fftfreq(seq.size))
    assert spectrum[0] < 1e-4 * spectrum.max()  # no DC: DC offset does not bias timing
    assert spectrum[k > 0.38].max() < 1e-4 * spectrum.max()
    burst = calibration_burst(layout)
    assert np.abs(burst).max() < 0.75
    assert np.sqrt(np.mean(np.abs(seq) ** 2)) == pytest.approx(layout.amplitude, rel=1e-5)


@pytest.mark.parametrize("cfo_cps", [0.0, 0.012, -0.02])
def test_detection_tolerates_cfo(cfo_cps, rng):
    layout = BurstLayout(silence_samples=1024, tone_samples=2048)
    x = np.concatenate([np.zeros(3000, np.complex64), calibration_burst(layout)])
    y = imp.add_awgn(imp.apply_cfo(x, cfo_cps, 1.1), 0.25 / 10.0, rng)  # 10 dB SNR
    found = detect_syncs(y, layout)
    assert len(found) == 1
    # Chirp-like sync: the CFO moves the coarse peak by -cfo Ls / 0.75 samples.
    expected = 3000 + layout.sync_start - cfo_cps * layout.sync_samples / 0.75
    assert abs(found[0].sync_index - expected) <= 2
    assert found[0].metric > 0.6


def test_detection_finds_nothing_in_noise(rng):
    layout = BurstLayout()
    assert detect_syncs(imp.add_awgn(np.zeros(100_000, np.complex64), 1.0, rng), layout) == []
