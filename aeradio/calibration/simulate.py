"""Calibration bursts through known impairments: the truth tests and benchmarks check.

The impairments act in the project's one physical order (docs/impairments.md), the
receiver model the estimators of :mod:`aeradio.calibration.measure` assume:

    TX -> delay -> sample-clock offset -> CFO -> thermal noise (receiver input)
    -> receiver IQ imbalance -> DC offset

The noise enters before the receiver's mixer, so the IQ imbalance acts on signal plus
noise and the DC is added last, as in :class:`aeradio.flowgraphs.channel_sim.ChannelModel`
and the training channels of :mod:`aeradio.learning.channels`.
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
    #: SNR at the receiver input: tone power over noise power, both before the receiver's IQ
    #: imbalance (which scales circular signal and noise alike, so it is also the SNR after
    #: it); None: no noise at all.
    snr_db: float | None = 20.0
    phase_rad: float = 0.7


def received_signal_power(impairments: Impairments, layout: BurstLayout) -> float:
    """Power of the tones after the receiver's IQ imbalance, before DC (the DC reference).

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
    if t.snr_db is not None:
        noise_power = layout.amplitude**2 / 10.0 ** (t.snr_db / 10.0)
        y = imp.add_awgn(y, noise_power, rng)
    y = imp.apply_iq_imbalance(y, t.iq_gain_db, t.iq_phase_deg)
    return imp.apply_dc_offset(y, t.dc)


def dc_relative(impairments: Impairments, layout: BurstLayout) -> complex:
    """The DC offset relative to the received signal RMS (what the calibration reports)."""
    return complex(impairments.dc) / math.sqrt(received_signal_power(impairments, layout))
