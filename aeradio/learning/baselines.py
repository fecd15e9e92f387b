"""Classical baselines under the project's energy convention (docs/contracts.md).

E|x|^2 = 1 per complex channel use, noise variance per real component 1 / (2 R Eb/N0).
Each baseline is a LUT (so Monte Carlo reuses :func:`~aeradio.dsp.detection.ml_detect`)
and, where one exists, an exact error-rate formula:

- BPSK (R = 1, real axis only), QPSK (R = 2) and square 16-QAM (R = 4), n = 1.
- Hamming(7,4) on I and on Q of 7 complex uses (R = 8/7, 256 messages): soft ML decoding
  is ML detection of the 256-row LUT (I and Q decode independently); hard decisions use
  syndrome decoding of each 7-bit word.

>>> round(float(qpsk_ser(6.0)), 4)
0.0048
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import erfc

from aeradio.core.constants import SAMPLE_DTYPE

#: Generator matrix of the systematic Hamming(7,4) code (data bits first).
HAMMING74_G = np.array(
    [
        [1, 0, 0, 0, 1, 1, 0],
        [0, 1, 0, 0, 1, 0, 1],
        [0, 0, 1, 0, 0, 1, 1],
        [0, 0, 0, 1, 1, 1, 1],
    ],
    dtype=np.int64,
)
#: Parity-check matrix matching :data:`HAMMING74_G`.
HAMMING74_H = np.concatenate([HAMMING74_G[:, 4:].T, np.eye(3, dtype=np.int64)], axis=1)


def q_function(x: float | np.ndarray) -> float | np.ndarray:
    """Gaussian tail probability Q(x)."""
    return 0.5 * erfc(np.asarray(x) / math.sqrt(2.0))


def _ebn0(ebn0_db: float | np.ndarray) -> np.ndarray:
    return 10.0 ** (np.asarray(ebn0_db, dtype=np.float64) / 10.0)


def bpsk_ber(ebn0_db: float | np.ndarray) -> float | np.ndarray:
    """Uncoded BPSK bit (= symbol) error rate, Q(sqrt(2 Eb/N0))."""
    return q_function(np.sqrt(2.0 * _ebn0(ebn0_db)))


def qpsk_ser(ebn0_db: float | np.ndarray) -> float | np.ndarray:
    """QPSK symbol error rate, 2q - q^2 with q = Q(sqrt(2 Eb/N0))."""
    q = bpsk_ber(ebn0_db)
    return 2.0 * q - q * q


def qam16_ser(ebn0_db: float | np.ndarray) -> float | np.ndarray:
    """Square 16-QAM symbol error rate (exact): 1 - (1 - p)^2, p = 1.5 Q(sqrt(Es/N0 / 5))."""
    p = 1.5 * q_function(np.sqrt(4.0 * _ebn0(ebn0_db) / 5.0))
    return 1.0 - (1.0 - p) ** 2


def hamming74_hard_bler(ebn0_db: float | np.ndarray) -> float | np.ndarray:
    """BLER of the Hamming(7,4) pair with hard decisions (exact: each word fails on >= 2 bit errors)."""
    p = q_function(np.sqrt(2.0 * (4.0 / 7.0) * _ebn0(ebn0_db)))
    word_ok = (1.0 - p) ** 7 + 7.0 * p * (1.0 - p) ** 6
    return 1.0 - word_ok**2


def bpsk_lut() -> np.ndarray:
    """``[2, 1]`` complex64: +-1."""
    return np.array([[1.0], [-1.0]], dtype=SAMPLE_DTYPE)


def qpsk_lut() -> np.ndarray:
    """``[4, 1]`` complex64, Gray-labelled, unit energy."""
    bits = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    pts = ((1 - 2 * bits[:, 0]) + 1j * (1 - 2 * bits[:, 1])) / math.sqrt(2.0)
    return pts.reshape(4, 1).astype(SAMPLE_DTYPE)


def qam16_lut() -> np.ndarray:
    """``[16, 1]`` complex64 square 16-QAM, unit mean energy."""
    levels = np.array([-3.0, -1.0, 1.0, 3.0])
    pts = (levels[:, None] + 1j * levels[None, :]).reshape(-1) / math.sqrt(10.0)
    return pts.reshape(16, 1).astype(SAMPLE_DTYPE)


def hamming74_codewords() -> np.ndarray:
    """``[16, 7]`` int64 codewords, row d = codeword of the data bits of d (MSB first)."""
    data = (np.arange(16)[:, None] >> np.arange(3, -1, -1)) & 1
    return (data @ HAMMING74_G) % 2


def hamming74_lut() -> np.ndarray:
    """``[16, 7]`` complex64: one Hamming word, BPSK on I only (R = 4/7), O'Shea and Hoydis' (7,4)."""
    return (1.0 - 2.0 * hamming74_codewords()).astype(SAMPLE_DTYPE)


def hamming74_pair_lut() -> np.ndarray:
    """``[256, 7]`` complex64: message m = 16 a + b sends word a on I and word b on Q."""
    bpsk = hamming74_lut().real / math.sqrt(2.0)
    lut = bpsk[:, None, :] + 1j * bpsk[None, :, :]
    return lut.reshape(256, 7).astype(SAMPLE_DTYPE)


def reference_luts(k: int, n: int) -> dict[str, np.ndarray]:
    """Classical LUTs with the same (k, n) as an autoencoder, by name (may be empty).

    >>> sorted(reference_luts(8, 7))
    ['Hamming(7,4) I+Q soft-MLD']
    """
    table = {
        (1, 1): {"BPSK": bpsk_lut},
        (2, 1): {"QPSK": qpsk_lut},
        (4, 1): {"16-QAM": qam16_lut},
        (4, 7): {"Hamming(7,4) soft-MLD": hamming74_lut},
        (8, 7): {"Hamming(7,4) I+Q soft-MLD": hamming74_pair_lut},
    }
    return {name: make() for name, make in table.get((k, n), {}).items()}


def union_bound_bler(lut: np.ndarray, ebn0_db: float, rate: float) -> float:
    """Union bound on the ML block error rate of ``lut`` ``[M, n]`` complex on AWGN.

    ``(1/M) sum_m sum_{m' != m} Q(d_mm' / (2 sigma))``, sigma^2 = the noise variance per
    real component at ``ebn0_db`` and ``rate`` (bits per complex use). An upper bound, tight
    at low BLER (within a few percent of the Monte Carlo at 1e-3 for AE(7,8)): deterministic
    and cheap (M^2 distances), so it compares LUTs that differ by hundredths of a dB.

    >>> bool(np.isclose(union_bound_bler(bpsk_lut(), 6.0, 1.0), bpsk_ber(6.0)))  # one neighbour: exact
    True
    """
    from aeradio.core.units import noise_var_per_real

    sigma = math.sqrt(noise_var_per_real(ebn0_db, rate))
    return float(q_function(_pair_distances(lut) / (2.0 * sigma)).sum() / lut.shape[0])


def _pair_distances(lut: np.ndarray) -> np.ndarray:
    """Euclidean distances between distinct rows of ``lut`` ``[M, n]`` complex, float64 ``[M (M-1)]``."""
    x = np.concatenate([lut.real, lut.imag], axis=1).astype(np.float64)
    sq = np.sum(x * x, axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * (x @ x.T), 0.0)
    return np.sqrt(d2[~np.eye(len(x), dtype=bool)])


def union_bound_ebn0_db(lut: np.ndarray, rate: float, bler: float) -> float:
    """Eb/N0 (dB) where :func:`union_bound_bler` of ``lut`` equals ``bler`` (bisection to 1e-4 dB)."""
    lo, hi = -10.0, 40.0
    if not union_bound_bler(lut, hi, rate) < bler:
        raise ValueError(f"the union bound of this LUT stays above {bler:g} up to {hi:g} dB")
    while hi - lo > 1e-4:
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if union_bound_bler(lut, mid, rate) > bler else (lo, mid)
    return 0.5 * (lo + hi)


def analytic_curves(k: int, n: int, ebn0_db: np.ndarray) -> dict[str, np.ndarray]:
    """Exact BLER/SER formulas of the classical schemes with the same (k, n), by name."""
    table = {
        (1, 1): {"BPSK (analytic)": bpsk_ber},
        (2, 1): {"QPSK (analytic)": qpsk_ser},
        (4, 1): {"16-QAM (analytic)": qam16_ser},
        (8, 7): {"Hamming(7,4) I+Q hard (analytic)": hamming74_hard_bler},
    }
    return {name: np.asarray(f(ebn0_db)) for name, f in table.get((k, n), {}).items()}
