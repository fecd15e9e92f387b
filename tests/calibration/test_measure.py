"""End to end on arrays: the issue's tolerances at 20 dB SNR, 1 MS/s, with margin."""

import numpy as np
import pytest

from aeradio.calibration.bursts import BurstLayout
from aeradio.calibration.measure import measure_capture
from aeradio.calibration.simulate import Impairments, dc_relative, simulate_capture
from aeradio.core.errors import CalibrationError
from aeradio.dsp import impairments as imp

SAMPLE_RATE_HZ = 1e6

CASES = [
    Impairments(cfo_cps=3170.0 / SAMPLE_RATE_HZ, sco_ppm=12.5, iq_gain_db=0.8, iq_phase_deg=4.0,
                dc=0.03 - 0.02j, delay_samples=37.41),
    Impairments(cfo_cps=-14_200.0 / SAMPLE_RATE_HZ, sco_ppm=-40.0, iq_gain_db=-1.5,
                iq_phase_deg=-7.0, dc=-0.01 + 0.05j, delay_samples=1234.9),
    # At the edge of detection (0.03 cps) the chirp-like sync's peak moves ~19 samples
    # early: the first burst, at the very start of the capture, must still be measured.
    Impairments(cfo_cps=0.028, sco_ppm=150.0, iq_gain_db=1.0, iq_phase_deg=5.0, dc=0.05,
                delay_samples=3.3),
]


@pytest.mark.parametrize("truth", CASES, ids=["moderate", "large", "edge"])
def test_issue_tolerances_at_20_db(truth, rng):
    m = measure_capture(simulate_capture(truth, rng))
    assert len(m.bursts) == 2
    # Targets: CFO 10 Hz, clock 2 ppm, IQ 0.1 dB / 1 deg, DC 1 % of RMS, SNR 0.5 dB; we
    # assert a fifth of each (typical errors are 10-100x smaller).
    assert m.cfo_cps * SAMPLE_RATE_HZ == pytest.approx(truth.cfo_cps * SAMPLE_RATE_HZ, abs=2.0)
    assert m.sco_ppm == pytest.approx(truth.sco_ppm, abs=0.4)
    assert m.iq_gain_db == pytest.approx(truth.iq_gain_db, abs=0.02)
    assert m.iq_phase_deg == pytest.approx(truth.iq_phase_deg, abs=0.2)
    assert abs(m.dc_relative - dc_relative(truth, BurstLayout())) < 0.002
    assert m.snr_db == pytest.approx(truth.snr_db, abs=0.1)
    assert m.delay_samples == pytest.approx(truth.delay_samples, abs=0.05)


def test_clean_recording_measures_nothing():
    y = simulate_capture(Impairments(snr_db=None, phase_rad=0.0), np.random.default_rng(0), bursts=1)
    m = measure_capture(y)
    assert abs(m.cfo_cps) < 1e-8 and abs(m.sco_ppm) < 0.01
    assert abs(m.iq_gain_db) < 1e-3 and abs(m.iq_phase_deg) < 1e-2
    assert abs(m.delay_samples) < 1e-3
    assert m.snr_db > 100  # digital silence: only the noise floor constant


def test_stream_start_index_shifts_the_delay(rng):
    layout = BurstLayout()
    y = simulate_capture(Impairments(delay_samples=10.25), rng, bursts=2)
    # The capture starts 3000 samples into the stream: the first whole burst is the second.
    m = measure_capture(y[3000:], stream_start_index=3000)
    assert len(m.bursts) == 1
    assert m.delay_samples == pytest.approx(10.25, abs=0.05)
    assert m.bursts[0].arrival_index == pytest.approx(layout.length + 10.25 - 3000, abs=0.05)


def test_no_burst_in_noise_is_a_calibration_error(rng):
    noise = imp.add_awgn(np.zeros(200_000, np.complex64), 0.01, rng)
    with pytest.raises(CalibrationError, match="no calibration bursts found in 200000 samples"):
        measure_capture(noise)


def test_a_truncated_burst_is_not_measured(rng):
    y = simulate_capture(Impairments(), rng, bursts=1)
    with pytest.raises(CalibrationError, match="no calibration bursts found"):
        measure_capture(y[: y.size // 2])
