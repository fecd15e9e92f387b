"""Maximum-likelihood (minimum Euclidean distance) detection of a LUT, numpy only.

On AWGN, ``argmin_m |y - x_m|^2 = argmax_m (2 Re<y, x_m> - |x_m|^2)``, one real matrix
product per chunk of blocks.

>>> lut = np.array([[1], [1j], [-1], [-1j]], dtype=np.complex64)
>>> ml_detect(np.array([[0.9 + 0.2j], [-0.1 - 2j]], dtype=np.complex64), lut)
array([0, 3])
"""

from __future__ import annotations

import numpy as np

#: Blocks per matrix product (bounds the [chunk, M] score matrix in memory).
CHUNK_BLOCKS = 16384


def _as_real(a: np.ndarray) -> np.ndarray:
    """``[B, n]`` complex -> ``[B, 2n]`` float32, (re, im) interleaved."""
    a = np.ascontiguousarray(a, dtype=np.complex64)
    return a.view(np.float32).reshape(a.shape[0], -1)


def ml_detect(y: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """Index of the nearest LUT row for each block.

    ``y``: ``[B, n]`` complex, ``lut``: ``[M, n]`` complex -> ``[B]`` int64.
    """
    y = np.atleast_2d(y)
    if y.shape[1] != lut.shape[1]:
        raise ValueError(f"y has {y.shape[1]} symbols per block, the LUT {lut.shape[1]}")
    lut_real = _as_real(lut)
    energy = np.sum(lut_real.astype(np.float64) ** 2, axis=1).astype(np.float32)
    weights = 2.0 * lut_real.T
    out = np.empty(y.shape[0], dtype=np.int64)
    for start in range(0, y.shape[0], CHUNK_BLOCKS):
        yr = _as_real(y[start : start + CHUNK_BLOCKS])
        out[start : start + yr.shape[0]] = np.argmax(yr @ weights - energy, axis=1)
    return out
