"""Probe frames: known i.i.d. payload symbols over the amplitude range the transmitter may use.

A learned channel model (``aeradio channel-model fit``) must see inputs away from today's
LUT points, or end-to-end fine-tuning could move the LUT where the model knows nothing.
``aeradio tx --pattern probe`` therefore sends frames whose payload symbols are drawn i.i.d.
(not LUT rows), known to any receiver from the frame's header alone, like test patterns:

- header: payload kind :data:`~aeradio.dsp.framing.PAYLOAD_PROBE`; the 12-bit ``length``
  field carries the probe seed (as it carries a test pattern's seed), the sequence number
  as usual;
- symbols: phase uniform in [0, 2 pi); amplitude ``r = R u^(1/a)`` with u uniform in
  (0, 1], so the symbols fill the disc of radius ``R`` (:func:`probe_radius`: the peak
  amplitude the transmitter may use) with density proportional to ``r^(a - 2)``, and
  ``a = 2 / (R^2 - 1)`` makes ``E|x|^2 = R^2 a / (a + 2) = 1``: the probes keep the power
  normalization of the LUT (mean energy 1 per complex use), so the power amplifier is
  driven as by data. ``R = sqrt(2)`` is the uniform disc; a larger R puts more symbols near
  the centre and a few out to R. ``R = 1`` (a constant-modulus peak limit) is the unit circle.
- randomness: a PCG64 stream keyed by (seed, seq mod 2**16) (numpy's ``default_rng`` of a
  fixed key is stable across platforms and numpy versions).

>>> x = probe_symbols(7, 3, 10000, radius=2.0)
>>> x.dtype, x.shape, bool(np.abs(x).max() <= 2.0), round(float(np.mean(np.abs(x) ** 2)), 1)
(dtype('complex64'), (10000,), True, 1.0)
>>> bool(np.array_equal(probe_symbols(7, 3, 5, 2.0), probe_symbols(7, 3 + 65536, 5, 2.0)))
True
"""

from __future__ import annotations

import math

import numpy as np

from aeradio.core.config import LinkConfig
from aeradio.core.constants import SAMPLE_DTYPE
from aeradio.core.errors import check_range
from aeradio.dsp.framing import (
    LAST_FLAG,
    MAX_TEST_PATTERN_SEED,
    PAYLOAD_PROBE,
    PAYLOAD_TEST_PATTERN,
    SEQ_MODULUS,
    Header,
)

#: Key of the probe streams (tells them apart from any other stream of the same seed).
_PROBE_KEY = 0x9B0B
#: Probe radius (peak amplitude) used when the LUT's own peak is lower: the uniform disc
#: of mean energy 1, so a constant-modulus LUT (QPSK-like) still gets amplitudes to learn.
MIN_PROBE_RADIUS = math.sqrt(2.0)


def probe_radius(config: LinkConfig, lut: np.ndarray) -> float:
    """The peak amplitude probes reach: ``[model] peak_amplitude`` for a peak-limited model
    (the transmitter may use up to it), otherwise the larger of the LUT's peak ``max |x|``
    and :data:`MIN_PROBE_RADIUS`."""
    if config.model.normalization == "peak":
        return float(config.model.peak_amplitude)
    return max(float(np.max(np.abs(lut))), MIN_PROBE_RADIUS)


def probe_symbols(seed: int, seq: int, count: int, radius: float) -> np.ndarray:
    """The ``count`` payload symbols of probe frame ``seq`` (its low 16 bits count).

    Args:
        seed: probe seed in [0, 4095] (it travels in the header's ``length`` field).
        seq: the frame's sequence number (>= 0).
        count: payload symbols per frame (blocks x n).
        radius: the peak amplitude R >= 1 (:func:`probe_radius`).
    Returns:
        [count] complex64, ``|x| <= R``, ``E|x|^2 = 1`` (module docstring).
    """
    check_range("probe seed", seed, 0, MAX_TEST_PATTERN_SEED)
    check_range("probe radius", radius, 1.0, 1e3)
    rng = np.random.default_rng([_PROBE_KEY, seed, int(seq) % SEQ_MODULUS])
    u = 1.0 - rng.random(count)  # (0, 1]
    phase = rng.random(count) * (2 * math.pi)
    excess = radius * radius - 1.0
    r = np.full(count, radius) if excess < 1e-9 else radius * u ** (excess / 2.0)
    return (r * np.exp(1j * phase)).astype(SAMPLE_DTYPE)


def probe_header(seq: int, seed: int, model_hash: int, *, last: bool = False) -> Header:
    """A probe frame's header (``seq`` taken modulo 2**16; ``seed`` in [0, 4095] in ``length``)."""
    check_range("probe seed", seed, 0, MAX_TEST_PATTERN_SEED)
    return Header(seq % SEQ_MODULUS, PAYLOAD_PROBE | (LAST_FLAG if last else 0), seed, model_hash)


def frame_seed(header: Header) -> int | None:
    """The seed a test-pattern or probe frame's payload follows from; None for others."""
    return header.length if header.payload in (PAYLOAD_TEST_PATTERN, PAYLOAD_PROBE) else None
