"""The calibration burst: what ``aeradio calibrate tx`` sends and ``calibrate rx`` measures.

One burst is, in order (lengths in samples, defaults of :class:`BurstLayout`)::

    | CP 64 | sync 512 | silence 8192 | tone +1/8 cps 32768 | tone -1/8 cps 32768 | tail 256 |

- **sync**: a periodic, band-limited constant-amplitude-spectrum sequence (a Zadoff-Chu
  sequence on the frequency bins ``0 < |k| <= 0.375 Ls``, no DC bin) preceded by a cyclic
  prefix. It is found by a CFO-tolerant segmented correlation (burst detection and
  coarse timing) and, thanks to the prefix, a window of one period is a circular
  shift of it, so the fractional delay is the phase slope of the cross-spectrum.
- **silence**: nothing is sent: the receiver sees its DC offset plus noise only (noise
  floor, DC, and the noise's own IQ moments, subtracted from the tones' moments).
- **two tones** at ``+f`` and ``-f`` cycles/sample, each with raised-cosine ramps: a
  receiver sees them at ``+f (1 + sco) + cfo`` and ``-f (1 + sco) + cfo``, so their sum
  gives the CFO and their difference the sample-clock offset; being circular signals
  (``E[x^2] = 0``) they also carry the IQ imbalance in their second moments.
- **tail**: silence separating consecutive bursts.

Bursts are sent back to back, so the burst period is :attr:`BurstLayout.length`.
All samples are ``complex64`` with RMS :attr:`BurstLayout.amplitude` over the active parts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from aeradio.core.constants import SAMPLE_DTYPE
from aeradio.core.errors import check_range

#: Fraction of the band the sync sequence occupies on each side of DC (|f| <= 0.375
#: cycles/sample keeps it inside the 80 % of Nyquist where resampling is accurate).
SYNC_BAND_FRACTION = 0.375
#: Zadoff-Chu root of the sync sequence's spectrum (root 1: lowest peak, 1.37 x RMS).
SYNC_ZC_ROOT = 1


@dataclass(frozen=True)
class BurstLayout:
    """Lengths (samples), tone frequency (cycles/sample) and amplitude of the burst."""

    cp_samples: int = 64
    sync_samples: int = 512
    silence_samples: int = 8192
    tone_samples: int = 32768
    tail_samples: int = 256
    #: The two tones sit at +tone_cps and -tone_cps.
    tone_cps: float = 0.125
    #: Raised-cosine ramp at each edge of each tone (excluded from the estimates).
    ramp_samples: int = 128
    #: RMS amplitude (full scale = 1) of the sync sequence and of the tones.
    amplitude: float = 0.5

    def __post_init__(self) -> None:
        check_range("burst.cp_samples", self.cp_samples, 32, 4096)
        check_range("burst.sync_samples", self.sync_samples, 64, 65536)
        check_range("burst.cp_samples", self.cp_samples, 32, self.sync_samples)
        check_range("burst.silence_samples", self.silence_samples, 256, 1 << 22)
        check_range("burst.tone_samples", self.tone_samples, 1024, 1 << 24)
        check_range("burst.tail_samples", self.tail_samples, 0, 1 << 22)
        check_range("burst.tone_cps", self.tone_cps, 0.01, 0.3, unit="cycles/sample")
        check_range("burst.ramp_samples", self.ramp_samples, 0, self.tone_samples // 8)
        check_range("burst.amplitude", self.amplitude, 1e-3, 0.7)

    @property
    def sync_start(self) -> int:
        """Index of the first sample of the sync period (after the prefix) in the burst."""
        return self.cp_samples

    @property
    def silence_start(self) -> int:
        return self.cp_samples + self.sync_samples

    @property
    def tone_starts(self) -> tuple[int, int]:
        """Indices of the first samples of the +f tone and of the -f tone."""
        first = self.silence_start + self.silence_samples
        return first, first + self.tone_samples

    @property
    def length(self) -> int:
        """Samples in one burst (= the period of back-to-back bursts)."""
        return self.tone_starts[1] + self.tone_samples + self.tail_samples


def sync_sequence(layout: BurstLayout) -> np.ndarray:
    """One period of the sync sequence: ``[sync_samples]`` complex64, RMS ``amplitude``.

    Zero at DC, flat magnitude spectrum on ``0 < |k| <= SYNC_BAND_FRACTION * sync_samples``.
    """
    n = layout.sync_samples
    half = int(SYNC_BAND_FRACTION * n)
    bins = np.concatenate([np.arange(1, half + 1), np.arange(-half, 0)])
    m = np.arange(bins.size, dtype=np.float64)
    # A Zadoff-Chu sequence has constant magnitude and low PAPR once transformed.
    zc_len = bins.size + 1 if bins.size % 2 == 0 else bins.size
    spectrum = np.zeros(n, dtype=np.complex128)
    spectrum[bins % n] = np.exp(-1j * math.pi * SYNC_ZC_ROOT * m * (m + 1) / zc_len)
    seq = np.fft.ifft(spectrum)
    seq *= layout.amplitude / np.sqrt(np.mean(np.abs(seq) ** 2))
    return seq.astype(SAMPLE_DTYPE)


def _ramped_tone(layout: BurstLayout, freq_cps: float) -> np.ndarray:
    n = np.arange(layout.tone_samples, dtype=np.float64)
    tone = layout.amplitude * np.exp(2j * math.pi * freq_cps * n)
    r = layout.ramp_samples
    if r:
        ramp = 0.5 - 0.5 * np.cos(math.pi * (np.arange(r) + 0.5) / r)
        tone[:r] *= ramp
        tone[-r:] *= ramp[::-1]
    return tone


def calibration_burst(layout: BurstLayout | None = None) -> np.ndarray:
    """One calibration burst: ``[layout.length]`` complex64, peak amplitude below 1.

    >>> burst = calibration_burst()
    >>> burst.dtype, burst.size == BurstLayout().length
    (dtype('complex64'), True)
    """
    layout = layout or BurstLayout()
    out = np.zeros(layout.length, dtype=np.complex128)
    seq = sync_sequence(layout).astype(np.complex128)
    out[: layout.cp_samples] = seq[-layout.cp_samples :]
    out[layout.sync_start : layout.sync_start + layout.sync_samples] = seq
    for start, sign in zip(layout.tone_starts, (1.0, -1.0), strict=True):
        out[start : start + layout.tone_samples] = _ramped_tone(layout, sign * layout.tone_cps)
    return out.astype(SAMPLE_DTYPE)
