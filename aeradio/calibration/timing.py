"""Fractional delay of a periodic reference from the phase slope of the cross-spectrum.

If ``w`` is one period of the reference delayed circularly by ``delta`` samples (true for
a window inside a cyclic-prefixed sequence) and turned by an unknown carrier phase
``theta``, ``C[k] = W[k] conj(S[k]) = |S[k]|^2 exp(j (theta - 2 pi k delta / L))``:

1. coarse: the angle of ``sum_k C[k+1] conj(C[k])`` over adjacent occupied bins is
   ``-2 pi delta / L`` (no unwrapping, range ``|delta| < L / 2``, but noisy);
2. fine: after removing the coarse slope the residual phases are small; a weighted
   least-squares line (weights ``|C[k]|``, intercept = ``theta``) gives the remaining slope.
"""

from __future__ import annotations

import math

import numpy as np


def estimate_circular_delay(window: np.ndarray, reference: np.ndarray) -> float:
    """Delay (samples, fractional) of ``window`` relative to ``reference``.

    Args:
        window: ``[L]`` complex, the received period (any constant phase).
        reference: ``[L]`` complex, the known periodic sequence.
    """
    w = np.fft.fft(np.asarray(window, dtype=np.complex128))
    s = np.fft.fft(np.asarray(reference, dtype=np.complex128))
    size = w.size
    occupied = np.abs(s) > 1e-6 * np.max(np.abs(s))
    c = w * np.conj(s)
    pairs = occupied & np.roll(occupied, -1)
    coarse = -float(np.angle(np.sum(np.roll(c, -1)[pairs] * np.conj(c[pairs])))) * size / (2 * math.pi)
    k = np.fft.fftfreq(size, 1.0 / size)[occupied]
    residual = c[occupied] * np.exp(2j * math.pi * k * coarse / size)
    # Remove the common phase before taking angles so the residuals sit near 0.
    residual *= np.exp(-1j * np.angle(np.sum(residual)))
    slope, _ = np.polyfit(k, np.angle(residual), 1, w=np.abs(residual))
    return coarse - slope * size / (2 * math.pi)
