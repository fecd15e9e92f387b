"""Synchronization estimators, pure functions on numpy arrays (normalized units inside).

- :func:`periodic_correlation`: Schmidl-Cox style correlation of a signal with itself one
  STF period later, strided by one symbol (detection and coarse CFO, blind to the CFO).
- :func:`linear_phasor`: ``exp(j (phase + 2 pi f n))`` rows, cheaply.
- :func:`detection_threshold`: the threshold on the normalized metric for a target
  false-alarm probability under white Gaussian noise.
- :class:`TimingEstimator`: cross-correlation with the shaped LTF and a bias-free
  fractional peak (calibrated on the noise-free correlation shape).
- :func:`lag_cfo`, :func:`fit_phase`, :func:`amplitude_noise`: fine CFO, phase track,
  gain and noise from the known symbols (preamble and pilots).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.fft as sfft

from aeradio.constants import SAMPLE_DTYPE
from aeradio.flowgraphs.pulse import rrc_pulse


def linear_phasor(cycles_per_step: np.ndarray, phase_rad: np.ndarray, length: int) -> np.ndarray:
    """``exp(j (phase + 2 pi f n))`` for ``n < length``, one row per frame.

    Computed as the outer product of a coarse and a fine phasor table (two small
    ``exp`` instead of one per element).

    Args:
        cycles_per_step: [F] float, frequency in cycles per step of ``n``.
        phase_rad: [F] float.
    Returns:
        [F, length] complex64.
    """
    f = np.asarray(cycles_per_step, np.float64)[:, None]
    ph = np.asarray(phase_rad, np.float64)[:, None]
    inner = 64
    outer = -(-length // inner)
    fine = np.exp(2j * np.pi * f * np.arange(inner)).astype(SAMPLE_DTYPE)
    coarse = np.exp(1j * (ph + 2 * np.pi * f * inner * np.arange(outer))).astype(SAMPLE_DTYPE)
    return (coarse[:, :, None] * fine[:, None, :]).reshape(len(f), -1)[:, :length]


def _strided_moving_sum(v: np.ndarray, terms: int, stride: int) -> np.ndarray:
    """``s[d] = sum_{i<terms} v[d + i stride]`` for every ``d`` with all terms inside ``v``."""
    count = len(v) - (terms - 1) * stride
    if count <= 0:
        return np.zeros(0, v.dtype)
    rows = -(-len(v) // stride)
    padded = np.zeros(rows * stride, v.dtype)
    padded[: len(v)] = v
    c = np.zeros((rows + 1, stride), v.dtype)
    np.cumsum(padded.reshape(rows, stride), axis=0, out=c[1:])
    return (c[terms:] - c[:-terms]).reshape(-1)[:count]


def periodic_correlation(
    x: np.ndarray, lag: int, terms: int, stride: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Correlation of ``x`` with itself ``lag`` samples later, over ``terms`` products.

    ``P[d] = sum_i conj(x[d + i stride]) x[d + i stride + lag]``, and the energies
    ``E1[d] = sum_i |x[d + i stride]|^2``, ``E2[d] = E1[d + lag]``. The normalized metric
    ``|P|^2 / (E1 E2)`` is 1 on a noise-free periodic signal and ``angle(P) / (2 pi lag)``
    is its frequency offset in cycles/sample (unambiguous within +-1/(2 lag)).

    Args:
        x: [N] complex64.
        lag: the period in samples.
        terms: products summed.
        stride: samples between products (one symbol: white noise gives independent terms).
    Returns:
        (P [D] complex64, E1 [D] float32, E2 [D] float32), D = N - lag - (terms - 1) stride.
    """
    prod = np.conj(x[:-lag]) * x[lag:]
    p = _strided_moving_sum(prod, terms, stride)
    e = _strided_moving_sum((x.real**2 + x.imag**2).astype(np.float32), terms, stride)
    d = len(p)
    return p, e[:d], e[lag : lag + d]


def detection_threshold(terms: int, false_alarm_prob: float) -> float:
    """Threshold ``t`` on ``|P|^2 / (E1 E2)`` with ``P(metric > t) = false_alarm_prob`` on noise.

    For ``terms`` independent complex Gaussian pairs the squared sample correlation
    coefficient exceeds ``t`` with probability ``(1 - t)^(terms - 1)``.

    >>> round(detection_threshold(58, 1e-7), 3)
    0.246
    """
    return 1.0 - false_alarm_prob ** (1.0 / (terms - 1))


def parabolic_peak(y_minus: np.ndarray, y0: np.ndarray, y_plus: np.ndarray) -> np.ndarray:
    """Offset in [-0.5, 0.5] of the vertex of the parabola through three equally spaced points."""
    den = y_minus - 2 * y0 + y_plus
    with np.errstate(divide="ignore", invalid="ignore"):
        off = np.where(den < 0, 0.5 * (y_minus - y_plus) / den, 0.0)
    return np.clip(off, -0.5, 0.5)


class TimingEstimator:
    """Fractional timing of a known shaped sequence by cross-correlation.

    The parabolic interpolation of the correlation peak is biased for a raised-cosine
    shaped peak; the bias is measured once on the noise-free correlation (evaluated with
    the exact RRC pulse at fractional delays) and inverted.

    Args:
        symbols: [L] complex, the known sequence.
        taps: RRC taps of the TX.
        rolloff, samples_per_symbol: the pulse.
    """

    def __init__(self, symbols: np.ndarray, taps: np.ndarray, rolloff: float, samples_per_symbol: int):
        sps = samples_per_symbol
        ntaps = len(taps)
        up = np.zeros(len(symbols) * sps, np.complex128)
        up[::sps] = symbols
        self.template = np.convolve(up, taps)[: len(symbols) * sps + ntaps - 1 - (sps - 1)]
        self.template_energy = float(np.sum(np.abs(self.template) ** 2))
        self.length = len(self.template)
        # Bias curve: shift the template by delta (exact RRC), correlate at lags -1, 0, 1.
        deltas = np.linspace(-0.5, 0.5, 41)
        half = (ntaps - 1) // 2
        n = np.arange(-2, self.length + 2)
        t = n[None, :, None] - deltas[:, None, None] - half - np.arange(len(symbols))[None, None, :] * sps
        norm = np.sqrt(np.sum(rrc_pulse(np.arange(-half, half + 1), rolloff, sps) ** 2))
        shifted = rrc_pulse(t, rolloff, sps) @ np.asarray(symbols, np.complex128) / norm  # [D, N]
        tmpl = np.conj(self.template)
        c = [np.abs(shifted[:, 1 + lag : 1 + lag + self.length] @ tmpl) for lag in (0, 1, 2)]
        estimates = parabolic_peak(c[0], c[1], c[2])
        self._est, self._true = np.array(estimates), deltas
        self._template_c64 = np.conj(self.template).astype(SAMPLE_DTYPE)

    def correlate(self, x: np.ndarray, first: int, count: int) -> np.ndarray:
        """``|corr|`` at lags ``first .. first + count - 1`` of each row of ``x`` [F, N]."""
        seg = x[:, first : first + count - 1 + self.length]
        size = sfft.next_fast_len(seg.shape[1])
        spec = sfft.fft(seg, size, axis=1) * np.conj(sfft.fft(self._template_c64.conj(), size))
        return np.abs(sfft.ifft(spec, axis=1)[:, :count])

    def estimate(self, x: np.ndarray, first: int, count: int) -> tuple[np.ndarray, np.ndarray]:
        """Peak lag (fractional, in samples of ``x``) and normalized peak |corr|^2 / energies.

        Args:
            x: [F, N] complex64 (CFO-corrected).
        Returns:
            (lag [F] float64, quality [F] float64 in [0, 1]).
        """
        corr = self.correlate(x, first, count)
        rows = np.arange(x.shape[0])
        k = np.clip(np.argmax(corr, axis=1), 1, count - 2)
        off = parabolic_peak(corr[rows, k - 1], corr[rows, k], corr[rows, k + 1])
        off = np.interp(off, self._est, self._true)
        lag = first + k + off
        start = first + k
        idx = start[:, None] + np.arange(self.length)[None, :]
        win = np.take_along_axis(x, idx, axis=1)
        energy = np.sum(win.real**2 + win.imag**2, axis=1) * self.template_energy
        quality = corr[rows, k].astype(np.float64) ** 2 / np.maximum(energy, 1e-30)
        return lag, quality


def refine_timing(
    x: np.ndarray,
    t0: np.ndarray,
    known: np.ndarray,
    chunk_symbols: int,
    rolloff: float,
    samples_per_symbol: int,
    span_symbols: int,
    step: float = 0.5,
) -> np.ndarray:
    """Refine the time of symbol 0 with the known leading symbols (early-late parabola).

    The matched filter is sampled at ``t0 - step``, ``t0``, ``t0 + step``; the energy
    captured on ``known`` (chunk sums combined non-coherently, so a residual CFO does not
    matter) is fitted with a parabola.

    Args:
        x: [F, N] complex64 segments; t0: [F] float times of symbol 0.
        known: [L] complex, the first L symbols of the frame.
    Returns:
        [F] float, refined times.
    """
    from aeradio.flowgraphs.pulse import sample_matched

    f, n = x.shape[0], len(known)
    chunks = n // chunk_symbols
    times = np.concatenate([t0 - step, t0, t0 + step])
    z = sample_matched(np.concatenate([x, x, x]), times, chunks * chunk_symbols, rolloff,
                       samples_per_symbol, span_symbols)
    c = (z * np.conj(known[: chunks * chunk_symbols])).reshape(3, f, chunks, chunk_symbols).sum(axis=3)
    energy = np.sum(np.abs(c), axis=2)
    off = parabolic_peak(energy[0], energy[1], energy[2])
    return t0 + step * off


def lag_cfo(c: np.ndarray, lag_symbols: int, samples_per_symbol: int) -> np.ndarray:
    """CFO (cycles/sample) from the phase drift of ``c`` over ``lag_symbols``.

    Args:
        c: [F, L] complex, received known symbols times the conjugate of the sent ones.
    Returns:
        [F] float64, unambiguous within +-1 / (2 lag_symbols sps).
    """
    acc = np.sum(c[:, lag_symbols:] * np.conj(c[:, :-lag_symbols]), axis=1)
    return np.angle(acc) / (2 * math.pi * lag_symbols * samples_per_symbol)


def fit_phase(phasors: np.ndarray, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted least-squares line through the unwrapped phases of group phasors.

    Args:
        phasors: [F, G] complex, one sum of ``received * conj(sent)`` per group.
        times: [G] float, the groups' centres (symbols).
    Returns:
        (phase0 [F] rad at time 0, slope [F] rad/symbol).
    """
    ang = np.unwrap(np.angle(phasors), axis=1)
    w = np.abs(phasors).astype(np.float64)
    sw = np.sum(w, axis=1)
    tm = np.sum(w * times, axis=1) / sw
    am = np.sum(w * ang, axis=1) / sw
    dt = times[None, :] - tm[:, None]
    slope = np.sum(w * dt * (ang - am[:, None]), axis=1) / np.maximum(np.sum(w * dt**2, axis=1), 1e-30)
    return am - slope * tm, slope


def amplitude_noise(u: np.ndarray, sent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gain and noise power from phase-corrected known symbols.

    Args:
        u: [F, L] complex, received known symbols after phase correction.
        sent: [L] complex, what was sent (unit energy).
    Returns:
        (gain [F] float64, noise power per complex symbol [F] float64).
    """
    energy = float(np.sum(np.abs(sent) ** 2))
    # Element-wise products, not a BLAS matvec: tiny BLAS calls are slow when threaded.
    gain = np.real(np.sum(u * np.conj(sent), axis=1)) / energy
    resid = u - gain[:, None] * sent[None, :]
    noise = np.mean(resid.real**2 + resid.imag**2, axis=1) * len(sent) / max(len(sent) - 2, 1)
    return np.maximum(gain, 1e-12), np.maximum(noise, 1e-12)
