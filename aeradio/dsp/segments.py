"""Frame segments cut out of a stream buffer and derotated by a CFO, in one compiled pass.

``seg[f, k] = x[start[f] + k] exp(-2 pi j cfo_cps[f] k)`` for ``k < length``, zero where
``start[f] + k`` falls before the buffer (a frame reaching back before the stream's first
sample). The numpy model (:func:`derotated_segments_reference`) builds the phasors as a
[frames, length] array (:func:`aeradio.dsp.sync.linear_phasor`) and multiplies frame by
frame: three passes over every frame's samples; the kernel makes one, with the same phasor
(a float32 table of :data:`PHASOR_BLOCK` samples times a phasor per block, both by
recurrence in float64, exact every :data:`RESYNC_BLOCKS` blocks).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from aeradio.core.constants import SAMPLE_DTYPE
from aeradio.dsp.sync import linear_phasor

#: Samples per block of the phasor table.
PHASOR_BLOCK = 64
#: Blocks between exact evaluations of the block phasor.
RESYNC_BLOCKS = 16


@numba.njit(nogil=True, cache=True, fastmath=True)
def _segments_kernel(xf, starts, cfo_cps, length, out):  # pragma: no cover - compiled
    """``out[f]`` (interleaved re, im) for every frame; bounds are the caller's."""
    fr = np.empty(PHASOR_BLOCK, np.float32)
    fi = np.empty(PHASOR_BLOCK, np.float32)
    for f in range(len(starts)):
        a = starts[f]
        w = -2.0 * math.pi * cfo_cps[f]
        # The phasor within a block, as float32 (the model's), by recurrence in float64
        # (trigonometric functions cost more than the rest of the kernel).
        sr, si = math.cos(w), math.sin(w)
        pr, pi = 1.0, 0.0
        for k in range(PHASOR_BLOCK):
            fr[k] = pr
            fi[k] = pi
            pr, pi = pr * sr - pi * si, pr * si + pi * sr
        br, bi = math.cos(w * PHASOR_BLOCK), math.sin(w * PHASOR_BLOCK)
        qr, qi = 1.0, 0.0  # the block's phasor, exact every RESYNC_BLOCKS blocks
        lo = min(max(0, -a), length)  # before the buffer: zeros
        for k in range(lo):
            out[f, 2 * k] = 0.0
            out[f, 2 * k + 1] = 0.0
        for b in range(0, length, PHASOR_BLOCK):
            if b % (RESYNC_BLOCKS * PHASOR_BLOCK) == 0:
                qr, qi = math.cos(w * b), math.sin(w * b)
            cr, ci = np.float32(qr), np.float32(qi)
            qr, qi = qr * br - qi * bi, qr * bi + qi * br
            first = max(lo - b, 0)
            for k in range(first, min(PHASOR_BLOCK, length - b)):
                pr = cr * fr[k] - ci * fi[k]
                pi = cr * fi[k] + ci * fr[k]
                i = 2 * (a + b + k)
                xr, xi = xf[i], xf[i + 1]
                out[f, 2 * (b + k)] = xr * pr - xi * pi
                out[f, 2 * (b + k) + 1] = xr * pi + xi * pr


def derotated_segments(x: np.ndarray, starts: np.ndarray, cfo_cps: np.ndarray, length: int) -> np.ndarray:
    """Segments of ``x`` derotated by their CFO.

    Args:
        x: [N] complex64, the buffer.
        starts: [F] int, first sample of each segment (negative: zeros before the buffer).
        cfo_cps: [F] float, the CFO each segment is derotated by (cycles/sample).
        length: samples per segment; every segment must end within ``x``.
    Returns:
        [F, length] complex64.

    >>> x = np.exp(2j * np.pi * 0.01 * np.arange(100)).astype(np.complex64)
    >>> seg = derotated_segments(x, np.array([-2, 10]), np.array([0.01, 0.01]), 8)
    >>> seg[0, :2].tolist(), bool(np.allclose(seg[1], x[10]))
    ([0j, 0j], True)
    """
    starts = np.asarray(starts, np.int64)
    if len(starts) and int(starts.max()) + length > len(x):
        raise ValueError(f"segments end at {int(starts.max()) + length}, beyond the buffer of {len(x)}")
    out = np.empty((len(starts), length), SAMPLE_DTYPE)
    _segments_kernel(np.ascontiguousarray(x, SAMPLE_DTYPE).view(np.float32), starts,
                     np.asarray(cfo_cps, np.float64), length, out.view(np.float32))
    return out


def derotated_segments_reference(x: np.ndarray, starts: np.ndarray, cfo_cps: np.ndarray, length: int
                                 ) -> np.ndarray:
    """:func:`derotated_segments` by numpy (the model)."""
    seg = linear_phasor(-np.asarray(cfo_cps, np.float64), np.zeros(len(starts)), length)
    for i, a in enumerate(np.asarray(starts, np.int64)):
        lo = min(max(0, -int(a)), length)
        seg[i, :lo] = 0
        if lo < length:
            seg[i, lo:] *= x[a + lo : a + length]
    return seg
