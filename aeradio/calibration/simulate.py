"""Calibration bursts through known impairments: the truth tests and benchmarks check.

The order is the receiver model the estimators assume (:mod:`aeradio.calibration.measure`):
TX -> delay -> sample-clock offset -> CFO -> IQ imbalance -> DC -> AWGN.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from aeradio.calibration.bursts import BurstLayout, calibration_burst
from aeradio.dsp import impairments as imp


@dataclass(frozen=True)
class Impairments:
    """Known impairments; frequencies in cycles/sample, DC in full-scale units."""

    cfo_cps: float = 0.0
    sco_ppm: float = 0.0
    iq_gain_db: float = 0.0
    iq_phase_deg: float = 0.0
    dc: complex = 0.0
    delay_samples: float = 0.0
    #: SNR of the tones after the IQ imbalance; None: no noise at all.
    snr_db: float | None = 20.0
    phase_rad: float = 0.7


def received_signal_power(impairments: Impairments, layout: BurstLayout) -> float:
    """Power of the impaired tones before DC and noise (the SNR and DC reference).

    A circular signal of power ``P`` has power ``P (1 + g^2) / 2`` after the IQ imbalance.
    """
    g2 = 10.0 ** (impairments.iq_gain_db / 10.0)
    return layout.amplitude**2 * (1.0 + g2) / 2.0


def simulate_capture(
    impairments: Impairments,
    rng: np.random.Generator,
    *,
    bursts: int = 2,
    layout: BurstLayout | None = None,
) -> np.ndarray:
    """``bursts`` back-to-back calibration bursts as received: ``[~bursts * length]`` complex64."""
    layout = layout or BurstLayout()
    t = impairments
    x = np.tile(calibration_burst(layout), bursts)
    # Room at the end so a delayed last burst still arrives whole.
    x = np.concatenate([x, np.zeros(int(math.ceil(abs(t.delay_samples))) + 64, x.dtype)])
    y = imp.apply_delay(x, t.delay_samples)
    y = imp.apply_sco(y, t.sco_ppm)
    y = imp.apply_cfo(y, t.cfo_cps, t.phase_rad)
    y = imp.apply_iq_imbalance(y, t.iq_gain_db, t.iq_phase_deg)
    y = imp.apply_dc_offset(y, t.dc)
    if t.snr_db is not None:
        noise_power = received_signal_power(t, layout) / 10.0 ** (t.snr_db / 10.0)
        y = imp.add_awgn(y, noise_power, rng)
    return y


def dc_relative(impairments: Impairments, layout: BurstLayout) -> complex:
    """The DC offset relative to the received signal RMS (what the calibration reports)."""
    return complex(impairments.dc) / math.sqrt(received_signal_power(impairments, layout))
