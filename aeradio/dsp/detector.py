"""The frame detector's scan at radio rates: compiled, and only where frames can start.

The detector's metric, on the sums ``s`` of ``hop`` consecutive samples (one position per
sum), is the periodic correlation of :func:`aeradio.dsp.sync.periodic_correlation`:

    ``P[d] = sum_{i<terms} conj(s[d + i]) s[d + i + lag]``,
    ``E1[d] = sum_{i<terms} |s[d + i]|^2``, ``E2[d] = E1[d + lag]``,

and a position is above threshold when ``|P|^2 > t E1 E2``. The scan (the same rules in
both functions below):

1. the first position ``c`` above threshold opens a peak search over ``search`` positions;
2. the peak is the position of largest ``|P|^2`` among those above threshold in
   ``[c, c + search)`` (the first one on ties);
3. scanning resumes ``resume`` positions after the peak (``resume_early`` for a peak
   before ``first_valid``: a frame cut by the stream's start);
4. the scan stops, pending, at a hit whose search window leaves the metric or whose peak is
   beyond ``last_peak`` (its frame is not all buffered yet).

:func:`scan_reference` runs these rules on the whole metric, computed by numpy (about
fifteen passes over the samples); :func:`scan` computes the metric only at the positions the
rules visit, in one compiled pass with float64 sliding sums: after a frame it jumps a frame
ahead, so on back-to-back frames it evaluates a small fraction of the positions. The sliding
sums are recomputed from scratch at every jump and every :data:`RESYNC_POSITIONS` positions,
so a strong burst leaves no rounding error behind it. Why numba: numpy can neither fuse the
passes nor skip the positions a frame covers, and the metric was a quarter of the RX chain's
time (docs/throughput.md).
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np

from aeradio.core.constants import SAMPLE_DTYPE
from aeradio.dsp.sync import periodic_correlation

#: Positions between exact recomputations of the sliding sums.
RESYNC_POSITIONS = 1024


class ScanResult(NamedTuple):
    """Peaks found by a scan, in positions from its first sample."""

    #: [K] int64, the peaks' positions.
    peaks: np.ndarray
    #: [K] complex64, P at each peak (its angle gives the coarse CFO).
    p: np.ndarray
    #: Where the next scan starts (position): after the last frame, or at the pending hit.
    next_position: int
    #: A hit waits for more samples.
    pending: bool


@numba.njit(nogil=True, cache=True)
def _hop_sum(xf, hop, i):  # pragma: no cover - compiled
    """The sum of the hop samples of position ``i`` (float32, as the numpy model)."""
    a = np.float32(0.0)
    b = np.float32(0.0)
    base = 2 * i * hop
    for r in range(hop):
        a += xf[base + 2 * r]
        b += xf[base + 2 * r + 1]
    return np.float64(a), np.float64(b)


@numba.njit(nogil=True, cache=True)
def _sums_at(xf, hop, lag, terms, d):  # pragma: no cover - compiled
    """(Re P, Im P, E1, E2) at position ``d``, from scratch."""
    pr = pi = e1 = e2 = 0.0
    for i in range(d, d + terms):
        ar, ai = _hop_sum(xf, hop, i)
        br, bi = _hop_sum(xf, hop, i + lag)
        pr += ar * br + ai * bi
        pi += ar * bi - ai * br
        e1 += ar * ar + ai * ai
        e2 += br * br + bi * bi
    return pr, pi, e1, e2


@numba.njit(nogil=True, cache=True)
def _slide(xf, hop, lag, terms, d, pr, pi, e1, e2):  # pragma: no cover - compiled
    """(Re P, Im P, E1, E2) at ``d + 1`` from their values at ``d``: the products entering
    the window added, the ones leaving it removed (E2's window is E1's, ``lag`` later)."""
    ar, ai = _hop_sum(xf, hop, d + terms)
    br, bi = _hop_sum(xf, hop, d + terms + lag)
    cr, ci = _hop_sum(xf, hop, d)
    dr, di = _hop_sum(xf, hop, d + lag)
    pr += ar * br + ai * bi - (cr * dr + ci * di)
    pi += ar * bi - ai * br - (cr * di - ci * dr)
    e1 = max(e1 + ar * ar + ai * ai - (cr * cr + ci * ci), 0.0)
    e2 = max(e2 + br * br + bi * bi - (dr * dr + di * di), 0.0)
    return pr, pi, e1, e2


@numba.njit(nogil=True, cache=True)
def _scan_kernel(xf, hop, lag, terms, count, threshold, search, resume, resume_early, first_valid,
                 last_peak, peaks, p_out):  # pragma: no cover - compiled
    """The scan over positions ``[0, count)``; returns (peaks found, next position, pending)."""
    found = 0
    d = 0
    pr, pi, e1, e2 = _sums_at(xf, hop, lag, terms, 0) if count > 0 else (0.0, 0.0, 0.0, 0.0)
    while d < count:
        if not pr * pr + pi * pi > threshold * e1 * e2:
            d += 1
            if d < count:
                if d % RESYNC_POSITIONS == 0:
                    pr, pi, e1, e2 = _sums_at(xf, hop, lag, terms, d)
                else:
                    pr, pi, e1, e2 = _slide(xf, hop, lag, terms, d - 1, pr, pi, e1, e2)
            continue
        c = d
        if c + search > count:
            return found, c, True
        best, best_power = c, -1.0
        for k in range(c, c + search):
            if k > c:
                if k % RESYNC_POSITIONS == 0:
                    pr, pi, e1, e2 = _sums_at(xf, hop, lag, terms, k)
                else:
                    pr, pi, e1, e2 = _slide(xf, hop, lag, terms, k - 1, pr, pi, e1, e2)
            power = pr * pr + pi * pi
            value = power if power > threshold * e1 * e2 else 0.0
            if value > best_power:
                best, best_power = k, value
                p_out[2 * found] = pr
                p_out[2 * found + 1] = pi
        if best > last_peak:
            return found, c, True
        peaks[found] = best
        found += 1
        d = best + (resume if best >= first_valid else resume_early)
        if d < count:
            pr, pi, e1, e2 = _sums_at(xf, hop, lag, terms, d)
    return found, d, False


def metric_positions(num_samples: int, hop: int, lag: int, terms: int) -> int:
    """Positions of the metric over ``num_samples`` samples (0 when too few)."""
    return max(0, num_samples // hop - lag - terms + 1)


def scan(x: np.ndarray, hop: int, lag: int, terms: int, threshold: float, search: int, resume: int,
         resume_early: int, first_valid: int, last_peak: int) -> ScanResult:
    """The detector's scan over ``x`` (the compiled path).

    Args:
        x: [N] complex64 samples; position ``d`` covers samples from ``d hop``.
        hop: samples per sum; lag: the STF period in sums; terms: products per correlation.
        threshold: on ``|P|^2 / (E1 E2)``.
        search: positions of a peak search; resume, resume_early: positions from a peak to
            the next scan (a peak at or after ``first_valid``, or before it).
        last_peak: the last position whose frame is all in ``x``.
    Returns:
        The peaks (positions) and P at them, where the next scan starts, and whether a hit
        waits for more samples.
    """
    x = np.ascontiguousarray(x, SAMPLE_DTYPE)
    count = metric_positions(len(x), hop, lag, terms)
    capacity = count // max(min(resume, resume_early), 1) + 2
    peaks = np.empty(capacity, np.int64)
    p = np.empty(capacity, SAMPLE_DTYPE)
    found, position, pending = _scan_kernel(
        x.view(np.float32), hop, lag, terms, count, float(threshold), search, resume, resume_early,
        first_valid, last_peak, peaks, p.view(np.float32),
    )
    return ScanResult(peaks[:found].copy(), p[:found].copy(), int(position), bool(pending))


def metric_reference(
    x: np.ndarray, hop: int, lag: int, terms: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The metric at every position, by numpy: (P, |P|^2, E1 E2), each [count] (complex64,
    float32, float32), ``count = metric_positions(len(x), hop, lag, terms)``."""
    count = metric_positions(len(x), hop, lag, terms)
    if count == 0:
        z = np.zeros(0, np.float32)
        return z.astype(SAMPLE_DTYPE), z, z
    usable = (len(x) // hop) * hop
    # Sums of hop samples: a low-pass filter that keeps the STF tone (half the symbol
    # rate) and leaves disjoint sums independent under white noise.
    sums = x[0:usable:hop].copy()
    for i in range(1, hop):  # strided adds: much faster than a short-axis sum
        sums += x[i:usable:hop]
    p, e1, e2 = periodic_correlation(sums, lag, terms, 1)
    p, e1, e2 = p[:count], e1[:count], e2[:count]
    power = p.real * p.real
    power += p.imag * p.imag
    return p, power, e1 * e2


def scan_reference(x: np.ndarray, hop: int, lag: int, terms: int, threshold: float, search: int,
                   resume: int, resume_early: int, first_valid: int, last_peak: int
                   ) -> tuple[ScanResult, np.ndarray]:
    """:func:`scan` on the whole metric computed by numpy (the model; the RX chain's path when
    it dumps its stages). Returns the scan and the normalized metric [count] float32."""
    count = metric_positions(len(x), hop, lag, terms)
    p, power, norm = metric_reference(x, hop, lag, terms)
    above = power > norm * np.float32(threshold)
    hits = np.flatnonzero(above)
    peaks: list[int] = []
    position, pending, i = 0, False, 0
    while i < len(hits):
        c = int(hits[i])
        if c + search > count:
            position, pending = c, True
            break
        d = c + int(np.argmax(power[c : c + search] * above[c : c + search]))
        if d > last_peak:
            position, pending = c, True
            break
        peaks.append(d)
        position = d + (resume if d >= first_valid else resume_early)
        i = int(np.searchsorted(hits, position))  # the first hit at or after it
    else:
        position = max(count, position)
    idx = np.array(peaks, np.int64)
    metric = power / np.maximum(norm, np.float32(1e-30))
    return ScanResult(idx, p[idx], position, pending), metric
