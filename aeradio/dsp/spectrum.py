"""Power spectral density by Welch's method (numpy only).

The same estimate as ``scipy.signal.welch(x, fs, window="hann", nperseg=L, noverlap=L // 2,
detrend=False, return_onesided=False, scaling="density")`` then ``fftshift`` (a float64
reference test checks it), written out because importing ``scipy.signal`` takes about a
second (it imports ``scipy.stats``), which a receiver starting its live page should not
pay.

>>> f, p = welch_psd(np.ones(64, np.complex64), 1e3, 16)
>>> f[:3], int(np.argmax(p)), float(f[np.argmax(p)])
(array([-500. , -437.5, -375. ]), 8, 0.0)
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def welch_psd(x: np.ndarray, sample_rate_hz: float, segment_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided PSD of ``x`` ``[N]`` complex, centred: ``(freq_hz [L], psd [L])``.

    Periodic Hann window, segments of ``L = segment_samples`` overlapping by half, averaged;
    ``psd`` in ``|x|^2`` per Hz (float64), ``freq_hz`` from ``-rate/2`` in steps of ``rate/L``.
    Needs ``N >= L``.
    """
    x = np.asarray(x)
    L = int(segment_samples)
    if L < 2 or len(x) < L:
        raise ValueError(
            f"welch_psd needs segment_samples >= 2 and at least that many samples, got {L}, {len(x)}"
        )
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(L) / L)
    segments = sliding_window_view(x, L)[:: L // 2]
    spectra = np.fft.fft(segments * window, axis=1)
    psd = np.mean(spectra.real**2 + spectra.imag**2, axis=0) / (sample_rate_hz * np.sum(window**2))
    freq_hz = (np.arange(L) - L // 2) * (sample_rate_hz / L)
    return freq_hz, np.fft.fftshift(psd)
