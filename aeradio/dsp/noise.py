"""Gaussian noise at radio rates: draws from a precomputed pool, as GNU Radio's fast noise source.

Drawing Gaussian numbers costs more than the rest of a channel block (numpy's
``standard_normal`` gives 15-25 MS/s of complex64 on the project's machine). A
:class:`GaussianPool` draws ``size`` circular complex Gaussian samples once; each output
sample is the pool entry at an independent uniform random index (64-bit raw draws of the
generator, masked: a pool size is a power of two). Outputs are therefore independent and
identically distributed given the pool: white (distinct outputs are uncorrelated), their
averages converging to the pool's, which are within about ``1 / sqrt(size)`` of the
Gaussian's (power 1 within 0.4 % at the default size).

Unlike GNU Radio's source, the pool does not stay fixed: every draw of ``n`` samples also
redraws ``n / REFRESH_DIVISOR`` pool entries in turn, so over a long run the pool is
renewed (every ``REFRESH_DIVISOR size`` samples) and the noise's distribution, tails
included, is the Gaussian's, not one fixed set of values.
"""

from __future__ import annotations

import numba
import numpy as np

from aeradio.core.constants import SAMPLE_DTYPE

#: Pool entries (complex64: 512 KiB, so random reads stay in a core's L2 cache even on a
#: busy machine: 1.3x the speed of 2**18 entries, measured).
DEFAULT_POOL_SIZE = 1 << 16
#: A draw of n samples renews n / REFRESH_DIVISOR pool entries.
REFRESH_DIVISOR = 64


@numba.njit(nogil=True, cache=True, fastmath=True)
def _add_pooled(x, pool, raw, std, out):  # pragma: no cover - compiled
    """``out[i] = x[i] + std pool[raw[i] mod len(pool)]`` (a power-of-two pool), one pass."""
    mask = np.uint32(len(pool) - 1)
    for i in range(len(x)):
        out[i] = x[i] + std * pool[raw[i] & mask]


class GaussianPool:
    """Circular complex Gaussian samples of unit power, ``E|n|^2 = 1``, from a renewed pool.

    Args:
        rng: the only source of randomness (pool values, indices, renewals).
        size: pool entries, a power of two in [2**10, 2**24].

    >>> pool = GaussianPool(np.random.default_rng(0), size=1 << 12)
    >>> n = pool.draw(100_000)
    >>> n.dtype, round(float(np.mean(np.abs(n) ** 2)), 1)
    (dtype('complex64'), 1.0)
    """

    def __init__(self, rng: np.random.Generator, size: int = DEFAULT_POOL_SIZE) -> None:
        if size & (size - 1) or not 1 << 10 <= size <= 1 << 24:
            raise ValueError(f"pool size must be a power of two in [2**10, 2**24], got {size}")
        self.rng = rng
        self.pool = self._normals(size)
        self.cursor = 0  # the next entry to renew
        self.refresh_credit = 0  # samples drawn since the last renewed entry, < REFRESH_DIVISOR

    def _normals(self, count: int) -> np.ndarray:
        """[count] complex64 circular Gaussian of unit power (each part of variance 1/2)."""
        parts = self.rng.standard_normal(2 * count, dtype=np.float32)
        parts *= np.float32(np.sqrt(0.5))
        return parts.view(SAMPLE_DTYPE)

    def _indices(self, count: int) -> np.ndarray:
        """[count] uint32 uniform random bits (two per 64-bit raw draw); mask to index."""
        return self.rng.bit_generator.random_raw((count + 1) // 2).view(np.uint32)[:count]

    def draw(self, count: int) -> np.ndarray:
        """[count] complex64 noise samples (a new array)."""
        raw = self._indices(count)
        raw &= np.uint32(len(self.pool) - 1)
        out = self.pool[raw]
        self._renew(count)
        return out

    def add_scaled(self, x: np.ndarray, std: float) -> np.ndarray:
        """``x + std n`` for ``x`` [count] complex64 and ``n`` the next ``count`` noise samples
        (the same values as ``x + std * draw(count)``, in one compiled pass; a new array)."""
        x = np.ascontiguousarray(x, dtype=SAMPLE_DTYPE)
        out = np.empty_like(x)
        _add_pooled(x, self.pool, self._indices(len(x)), np.float32(std), out)
        self._renew(len(x))
        return out

    def _renew(self, count: int) -> None:
        """Redraw ``count / REFRESH_DIVISOR`` pool entries, the oldest first."""
        self.refresh_credit += count
        renew = self.refresh_credit // REFRESH_DIVISOR
        self.refresh_credit -= renew * REFRESH_DIVISOR
        size = len(self.pool)
        while renew:
            n = min(renew, size - self.cursor)
            self.pool[self.cursor : self.cursor + n] = self._normals(n)
            self.cursor = (self.cursor + n) % size
            renew -= n


def warm_up() -> None:
    """Compile (or load from numba's cache) the noise kernel now, not in the first block."""
    one = np.zeros(1, SAMPLE_DTYPE)
    _add_pooled(one, one.copy(), np.zeros(1, np.uint32), np.float32(0.0), np.empty_like(one))
