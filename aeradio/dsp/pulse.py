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

    Each frame has its own fractional delay, hence its own weights: the filter runs as a
    grouped strided convolution (torch's ``conv1d``, one group per frame and real or
    imaginary part), evaluated only at the symbol instants.

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
    import torch

    sps = samples_per_symbol
    offsets = (0,) if shifts is None else tuple(int(s) for s in shifts)
    lo, hi = min(offsets), max(offsets)
    frames = x.shape[0]
    start = np.floor(np.asarray(start_times, dtype=np.float64))
    weights, half = matched_filter_weights(start_times - start, rolloff, sps, span_symbols)
    ntaps = 2 * half + 1
    need = (num_symbols - 1) * sps + ntaps + hi - lo
    first = start.astype(np.int64) - half + lo
    if first.min() < 0 or first.max() + need > x.shape[1]:  # windows leave a segment: zeros
        pad = max(0, -int(first.min()))
        x = np.pad(x, ((0, 0), (pad, max(0, int(first.max()) + pad + need - x.shape[1] - pad))))
        first = first + pad
    # Real and imaginary parts as separate channels (the weights are real).
    planar = np.empty((frames, 2, need), np.float32)
    for f, s in enumerate(first):
        v = x[f, s : s + need]
        planar[f, 0] = v.real
        planar[f, 1] = v.imag
    # One output channel per group: torch's fast depthwise path. Several shifts are read
    # off one stride-1 output (cheaper than a kernel per shift).
    stride = math.gcd(sps, *(off - lo for off in offsets))  # sps for one offset
    with torch.inference_mode():
        out = torch.nn.functional.conv1d(
            torch.from_numpy(planar.reshape(1, 2 * frames, need)),
            torch.from_numpy(np.repeat(weights, 2, axis=0)[:, None, :]),
            stride=stride,
            groups=2 * frames,
        ).numpy().reshape(frames, 2, -1)
    z = np.empty((len(offsets), frames, num_symbols), SAMPLE_DTYPE)
    for i, off in enumerate(offsets):
        sel = out[:, :, (off - lo) // stride :: sps // stride][:, :, :num_symbols]
        z[i].real = sel[:, 0]
        z[i].imag = sel[:, 1]
    return z[0] if shifts is None else z
