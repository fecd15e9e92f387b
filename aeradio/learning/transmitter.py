"""The learned transmitter: an embedding of M messages to n complex symbols.

The embedding is normalized deterministically over the whole table (never with batch
statistics), so the LUT used in training is the LUT deployed. Each ``[model]
normalization`` models one transmit constraint; all three give mean energy 1 per complex
channel use over the table (docs/contracts.md's convention, which sets the noise for an Eb/N0):

- ``"average"`` (an average-power limit, the convention itself): the table is scaled to
  ``mean over rows of ||x_m||^2 / n = 1``; single messages may carry more or less energy.
- ``"energy"`` (a per-message energy limit, O'Shea and Hoydis 2017): every row is scaled
  to ``||x_m||^2 = n`` exactly (``x_m / ||x_m|| * sqrt(n)``), so every block is sent with
  the same energy, as with PSK or BPSK-mapped codes.
- ``"peak"`` (an amplitude / PAPR limit of a power amplifier): average, and every
  ``|x| <= peak_amplitude``: amplitudes are clipped at ``peak_amplitude`` after a scale
  chosen so that the clipped table still has mean energy 1.

``[model] dac_bits = B`` adds a DAC of finite resolution (a HackRF converts with 8 bits,
a USRP B2xx with 12): the deployed table is ``step * q`` with integer codes
``q in [-Q, Q]``, ``Q = 2^(B-1) - 1``, per real component (I and Q). The grid:

1. the normalized float table (mean energy 1) is divided by the nominal step
   ``dac_full_scale / Q`` and rounded to the nearest code, clipped to ``[-Q, Q]``:
   ``dac_full_scale`` is the DAC's full scale per real component in units of the RMS
   amplitude per complex use (2.0: full scale 6 dB above the RMS, 9 dB above the RMS of
   one component); components beyond it saturate;
2. the stored step is ``1 / sqrt(mean over entries of |q|^2)``, so that the quantized
   table has mean energy exactly 1 (to float32 rounding): the convention holds exactly and
   Eb/N0 means the same for float and quantized tables. The realized full scale ``Q step``
   differs from the nominal one by the quantization error (model.json records both).

What holds exactly, what approximately: every deployed value is ``float32(q * step)``
bit-exactly (``aeradio.core.model_dir.load_lut`` checks it on every load) and the mean
energy is 1; with ``"energy"`` each row's energy is ``n`` only up to the quantization error,
with ``"peak"`` each amplitude is below ``peak_amplitude`` only up to it (model.json records
the measured row energies and peak). Training is quantization-aware: the forward pass uses
the quantized table, the backward pass hands its gradient straight through to the float
table (a straight-through estimator), so the learned points settle on the grid.

A real DAC quantizes the pulse-shaped samples, not the symbols: this models the symbol
alphabet on a B-bit grid, which is what a LUT-driven transmitter without interpolation
puts on its DAC. Root-raised-cosine shaping of those symbols needs its own headroom.

>>> import torch
>>> tx = Transmitter(M=4, n=1, generator=torch.Generator().manual_seed(0))
>>> lut = tx.lut().detach()
>>> tuple(lut.shape), lut.dtype
((4, 1), torch.complex64)
>>> round(float(lut.abs().pow(2).mean()), 6)
1.0
>>> codes, step = quantize_lut(np.array([[0.9 + 0.4j], [-1.1 - 0.3j]]), bits=3, full_scale=1.5)
>>> codes.tolist(), round(step, 4)
([[[2.0, 1.0]], [[-2.0, -1.0]]], 0.4472)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from aeradio.core.config import NORMALIZATIONS, dac_max_code
from aeradio.core.constants import SAMPLE_DTYPE
from aeradio.core.errors import ConfigError

#: Bisection iterations for the peak-limited scale (float64: converges to machine precision).
_PEAK_BISECTION_STEPS = 60


def normalize_average(u: torch.Tensor) -> torch.Tensor:
    """Scale a complex table ``[M, n]`` to mean energy exactly 1 per complex entry."""
    return u / torch.sqrt(u.abs().pow(2).mean())


def normalize_energy(u: torch.Tensor) -> torch.Tensor:
    """Scale every row of a complex table ``[M, n]`` to energy ``||x_m||^2 = n`` exactly."""
    return u * (math.sqrt(u.shape[1]) / torch.linalg.vector_norm(u, dim=1, keepdim=True))


def _peak_scale(amplitude: torch.Tensor, peak: float) -> float:
    """The scale ``c`` with ``mean(min(c a, peak)^2) = 1`` (monotone in c; bisection)."""
    a = amplitude.detach().double()
    lo, hi = 0.0, peak / max(float(a.min()), 1e-12)
    for _ in range(_PEAK_BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        if float(torch.clamp(mid * a, max=peak).pow(2).mean()) < 1.0:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def normalize_peak(u: torch.Tensor, peak_amplitude: float) -> torch.Tensor:
    """Mean energy 1 and every ``|x| <= peak_amplitude`` (to float rounding), ``[M, n]`` complex.

    Needs ``peak_amplitude >= 1`` (a table with mean energy 1 has some ``|x| >= 1``).
    """
    if peak_amplitude < 1.0:
        raise ConfigError(f"peak_amplitude must be >= 1, got {peak_amplitude!r}")
    u = normalize_average(u)
    amplitude = u.abs().clamp_min(1e-12)
    scale = _peak_scale(amplitude, peak_amplitude)
    clipped = u * (torch.clamp(scale * amplitude, max=peak_amplitude) / amplitude)
    # The bisection leaves a relative error ~1e-15; this makes the energy exact again.
    return normalize_average(clipped)


def quantize_lut(lut: np.ndarray | torch.Tensor, bits: int, full_scale: float) -> tuple[torch.Tensor, float]:
    """DAC codes and grid step of a table with mean energy 1 (the module docstring's grid).

    ``lut``: ``[M, n]`` complex. Returns ``codes`` ``[M, n, 2]`` float64 (integers in
    ``[-Q, Q]``, Q = 2^(bits-1) - 1; real and imaginary part) and ``step`` such that
    ``codes * step`` has mean energy exactly 1 per complex entry.
    """
    max_code = dac_max_code(bits)
    parts = torch.view_as_real(torch.as_tensor(lut).detach().resolve_conj()).double()
    codes = torch.clamp(torch.round(parts * (max_code / full_scale)), -max_code, max_code)
    power = float(codes.pow(2).sum(dim=-1).mean())
    if power == 0.0:
        raise ConfigError(
            f"model.dac_full_scale {full_scale!r} is too coarse for dac_bits {bits}: every symbol rounds to 0"
        )
    return codes, 1.0 / math.sqrt(power)


def grid_table(codes: torch.Tensor, step: float) -> torch.Tensor:
    """``[M, n]`` complex64 table ``float32(codes * step)`` (the deployed values, bit for bit)."""
    return torch.view_as_complex((codes * step).float().contiguous())


def _straight_through(x: torch.Tensor, x_quantized: torch.Tensor) -> torch.Tensor:
    """``x_quantized`` in the forward pass (bit-exact), the identity's gradient to ``x``."""
    return x_quantized + (x - x.detach())


class Transmitter(nn.Module):
    """Trainable embedding ``[M, n]`` complex, normalized (and quantized) on every use.

    ``forward(messages: [B] int64) -> [B, n] complex64``. ``dac_bits`` 0: a float table.
    """

    def __init__(
        self,
        M: int,
        n: int,
        *,
        normalization: str = "average",
        peak_amplitude: float = 1.5,
        dac_bits: int = 0,
        dac_full_scale: float = 2.0,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if normalization not in NORMALIZATIONS:
            raise ConfigError(
                f"normalization must be one of {', '.join(NORMALIZATIONS)}, got {normalization!r}"
            )
        self.M, self.n = M, n
        self.normalization = normalization
        self.peak_amplitude = peak_amplitude
        self.dac_bits, self.dac_full_scale = dac_bits, dac_full_scale
        self.weight = nn.Parameter(torch.randn(M, n, 2, generator=generator))

    def table(self) -> torch.Tensor:
        """The table before normalization, ``[M, n]`` complex64 (differentiable)."""
        return torch.view_as_complex(self.weight)

    def float_lut(self) -> torch.Tensor:
        """The normalized table before the DAC, ``[M, n]`` complex64 (differentiable)."""
        u = self.table()
        if self.normalization == "peak":
            return normalize_peak(u, self.peak_amplitude)
        if self.normalization == "energy":
            return normalize_energy(u)
        return normalize_average(u)

    def lut(self) -> torch.Tensor:
        """The table sent, ``[M, n]`` complex64: on the DAC grid when ``dac_bits`` (STE gradient)."""
        x = self.float_lut()
        if not self.dac_bits:
            return x
        return _straight_through(x, grid_table(*quantize_lut(x, self.dac_bits, self.dac_full_scale)))

    def forward(self, messages: torch.Tensor) -> torch.Tensor:
        return self.lut()[messages]

    def export_lut(self) -> np.ndarray:
        """The deployed LUT ``[M, n]`` complex64.

        Float tables are renormalized in float64 before the cast (per row for "energy");
        quantized ones are :func:`grid_table` of the training forward pass's codes, bit for bit.
        """
        if self.dac_bits:
            return grid_table(*quantize_lut(self.float_lut(), self.dac_bits, self.dac_full_scale)).numpy()
        lut = self.float_lut().detach().to(torch.complex128)
        renormalize = normalize_energy if self.normalization == "energy" else normalize_average
        return renormalize(lut).numpy().astype(SAMPLE_DTYPE)

    def lut_grid(self) -> dict[str, Any] | None:
        """The deployed LUT's DAC grid and what it keeps of the constraints (None: float).

        ``dac_bits``, ``step`` (the grid step: values are ``q * step``), ``full_scale``
        (``Q step``) and ``nominal_full_scale``, ``clipped_fraction`` of the components,
        ``rms_error`` of quantization (per complex entry), the measured ``mean_energy``
        per complex use, ``row_energy_min`` / ``row_energy_max`` (``||x_m||^2 / n``) and
        ``peak_amplitude`` (max ``|x|``) of the deployed LUT.
        """
        if not self.dac_bits:
            return None
        x = self.float_lut().detach()
        codes, step = quantize_lut(x, self.dac_bits, self.dac_full_scale)
        lut = grid_table(codes, step).to(torch.complex128)
        max_code = dac_max_code(self.dac_bits)
        unclipped = torch.view_as_real(x).double() * (max_code / self.dac_full_scale)
        row_energy = lut.abs().pow(2).mean(dim=1)
        return {
            "dac_bits": self.dac_bits,
            "step": step,
            "full_scale": max_code * step,
            "nominal_full_scale": self.dac_full_scale,
            "clipped_fraction": float((unclipped.abs() > max_code + 0.5).double().mean()),
            "rms_error": float((lut - x.to(torch.complex128)).abs().pow(2).mean().sqrt()),
            "mean_energy": float(row_energy.mean()),
            "row_energy_min": float(row_energy.min()),
            "row_energy_max": float(row_energy.max()),
            "peak_amplitude": float(lut.abs().max()),
        }


#: Knots of :class:`CompandedTransmitter`'s gain curve, evenly spaced in amplitude over
#: ``[0, COMPANDER_MAX_AMPLITUDE]`` (a LUT of mean energy 1 has few symbols beyond 3).
COMPANDER_KNOTS = 13
COMPANDER_MAX_AMPLITUDE = 3.0


class CompandedTransmitter(Transmitter):
    """A LUT reshaped by a trainable amplitude compander shared by all its symbols.

    ``x = normalize(u * exp(c(|u|)))``: ``u`` the table ``[M, n]`` (a deployed LUT at the
    start), ``c`` a piecewise-linear log-gain over :data:`COMPANDER_KNOTS` amplitudes in
    ``[0, COMPANDER_MAX_AMPLITUDE]`` (constant beyond; ``log_gain`` ``[knots]``, zero at the
    start: the LUT itself), then the model's normalization (and DAC grid) as
    :class:`Transmitter`. A handful of parameters shared by the M n symbols: what a power
    amplifier's compression asks of a trained LUT (lower peaks, a fuller centre), learnable
    from far fewer samples than M n free points when the gradient is a noisy estimate
    (model-free training, :mod:`aeradio.learning.ota`). ``train_points``: the table ``u``
    (``weight``) is trainable too; else only ``log_gain`` is.

    >>> lut = (np.array([[0.5, 1.5j], [-1.0, 1.0]]) / np.sqrt(1.125)).astype(np.complex64)
    >>> tx = CompandedTransmitter(lut, train_points=False)
    >>> bool(torch.allclose(tx.lut(), torch.from_numpy(lut), atol=1e-6))
    True
    >>> [name for name, p in tx.named_parameters() if p.requires_grad]
    ['log_gain']
    """

    def __init__(self, lut: np.ndarray, *, train_points: bool, normalization: str = "average",
                 peak_amplitude: float = 1.5, dac_bits: int = 0, dac_full_scale: float = 2.0) -> None:
        lut = np.asarray(lut, np.complex64)
        super().__init__(lut.shape[0], lut.shape[1], normalization=normalization,
                         peak_amplitude=peak_amplitude, dac_bits=dac_bits, dac_full_scale=dac_full_scale)
        with torch.no_grad():
            self.weight.copy_(torch.view_as_real(torch.from_numpy(lut)))
        self.weight.requires_grad_(train_points)
        self.log_gain = nn.Parameter(torch.zeros(COMPANDER_KNOTS))

    def table(self) -> torch.Tensor:
        u = torch.view_as_complex(self.weight)
        knot_spacing = COMPANDER_MAX_AMPLITUDE / (COMPANDER_KNOTS - 1)
        position = u.abs().clamp(max=COMPANDER_MAX_AMPLITUDE) / knot_spacing
        below = position.floor().long().clamp(max=COMPANDER_KNOTS - 2)
        frac = position - below
        log_gain = self.log_gain[below] * (1 - frac) + self.log_gain[below + 1] * frac
        return u * torch.exp(log_gain)
