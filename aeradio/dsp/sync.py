"""Synchronization estimators, pure functions on numpy arrays (normalized units inside).

- :func:`periodic_correlation`: Schmidl-Cox style correlation of a signal with itself one
  STF period later, strided by one symbol (detection and coarse CFO, blind to the CFO).
- :func:`linear_phasor`: ``exp(j (phase + 2 pi f n))`` rows, cheaply; :func:`rotate_linear`:
  rows multiplied by it, compiled.
- :func:`detection_threshold`: the threshold on the normalized metric for a target
  false-alarm probability under white Gaussian noise.
- :class:`TimingEstimator`: cross-correlation with the shaped LTF (chunks combined
  non-coherently) and a bias-free fractional peak (calibrated on the noise-free shape).
- :class:`TimingRefiner`: data-aided early-late timing on the whole preamble.
- :class:`GardnerTiming`, :func:`timing_line`: timing tracked across a frame (a sample-clock
  offset makes the symbol instants drift): Gardner's non-data-aided error on each group of
  symbols (compiled) and a line through the per-group estimates.
- :func:`lag_cfo`, :func:`fit_phase`, :func:`amplitude_noise`: fine CFO, phase track,
  gain and noise from the known symbols (preamble and pilots).
"""

from __future__ import annotations

import math

import numba
import numpy as np
import scipy.fft as sfft

from aeradio.core.constants import SAMPLE_DTYPE
from aeradio.dsp.pulse import _TAPS_PER_PASS, _grid_norm, _matched_frame, _plane_rows, _tap_trig, rrc_pulse
from aeradio.dsp.segments import (
    PHASOR_BLOCK,
    _derotate_into,
    _segment_phasors,
    check_segments,
    phasor_recurrence,
)


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
    coarse, fine = _phasor_tables(cycles_per_step, phase_rad, length)
    return (coarse[:, :, None] * fine[:, None, :]).reshape(len(fine), -1)[:, :length]


#: Steps per row of the fine table of :func:`linear_phasor`.
_PHASOR_INNER = 64


def _phasor_tables(cycles_per_step: np.ndarray, phase_rad: np.ndarray, length: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(coarse [F, ceil(length / 64)], fine [F, 64]) complex64: the phasor of step
    ``64 b + k`` is ``coarse[:, b] * fine[:, k]``."""
    f = np.asarray(cycles_per_step, np.float64)[:, None]
    ph = np.asarray(phase_rad, np.float64)[:, None]
    inner = _PHASOR_INNER
    outer = -(-length // inner)
    fine = np.exp(2j * np.pi * f * np.arange(inner)).astype(SAMPLE_DTYPE)
    coarse = np.exp(1j * (ph + 2 * np.pi * f * inner * np.arange(outer))).astype(SAMPLE_DTYPE)
    return coarse, fine


@numba.njit(nogil=True, cache=True)
def _rotate_kernel(zf, cycles_per_step, phase_rad, out):  # pragma: no cover - compiled
    """``out[f, n] = z[f, n] coarse[n // 64] fine[n % 64]`` on interleaved float32 views, the
    tables of :func:`_phasor_tables` (complex64 roundings of float64 exponentials, here by
    :func:`~aeradio.dsp.segments.phasor_recurrence`) built per frame here."""
    frames, length = zf.shape[0], zf.shape[1] // 2
    inner = _PHASOR_INNER
    fine = np.empty(inner, np.complex64)
    coarse = np.empty(-(-length // inner), np.complex64)
    for i in range(frames):
        f, ph = cycles_per_step[i], phase_rad[i]
        phasor_recurrence(2 * math.pi * f, 1.0 + 0.0j, fine)
        phasor_recurrence(2 * math.pi * f * inner, complex(math.cos(ph), math.sin(ph)), coarse)
        for b in range(len(coarse)):
            cr, ci = coarse[b].real, coarse[b].imag
            for k in range(min(inner, length - b * inner)):
                fr, fi = fine[k].real, fine[k].imag
                pr = cr * fr - ci * fi
                pi = cr * fi + ci * fr
                n = 2 * (b * inner + k)
                zr, zi = zf[i, n], zf[i, n + 1]
                out[i, n] = zr * pr - zi * pi
                out[i, n + 1] = zr * pi + zi * pr


def rotate_linear(z: np.ndarray, cycles_per_step: np.ndarray, phase_rad: np.ndarray) -> np.ndarray:
    """``z * linear_phasor(cycles_per_step, phase_rad, z.shape[1])`` in one compiled pass
    (the phasor is never stored; equal to the product within float32 rounding).

    Args:
        z: [F, L] complex64.
        cycles_per_step, phase_rad: [F] float.
    Returns:
        [F, L] complex64.
    """
    z = np.ascontiguousarray(z, SAMPLE_DTYPE)
    out = np.empty_like(z)
    _rotate_kernel(z.view(np.float32), np.asarray(cycles_per_step, np.float64).reshape(-1),
                   np.asarray(phase_rad, np.float64).reshape(-1), out.view(np.float32))
    return out


def _strided_moving_sum(v: np.ndarray, terms: int, stride: int) -> np.ndarray:
    """``s[d] = sum_{i<terms} v[d + i stride]`` for every ``d`` with all terms inside ``v``."""
    count = len(v) - (terms - 1) * stride
    if count <= 0:
        return np.zeros(0, v.dtype)
    if stride == 1:  # the detector's case: one running sum, no padding
        c = np.empty(len(v) + 1, v.dtype)
        c[0] = 0
        np.cumsum(v, out=c[1:])
        return c[terms:] - c[:count]
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
    prod = np.conj(x[:-lag])
    prod *= x[lag:]
    p = _strided_moving_sum(prod, terms, stride)
    del prod
    e = x.real * x.real
    e += x.imag * x.imag
    e = _strided_moving_sum(e.astype(np.float32, copy=False), terms, stride)
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


#: Chunks of the LTF correlated separately and combined non-coherently, so a residual
#: CFO (the coarse estimate's error) does not decorrelate the template.
LTF_CHUNKS = 2


class TimingEstimator:
    """Fractional timing of a known shaped sequence by cross-correlation.

    The template is cut into :data:`LTF_CHUNKS` pieces whose correlation magnitudes are
    summed (robust to a residual CFO). The parabolic interpolation of the peak is biased
    for a raised-cosine shaped peak; the bias is measured once on the noise-free
    correlation (the exact RRC pulse at fractional delays) and inverted.

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
        edges = np.linspace(0, self.length, LTF_CHUNKS + 1).astype(int)
        self._chunks = np.zeros((LTF_CHUNKS, self.length), SAMPLE_DTYPE)
        for j in range(LTF_CHUNKS):
            self._chunks[j, edges[j] : edges[j + 1]] = self.template[edges[j] : edges[j + 1]]
        self._spectra: dict[int, np.ndarray] = {}
        # Bias curve: shift the template by delta (exact RRC), correlate at lags -1, 0, 1.
        deltas = np.linspace(-0.5, 0.5, 41)
        half = (ntaps - 1) // 2
        n = np.arange(-2, self.length + 2)
        t = n[None, :, None] - deltas[:, None, None] - half - np.arange(len(symbols))[None, None, :] * sps
        norm = np.sqrt(np.sum(rrc_pulse(np.arange(-half, half + 1), rolloff, sps) ** 2))
        shifted = rrc_pulse(t, rolloff, sps) @ np.asarray(symbols, np.complex128) / norm  # [D, N]
        c = self.correlate(shifted.astype(SAMPLE_DTYPE), 1, 3)
        self._est, self._true = parabolic_peak(c[:, 0], c[:, 1], c[:, 2]), deltas

    def correlate(self, x: np.ndarray, first: int, count: int) -> np.ndarray:
        """Summed chunk ``|corr|`` at lags ``first .. first + count - 1`` of rows of ``x`` [F, N]."""
        seg = x[:, first : first + count - 1 + self.length]
        size = sfft.next_fast_len(seg.shape[1])
        if size not in self._spectra:
            self._spectra[size] = np.conj(sfft.fft(self._chunks, size, axis=1))
        spec = sfft.fft(seg, size, axis=1)[:, None, :] * self._spectra[size][None, :, :]
        return np.sum(np.abs(sfft.ifft(spec, axis=2)[:, :, :count]), axis=1)

    def estimate(self, x: np.ndarray, first: int, count: int) -> tuple[np.ndarray, np.ndarray]:
        """Peak lag (fractional, in samples of ``x``) and normalized peak |corr|^2 / energies.

        Args:
            x: [F, N] complex64 (CFO-corrected).
        Returns:
            (lag [F] float64, quality [F] float64 in [0, 1]).
        """
        corr = self.correlate(x, first, count)
        lag, quality = np.empty(x.shape[0]), np.empty(x.shape[0])
        xf = np.ascontiguousarray(x, SAMPLE_DTYPE).view(np.float32)
        _peak_kernel(np.ascontiguousarray(corr, np.float32), xf, first, self.length, self.template_energy,
                     self._est, self._true, lag, quality)
        return lag, quality

    def estimate_reference(self, x: np.ndarray, first: int, count: int) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`estimate` by numpy (the model of its compiled peak search): the largest
        correlation, its parabolic offset unbiased by the calibration curve, and the quality."""
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


@numba.njit(nogil=True, cache=True)
def _peak_kernel(corr, xf, first, length, template_energy, est, true, lag, quality
                 ):  # pragma: no cover - compiled
    """:meth:`TimingEstimator.estimate_reference` after the correlation, frame by frame: the
    parabola in float32 as :func:`parabolic_peak` on float32 input, ``np.interp`` of its
    vertex, the window's energy summed in float64."""
    count = corr.shape[1]
    for f in range(corr.shape[0]):
        k = min(max(np.argmax(corr[f]), 1), count - 2)
        ym, y0, yp = corr[f, k - 1], corr[f, k], corr[f, k + 1]
        den = ym - np.float32(2) * y0 + yp
        off = np.float32(0.5) * (ym - yp) / den if den < 0 else np.float32(0.0)
        off = min(max(np.float64(off), -0.5), 0.5)
        if off <= est[0]:
            unbiased = true[0]
        elif off >= est[-1]:
            unbiased = true[-1]
        else:
            j = np.searchsorted(est, off, side="right") - 1
            unbiased = (true[j + 1] - true[j]) / (est[j + 1] - est[j]) * (off - est[j]) + true[j]
        lag[f] = first + k + unbiased
        energy = 0.0
        for i in range(2 * (first + k), 2 * (first + k + length)):
            energy += np.float64(xf[f, i]) * xf[f, i]
        quality[f] = np.float64(y0) ** 2 / max(energy * template_energy, 1e-30)


class TimingRefiner:
    """Data-aided early-late timing on the known leading symbols of a frame.

    ``A_c = sum z(t_k) conj(s_k)`` and ``E_c = sum (z(t_k + d) - z(t_k - d)) conj(s_k)``
    per chunk of symbols; ``Re(E_c conj(A_c)) / |A_c|^2`` summed over chunks is an odd,
    first-order function of the timing error (chunk phasors make it blind to a residual
    CFO). Its slope is measured once on the noise-free shaped symbols.

    Args:
        known: [L] complex, the frame's first L symbols.
        chunk_symbols: symbols per chunk.
        rolloff, samples_per_symbol, span_symbols: the pulse.
        step: early/late offset ``d`` in samples.
    """

    def __init__(self, known: np.ndarray, chunk_symbols: int, rolloff: float, samples_per_symbol: int,
                 span_symbols: int, step: int = 1) -> None:
        from aeradio.dsp.pulse import rrc_taps, shape_symbols

        self.known = np.asarray(known, SAMPLE_DTYPE)
        self.chunk = chunk_symbols
        self.pulse = (rolloff, samples_per_symbol, span_symbols)
        self.step = step
        sps = samples_per_symbol
        x = shape_symbols(self.known, rrc_taps(rolloff, span_symbols, sps), sps)
        x = np.concatenate([np.zeros(64, SAMPLE_DTYPE), x, np.zeros(64, SAMPLE_DTYPE)])[None, :]
        t_true = 64.0 + span_symbols * sps // 2
        probe = 0.1
        late = self._ratio(x, np.array([t_true - probe]))[0]
        early = self._ratio(x, np.array([t_true + probe]))[0]
        self.slope = (late - early) / (2 * probe)

    def _ratio(self, x: np.ndarray, t0: np.ndarray) -> np.ndarray:
        """The early-late ratio of each frame (one compiled pass; :meth:`_ratio_reference`
        is its numpy model)."""
        rolloff, sps, span = self.pulse
        half = span * sps // 2
        t0 = np.asarray(t0, np.float64)
        out = np.empty(len(t0))
        _early_late_kernel(np.ascontiguousarray(x, SAMPLE_DTYPE).view(np.float32), t0, self.known, self.chunk,
                           self.step, float(rolloff), sps, half, _grid_norm(float(rolloff), sps, half), out)
        return out

    def _ratio_reference(self, x: np.ndarray, t0: np.ndarray) -> np.ndarray:
        from aeradio.dsp.pulse import sample_matched

        f = x.shape[0]
        chunks = len(self.known) // self.chunk
        n = chunks * self.chunk
        z = sample_matched(x, t0, n, *self.pulse, shifts=(-self.step, 0, self.step))
        ref = np.conj(self.known[:n])
        a = (z[1] * ref).reshape(f, chunks, self.chunk).sum(axis=2)
        e = ((z[2] - z[0]) * ref).reshape(f, chunks, self.chunk).sum(axis=2)
        return np.sum(np.real(e * np.conj(a)), axis=1) / np.maximum(np.sum(np.abs(a) ** 2, axis=1), 1e-30)

    def window_end(self, t0_max: float) -> int:
        """One past the last sample of a segment :meth:`refine` reads for times ``t0 <= t0_max``."""
        rolloff, sps, span = self.pulse
        half = span * sps // 2
        n = len(self.known) // self.chunk * self.chunk
        return math.floor(t0_max) - half - self.step + _plane_rows(half, sps, n, 2 * self.step) * sps

    def refine(self, x: np.ndarray, t0: np.ndarray) -> np.ndarray:
        """Refined times of symbol 0: [F] float (segments x [F, N] complex64, CFO-corrected)."""
        return t0 + np.clip(self._ratio(x, t0) / self.slope, -1.0, 1.0)


@numba.njit(nogil=True, cache=True)
def _early_late_kernel(xf, t0, known, chunk, step, rolloff, sps, half, norm, out
                       ):  # pragma: no cover - compiled
    """:meth:`TimingRefiner._ratio_reference` frame by frame: the matched filter at ``t0 +
    k sps`` shifted by ``-step, 0, step`` (:func:`aeradio.dsp.pulse._matched_frame`), then the
    chunk sums and their ratio in complex128."""
    chunks = len(known) // chunk
    n = chunks * chunk
    rel = np.array([0, step, 2 * step], np.int64)
    padded = -(-(2 * half + 1) // _TAPS_PER_PASS) * _TAPS_PER_PASS
    tap_weights = np.zeros(padded, np.float32)
    trig = _tap_trig(rolloff, sps, half)
    plane = np.empty((sps, 2 * _plane_rows(half, sps, n, 2 * step)), np.float32)
    acc = np.empty(2 * n, np.float32)
    zz = np.empty((3, 1, 2 * n), np.float32)
    for f in range(len(t0)):
        start = math.floor(t0[f])
        _matched_frame(xf[f], int(start) - half - step, t0[f] - start, rolloff, sps, half, norm, trig, n, rel,
                       tap_weights, plane, acc, zz, 0)
        num = 0.0
        den = 0.0
        for c in range(chunks):
            a = 0j
            e = 0j
            for k in range(c * chunk, (c + 1) * chunk):
                ref = np.conj(complex(known[k]))
                early, mid, late = zz[0, 0], zz[1, 0], zz[2, 0]
                a += complex(mid[2 * k], mid[2 * k + 1]) * ref
                e += complex(late[2 * k] - early[2 * k], late[2 * k + 1] - early[2 * k + 1]) * ref
            num += (e * np.conj(a)).real
            den += a.real * a.real + a.imag * a.imag
        out[f] = num / max(den, 1e-30)


class GardnerTiming:
    """Gardner's timing error, averaged over a group of symbols, in samples.

    ``e_k = Re(conj(z(t_k + sps/2)) (z(t_{k+1}) - z(t_k)))`` needs no decisions and no
    carrier phase, and its mean is an odd function of the timing error for any zero-mean
    symbols (learned constellations included). The mid-symbol sample of an odd ``sps`` is
    the mean of its two neighbours. Normalized by the symbols' mean energy, its slope (and
    offset at zero error) is measured once on noise-free shaped random QPSK, so
    :meth:`error` returns samples.

    Args:
        rolloff, samples_per_symbol, span_symbols: the pulse.
    """

    #: Random symbols of the calibration.
    CALIBRATION_SYMBOLS = 4096

    def __init__(self, rolloff: float, samples_per_symbol: int, span_symbols: int) -> None:
        from aeradio.dsp.framing import qpsk_sequence
        from aeradio.dsp.pulse import rrc_taps, sample_matched, shape_symbols

        self.pulse = (rolloff, samples_per_symbol, span_symbols)
        #: Sample offsets :meth:`error` needs (``shifts`` of sample_matched): the symbol
        #: instant and the middle of the symbol (an even sps), or the two samples around it.
        half_symbol = samples_per_symbol // 2
        self.shifts = (0, half_symbol) if samples_per_symbol % 2 == 0 else (0, half_symbol, half_symbol + 1)
        symbols = qpsk_sequence(self.CALIBRATION_SYMBOLS, np.random.default_rng(0x6A7))
        x = shape_symbols(symbols, rrc_taps(rolloff, span_symbols, samples_per_symbol), samples_per_symbol)
        t_true = span_symbols * samples_per_symbol // 2
        probe = 0.1
        t = np.array([t_true - probe, t_true, t_true + probe])
        z = sample_matched(np.repeat(x[None, :], 3, axis=0), t, self.CALIBRATION_SYMBOLS, *self.pulse,
                           shifts=self.shifts)
        g = self._mean_error(z)
        self.slope = (g[0] - g[2]) / (2 * probe)
        self.bias = g[1]

    @staticmethod
    def _mean_error(zs: np.ndarray) -> np.ndarray:
        """[F] float64: the mean error over the group divided by the symbols' mean energy
        (one compiled pass, :func:`_gardner_kernel`; :func:`gardner_mean_error_reference`
        is its numpy model)."""
        zs = np.ascontiguousarray(zs, SAMPLE_DTYPE)
        out = np.empty(zs.shape[1])
        _gardner_kernel(zs.view(np.float32), out)
        return out

    def error(self, zs: np.ndarray) -> np.ndarray:
        """Timing error (samples: the true instants are this much later) of a group.

        Args:
            zs: [len(shifts), F, L] complex, matched-filter outputs at the assumed symbol
                instants shifted by :attr:`shifts` (``sample_matched(..., shifts=self.shifts)``).
        Returns:
            [F] float64; exact within about +-0.08 symbol, compressed beyond (Gardner's
            S-curve is a sine).
        """
        return (self._mean_error(zs) - self.bias) / self.slope


@numba.njit(nogil=True, cache=True)
def _gardner_kernel(zf, out):  # pragma: no cover - compiled
    """:func:`gardner_mean_error_reference` on the interleaved float32 view ``zf`` [S, F, 2 L]
    (S = 2: the mid-symbol sample is row 1; S = 3: the mean of rows 1 and 2), float64 sums."""
    two = zf.shape[0] == 2
    length = zf.shape[2] // 2
    for f in range(zf.shape[1]):
        z, h1, h2 = zf[0, f], zf[1, f], zf[zf.shape[0] - 1, f]
        err = 0.0
        energy = 0.0
        for k in range(length):
            zr, zi = z[2 * k], z[2 * k + 1]
            energy += zr * zr + zi * zi
            if k + 1 < length:
                hr, hi = (h1[2 * k], h1[2 * k + 1]) if two else (
                    0.5 * (h1[2 * k] + h2[2 * k]), 0.5 * (h1[2 * k + 1] + h2[2 * k + 1]))
                err += hr * (z[2 * k + 2] - zr) + hi * (z[2 * k + 3] - zi)  # Re(conj(h) (z' - z))
        out[f] = (err / (length - 1)) / max(energy / length, 1e-30) if length > 1 else np.nan


def gardner_mean_error_reference(zs: np.ndarray) -> np.ndarray:
    """The numpy model of :meth:`GardnerTiming._mean_error`: ``mean_k Re(conj(zh_k) (z_{k+1}
    - z_k)) / mean_k |z_k|^2`` per frame, ``zh`` the mid-symbol sample (``zs[1]``, or the mean
    of ``zs[1]`` and ``zs[2]``). zs: [2 or 3, F, L] complex; returns [F] float."""
    z, zh = zs[0], zs[1] if len(zs) == 2 else 0.5 * (zs[1] + zs[2])
    e = np.real(np.conj(zh[:, :-1]) * (z[:, 1:] - z[:, :-1]))
    energy = np.mean(z.real**2 + z.imag**2, axis=1)
    return np.mean(e, axis=1) / np.maximum(energy, 1e-30)


def timing_line(
    centres: np.ndarray, offsets: np.ndarray, weights: np.ndarray, at: float, slope_prior_std: float,
    offset_std: float,
) -> np.ndarray:
    """A weighted line through per-group timing offsets, evaluated at ``at``.

    The slope (a clock offset) has a zero-mean Gaussian prior of ``slope_prior_std``
    (samples per symbol) against measurements of ``offset_std`` (samples, at weight 1):
    while the groups span little time, a noisy slope is not extrapolated (the MAP line).

    Args:
        centres: [G] float, the groups' centres (symbols).
        offsets: [F, G] float, each group's estimated offset (samples).
        weights: [G] float, each estimate's inverse variance relative to ``offset_std``.
    Returns:
        [F] float64, the line's offset at ``at`` (samples).

    >>> c, w = np.array([0.0, 100.0, 200.0]), np.ones(3)
    >>> timing_line(c, np.array([[0.0, 0.1, 0.2]]), w, 300.0, 1e-3, 1e-3).round(3)
    array([0.3])
    >>> timing_line(c, np.array([[0.0, 0.1, 0.2]]), w, 300.0, 1e-6, 1.0).round(3)  # slope held back
    array([0.1])
    """
    sw = float(np.sum(weights))
    mean_c = float(weights @ centres) / sw
    mean_o = offsets @ weights / sw
    dc = centres - mean_c
    reg = (offset_std / slope_prior_std) ** 2
    slope = (offsets - mean_o[:, None]) @ (weights * dc) / (float(weights @ dc**2) + reg)
    return mean_o + slope * (at - mean_c)


@numba.njit(nogil=True, cache=True)
def _track_kernel(x, starts, cfo_cps, length, t0, group_first, group_end, centres, weights, slope_std,
                  offset_std, rolloff, sps, half, norm, lo, rel_offsets, bias, slope, z_out, offsets_out
                  ):  # pragma: no cover - compiled
    """:func:`sample_tracked_reference`, frame by frame, group by group (see there), on the
    segments of :func:`sample_tracked`: each group's matched-filter window of its segment is
    derotated from the buffer ``x`` into a scratch row (:func:`aeradio.dsp.segments._derotate_into`)
    that the matched filter's planes are filled from."""
    frames, groups = len(t0), len(group_first)
    num_symbols = z_out.shape[1] // 2
    max_count = 0
    for g in range(groups):
        max_count = max(max_count, min(group_end[g] + 1, num_symbols) - group_first[g])
    padded = -(-(2 * half + 1) // _TAPS_PER_PASS) * _TAPS_PER_PASS
    tap_weights = np.zeros(padded, np.float32)
    trig = _tap_trig(rolloff, sps, half)
    max_offset = rel_offsets.max()
    plane = np.empty((sps, 2 * _plane_rows(half, sps, max_count, max_offset)), np.float32)
    window = np.empty(plane.size // 2, np.complex64)
    fine = np.empty(PHASOR_BLOCK, np.complex64)
    block = np.empty(-(-length // PHASOR_BLOCK), np.complex64)
    acc = np.empty(2 * max_count, np.float32)
    zz = np.empty((len(rel_offsets), 1, 2 * max_count), np.float32)
    mean_error = np.empty(1)
    reg = (offset_std / slope_std) ** 2
    for f in range(frames):
        _segment_phasors(cfo_cps[f], fine, block)
        offs = offsets_out[f]
        offs[0] = 0.0
        for g in range(groups):
            first, end = group_first[g], group_end[g]
            # timing_line through the offsets so far, at the group's centre
            sw = sc = so = 0.0
            for i in range(g + 1):
                sw += weights[i]
                sc += weights[i] * centres[i]
                so += weights[i] * offs[i]
            mean_c, mean_o = sc / sw, so / sw
            num = den = 0.0
            for i in range(g + 1):
                dc = centres[i] - mean_c
                num += (offs[i] - mean_o) * weights[i] * dc
                den += weights[i] * dc * dc
            pred = mean_o + num / (den + reg) * (centres[g + 1] - mean_c)
            t = t0[f] + first * sps + pred
            start = math.floor(t)
            count = min(end + 1, num_symbols) - first  # one more: Gardner's next symbol
            width = _plane_rows(half, sps, count, max_offset) * sps  # the window's samples
            _derotate_into(x, starts[f], length, int(start) - half + lo, width, fine, block, window)
            _matched_frame(window[:width].view(np.float32), 0, t - start, rolloff, sps, half, norm, trig,
                           count, rel_offsets, tap_weights, plane, acc, zz, 0)
            for k in range(2 * (end - first)):
                z_out[f, 2 * first + k] = zz[0, 0, k]
            _gardner_kernel(zz[:, :, : 2 * count], mean_error)
            error = min(max((mean_error[0] - bias) / slope, -sps / 4), sps / 4)
            offs[g + 1] = pred + error


def sample_tracked(
    x: np.ndarray, starts: np.ndarray, cfo_cps: np.ndarray, length: int, t0: np.ndarray,
    groups: list[tuple[int, int]], num_symbols: int, preamble_centre: float, preamble_weight: float,
    full_group_symbols: int, slope_prior_std: float, offset_std: float, gardner: GardnerTiming,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`sample_tracked_reference` compiled, on the segments
    ``derotated_segments(x, starts, cfo_cps, length)`` (:mod:`aeradio.dsp.segments`) without
    storing them: per frame, group by group, the timing line, the group's window of the
    segment derotated from ``x`` (the same phasor and float32 arithmetic, so the same
    values), the matched filter (:func:`aeradio.dsp.pulse.sample_matched`'s kernel) and
    Gardner's error in one pass, without a Python step per group (equal to the reference
    within float rounding).

    Args:
        x: [N] complex64, the buffer (segments already cut: ``segs.reshape(-1)``, starts
            ``arange(F) * length``, CFO zero).
        starts: [F] int, each segment's first sample in ``x`` (negative: zeros before it);
            every segment must end within ``x``.
        cfo_cps: [F] float, the CFO each segment is derotated by (cycles/sample).
        length: samples per segment (samples beyond count as zeros).
        t0 and the rest: as :func:`sample_tracked_reference` (``t0`` within the segments).
    Returns:
        As :func:`sample_tracked_reference`.
    """
    starts = check_segments(len(x), starts, length)
    rolloff, sps, span = gardner.pulse
    half = span * sps // 2
    lo = min(gardner.shifts)
    firsts = np.array([g[0] for g in groups], np.int64)
    ends = np.array([g[1] for g in groups], np.int64)
    centres = np.array([preamble_centre] + [(a + b - 1) / 2 for a, b in groups])
    weights = np.array([preamble_weight] + [(b - a) / full_group_symbols for a, b in groups])
    z = np.empty((len(t0), num_symbols), SAMPLE_DTYPE)
    offsets = np.zeros((len(t0), len(groups) + 1))
    rel = np.array([d - lo for d in gardner.shifts], np.int64)
    norm = _grid_norm(float(rolloff), sps, half)
    _track_kernel(np.ascontiguousarray(x, SAMPLE_DTYPE), starts, np.asarray(cfo_cps, np.float64).reshape(-1),
                  int(length), np.asarray(t0, np.float64), firsts, ends, centres, weights,
                  float(slope_prior_std), float(offset_std), float(rolloff), sps, half, norm, lo, rel,
                  float(gardner.bias), float(gardner.slope), z.view(np.float32), offsets)
    return z, offsets


def sample_tracked_reference(
    x: np.ndarray, t0: np.ndarray, groups: list[tuple[int, int]], num_symbols: int, preamble_centre: float,
    preamble_weight: float, full_group_symbols: int, slope_prior_std: float, offset_std: float,
    gardner: GardnerTiming,
) -> tuple[np.ndarray, np.ndarray]:
    """Matched-filter outputs at the symbol instants with the timing tracked across frames.

    Group by group (``groups``: [first, end) symbols), the symbols are sampled at ``t0 + k
    sps`` plus the offset that a line (:func:`timing_line`) through the earlier groups'
    estimates predicts (the preamble's, at ``preamble_centre`` with ``preamble_weight``,
    counting as 0); the group's own Gardner error (clipped to a quarter symbol) then adds its
    estimate. A group weighs its symbols over ``full_group_symbols``.

    Args:
        x: [F, N] complex64 segments; t0: [F] float, time of symbol 0 in each.
    Returns:
        (symbols [F, num_symbols] complex64, offsets [F, len(groups) + 1] float64: the
        preamble's 0, then each group's estimate, in samples).
    """
    from aeradio.dsp.pulse import sample_matched

    rolloff, sps, span = gardner.pulse
    z = np.empty((len(t0), num_symbols), SAMPLE_DTYPE)
    centres, offsets, weights = [preamble_centre], [np.zeros(len(t0))], [preamble_weight]
    for first, end in groups:
        centre = (first + end - 1) / 2
        pred = timing_line(np.array(centres), np.stack(offsets, axis=1), np.array(weights), centre,
                           slope_prior_std, offset_std)
        count = min(end + 1, num_symbols) - first  # one more: Gardner's next symbol
        zz = sample_matched(x, t0 + first * sps + pred, count, rolloff, sps, span, shifts=gardner.shifts)
        z[:, first:end] = zz[0, :, : end - first]
        error = np.clip(gardner.error(zz), -sps / 4, sps / 4)
        centres.append(centre)
        offsets.append(pred + error)
        weights.append((end - first) / full_group_symbols)
    return z, np.stack(offsets, axis=1)


def phase_line_reference(
    z: np.ndarray, known_index: np.ndarray, known_symbols: np.ndarray, preamble_symbols: int, short_lag: int,
    samples_per_symbol: int, group_starts: np.ndarray, group_centres: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fine CFO from the preamble, then a phase line through the known symbols' groups.

    ``c = z[known] conj(sent)``; the CFO from its phase drift over ``short_lag`` symbols of
    the preamble (unambiguous over the coarse error), removed, then over half the preamble
    (precise enough to unwrap phases across the header to the pilots), removed; then a
    weighted line (:func:`fit_phase`) through the phases of the groups' sums.

    Args:
        z: [F, num_symbols] complex, matched-filter outputs; known_index: [K] int, the
            known symbols' indices (the preamble's first); known_symbols: [K] complex.
        group_starts: [G] int, each group's first index in the known symbols;
            group_centres: [G] float, their centres (symbols).
    Returns:
        (fine CFO [F] cycles/sample, phase0 [F] rad at symbol 0, slope [F] rad/symbol).
    """
    npre, sps = preamble_symbols, samples_per_symbol
    c = z[:, known_index] * np.conj(known_symbols)
    fine = lag_cfo(c[:, :npre], short_lag, sps)
    c = c * np.exp(-2j * np.pi * sps * fine[:, None] * known_index[None, :])
    finer = lag_cfo(c[:, :npre], npre // 2, sps)
    c = c * np.exp(-2j * np.pi * sps * finer[:, None] * known_index[None, :])
    phase0, slope = fit_phase(np.add.reduceat(c, group_starts, axis=1), group_centres)
    return fine + finer, phase0, slope


@numba.njit(nogil=True, cache=True)
def _phase_line_kernel(z, known_index, known_symbols, npre, short_lag, sps, starts, centres, out
                       ):  # pragma: no cover - compiled
    """:func:`phase_line_reference` frame by frame, in complex128 and float64; ``out`` [3, F].

    The reference rotates every known symbol by each CFO estimate in turn (two complex
    exponentials per symbol and estimate). Here the second estimate's lag product takes the
    first rotation as one factor (the preamble's indices are consecutive, so every term of
    the sum turns by the same angle), and the group sums see the total rotation once, its
    phasors a product of two small tables (``exp(j a r)``, r < 64, and ``exp(j 64 a q)``, each
    by :func:`~aeradio.dsp.segments.phasor_recurrence`): three sines and cosines per frame
    instead of 230 for the default frame, equal within float64 rounding (1e-13 rad).
    Preamble indices that are not consecutive take the reference's way."""
    count, groups = len(known_index), len(starts)
    consecutive = npre < 1 or known_index[npre - 1] - known_index[0] == npre - 1
    c = np.empty(count, np.complex128)
    ang = np.empty(groups)
    w = np.empty(groups)
    fine = np.empty(64, np.complex128)
    coarse = np.empty(known_index.max() // 64 + 1 if count else 1, np.complex128)
    for f in range(z.shape[0]):
        for k in range(count):
            c[k] = complex(z[f, known_index[k]]) * np.conj(complex(known_symbols[k]))
        total = 0.0
        for lag in (short_lag, npre // 2):
            acc = 0j
            for k in range(npre - lag):
                acc += c[k + lag] * np.conj(c[k])
            if consecutive and total != 0.0:
                a = -2 * math.pi * sps * total * lag  # the earlier rotation, the same on every term
                acc *= complex(math.cos(a), math.sin(a))
            cfo = math.atan2(acc.imag, acc.real) / (2 * math.pi * lag * sps)
            total += cfo
            if not consecutive:
                for k in range(count):
                    c[k] *= complex(math.cos(-2 * math.pi * sps * cfo * known_index[k]),
                                    math.sin(-2 * math.pi * sps * cfo * known_index[k]))
        if consecutive:
            a = -2 * math.pi * sps * total
            phasor_recurrence(a, 1.0 + 0.0j, fine)
            phasor_recurrence(64 * a, 1.0 + 0.0j, coarse)
            for k in range(count):
                i = known_index[k]
                c[k] *= coarse[i >> 6] * fine[i & 63]
        for g in range(groups):
            end = starts[g + 1] if g + 1 < groups else count
            acc = 0j
            for k in range(starts[g], end):
                acc += c[k]
            ang[g] = math.atan2(acc.imag, acc.real)
            w[g] = abs(acc)
        # np.unwrap: steps beyond pi taken modulo 2 pi
        correction = 0.0
        previous = ang[0]
        for g in range(1, groups):
            step = ang[g] - previous
            previous = ang[g]
            if abs(step) >= math.pi:
                wrapped = (step + math.pi) % (2 * math.pi) - math.pi
                if wrapped == -math.pi and step > 0:
                    wrapped = math.pi
                correction += wrapped - step
            ang[g] += correction
        sw = st = sa = 0.0
        for g in range(groups):
            sw += w[g]
            st += w[g] * centres[g]
            sa += w[g] * ang[g]
        tm, am = st / sw, sa / sw
        num = den = 0.0
        for g in range(groups):
            dt = centres[g] - tm
            num += w[g] * dt * (ang[g] - am)
            den += w[g] * dt * dt
        slope = num / max(den, 1e-30)
        out[0, f] = total
        out[1, f] = am - slope * tm
        out[2, f] = slope


def phase_line(
    z: np.ndarray, known_index: np.ndarray, known_symbols: np.ndarray, preamble_symbols: int, short_lag: int,
    samples_per_symbol: int, group_starts: np.ndarray, group_centres: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`phase_line_reference` in one compiled pass (a few numpy calls per frame batch
    less: the chain's per-call cost), equal within float rounding."""
    out = np.empty((3, z.shape[0]))
    _phase_line_kernel(np.ascontiguousarray(z, SAMPLE_DTYPE), np.asarray(known_index, np.int64),
                       np.asarray(known_symbols, SAMPLE_DTYPE), preamble_symbols, short_lag,
                       samples_per_symbol, np.asarray(group_starts, np.int64),
                       np.asarray(group_centres, np.float64), out)
    return out[0], out[1], out[2]


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


@numba.njit(nogil=True, cache=True)
def _scaled_columns_kernel(uf, index, scale, out):  # pragma: no cover - compiled
    """``out[f, j] = u[f, index[j]] * scale[f]`` on interleaved float32 views."""
    for f in range(uf.shape[0]):
        s = scale[f]
        for j in range(len(index)):
            i = 2 * index[j]
            out[f, 2 * j] = uf[f, i] * s
            out[f, 2 * j + 1] = uf[f, i + 1] * s


def scaled_columns(u: np.ndarray, index: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """The columns ``index`` of ``u``, each row's real and imaginary parts times its
    ``scale``, in one compiled pass: the float32 products of
    ``(u.view(np.float32) * scale[:, None]).view(np.complex64)[:, index]`` bit for bit,
    without the scaled copy of every column (the RX chain's unit-gain header and payload
    symbols, gathered from its frames).

    Args:
        u: [F, L] complex64.
        index: [C] int, columns of ``u``.
        scale: [F] float32.
    Returns:
        [F, C] complex64.

    >>> u = np.array([[1 + 2j, 3 - 1j, 5j]], np.complex64)
    >>> scaled_columns(u, np.array([2, 0]), np.array([0.5], np.float32)).tolist()
    [[2.5j, (0.5+1j)]]
    """
    u = np.ascontiguousarray(u, SAMPLE_DTYPE)
    index = np.asarray(index, np.int64)
    if len(index) and not (0 <= int(index.min()) and int(index.max()) < u.shape[1]):
        raise ValueError(f"columns {int(index.min())}..{int(index.max())} outside [0, {u.shape[1]})")
    out = np.empty((u.shape[0], len(index)), SAMPLE_DTYPE)
    _scaled_columns_kernel(u.view(np.float32), index, np.ascontiguousarray(scale, np.float32),
                           out.view(np.float32))
    return out
