"""Receiver IQ imbalance from second moments of a circular signal.

Model (:func:`aeradio.dsp.impairments.apply_iq_imbalance`): ``I' = I``,
``Q' = g (Q cos(phi) - I sin(phi))``. For a circular input (``E[I^2] = E[Q^2] = s``,
``E[IQ] = 0``: a tone averaged over many cycles, noise, any properly complex signal)::

    E[I'^2] = s,   E[Q'^2] = g^2 s,   E[I'Q'] = -g s sin(phi)

so ``g = sqrt(E[Q'^2] / E[I'^2])`` and ``sin(phi) = -E[I'Q'] / sqrt(E[I'^2] E[Q'^2])``
(the blind moment / Gram-Schmidt method). Moments of the noise alone, measured on
silence, are subtracted first, which removes the bias noise adds whether it enters before
or after the mixer. A CFO does not matter: a rotating circular signal stays circular.
"""

from __future__ import annotations

import math

import numpy as np

from aeradio.core.errors import CalibrationError


def iq_moments(y: np.ndarray) -> np.ndarray:
    """``[E[I^2], E[Q^2], E[I Q]]`` (float64) of ``y``: ``[num_samples]`` complex."""
    i = np.asarray(y).real.astype(np.float64)
    q = np.asarray(y).imag.astype(np.float64)
    return np.array([np.mean(i * i), np.mean(q * q), np.mean(i * q)])


def estimate_iq_imbalance(
    y: np.ndarray, noise_moments: np.ndarray | None = None
) -> tuple[float, float]:
    """``(gain_db, phase_deg)`` of the receiver IQ imbalance seen on circular signal ``y``.

    Args:
        y: ``[num_samples]`` complex, DC removed, many cycles of a tone or any circular signal.
        noise_moments: :func:`iq_moments` of the noise alone (DC removed), subtracted first.
    """
    m = iq_moments(y)
    if noise_moments is not None:
        m = m - noise_moments
    if not (m[0] > 0 and m[1] > 0):
        raise CalibrationError(
            "IQ imbalance: no signal above the noise on the calibration tones "
            f"(I power {m[0]:.3g}, Q power {m[1]:.3g} after removing the noise)"
        )
    gain = math.sqrt(m[1] / m[0])
    sin_phi = float(np.clip(-m[2] / math.sqrt(m[0] * m[1]), -1.0, 1.0))
    return 20.0 * math.log10(gain), math.degrees(math.asin(sin_phi))
