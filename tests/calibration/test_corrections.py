"""Corrections invert the impairment models; streaming equals one shot."""

import numpy as np
import pytest

from aeradio.calibration.bursts import BurstLayout
from aeradio.calibration.calfile import calibration_from_measurement
from aeradio.calibration.corrections import (
    RxCorrector,
    TxPrecorrector,
    correct_cfo,
    correct_iq_imbalance,
    remove_dc,
)
from aeradio.calibration.measure import measure_capture
from aeradio.calibration.simulate import Impairments, simulate_capture
from aeradio.dsp import impairments as imp


def _signal(rng, n=5000):
    return ((rng.standard_normal(n) + 1j * rng.standard_normal(n)) / np.sqrt(2)).astype(np.complex64)


def test_iq_correction_inverts_the_model_float64_reference(rng):
    x = _signal(rng)
    y = imp.apply_iq_imbalance(x, 1.7, -8.0)
    g, phi = 10 ** (1.7 / 20), np.deg2rad(-8.0)
    ref_q = (y.imag.astype(np.float64) / g + y.real * np.sin(phi)) / np.cos(phi)
    z = correct_iq_imbalance(y, 1.7, -8.0)
    assert z.dtype == np.complex64
    np.testing.assert_allclose(z.imag, ref_q, atol=1e-5)
    np.testing.assert_allclose(z, x, atol=1e-5)


def test_dc_and_cfo_corrections_invert(rng):
    x = _signal(rng)
    np.testing.assert_allclose(remove_dc(imp.apply_dc_offset(x, 0.1 - 0.2j), 0.1 - 0.2j), x, atol=1e-6)
    np.testing.assert_allclose(correct_cfo(imp.apply_cfo(x, 0.0123), 0.0123), x, atol=1e-5)


def test_streaming_correctors_match_one_shot(rng):
    x = _signal(rng, 3000)
    rx = RxCorrector(dc=0.05j, iq_gain_db=0.5, iq_phase_deg=2.0, cfo_cps=0.01)
    streamed = np.concatenate([rx.process(b) for b in np.split(x, [700, 701, 2000])])
    one_shot = correct_cfo(correct_iq_imbalance(remove_dc(x, 0.05j), 0.5, 2.0), 0.01)
    np.testing.assert_allclose(streamed, one_shot, atol=1e-5)
    tx = TxPrecorrector(0.02)
    streamed = np.concatenate([tx.process(b) for b in np.split(x, [10, 1500])])
    np.testing.assert_allclose(imp.apply_cfo(streamed, 0.02), x, atol=1e-5)


def test_measured_calibration_removes_the_impairments(rng):
    """Measure, then correct a random signal through the same impairments: EVM < -30 dB."""
    truth = Impairments(cfo_cps=0.004, iq_gain_db=1.0, iq_phase_deg=6.0, dc=0.04 + 0.03j, snr_db=20.0)
    cal = calibration_from_measurement(measure_capture(simulate_capture(truth, rng)), 1e6, 915e6)
    x = 0.5 * _signal(rng, 20_000)
    y = imp.apply_iq_imbalance(imp.apply_cfo(x, truth.cfo_cps, 0.4), 1.0, 6.0)
    y = imp.apply_dc_offset(y, truth.dc)
    before = RxCorrector()  # nothing corrected: the impairments alone
    after = cal.rx_corrector(correct_cfo=True).process(y)

    def evm_db(z):
        # A constant phase remains (the CFO's initial phase): remove it as a receiver would.
        rot = np.vdot(x, z) / abs(np.vdot(x, z))
        return 10 * np.log10(np.mean(np.abs(z / rot - x) ** 2) / np.mean(np.abs(x) ** 2))

    assert evm_db(before.process(y)) > 0.0
    assert evm_db(after) < -30.0
    assert cal.dc_offset_fs == pytest.approx(truth.dc, abs=0.002)
    assert BurstLayout().amplitude == 0.5
