"""The learned transmitter: an embedding of M messages to n complex symbols.

The embedding is normalized deterministically over the whole table (never with batch
statistics), so the LUT used in training is the LUT deployed: mean over rows of
``sum |x|^2 / n`` is 1, i.e. unit energy per complex channel use (docs/contracts.md).

- ``"average"``: scale the table to mean energy 1.
- ``"peak"``: additionally keep every amplitude at most ``peak_amplitude`` (a PAPR limit):
  amplitudes are clipped at ``peak_amplitude`` after a scale chosen so that the clipped
  table still has mean energy 1.

>>> import torch
>>> tx = Transmitter(M=4, n=1, generator=torch.Generator().manual_seed(0))
>>> lut = tx.lut().detach()
>>> tuple(lut.shape), lut.dtype
((4, 1), torch.complex64)
>>> round(float(lut.abs().pow(2).mean()), 6)
1.0
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from aeradio.core.constants import SAMPLE_DTYPE
from aeradio.core.errors import ConfigError

#: Bisection iterations for the peak-limited scale (float64: converges to machine precision).
_PEAK_BISECTION_STEPS = 60


def normalize_average(u: torch.Tensor) -> torch.Tensor:
    """Scale a complex table ``[M, n]`` to mean energy exactly 1 per complex entry."""
    return u / torch.sqrt(u.abs().pow(2).mean())


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


class Transmitter(nn.Module):
    """Trainable embedding ``[M, n]`` complex, normalized on every use.

    ``forward(messages: [B] int64) -> [B, n] complex64``.
    """

    def __init__(
        self,
        M: int,
        n: int,
        *,
        normalization: str = "average",
        peak_amplitude: float = 1.5,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if normalization not in ("average", "peak"):
            raise ConfigError(f"normalization must be 'average' or 'peak', got {normalization!r}")
        self.M, self.n = M, n
        self.normalization = normalization
        self.peak_amplitude = peak_amplitude
        self.weight = nn.Parameter(torch.randn(M, n, 2, generator=generator))

    def lut(self) -> torch.Tensor:
        """The normalized table ``[M, n]`` complex64 (differentiable)."""
        u = torch.view_as_complex(self.weight)
        if self.normalization == "peak":
            return normalize_peak(u, self.peak_amplitude)
        return normalize_average(u)

    def forward(self, messages: torch.Tensor) -> torch.Tensor:
        return self.lut()[messages]

    def export_lut(self) -> np.ndarray:
        """The deployed LUT ``[M, n]`` complex64, renormalized in float64 before the cast."""
        lut = self.lut().detach().to(torch.complex128).numpy()
        lut = lut / np.sqrt(np.mean(np.abs(lut) ** 2))
        return lut.astype(SAMPLE_DTYPE)
