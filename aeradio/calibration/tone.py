"""Frequency of a single complex tone: zero-padded FFT peak, then a phase-slope fit.

The FFT (zero padded to >= 4 N) finds the peak to within ``1 / (8 N)`` cycles/sample inside
a search window; the tone is then brought near DC, summed over :data:`FIT_BLOCKS` blocks
(each sum gains the block length in SNR) and the least-squares slope of the unwrapped
block phases gives the residual frequency. Near the Cramer-Rao bound at useful SNR:
``std(f) ~ sqrt(6 / ((2 pi)^2 snr N^3))`` cycles/sample.
"""

from __future__ import annotations

import math

import numpy as np

from aeradio.core.errors import CalibrationError

#: Blocks of the phase-slope fit.
FIT_BLOCKS = 64


def estimate_tone_cps(y: np.ndarray, search_cps: tuple[float, float] = (-0.5, 0.5)) -> float:
    """Frequency (cycles/sample) of the strongest tone of ``y`` within ``search_cps``.

    Args:
        y: ``[num_samples]`` complex (at least ``4 * FIT_BLOCKS`` samples).
        search_cps: ``(low, high)`` window of the coarse search, cycles/sample.
    """
    y = np.asarray(y, dtype=np.complex128)
    n = y.size
    if n < 4 * FIT_BLOCKS:
        raise CalibrationError(f"tone segment must have >= {4 * FIT_BLOCKS} samples, got {n}")
    nfft = 1 << int(math.ceil(math.log2(4 * n)))
    spectrum = np.abs(np.fft.fft(y, nfft))
    freqs = np.fft.fftfreq(nfft)
    inside = (freqs >= search_cps[0]) & (freqs <= search_cps[1])
    if not inside.any():
        raise CalibrationError(f"tone search window {search_cps} holds no frequency")
    coarse = float(freqs[inside][np.argmax(spectrum[inside])])
    z = y * np.exp(-2j * math.pi * coarse * np.arange(n))
    block = n // FIT_BLOCKS
    sums = z[: block * FIT_BLOCKS].reshape(FIT_BLOCKS, block).sum(axis=1)
    phase = np.unwrap(np.angle(sums))
    centers = np.arange(FIT_BLOCKS) * block + (block - 1) / 2.0
    slope = np.polyfit(centers, phase, 1)[0]
    return coarse + slope / (2.0 * math.pi)
