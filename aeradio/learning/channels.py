"""Differentiable channels (torch) with the impairment definitions of
:mod:`aeradio.dsp.impairments`, drawing their parameters per block.

Every stage maps ``x: [B, n] complex64`` (one row = one block of n channel uses) to the
same shape; randomness comes only from the ``generator`` argument. A channel spec such as
``"awgn+phase+iq"`` is composed in a fixed physical order, whatever the order of the names:
TX PA (``rapp``), propagation (``rayleigh``, ``multipath``), oscillators (``phase``,
``cfo``, ``phasenoise``), thermal noise (``awgn``), RX mixer (``iq``): the project's one
impairment order (docs/impairments.md), as in the channel simulator and the calibration.

Per-block parameters (ranges from :class:`~aeradio.core.config.TrainingConfig`):

- ``awgn``: noise variance per real component ``noise_var[b]`` (from Eb/N0, docs/contracts.md).
- ``phase``: ``x exp(j theta)``, theta ~ U[0, 2 pi).
- ``cfo``: ``x[i] exp(j 2 pi f i)``, f ~ U[-cfo_cps_max, cfo_cps_max] cycles/symbol
  (``apply_cfo`` with zero phase and start index).
- ``rayleigh``: ``h x``, h ~ CN(0, 1).
- ``multipath``: ``conv(x, h)[:n]`` (``apply_multipath``), h_0 = 1 and
  h_l ~ CN(0, decay^l) for l < multipath_taps, scaled to unit mean power.
- ``iq``: ``K1 x + K2 conj(x)`` (``apply_iq_imbalance``) with gain ~ U[-g, g] dB and
  phase ~ U[-p, p] deg.
- ``rapp``: ``apply_rapp`` with p = rapp_p and saturation ``rapp_backoff_db`` above the
  unit RMS amplitude of the convention.
- ``phasenoise``: ``x exp(j phi)`` with Wiener phase ``phi[i] = sum_{l<=i} w_l``,
  w ~ N(0, phase_noise_std_rad^2) per symbol (``apply_phase_noise`` with phase0 = 0).

>>> import torch
>>> from aeradio.core.config import TrainingConfig
>>> ch = build_channel("phase+awgn", TrainingConfig())
>>> ch.names
('phase', 'awgn')
>>> x = torch.ones(4, 3, dtype=torch.complex64)
>>> ch(x, torch.zeros(4), torch.Generator().manual_seed(0)).abs().round(decimals=5).unique()
tensor([1.])
"""

from __future__ import annotations

import math

import torch
from torch import nn

from aeradio.core.config import TrainingConfig, parse_channel_spec

#: Order in which composed stages are applied (physical order, TX to RX).
STAGE_ORDER = ("rapp", "rayleigh", "multipath", "phase", "cfo", "phasenoise", "awgn", "iq")


def _uniform(shape: tuple[int, ...], low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(shape, generator=generator)


def _complex_normal(shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    """CN(0, 1): each real component N(0, 1/2)."""
    return torch.view_as_complex(torch.randn((*shape, 2), generator=generator) * math.sqrt(0.5))


def _unit_phasor(phase: torch.Tensor) -> torch.Tensor:
    return torch.polar(torch.ones_like(phase), phase)


class Stage(nn.Module):
    """A channel stage: ``forward(x [B, n] complex, noise_var [B], generator) -> [B, n]``."""

    def forward(self, x: torch.Tensor, noise_var: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        raise NotImplementedError


class AWGN(Stage):
    """Adds CN noise with variance ``noise_var[b]`` per real component."""

    def forward(self, x, noise_var, generator):
        noise = torch.randn((*x.shape, 2), generator=generator)
        std = torch.sqrt(torch.as_tensor(noise_var, dtype=torch.float32)).reshape(-1, 1, 1)
        return x + torch.view_as_complex(noise * std)


class RandomPhase(Stage):
    def forward(self, x, noise_var, generator):
        theta = _uniform((x.shape[0], 1), 0.0, 2.0 * math.pi, generator)
        return x * _unit_phasor(theta)


class ResidualCFO(Stage):
    def __init__(self, cfo_cps_max: float) -> None:
        super().__init__()
        self.cfo_cps_max = cfo_cps_max

    def forward(self, x, noise_var, generator):
        f = _uniform((x.shape[0], 1), -self.cfo_cps_max, self.cfo_cps_max, generator)
        i = torch.arange(x.shape[1], dtype=torch.float32)
        return x * _unit_phasor(2.0 * math.pi * f * i)


class RayleighBlockFading(Stage):
    def forward(self, x, noise_var, generator):
        return x * _complex_normal((x.shape[0], 1), generator)


def multipath_tap_powers(num_taps: int, decay: float) -> torch.Tensor:
    """Mean power of each tap, ``[num_taps]``: ``decay^l`` normalized to sum 1."""
    p = torch.tensor([decay**lag for lag in range(num_taps)], dtype=torch.float32)
    return p / p.sum()


class Multipath(Stage):
    """ISI inside a block: causal taps, the direct path fixed, the echoes Rayleigh."""

    def __init__(self, num_taps: int, decay: float) -> None:
        super().__init__()
        self.num_taps, self.decay = num_taps, decay

    def draw_taps(self, batch: int, generator: torch.Generator) -> torch.Tensor:
        """``[B, num_taps]`` complex taps, unit mean total power."""
        power = multipath_tap_powers(self.num_taps, self.decay)
        taps = _complex_normal((batch, self.num_taps), generator) * torch.sqrt(power)
        taps[:, 0] = torch.sqrt(power[0])
        return taps

    def forward(self, x, noise_var, generator):
        taps = self.draw_taps(x.shape[0], generator)
        y = x * taps[:, :1]
        for lag in range(1, min(self.num_taps, x.shape[1])):
            y = y + nn.functional.pad(x[:, :-lag], (lag, 0)) * taps[:, lag : lag + 1]
        return y


def iq_imbalance_coefficients(
    gain_db: torch.Tensor, phase_deg: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Torch version of :func:`aeradio.dsp.impairments.iq_imbalance_coefficients`."""
    g = 10.0 ** (gain_db / 20.0)
    phi = torch.deg2rad(phase_deg)
    k1 = (1.0 + g * _unit_phasor(-phi)) / 2.0
    k2 = (1.0 - g * _unit_phasor(phi)) / 2.0
    return k1, k2


class IQImbalance(Stage):
    def __init__(self, gain_db_max: float, phase_deg_max: float) -> None:
        super().__init__()
        self.gain_db_max, self.phase_deg_max = gain_db_max, phase_deg_max

    def forward(self, x, noise_var, generator):
        gain_db = _uniform((x.shape[0], 1), -self.gain_db_max, self.gain_db_max, generator)
        phase_deg = _uniform((x.shape[0], 1), -self.phase_deg_max, self.phase_deg_max, generator)
        k1, k2 = iq_imbalance_coefficients(gain_db, phase_deg)
        return k1 * x + k2 * torch.conj(x)


class RappPA(Stage):
    """AM/AM compression; saturation ``backoff_db`` above the unit RMS of the convention."""

    def __init__(self, p: float, backoff_db: float) -> None:
        super().__init__()
        self.p = p
        self.saturation_amplitude = 10.0 ** (backoff_db / 20.0)

    def forward(self, x, noise_var, generator):
        a = x.abs()
        gain = (1.0 + (a / self.saturation_amplitude) ** (2.0 * self.p)) ** (-1.0 / (2.0 * self.p))
        return x * gain


class WienerPhaseNoise(Stage):
    def __init__(self, std_rad: float) -> None:
        super().__init__()
        self.std_rad = std_rad

    def forward(self, x, noise_var, generator):
        steps = torch.randn(x.shape, generator=generator) * self.std_rad
        return x * _unit_phasor(torch.cumsum(steps, dim=1))


def make_stage(name: str, cfg: TrainingConfig) -> Stage:
    """One stage by name, its parameter ranges from ``cfg``."""
    factories = {
        "awgn": AWGN,
        "phase": RandomPhase,
        "cfo": lambda: ResidualCFO(cfg.cfo_cps_max),
        "rayleigh": RayleighBlockFading,
        "multipath": lambda: Multipath(cfg.multipath_taps, cfg.multipath_decay),
        "iq": lambda: IQImbalance(cfg.iq_gain_db_max, cfg.iq_phase_deg_max),
        "rapp": lambda: RappPA(cfg.rapp_p, cfg.rapp_backoff_db),
        "phasenoise": lambda: WienerPhaseNoise(cfg.phase_noise_std_rad),
    }
    return factories[name]()


class Channel(nn.Module):
    """Composed stages: ``forward(x [B, n] complex64, noise_var [B], generator) -> [B, n]``."""

    def __init__(self, names: tuple[str, ...], cfg: TrainingConfig) -> None:
        super().__init__()
        self.names = tuple(sorted(names, key=STAGE_ORDER.index))
        self.stages = nn.ModuleList(make_stage(name, cfg) for name in self.names)

    def forward(self, x: torch.Tensor, noise_var: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        for stage in self.stages:
            x = stage(x, noise_var, generator)
        return x


def build_channel(spec: str, cfg: TrainingConfig) -> Channel:
    """The channel named by ``spec`` (e.g. ``"awgn+phase+iq"``); raises ConfigError if unknown."""
    return Channel(parse_channel_spec(spec), cfg)


def draw_noise_var(
    batch: int, ebn0_db_min: float, ebn0_db_max: float, rate: float, generator: torch.Generator
) -> torch.Tensor:
    """Noise variance per real component ``[B]`` float32, Eb/N0 ~ U[min, max] dB per block."""
    ebn0_db = _uniform((batch,), ebn0_db_min, ebn0_db_max, generator)
    return 1.0 / (2.0 * rate * 10.0 ** (ebn0_db / 10.0))
