"""Fractional resampling at radio rates: a polyphase windowed-sinc interpolator, compiled.

The model is :func:`aeradio.dsp.impairments.interpolate_at` (a Blackman-windowed sinc of
``2 half_taps`` taps): the output at the fractional input time ``t`` is
``sum_j h(j - f) x[b + j]``, ``b = floor(t)``, ``f = t - b``, ``j`` in ``[-half_taps + 1,
half_taps]``. Here ``h`` is tabulated at :data:`PHASES` fractions ``f = p / PHASES`` and
interpolated linearly between the two nearest ones (as GNU Radio's ``pfb_arb_resampler``
does between its filters): the kernel error is below 3e-6 per tap, the output within 1e-5
of the reference for a unit-power signal (tests/dsp/test_resample.py).

Output times are ``t0 + m ratio`` (``ratio = 1 + sco_ppm 1e-6`` for a sample-clock offset).
The fraction then drifts by ``ratio - 1`` per output, so the phase ``p`` stays the same over
runs of ``1 / (PHASES |ratio - 1|)`` outputs (about 100 at 20 ppm, the whole block at 0
ppm): a run is two plain FIRs over contiguous samples (the two neighbouring phases), which
the compiler vectorizes; runs shorter than :data:`MIN_RUN_OUTPUTS` (large clock offsets)
are computed output by output.

Why numba: numpy has no fast time-varying FIR. Measured on the project's 2-core machine, a
single 32-tap FIR of complex64 runs at 5-20 MS/s whatever the numpy or scipy route
(``np.convolve``, ``scipy.ndimage.correlate1d``, ``lfilter``, FFT overlap-add, a block-
Toeplitz matrix product), and the previous Farrow structure needed nine of them per sample
(3.7 MS/s at 20 ppm); this kernel does 12-20x that on the same machine (docs/impairments.md).
The kernel is compiled once per machine (cached next to this module, or in numba's user
cache when that is read-only); :func:`warm_up` does it before a stream starts.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from aeradio.core.constants import SAMPLE_DTYPE
from aeradio.dsp.impairments import INTERP_HALF_TAPS, interp_kernel

#: Fractions at which the interpolation kernel is tabulated (linear in between).
PHASES = 512
#: Runs of one phase shorter than this are computed output by output.
MIN_RUN_OUTPUTS = 16


def polyphase_table(half_taps: int = INTERP_HALF_TAPS, phases: int = PHASES) -> np.ndarray:
    """``[phases + 1, 2 half_taps]`` float32: row ``p`` is the kernel at fraction ``p / phases``.

    Row ``phases`` (fraction 1) closes the last interval.

    >>> table = polyphase_table(4, 8)
    >>> table.shape, float(table[0, 3])  # fraction 0: the sample itself
    ((9, 8), 1.0)
    """
    return interp_kernel(np.arange(phases + 1) / phases, half_taps).astype(np.float32)


@numba.njit(nogil=True, cache=True, fastmath=True)
def _resample_kernel(xf, t0, ratio, count, table, half_taps, out_f, acc):  # pragma: no cover - compiled
    """``out_f[2m], out_f[2m+1]`` = re, im of ``x`` at ``t0 + m ratio``, m < count.

    ``xf``: the input as interleaved float32 (re, im); ``acc``: scratch of 2 count floats.
    Bounds are the caller's (:func:`resample_into`).
    """
    phases = table.shape[0] - 1
    taps = table.shape[1]
    m = 0
    while m < count:
        t = t0 + m * ratio
        b = math.floor(t)
        p = min(int((t - b) * phases), phases - 1)
        end = m + 1  # the run: same phase, input base advancing by one per output
        while end < count:
            te = t0 + end * ratio
            be = math.floor(te)
            if be != b + (end - m) or int((te - be) * phases) != p:
                break
            end += 1
        s0 = 2 * (b - half_taps + 1)
        if end - m < MIN_RUN_OUTPUTS:
            for k in range(m, end):
                tk = t0 + k * ratio
                bk = math.floor(tk)
                a = np.float32((tk - bk) * phases - p)
                xs = xf[2 * (bk - half_taps + 1) : 2 * (bk + half_taps + 1)]
                re = np.float32(0.0)
                im = np.float32(0.0)
                for j in range(taps):
                    w = table[p, j] + a * (table[p + 1, j] - table[p, j])
                    re += w * xs[2 * j]
                    im += w * xs[2 * j + 1]
                out_f[2 * k] = re
                out_f[2 * k + 1] = im
            m = end
            continue
        n2 = 2 * (end - m)
        seg = out_f[2 * m : 2 * m + n2]
        dseg = acc[:n2]
        seg[:] = 0.0
        dseg[:] = 0.0
        # Two FIRs over the run: phase p (seg) and the step to phase p + 1 (dseg), four taps
        # per pass so each pass loads and stores the accumulators once for four taps.
        for j in range(0, taps, 4):
            w0 = table[p, j]
            w1 = table[p, j + 1]
            w2 = table[p, j + 2]
            w3 = table[p, j + 3]
            d0 = table[p + 1, j] - w0
            d1 = table[p + 1, j + 1] - w1
            d2 = table[p + 1, j + 2] - w2
            d3 = table[p + 1, j + 3] - w3
            x0 = xf[s0 + 2 * j : s0 + 2 * j + n2]
            x1 = xf[s0 + 2 * j + 2 : s0 + 2 * j + 2 + n2]
            x2 = xf[s0 + 2 * j + 4 : s0 + 2 * j + 4 + n2]
            x3 = xf[s0 + 2 * j + 6 : s0 + 2 * j + 6 + n2]
            for i in range(n2):
                seg[i] += w0 * x0[i] + w1 * x1[i] + w2 * x2[i] + w3 * x3[i]
                dseg[i] += d0 * x0[i] + d1 * x1[i] + d2 * x2[i] + d3 * x3[i]
        for k in range(end - m):
            tk = t0 + (m + k) * ratio
            a = np.float32((tk - math.floor(tk)) * phases - p)
            seg[2 * k] += a * dseg[2 * k]
            seg[2 * k + 1] += a * dseg[2 * k + 1]
        m = end


def resample_into(
    x: np.ndarray, t0: float, ratio: float, out: np.ndarray, table: np.ndarray | None = None
) -> np.ndarray:
    """Fill ``out`` with ``x`` evaluated at the fractional times ``t0 + m ratio``.

    Args:
        x: [n] complex64, contiguous.
        t0: the first output's time, in input samples; ``t0 >= half_taps - 1``.
        ratio: input samples per output sample, in [0.5, 2].
        out: [count] complex64, contiguous; the last time ``t0 + (count - 1) ratio`` must
            stay below ``n - half_taps`` (every tap inside ``x``).
        table: :func:`polyphase_table` (the default table when None).
    Returns:
        ``out``.
    """
    if table is None:
        table = _default_table()
    half_taps = table.shape[1] // 2
    if table.dtype != np.float32 or table.shape[1] % 4 or table.shape[0] < 2:
        raise ValueError(f"table must be [phases + 1, 4 k] float32, got {table.shape} {table.dtype}")
    arrays_ok = all(a.dtype == SAMPLE_DTYPE and a.flags.c_contiguous for a in (x, out))
    if not arrays_ok:
        raise ValueError("x and out must be contiguous complex64")
    if not 0.5 <= ratio <= 2.0:
        raise ValueError(f"ratio must be in [0.5, 2], got {ratio}")
    count = len(out)
    if count:
        last = t0 + (count - 1) * ratio
        if t0 < half_taps - 1 or last >= len(x) - half_taps:
            raise ValueError(
                f"times [{t0}, {last}] need input samples outside [0, {len(x)}) ({half_taps} taps each side)"
            )
        acc = np.empty(2 * count, np.float32)
        _resample_kernel(x.view(np.float32), float(t0), float(ratio), count, table, half_taps,
                         out.view(np.float32), acc)
    return out


_TABLES: dict[int, np.ndarray] = {}


def _default_table() -> np.ndarray:
    if INTERP_HALF_TAPS not in _TABLES:
        _TABLES[INTERP_HALF_TAPS] = polyphase_table()
    return _TABLES[INTERP_HALF_TAPS]


def warm_up() -> None:
    """Compile (or load from numba's cache) the kernel now, not in the first block."""
    x = np.zeros(4 * INTERP_HALF_TAPS, SAMPLE_DTYPE)
    resample_into(x, float(INTERP_HALF_TAPS), 1.0001, np.empty(4, SAMPLE_DTYPE))
