"""Conversions at the edges: dB, Eb/N0 under the project's energy convention, Hz <-> cps.

Convention (docs/contracts.md): E|x_i|^2 = 1 per complex channel use, R = k/n bits per use,
noise variance per real component = 1 / (2 R Eb/N0), Es/N0 = R Eb/N0.

>>> round(noise_var_per_real(6.0, rate=2.0), 6)   # QPSK at Eb/N0 = 6 dB
0.062797
>>> hz_to_cps(30e3, 1e6)
0.03
"""

from __future__ import annotations

import math

import numpy as np


def db_to_lin(db: float | np.ndarray) -> float | np.ndarray:
    """Power ratio from dB."""
    return 10.0 ** (db / 10.0)


def lin_to_db(lin: float | np.ndarray) -> float | np.ndarray:
    """dB from a power ratio."""
    return 10.0 * np.log10(lin)


def esn0_db(ebn0_db: float, rate: float) -> float:
    """Es/N0 (dB) per complex channel use for a code of ``rate`` bits per complex use."""
    return ebn0_db + 10.0 * math.log10(rate)


def noise_var_per_real(ebn0_db: float, rate: float) -> float:
    """Noise variance per real component, 1 / (2 R Eb/N0), with unit symbol energy."""
    return 1.0 / (2.0 * rate * 10.0 ** (ebn0_db / 10.0))


def ebn0_db_from_esn0_db(esn0_db_value: float, rate: float) -> float:
    """Eb/N0 (dB) from Es/N0 (dB) per complex channel use."""
    return esn0_db_value - 10.0 * math.log10(rate)


def hz_to_cps(freq_hz: float, sample_rate_hz: float) -> float:
    """Normalized frequency in cycles per sample."""
    return freq_hz / sample_rate_hz


def cps_to_hz(freq_cps: float, sample_rate_hz: float) -> float:
    """Frequency in Hz from cycles per sample."""
    return freq_cps * sample_rate_hz
