"""Fractional delay of a periodic reference from the phase slope of the cross-spectrum.

If ``w`` is one period of the reference delayed circularly by ``delta`` samples (true for
a window inside a cyclic-prefixed sequence) and turned by an unknown carrier phase
``theta``, ``C[k] = W[k] conj(S[k]) = |S[k]|^2 exp(j (theta - 2 pi k delta / L))``:

1. coarse (unless the caller knows it): the angle of ``sum_k C[k+1] conj(C[k])`` over
   adjacent occupied bins is ``-2 pi delta / L`` (no unwrapping, range ``|delta| < L / 2``,
   but noisy at low SNR);
2. fine, maximum likelihood: ``delta`` maximizing ``|sum_k C[k] exp(2 pi j k delta / L)|``
   (the unknown phase drops out of the magnitude), on a grid of :data:`GRID_STEP` within
   one sample of the coarse value, refined by a parabola through the best three points.
"""

from __future__ import annotations

import math

import numpy as np

#: Step (samples) of the maximum-likelihood grid search.
GRID_STEP = 0.01


def estimate_circular_delay(
    window: np.ndarray, reference: np.ndarray, initial: float | None = None
) -> float:
    """Delay (samples, fractional) of ``window`` relative to ``reference``.

    Args:
        window: ``[L]`` complex, the received period (any constant phase).
        reference: ``[L]`` complex, the known periodic sequence.
        initial: a delay known to within one sample (skips the coarse step).
    """
    w = np.fft.fft(np.asarray(window, dtype=np.complex128))
    s = np.fft.fft(np.asarray(reference, dtype=np.complex128))
    size = w.size
    occupied = np.abs(s) > 1e-6 * np.max(np.abs(s))
    c = (w * np.conj(s))[occupied]
    k = np.fft.fftfreq(size, 1.0 / size)[occupied]
    if initial is None:
        full = w * np.conj(s)
        pairs = occupied & np.roll(occupied, -1)
        acc = np.sum(np.roll(full, -1)[pairs] * np.conj(full[pairs]))
        initial = -float(np.angle(acc)) * size / (2 * math.pi)
    grid = initial + np.arange(-1.0, 1.0 + GRID_STEP / 2, GRID_STEP)
    score = np.abs(np.exp(2j * math.pi * np.outer(grid, k) / size) @ c)
    i = int(np.clip(np.argmax(score), 1, grid.size - 2))
    left, mid, right = score[i - 1], score[i], score[i + 1]
    denom = left - 2 * mid + right
    offset = 0.5 * (left - right) / denom if denom < 0 else 0.0
    return float(grid[i] + offset * GRID_STEP)
