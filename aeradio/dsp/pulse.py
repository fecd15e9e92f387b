"""Root-raised-cosine pulse shaping: TX interpolation and RX matched-filter sampling.

Taps have unit energy (``sum h^2 = 1``), so a symbol stream with ``E|a|^2 = 1`` becomes
samples of power ``1 / sps`` and, after the matched filter sampled at the symbol
instants, unit-energy symbols again; noise of per-sample power ``N0`` becomes noise of
power ``N0`` per symbol (Es/N0 = 1 / N0).

>>> h = rrc_taps(0.35, 8, 4)
>>> h.shape, round(float(np.sum(h ** 2)), 6)
((33,), 1.0)
"""

from __future__ import annotations

import functools
import math

import numba
import numpy as np
import scipy.fft as sfft

from aeradio.core.constants import SAMPLE_DTYPE
from aeradio.core.errors import check_range

#: Symbols per FFT block of :func:`shape_symbols` (overlap-add).
_FFT_SYMBOLS = 1024


def rrc_pulse(t: np.ndarray, rolloff: float, samples_per_symbol: int) -> np.ndarray:
    """The RRC impulse response at times ``t`` (in samples, float64), unit energy at ``t``
    on the integer grid of a long enough span.

    Args:
        t: [...] float, time in samples relative to the pulse peak.
        rolloff: excess bandwidth in (0, 1].
        samples_per_symbol: samples per symbol (>= 2).
    Returns:
        [...] float64.
    """
    check_range("rolloff", rolloff, 0.01, 1.0)
    ts = np.asarray(t, dtype=np.float64) / samples_per_symbol
    b = rolloff
    num = np.sin(np.pi * ts * (1 - b)) + 4 * b * ts * np.cos(np.pi * ts * (1 + b))
    den = np.pi * ts * (1 - (4 * b * ts) ** 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = num / den
    h = np.where(np.abs(ts) < 1e-9, 1 - b + 4 * b / np.pi, h)
    sing = np.abs(np.abs(ts) - 1 / (4 * b)) < 1e-9
    h_sing = b / math.sqrt(2) * (
        (1 + 2 / np.pi) * math.sin(np.pi / (4 * b)) + (1 - 2 / np.pi) * math.cos(np.pi / (4 * b))
    )
    h = np.where(sing, h_sing, h)
    return h / math.sqrt(samples_per_symbol)


def rrc_taps(rolloff: float, span_symbols: int, samples_per_symbol: int) -> np.ndarray:
    """Unit-energy RRC taps, ``span_symbols * sps + 1`` of them, float64.

    Args:
        rolloff: excess bandwidth in (0, 1].
        span_symbols: filter length in symbols (even, >= 2).
        samples_per_symbol: samples per symbol (>= 2).
    Returns:
        [span_symbols * samples_per_symbol + 1] float64, symmetric, peak in the middle.
    """
    check_range("span_symbols", span_symbols, 2, 64)
    check_range("samples_per_symbol", samples_per_symbol, 2, 64)
    half = span_symbols * samples_per_symbol // 2
    h = rrc_pulse(np.arange(-half, half + 1, dtype=np.float64), rolloff, samples_per_symbol)
    return h / np.sqrt(np.sum(h**2))


def shape_symbols(symbols: np.ndarray, taps: np.ndarray, samples_per_symbol: int) -> np.ndarray:
    """Upsample by ``sps`` and filter with ``taps`` (full convolution), FFT overlap-add.

    Equal to ``scipy.signal.upfirdn(taps, symbols, up=sps)`` padded with zeros to
    ``len(symbols) * sps + len(taps) - 1``. Symbol ``k`` peaks at sample
    ``k * sps + (len(taps) - 1) // 2``.

    Args:
        symbols: [num_symbols] complex.
        taps: [num_taps] float.
        samples_per_symbol: upsampling factor.
    Returns:
        [num_symbols * sps + num_taps - 1] complex64.
    """
    sps = samples_per_symbol
    x = np.asarray(symbols).astype(SAMPLE_DTYPE, copy=False).reshape(-1)
    ntaps = len(taps)
    out_len = len(x) * sps + ntaps - 1
    if len(x) == 0:
        return np.zeros(ntaps - 1, SAMPLE_DTYPE)
    tail_sym = -(-(ntaps - 1) // sps)  # symbols of filter tail per block
    fft_len = max(_FFT_SYMBOLS, 2 * tail_sym)
    step = fft_len - tail_sym  # new symbols per block
    nblocks = -(-len(x) // step)
    blocks = np.zeros((nblocks, fft_len), SAMPLE_DTYPE)
    full, rest = divmod(len(x), step)
    blocks[:full, :step] = x[: full * step].reshape(full, step)
    if rest:
        blocks[full, :rest] = x[full * step :]
    spectrum = sfft.fft(blocks, axis=1, workers=-1, overwrite_x=True)
    # Zero-stuffing by sps repeats the symbol spectrum sps times: broadcast, no tile.
    filt = _filter_spectrum(np.asarray(taps, dtype=np.float64), fft_len * sps).reshape(sps, fft_len)
    prod = (spectrum[:, None, :] * filt[None, :, :]).reshape(nblocks, sps * fft_len)
    y = sfft.ifft(prod, axis=1, workers=-1, overwrite_x=True)
    hop = step * sps
    out = np.empty((nblocks + 1) * hop, SAMPLE_DTYPE)
    out[: nblocks * hop].reshape(nblocks, hop)[:] = y[:, :hop]
    out[nblocks * hop :] = 0
    # Overlap-add the tails: block b's tail lands at the start of block b + 1.
    tail = y[:, hop:]
    out[hop : hop + nblocks * hop].reshape(nblocks, hop)[:, : tail.shape[1]] += tail[:, :hop]
    return out[:out_len]


def shape_bursts(frames: np.ndarray, taps: np.ndarray, samples_per_symbol: int, spacing: int) -> np.ndarray:
    """Pulse-shape each row of ``frames`` and place row ``f`` at sample ``f * spacing``.

    Equal to :func:`shape_symbols` of the rows laid end to end with
    ``spacing / sps - num_symbols`` zero symbols between them, but the silence costs
    nothing: each row is shaped by one FFT (batched over rows).

    Args:
        frames: [F, num_symbols] complex.
        taps: [num_taps] float.
        spacing: samples from one frame's start to the next (a multiple of sps, at least
            ``num_symbols * sps``).
    Returns:
        [F * spacing + num_taps - 1] complex64.
    """
    sps = samples_per_symbol
    f, k = frames.shape
    ntaps = len(taps)
    row_len = k * sps + ntaps - 1
    fft_len = sfft.next_fast_len(k + -(-(ntaps - 1) // sps))
    spectrum = sfft.fft(np.asarray(frames, SAMPLE_DTYPE), fft_len, axis=1, workers=-1)
    filt = _filter_spectrum(np.asarray(taps, dtype=np.float64), fft_len * sps).reshape(sps, fft_len)
    prod = (spectrum[:, None, :] * filt[None, :, :]).reshape(f, sps * fft_len)
    rows = sfft.ifft(prod, axis=1, workers=-1, overwrite_x=True)[:, :row_len]
    out = np.zeros(f * spacing + ntaps - 1, SAMPLE_DTYPE)
    if row_len <= spacing:
        out[: f * spacing].reshape(f, spacing)[:, :row_len] = rows
    else:
        out[: f * spacing].reshape(f, spacing)[:] = rows[:, :spacing]
        tail = row_len - spacing  # at most ntaps - 1: lands in the next frame's slot
        out[spacing : f * spacing].reshape(f - 1, spacing)[:, :tail] += rows[:-1, spacing:]
        out[f * spacing : f * spacing + tail] += rows[-1, spacing:]
    return out


def _filter_spectrum(taps: np.ndarray, size: int) -> np.ndarray:
    """FFT of ``taps`` zero-padded to ``size``, complex64 (cached for the last taps)."""
    key = (taps.tobytes(), size)
    if _FILTER_CACHE.get("key") != key:
        _FILTER_CACHE["key"] = key
        _FILTER_CACHE["value"] = sfft.fft(taps, size).astype(SAMPLE_DTYPE)
    return _FILTER_CACHE["value"]


_FILTER_CACHE: dict[str, object] = {}


def matched_filter_weights(frac: np.ndarray, rolloff: float, samples_per_symbol: int, span_symbols: int
                           ) -> tuple[np.ndarray, int]:
    """Matched-filter weights for sampling at a fractional time ``floor + frac``.

    The matched filter output at time ``t = i + frac`` is
    ``sum_j x[i + j] h(t - (i + j)) = sum_j x[i + j] w[j]`` for ``j`` in
    ``[-half, half]``; ``w = rrc_pulse(frac - j)`` normalized like :func:`rrc_taps`.

    Args:
        frac: [F] float in [0, 1).
    Returns:
        (weights [F, 2 half + 1] float32, half).
    """
    half = span_symbols * samples_per_symbol // 2
    j = np.arange(-half, half + 1, dtype=np.float64)
    t = np.asarray(frac, dtype=np.float64)[:, None] - j[None, :]
    # The same symmetric truncation |t| <= half as the TX taps.
    w = np.where(np.abs(t) <= half, rrc_pulse(t, rolloff, samples_per_symbol), 0.0)
    norm = _grid_norm(rolloff, samples_per_symbol, half)
    return (w / norm).astype(np.float32), half


@functools.lru_cache(maxsize=16)
def _grid_norm(rolloff: float, samples_per_symbol: int, half: int) -> float:
    """Energy norm of the RRC on the integer grid ``[-half, half]`` (as :func:`rrc_taps`)."""
    j = np.arange(-half, half + 1, dtype=np.float64)
    return float(np.sqrt(np.sum(rrc_pulse(j, rolloff, samples_per_symbol) ** 2)))


@numba.njit(nogil=True, cache=True)
def _tap_trig(rolloff, sps, half):  # pragma: no cover - compiled
    """[4, 2 half + 1] float64: sin and cos of ``a j`` and of ``b j`` for the taps ``j`` in
    ``[-half, half]``, ``a, b = pi (1 -+ rolloff) / sps`` (for :func:`_weights_into`)."""
    a = math.pi * (1.0 - rolloff) / sps
    b = math.pi * (1.0 + rolloff) / sps
    trig = np.empty((4, 2 * half + 1))
    for i in range(2 * half + 1):
        j = float(i - half)
        trig[0, i], trig[1, i] = math.sin(a * j), math.cos(a * j)
        trig[2, i], trig[3, i] = math.sin(b * j), math.cos(b * j)
    return trig


@numba.njit(nogil=True, cache=True)
def _weights_into(frac, rolloff, sps, half, norm, trig, w):  # pragma: no cover - compiled
    """:func:`matched_filter_weights` of one fractional time into ``w`` [2 half + 1] float32.

    The sine and cosine of ``pi ts (1 -+ rolloff)`` at ``ts = (frac - j) / sps`` come from
    those of ``frac`` and of the integer ``j`` (``trig``, :func:`_tap_trig`) by the
    angle-addition identities: four trigonometric calls per frame instead of two per tap
    (equal to the direct evaluation within float64 rounding).
    """
    a = math.pi * (1.0 - rolloff) / sps
    b = math.pi * (1.0 + rolloff) / sps
    sa, ca = math.sin(a * frac), math.cos(a * frac)
    sb, cb = math.sin(b * frac), math.cos(b * frac)
    h0 = 1.0 - rolloff + 4.0 * rolloff / math.pi
    h_sing = rolloff / math.sqrt(2.0) * (
        (1.0 + 2.0 / math.pi) * math.sin(math.pi / (4.0 * rolloff))
        + (1.0 - 2.0 / math.pi) * math.cos(math.pi / (4.0 * rolloff))
    )
    scale = 1.0 / math.sqrt(sps)
    for i in range(2 * half + 1):
        t = frac - float(i - half)
        if abs(t) > half:  # the symmetric truncation of the TX taps
            w[i] = 0.0
            continue
        ts = t / sps
        if abs(ts) < 1e-9:
            h = h0
        elif abs(abs(ts) - 1.0 / (4.0 * rolloff)) < 1e-9:
            h = h_sing
        else:
            sin_a = sa * trig[1, i] - ca * trig[0, i]  # sin(a (frac - j))
            cos_b = cb * trig[3, i] + sb * trig[2, i]  # cos(b (frac - j))
            h = (sin_a + 4.0 * rolloff * ts * cos_b) / (math.pi * ts * (1.0 - (4.0 * rolloff * ts) ** 2))
        w[i] = h * scale / norm


#: Taps the matched-filter kernel adds in one pass over the symbols (the weights padded with
#: zeros to a multiple).
_TAPS_PER_PASS = 4


@numba.njit(nogil=True, cache=True)
def _plane_rows(half, sps, num_symbols, max_offset):  # pragma: no cover - compiled
    """Rows of the polyphase planes :func:`_matched_frame` needs."""
    padded = -(-(2 * half + 1) // _TAPS_PER_PASS) * _TAPS_PER_PASS
    return (max_offset + padded - 1) // sps + num_symbols + 1


# aeradio.dsp.sync's compiled timing track and refiner call _matched_frame, _weights_into
# and _tap_trig. numba's cache checks only the file of the function it caches; the cache
# directory keyed by every source (aeradio/dsp/jit.py) is what recompiles them after a
# change here.
@numba.njit(nogil=True, cache=True, fastmath=True)
def _matched_frame(row, a, frac, rolloff, sps, half, norm, trig, num_symbols, rel_offsets, weights, plane,
                   acc, out, f):  # pragma: no cover - compiled
    """One frame of :func:`_matched_kernel`: ``out[o, f]`` (interleaved re, im), the filter
    output at ``a + rel_offsets[o] + half + frac + k sps`` of ``row`` (a segment's interleaved
    float32 view; samples outside it count as zeros). The window is split into its ``sps``
    polyphase planes (plane r, row m: sample ``a + m sps + r``, re and im interleaved), so
    every tap is a contiguous, vectorized multiply-add over the symbols, four taps per pass
    over the accumulator ``acc``; the weights are computed here (:func:`_weights_into`).
    ``weights`` [padded taps], ``plane`` [sps, 2 rows] (at least :func:`_plane_rows` rows;
    only those are filled), ``acc`` [2 num_symbols]: scratch."""
    ntaps = 2 * half + 1
    padded = len(weights)
    n = len(row) // 2
    rows = _plane_rows(half, sps, num_symbols, rel_offsets.max())
    _weights_into(frac, rolloff, sps, half, norm, trig, weights[:ntaps])
    lo = min(rows, max(0, -(a // sps)))  # rows starting before the segment: checked one by one
    full = min(rows, max(lo, (n - a) // sps))  # rows inside the segment from lo on
    if full > lo:
        # Each (re, im) pair moved as one 64-bit word, plane by plane (a strided gather into
        # a contiguous row): twice as fast as the pairs' floats one by one, the same values.
        source = row.view(np.uint64)[a + lo * sps : a + full * sps]
        planes = plane.view(np.uint64)
        for r in range(sps):
            dest = planes[r, lo:full]
            for m in range(full - lo):
                dest[m] = source[m * sps + r]
    for m in range(rows):
        if lo <= m < full:
            continue
        for r in range(sps):
            i = a + m * sps + r
            inside = 0 <= i < n
            plane[r, 2 * m] = row[2 * i] if inside else 0.0
            plane[r, 2 * m + 1] = row[2 * i + 1] if inside else 0.0
    width = 2 * num_symbols
    for o in range(len(rel_offsets)):
        acc[:width] = 0.0
        for j in range(0, padded, _TAPS_PER_PASS):
            p = rel_offsets[o] + j
            s0 = plane[p % sps, 2 * (p // sps) :]
            s1 = plane[(p + 1) % sps, 2 * ((p + 1) // sps) :]
            s2 = plane[(p + 2) % sps, 2 * ((p + 2) // sps) :]
            s3 = plane[(p + 3) % sps, 2 * ((p + 3) // sps) :]
            w0, w1, w2, w3 = weights[j], weights[j + 1], weights[j + 2], weights[j + 3]
            for k in range(width):
                acc[k] += s0[k] * w0 + s1[k] * w1 + s2[k] * w2 + s3[k] * w3
        out[o, f, :width] = acc[:width]


@numba.njit(nogil=True, cache=True)
def _matched_kernel(xf, first, frac, rolloff, sps, half, norm, num_symbols, rel_offsets, out
                    ):  # pragma: no cover - compiled
    """:func:`_matched_frame` of every frame f of ``xf`` [F, 2 N] at ``first[f]``."""
    padded = -(-(2 * half + 1) // _TAPS_PER_PASS) * _TAPS_PER_PASS
    rows = _plane_rows(half, sps, num_symbols, rel_offsets.max())
    weights = np.zeros(padded, np.float32)
    trig = _tap_trig(rolloff, sps, half)
    plane = np.empty((sps, 2 * rows), np.float32)
    acc = np.empty(2 * num_symbols, np.float32)
    for f in range(len(first)):
        _matched_frame(xf[f], first[f], frac[f], rolloff, sps, half, norm, trig, num_symbols, rel_offsets,
                       weights, plane, acc, out, f)


def sample_matched(
    x: np.ndarray,
    start_times: np.ndarray,
    num_symbols: int,
    rolloff: float,
    samples_per_symbol: int,
    span_symbols: int,
    shifts: tuple[int, ...] | None = None,
) -> np.ndarray:
    """Matched-filter outputs at ``start_times[f] + k * sps`` for ``k < num_symbols``.

    Each frame has its own fractional delay, hence its own weights; the filter is evaluated
    only at the symbol instants, by a compiled kernel over each frame's polyphase planes
    (numba: a grouped strided convolution in torch, its previous form, spent most of its
    time copying; tests/dsp/test_pulse.py holds the float64 reference). A shift given twice
    is computed once.

    Args:
        x: [F, num_samples] complex64, one segment per frame.
        start_times: [F] float, time (samples, within each segment) of symbol 0.
        num_symbols: symbols to sample per frame.
        shifts: optional integer sample offsets: sample at ``start_times + shift`` for each
            (early/late timing), all in one pass.
    Returns:
        [F, num_symbols] complex64, or [len(shifts), F, num_symbols] when ``shifts`` is
        given. Samples outside a segment count as zeros.
    """
    sps = samples_per_symbol
    offsets = (0,) if shifts is None else tuple(int(s) for s in shifts)
    distinct = sorted(set(offsets))
    lo, hi = distinct[0], distinct[-1]
    frames = x.shape[0]
    start = np.floor(np.asarray(start_times, dtype=np.float64))
    frac = np.asarray(start_times, dtype=np.float64) - start
    half = span_symbols * sps // 2
    ntaps = 2 * half + 1
    need = (num_symbols - 1) * sps + ntaps + hi - lo
    first = start.astype(np.int64) - half + lo
    x = np.ascontiguousarray(x, SAMPLE_DTYPE)
    z = np.empty((len(distinct), frames, num_symbols), SAMPLE_DTYPE)
    if frames and need > 0:
        rel = np.array([o - lo for o in distinct], np.int64)
        _matched_kernel(x.view(np.float32), first, frac, float(rolloff), sps, half,
                        _grid_norm(float(rolloff), sps, half), num_symbols, rel, z.view(np.float32))
    if len(distinct) < len(offsets):
        z = z[[distinct.index(o) for o in offsets]]
    return z[0] if shifts is None else z
