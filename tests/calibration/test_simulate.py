"""The calibration truth simulator follows the project's impairment order (docs/impairments.md).

Thermal noise enters at the receiver input, before the receiver's IQ imbalance and DC: the
noise the receiver sees in the burst's silence carries the IQ imbalance (it is not
circular), and its mean is the DC offset.
"""

import math

import numpy as np
import pytest

from aeradio.calibration.bursts import BurstLayout
from aeradio.calibration.iq import iq_moments
from aeradio.calibration.measure import measure_capture
from aeradio.calibration.simulate import Impairments, received_signal_power, simulate_capture

#: Samples skipped at each end of the silence (the interpolator's tails of the sync).
_EDGE = 64


def _silence(y: np.ndarray, layout: BurstLayout) -> np.ndarray:
    """The first burst's silence (no delay) of a simulated capture."""
    start = layout.silence_start + _EDGE
    return y[start : start + layout.silence_samples - 2 * _EDGE]


def test_noise_goes_through_the_receiver_iq_imbalance_and_dc_comes_last(rng):
    layout = BurstLayout()
    truth = Impairments(iq_gain_db=2.0, iq_phase_deg=10.0, dc=0.1 - 0.05j, snr_db=10.0, phase_rad=0.0)
    silence = _silence(simulate_capture(truth, rng, bursts=1), layout)
    assert complex(np.mean(silence)) == pytest.approx(truth.dc, abs=0.01)
    i2, q2, iq = iq_moments(silence - truth.dc)
    g = 10 ** (truth.iq_gain_db / 20)
    # Noise added after the mixer would be circular: ratio 1 and no I/Q correlation.
    assert q2 / i2 == pytest.approx(g**2, abs=0.1)
    assert iq / math.sqrt(i2 * q2) == pytest.approx(-math.sin(math.radians(truth.iq_phase_deg)), abs=0.04)
    # The noise power is set at the receiver input, relative to the tones' power there.
    noise_in = layout.amplitude**2 / 10 ** (truth.snr_db / 10)
    assert i2 + q2 == pytest.approx(noise_in * (1 + g**2) / 2, rel=0.05)


def test_snr_reference_is_the_receiver_input_and_iq_does_not_change_it(rng):
    """The IQ imbalance scales circular signal and noise alike: the measured SNR (after it)
    is the input SNR, and the measured IQ imbalance is right with noise that went through it."""
    layout = BurstLayout()
    truth = Impairments(iq_gain_db=-2.5, iq_phase_deg=-8.0, snr_db=10.0, dc=0.02j)
    m = measure_capture(simulate_capture(truth, rng, bursts=2))
    assert m.snr_db == pytest.approx(truth.snr_db, abs=0.2)
    assert m.iq_gain_db == pytest.approx(truth.iq_gain_db, abs=0.05)
    assert m.iq_phase_deg == pytest.approx(truth.iq_phase_deg, abs=0.5)
    assert m.signal_power == pytest.approx(received_signal_power(truth, layout), rel=0.02)
