"""Corrections of what the calibration measured: pure functions and streaming correctors.

Receiver order: the inverse of the impairment order (docs/impairments.md: ... -> CFO ->
thermal noise -> receiver IQ imbalance -> DC), so remove DC, undo the IQ imbalance, then
remove the CFO. The noise entered before the mixer, so the IQ correction restores it to
circular noise along with the signal.
A transmitter can instead pre-rotate by ``-cfo`` (CFO pre-correction) so the receiver
sees none; then the receiver must not correct it a second time.

All functions take and return ``[num_samples]`` complex64; frequencies in cycles/sample.
"""

from __future__ import annotations

import math

import numpy as np

from aeradio.core.constants import SAMPLE_DTYPE
from aeradio.dsp.impairments import apply_cfo


def remove_dc(x: np.ndarray, dc: complex) -> np.ndarray:
    """``x - dc`` (``dc`` in the same full-scale units as ``x``)."""
    return (np.asarray(x) - np.complex64(dc)).astype(SAMPLE_DTYPE, copy=False)


def correct_iq_imbalance(y: np.ndarray, gain_db: float, phase_deg: float) -> np.ndarray:
    """Undo the receiver IQ imbalance ``I' = I``, ``Q' = g (Q cos(phi) - I sin(phi))``.

    ``I = I'``, ``Q = (Q' / g + I' sin(phi)) / cos(phi)``.
    """
    g = 10.0 ** (gain_db / 20.0)
    phi = math.radians(phase_deg)
    y = np.asarray(y)
    i = y.real
    q = (y.imag / np.float32(g) + i * np.float32(math.sin(phi))) / np.float32(math.cos(phi))
    return (i + 1j * q).astype(SAMPLE_DTYPE)


def correct_cfo(x: np.ndarray, cfo_cps: float, start_index: int = 0) -> np.ndarray:
    """Remove a CFO of ``cfo_cps`` (rotate by ``-cfo_cps``); ``start_index`` for streams.

    The same call pre-corrects at a transmitter: the channel's ``+cfo`` then cancels it.
    """
    return apply_cfo(x, -cfo_cps, start_index=start_index)


class RxCorrector:
    """Streaming receiver correction: DC removal, IQ compensation, optional CFO removal.

    State: the index of the next sample, so the CFO rotation is continuous across blocks.
    """

    def __init__(
        self,
        dc: complex = 0.0,
        iq_gain_db: float = 0.0,
        iq_phase_deg: float = 0.0,
        cfo_cps: float = 0.0,
    ) -> None:
        self.dc = complex(dc)
        self.iq_gain_db = iq_gain_db
        self.iq_phase_deg = iq_phase_deg
        self.cfo_cps = cfo_cps
        self.sample_index = 0

    def process(self, block: np.ndarray) -> np.ndarray:
        """Correct one ``[num_samples]`` complex64 block; returns complex64 of the same shape."""
        y = correct_iq_imbalance(remove_dc(block, self.dc), self.iq_gain_db, self.iq_phase_deg)
        if self.cfo_cps:
            y = correct_cfo(y, self.cfo_cps, self.sample_index)
        self.sample_index += y.shape[-1]
        return y


class TxPrecorrector:
    """Streaming CFO pre-correction at the transmitter (state: next sample index)."""

    def __init__(self, cfo_cps: float) -> None:
        self.cfo_cps = cfo_cps
        self.sample_index = 0

    def process(self, block: np.ndarray) -> np.ndarray:
        """Pre-rotate one ``[num_samples]`` complex64 block by ``-cfo_cps``."""
        y = correct_cfo(block, self.cfo_cps, self.sample_index)
        self.sample_index += y.shape[-1]
        return y
