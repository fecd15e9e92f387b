"""Pure numpy models of what the air and the radios do to a complex baseband signal.

Used by the loopback channel simulator, by the impairment tests of the RX chain and by
the calibration tests, so all three agree on what each impairment means. Each function
takes ``x: [..., num_samples] complex`` and returns the same shape as complex64 unless
noted; randomness only comes from the ``rng`` argument.

They act in the project's one physical order, docs/impairments.md (TX, the air and the
clocks, thermal noise at the receiver input, then the receiver's IQ imbalance and DC).

Models (the calibration estimates their parameters under the same definitions):

- CFO: ``y[n] = x[n] exp(j (2 pi cfo_cps (n + start_index) + phase_rad))``.
- Sample-clock offset: the receiver samples at ``(1 + sco_ppm 1e-6)`` times the TX rate,
  i.e. output sample ``m`` is the input evaluated at time ``m (1 + sco_ppm 1e-6)``.
- IQ imbalance (receiver): ``I' = I``, ``Q' = g (Q cos(phi) - I sin(phi))`` with
  ``g = 10^(gain_db / 20)``, ``phi = phase_deg`` (equivalently ``K1 x + K2 conj(x)``).
- Rapp PA: ``|y| = |x| / (1 + (|x| / A_sat)^(2p))^(1/(2p))``, phase kept.
- Phase noise: a Wiener process whose single-sideband level at ``offset_hz`` is
  ``dbc_hz`` dBc/Hz.
"""

from __future__ import annotations

import math

import numpy as np

from aeradio.core.constants import SAMPLE_DTYPE

#: Half-length (in samples) of the windowed-sinc interpolator used for fractional delay
#: and resampling; 16 taps each side keep the interpolation error below -60 dB for
#: signals within 80 % of Nyquist.
INTERP_HALF_TAPS = 16


def add_awgn(x: np.ndarray, noise_power: float, rng: np.random.Generator) -> np.ndarray:
    """Add circular complex Gaussian noise of total power ``noise_power`` (E|n|^2).

    Each real component gets variance ``noise_power / 2``.
    """
    if noise_power < 0:
        raise ValueError(f"noise_power must be >= 0, got {noise_power}")
    std = math.sqrt(noise_power / 2.0)
    noise = rng.standard_normal((*x.shape, 2), dtype=np.float32) * np.float32(std)
    return (x + noise.view(np.complex64)[..., 0]).astype(SAMPLE_DTYPE, copy=False)


def apply_cfo(
    x: np.ndarray, cfo_cps: float, phase_rad: float = 0.0, start_index: int = 0
) -> np.ndarray:
    """Rotate by a carrier frequency offset ``cfo_cps`` (cycles/sample) and a phase.

    ``start_index`` continues the rotation of a stream split into blocks.
    """
    n = np.arange(x.shape[-1], dtype=np.float64) + start_index
    # Reduce the phase modulo 2 pi in float64 before going to complex64.
    ph = np.mod(2.0 * np.pi * cfo_cps * n + phase_rad, 2.0 * np.pi)
    return (x * np.exp(1j * ph).astype(SAMPLE_DTYPE)).astype(SAMPLE_DTYPE, copy=False)


def interp_kernel(frac: np.ndarray, half_taps: int) -> np.ndarray:
    """Blackman-windowed sinc weights ``[len(frac), 2 half_taps]`` float64 for the fractional
    offsets ``frac`` ([n] float, in [0, 1)): column ``i`` weighs the input sample
    ``floor(t) - half_taps + 1 + i``."""
    k = np.arange(-half_taps + 1, half_taps + 1, dtype=np.float64)
    t = k[None, :] - frac[:, None]
    window = 0.42 + 0.5 * np.cos(np.pi * t / half_taps) + 0.08 * np.cos(2 * np.pi * t / half_taps)
    window[np.abs(t) >= half_taps] = 0.0
    return np.sinc(t) * window


#: Output samples interpolated per pass: bounds the ``[chunk, 2 half_taps]`` index, weight
#: and gather matrices (~100 MB at the default 32 taps), whatever the input length.
INTERP_CHUNK_SAMPLES = 1 << 18


def interpolate_at(x: np.ndarray, times: np.ndarray, half_taps: int = INTERP_HALF_TAPS) -> np.ndarray:
    """Evaluate the band-limited signal ``x`` (1-D) at fractional sample ``times``.

    Times outside ``[0, len(x) - 1]`` see zeros beyond the edges. ``[len(times)]`` complex64
    out, computed :data:`INTERP_CHUNK_SAMPLES` at a time so memory stays bounded.
    """
    x = np.asarray(x)
    times = np.asarray(times, dtype=np.float64)
    out = np.empty(len(times), SAMPLE_DTYPE)
    offsets = np.arange(-half_taps + 1, half_taps + 1)
    last = max(x.shape[-1] - 1, 0)
    for start in range(0, len(times), INTERP_CHUNK_SAMPLES):
        t = times[start : start + INTERP_CHUNK_SAMPLES]
        base = np.floor(t).astype(np.int64)
        idx = base[:, None] + offsets[None, :]
        valid = (idx >= 0) & (idx < x.shape[-1])
        gathered = np.where(valid, x[np.clip(idx, 0, last)], 0).astype(SAMPLE_DTYPE)
        # Sinc weights are applied in float32: enough for -60 dB interpolation error.
        w = interp_kernel(t - base, half_taps).astype(np.float32)
        out[start : start + len(t)] = np.einsum("ij,ij->i", gathered, w)
    return out


def apply_delay(x: np.ndarray, delay_samples: float) -> np.ndarray:
    """Delay a 1-D signal by a (fractional) number of samples; the length is kept."""
    times = np.arange(x.shape[-1], dtype=np.float64) - delay_samples
    return interpolate_at(x, times)


def apply_sco(x: np.ndarray, sco_ppm: float, start_time: float = 0.0) -> np.ndarray:
    """Resample a 1-D signal as a receiver whose clock is ``sco_ppm`` fast would see it.

    Output sample ``m`` is ``x`` at time ``start_time + m (1 + sco_ppm 1e-6)``; the output
    stops where that time leaves the input.
    """
    ratio = 1.0 + sco_ppm * 1e-6
    count = int(math.floor((x.shape[-1] - 1 - start_time) / ratio)) + 1
    times = start_time + np.arange(max(count, 0), dtype=np.float64) * ratio
    return interpolate_at(x, times)


def apply_multipath(x: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """Convolve with complex channel taps (tap 0 is the direct path); length is kept."""
    taps = np.asarray(taps, dtype=np.complex128)
    return np.convolve(x, taps)[: x.shape[-1]].astype(SAMPLE_DTYPE)


def iq_imbalance_coefficients(gain_db: float, phase_deg: float) -> tuple[complex, complex]:
    """``(K1, K2)`` with ``y = K1 x + K2 conj(x)`` for the receiver IQ imbalance model."""
    g = 10.0 ** (gain_db / 20.0)
    phi = math.radians(phase_deg)
    k1 = (1.0 + g * complex(math.cos(phi), -math.sin(phi))) / 2.0
    k2 = (1.0 - g * complex(math.cos(phi), math.sin(phi))) / 2.0
    return k1, k2


def apply_iq_imbalance(x: np.ndarray, gain_db: float, phase_deg: float) -> np.ndarray:
    """Receiver IQ imbalance: ``I' = I``, ``Q' = g (Q cos(phi) - I sin(phi))``."""
    k1, k2 = iq_imbalance_coefficients(gain_db, phase_deg)
    return (k1 * x + k2 * np.conj(x)).astype(SAMPLE_DTYPE)


def apply_dc_offset(x: np.ndarray, dc: complex) -> np.ndarray:
    """Add a constant complex DC offset."""
    return (x + np.complex64(dc)).astype(SAMPLE_DTYPE, copy=False)


def apply_rapp(x: np.ndarray, p: float, saturation_amplitude: float) -> np.ndarray:
    """Rapp solid-state PA model (AM/AM only): smooth clipping at ``saturation_amplitude``."""
    a = np.abs(x).astype(np.float64)
    gain = 1.0 / (1.0 + (a / saturation_amplitude) ** (2.0 * p)) ** (1.0 / (2.0 * p))
    return (x * gain).astype(SAMPLE_DTYPE)


def phase_noise_std_per_sample(dbc_hz: float, offset_hz: float, sample_rate_hz: float) -> float:
    """Per-sample phase increment std (rad) of a Wiener process with ``L(offset_hz) = dbc_hz``.

    A Wiener phase with Lorentzian linewidth ``dv`` has ``L(f) = dv / (2 pi f^2)`` and a
    per-sample increment variance ``2 pi dv / fs``.
    """
    linewidth_hz = 2.0 * math.pi * offset_hz**2 * 10.0 ** (dbc_hz / 10.0)
    return math.sqrt(2.0 * math.pi * linewidth_hz / sample_rate_hz)


def apply_phase_noise(
    x: np.ndarray, std_rad_per_sample: float, rng: np.random.Generator, phase0_rad: float = 0.0
) -> tuple[np.ndarray, float]:
    """Multiply by ``exp(j phi[n])`` with Wiener phase ``phi``; returns ``(y, last_phase)``.

    Pass ``last_phase`` back as ``phase0_rad`` to continue across blocks.
    """
    steps = rng.standard_normal(x.shape[-1]) * std_rad_per_sample
    phase = phase0_rad + np.cumsum(steps)
    y = (x * np.exp(1j * phase)).astype(SAMPLE_DTYPE)
    last = float(phase[-1]) if phase.size else phase0_rad
    return y, last
