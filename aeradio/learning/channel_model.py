"""A generative model of the real channel learned from captures: a conditional VAE p(y | x, SNR).

The channel seen by the receiver (transmitter, air, RX front end and the RX chain's
synchronization, all of it) maps a payload symbol x, with the ``half_window`` symbols
either side of it (its ISI), to a synchronized unit-gain symbol y. Given a frame's SNR
estimate (the context), the model is

- prior ``p(z) = N(0, I)`` of a ``latent``-dimensional z (what the condition does not tell:
  the phase-noise excursion of the moment, the noise draw's shape, ...);
- decoder ``p(y | x, SNR, z) = N(mean, diag(var))`` over (Re y, Im y), with
  ``mean = x + MLP_mean`` and ``log var = log(10^(-SNR/10) / 2) + MLP_logvar``: the MLP
  learns how the channel departs from AWGN at the frame's SNR (it starts as AWGN);
- encoder ``q(z | x, SNR, y) = N(mu, diag(sigma^2))``;

trained on the ELBO (``E_q[log p(y | x, z)] - KL(q || p)``, per symbol) with the
reparameterization trick. Sampling ``y = mean + sigma eps`` with ``z ~ N(0, I)`` is
differentiable in x, so a transmitter can be trained through it
(:mod:`aeradio.learning.end_to_end`).

The parametric baseline fitted beside it is AWGN with the fitted noise variance:
``y = x + n``, variance per real component ``noise_scale 10^(-SNR/10) / 2``, the scale
fitted on the same symbols (``noise_scale = 1`` when the RX chain's SNR estimate tells the
whole story).

Fidelity (:func:`fidelity`), on frames the model did not train on:

- BLER of a model's receiver on its test-pattern frames as captured, against its BLER on
  the same frames' symbols regenerated through the learned channel (and through the AWGN
  baseline), per 1 dB bin of frame SNR, with block counts;
- a conditional distribution distance: for each transmitted point (LUT row m, channel use
  j) the sliced Wasserstein-1 distance between the captured y and the generated y of the
  same symbols (each point's symbols regenerated once), over :data:`SWD_DIRECTIONS`
  directions, averaged over the points weighted by their symbol counts. The same for the
  AWGN baseline. Finite samples give a floor: a perfect model scores above 0.

Storage: :mod:`aeradio.core.channel_model_dir` (JSON + safetensors, checked before loading).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from aeradio.core.channel_model_dir import (
    CHANNEL_FORMAT_VERSION,
    CHANNEL_JSON,
    CHANNEL_WEIGHTS,
    MAX_CHANNEL_JSON_BYTES,
    check_fitted_for,
    verify_channel_model_dir,
)
from aeradio.core.constants import SAMPLE_DTYPE
from aeradio.core.defaults import DEFAULT_CHANNEL_MODEL_STEPS
from aeradio.core.errors import CaptureFormatError, ModelFormatError, check_range
from aeradio.core.model_dir import sha256_file, staged_directory
from aeradio.learning.dataset import SymbolDataset

#: Directions of the sliced Wasserstein distance (evenly spaced over half a turn).
SWD_DIRECTIONS = 16
#: Symbols a transmitted point needs for its distance to count.
SWD_MIN_SYMBOLS = 16
#: Width of the SNR bins of the BLER comparison (dB).
SNR_BIN_DB = 1.0
#: Bins with at least this many measured block errors are judged (the issue's target).
JUDGED_MIN_ERRORS = 100
#: Predicted BLER within this factor of the measured one passes.
BLER_FACTOR_MAX = 1.5
#: Probe frames a fit needs at least, and frames in all.
MIN_PROBE_FRAMES = 10
MIN_FRAMES = 20
#: The fit's summary when the held-out frames hold no test-pattern frame.
NO_FIDELITY = "no held-out test-pattern frames: fidelity not measured"
#: Bounds of the decoder's learned log-variance correction (nats): keeps the ELBO finite.
_LOGVAR_SPAN = 12.0
#: Symbols per batch when generating (memory stays bounded).
_GENERATE_BATCH = 1 << 16


@dataclass(frozen=True)
class FitSettings:
    """Architecture and optimizer of a channel-model fit."""

    half_window: int = 2
    latent: int = 2
    hidden_width: int = 64
    hidden_layers: int = 2
    steps: int = DEFAULT_CHANNEL_MODEL_STEPS
    batch_size: int = 2048
    learning_rate: float = 2e-3

    def __post_init__(self) -> None:
        check_range("channel-model half_window", self.half_window, 0, 8)
        check_range("channel-model latent", self.latent, 1, 16)
        check_range("channel-model hidden_width", self.hidden_width, 4, 512)
        check_range("channel-model hidden_layers", self.hidden_layers, 1, 6)
        check_range("channel-model steps", self.steps, 1, 10_000_000)
        check_range("channel-model batch size", self.batch_size, 1, 1_000_000)
        check_range("channel-model learning rate", self.learning_rate, 1e-7, 1.0)

    def architecture(self) -> dict[str, int]:
        return {
            "half_window": self.half_window,
            "latent": self.latent,
            "hidden_width": self.hidden_width,
            "hidden_layers": self.hidden_layers,
        }


def _mlp(inputs: int, hidden: int, layers: int, outputs: int) -> nn.Sequential:
    """Linear, ReLU, ..., Linear: the tensor names of
    :func:`aeradio.core.channel_model_dir.cvae_parameter_shapes`."""
    modules: list[nn.Module] = []
    width = inputs
    for _ in range(layers):
        modules += [nn.Linear(width, hidden), nn.ReLU()]
        width = hidden
    last = nn.Linear(width, outputs)
    nn.init.zeros_(last.weight)  # start as AWGN at the frame's SNR (decoder) and as the prior (encoder)
    nn.init.zeros_(last.bias)
    return nn.Sequential(*modules, last)


def awgn_log_var(snr_db: torch.Tensor) -> torch.Tensor:
    """log of the noise variance per real component at unit signal energy and ``snr_db``."""
    return -snr_db * (math.log(10.0) / 10.0) - math.log(2.0)


class ConditionalVAE(nn.Module):
    """p(y | x window, SNR) (module docstring). Shapes: ``x_win`` [N, 2 half_window + 1]
    complex64 (the symbol in the middle), ``snr_db`` [N] float32, ``y`` [N] complex64."""

    def __init__(self, half_window: int, latent: int, hidden_width: int, hidden_layers: int) -> None:
        super().__init__()
        self.half_window, self.latent = half_window, latent
        cond = 2 * (2 * half_window + 1) + 1
        self.encoder = _mlp(cond + 2, hidden_width, hidden_layers, 2 * latent)
        self.decoder = _mlp(cond + latent, hidden_width, hidden_layers, 4)

    @classmethod
    def from_architecture(cls, arch: dict[str, int]) -> ConditionalVAE:
        return cls(arch["half_window"], arch["latent"], arch["hidden_width"], arch["hidden_layers"])

    def condition(self, x_win: torch.Tensor, snr_db: torch.Tensor) -> torch.Tensor:
        """[N, 2 W + 1] float32: the window's real and imaginary parts and SNR / 10 dB."""
        feats = torch.view_as_real(x_win).reshape(x_win.shape[0], -1)
        return torch.cat([feats, (snr_db / 10.0).unsqueeze(1)], dim=1)

    def decode(
        self, cond: torch.Tensor, z: torch.Tensor, x_win: torch.Tensor, snr_db: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean [N, 2] (Re, Im) and log-variance [N, 2] of y given the condition and z."""
        out = self.decoder(torch.cat([cond, z], dim=1))
        centre = torch.view_as_real(x_win[:, self.half_window])
        mean = centre + out[:, :2]
        log_var = awgn_log_var(snr_db).unsqueeze(1) + _LOGVAR_SPAN * torch.tanh(out[:, 2:] / _LOGVAR_SPAN)
        return mean, log_var

    def loss(
        self, x_win: torch.Tensor, y: torch.Tensor, snr_db: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Negative ELBO per symbol (nats), its reconstruction term and its KL term."""
        cond = self.condition(x_win, snr_db)
        y_real = torch.view_as_real(y)
        enc = self.encoder(torch.cat([cond, y_real], dim=1))
        mu, log_var_z = enc[:, : self.latent], enc[:, self.latent :].clamp(-_LOGVAR_SPAN, _LOGVAR_SPAN)
        eps = torch.randn(mu.shape, generator=generator)
        z = mu + torch.exp(0.5 * log_var_z) * eps
        mean, log_var = self.decode(cond, z, x_win, snr_db)
        nll = 0.5 * (log_var + (y_real - mean).pow(2) * torch.exp(-log_var) + math.log(2 * math.pi)).sum(
            dim=1
        )
        kl = 0.5 * (mu.pow(2) + torch.exp(log_var_z) - 1.0 - log_var_z).sum(dim=1)
        return (nll + kl).mean(), nll.mean(), kl.mean()

    def sample(self, x_win: torch.Tensor, snr_db: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """y [N] complex64 drawn from p(y | x, SNR), differentiable in ``x_win``."""
        cond = self.condition(x_win, snr_db)
        z = torch.randn((x_win.shape[0], self.latent), generator=generator)
        mean, log_var = self.decode(cond, z, x_win, snr_db)
        y = mean + torch.exp(0.5 * log_var) * torch.randn(mean.shape, generator=generator)
        return torch.view_as_complex(y.contiguous())


@dataclass(frozen=True)
class AwgnBaseline:
    """AWGN with the fitted noise variance: y = x + n, variance per real component
    ``noise_scale 10^(-SNR/10) / 2``."""

    noise_scale: float
    half_window: int

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, snr_db: np.ndarray, half_window: int) -> AwgnBaseline:
        """Least squares: ``x`` [N] sent, ``y`` [N] received, ``snr_db`` [N]."""
        nominal = 10.0 ** (-snr_db.astype(np.float64) / 10.0)
        return cls(float(np.mean(np.abs(y - x) ** 2) / np.mean(nominal)), half_window)

    def sample(self, x_win: torch.Tensor, snr_db: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        std = torch.sqrt(self.noise_scale * torch.exp(awgn_log_var(snr_db)))
        noise = torch.randn((x_win.shape[0], 2), generator=generator) * std.unsqueeze(1)
        return x_win[:, self.half_window] + torch.view_as_complex(noise.contiguous())


#: A sampler: (x_win [N, W] complex64, snr_db [N], generator) -> y [N] complex64.
Sampler = Callable[[torch.Tensor, torch.Tensor, torch.Generator], torch.Tensor]


@dataclass
class LearnedChannel:
    """A loaded channel model: the CVAE, the AWGN baseline, channel_model.json."""

    cvae: ConditionalVAE
    awgn: AwgnBaseline
    meta: dict[str, Any]

    @property
    def half_window(self) -> int:
        return self.cvae.half_window


def check_symbol_dataset(data: SymbolDataset, where: str | Path) -> None:
    """Refuse captures a channel model cannot be fitted on: without probe frames (the model
    would know the channel only at the LUT's points, and end-to-end training would move the
    LUT where it knows nothing), or with too few frames (:class:`CaptureFormatError`)."""
    probes = int(data.probe.sum())
    if probes < MIN_PROBE_FRAMES:
        raise CaptureFormatError(
            f"{where}: {probes} probe frames of this model; a channel model needs at least "
            f"{MIN_PROBE_FRAMES} "
            "(send them with aeradio tx --pattern probe while capturing)"
        )
    if data.frames < MIN_FRAMES:
        raise CaptureFormatError(
            f"{where}: {data.frames} frames of this model; a channel model needs at least {MIN_FRAMES}"
        )


def _flat(data: SymbolDataset, half_window: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Windows [N, W] complex64, y [N] complex64, SNR [N] float32 of every payload symbol."""
    win = data.windows(half_window)
    p = win.shape[1]
    return (
        torch.from_numpy(np.ascontiguousarray(win.reshape(-1, win.shape[2]))),
        torch.from_numpy(np.ascontiguousarray(data.y.reshape(-1))),
        torch.from_numpy(np.repeat(data.snr_db, p).astype(np.float32)),
    )


def fit_cvae(
    train: SymbolDataset, settings: FitSettings, generator: torch.Generator, *, progress: bool = True
) -> tuple[ConditionalVAE, list[dict[str, float]]]:
    """Fit the conditional VAE on every payload symbol of ``train`` (Adam on the negative
    ELBO, cosine learning-rate decay). Returns the model and its loss history."""
    from tqdm import tqdm

    x_win, y, snr = _flat(train, settings.half_window)
    torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=generator)))  # nn.Linear init
    cvae = ConditionalVAE(
        settings.half_window, settings.latent, settings.hidden_width, settings.hidden_layers
    )
    optimizer = torch.optim.Adam(cvae.parameters(), lr=settings.learning_rate)
    history: list[dict[str, float]] = []
    ema = None
    bar = tqdm(
        total=settings.steps, desc="channel-model fit", disable=None if progress else True, leave=False
    )
    for step in range(1, settings.steps + 1):
        lr = settings.learning_rate * 0.5 * (1.0 + math.cos(math.pi * (step - 1) / settings.steps))
        for group in optimizer.param_groups:
            group["lr"] = lr
        idx = torch.randint(0, len(y), (settings.batch_size,), generator=generator)
        loss, nll, kl = cvae.loss(x_win[idx], y[idx], snr[idx], generator)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        value = float(loss.detach())
        ema = value if ema is None else ema + 0.02 * (value - ema)
        if step % 50 == 0 or step == settings.steps:
            history.append({"step": step, "loss": ema, "nll": float(nll.detach()), "kl": float(kl.detach())})
            bar.update(step - bar.n)
            bar.set_postfix(neg_elbo=f"{ema:.3f}")
    bar.close()
    cvae.eval()
    return cvae, history


@torch.no_grad()
def held_out_neg_elbo(cvae: ConditionalVAE, data: SymbolDataset, generator: torch.Generator) -> float:
    """Mean negative ELBO per symbol (nats) on ``data``."""
    x_win, y, snr = _flat(data, cvae.half_window)
    total = 0.0
    for i in range(0, len(y), _GENERATE_BATCH):
        loss, _, _ = cvae.loss(
            x_win[i : i + _GENERATE_BATCH],
            y[i : i + _GENERATE_BATCH],
            snr[i : i + _GENERATE_BATCH],
            generator,
        )
        total += float(loss) * len(y[i : i + _GENERATE_BATCH])
    return total / max(len(y), 1)


@torch.no_grad()
def generate(
    sampler: Sampler, data: SymbolDataset, half_window: int, generator: torch.Generator
) -> np.ndarray:
    """Payload symbols of ``data``'s frames regenerated through ``sampler``: [F, P] complex64."""
    x_win, _, snr = _flat(data, half_window)
    out = [
        sampler(x_win[i : i + _GENERATE_BATCH], snr[i : i + _GENERATE_BATCH], generator)
        for i in range(0, len(snr), _GENERATE_BATCH)
    ]
    y = torch.cat(out) if out else torch.zeros(0, dtype=torch.complex64)
    return y.numpy().astype(SAMPLE_DTYPE).reshape(data.y.shape)


def sliced_wasserstein(a: np.ndarray, b: np.ndarray, directions: int = SWD_DIRECTIONS) -> float:
    """Sliced Wasserstein-1 distance between two equal-sized sets of complex points ([N] each):
    the mean over ``directions`` evenly spaced angles of the 1-D W1 of the projections.

    >>> round(sliced_wasserstein(np.zeros(4, complex), np.ones(4, complex)), 3)  # a shift of 1
    0.635
    """
    theta = np.pi * np.arange(directions) / directions
    proj_a = np.sort(np.real(a[:, None] * np.exp(-1j * theta)), axis=0)
    proj_b = np.sort(np.real(b[:, None] * np.exp(-1j * theta)), axis=0)
    return float(np.mean(np.abs(proj_a - proj_b)))


def point_distances(test: SymbolDataset, generated: np.ndarray, n: int) -> tuple[float, int]:
    """Count-weighted mean over transmitted points (message m, use j) of the sliced
    Wasserstein distance between captured and generated y; and the points counted.

    ``test``: test-pattern frames; ``generated``: [F, P] their regenerated payload symbols.
    """
    p = test.y.shape[1]
    point = test.labels[:, np.arange(p) // n] * n + (np.arange(p) % n)[None, :]
    keys, y_cap, y_gen = point.reshape(-1), test.y.reshape(-1), generated.reshape(-1)
    order = np.argsort(keys, kind="stable")
    keys, y_cap, y_gen = keys[order], y_cap[order], y_gen[order]
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    ends = np.r_[starts[1:], len(keys)]
    total, weight, points = 0.0, 0, 0
    for s, e in zip(starts, ends, strict=True):
        if e - s >= SWD_MIN_SYMBOLS:
            total += sliced_wasserstein(y_cap[s:e], y_gen[s:e]) * (e - s)
            weight += e - s
            points += 1
    return (total / weight if weight else math.nan), points


@torch.no_grad()
def _block_errors(
    receiver: nn.Module, y: np.ndarray, labels: np.ndarray, noise_var: np.ndarray, n: int
) -> np.ndarray:
    """Block errors per frame of ``receiver`` on payload symbols ``y`` [F, P]: [F] int64."""
    f, blocks = labels.shape
    yb = torch.from_numpy(np.ascontiguousarray(y.reshape(-1, n)))
    nv = torch.from_numpy(np.repeat(noise_var, blocks).astype(np.float32)) if receiver.noise_input else None
    decisions = (
        np.concatenate(
            [
                receiver(yb[i : i + _GENERATE_BATCH], None if nv is None else nv[i : i + _GENERATE_BATCH])
                .argmax(1)
                .numpy()
                for i in range(0, len(yb), _GENERATE_BATCH)
            ]
        )
        if len(yb)
        else np.zeros(0, np.int64)
    )
    return (decisions.reshape(f, blocks) != labels).sum(axis=1)


def fidelity(
    channel: LearnedChannel, receiver: nn.Module, data: SymbolDataset, n: int, generator: torch.Generator
) -> dict[str, Any]:
    """How faithful ``channel`` is on ``data`` (frames it did not train on), module docstring.

    Returns: ``frames``, ``bins`` (per SNR bin: snr_db_low, frames, blocks, measured,
    cvae and awgn block errors, their BLERs, ``judged`` (>= 100 measured errors) and
    ``within`` (CVAE within 1.5x)), ``bler_pass`` (every judged bin within; None with no
    judged bin), ``swd_cvae``, ``swd_awgn``, ``swd_ratio``, ``swd_points``, ``neg_elbo``
    (nats per symbol, all frames) and the generated clouds (``_clouds``, not JSON).
    """
    receiver.eval()
    test = data.subset(~data.probe)
    if test.frames == 0:
        raise CaptureFormatError(
            f"{data.info.get('captures', 'the captures')}: no test-pattern frames to measure BLER and "
            "distances on (send tx --pattern test while capturing)"
        )
    hw = channel.half_window
    gen_cvae = generate(channel.cvae.sample, test, hw, generator)
    gen_awgn = generate(channel.awgn.sample, test, hw, generator)
    measured = _block_errors(receiver, test.y, test.labels, test.noise_var, n)
    cvae_err = _block_errors(receiver, gen_cvae, test.labels, test.noise_var, n)
    awgn_err = _block_errors(receiver, gen_awgn, test.labels, test.noise_var, n)
    blocks = test.labels.shape[1]
    bin_of = np.floor(test.snr_db / SNR_BIN_DB).astype(np.int64)
    bins = []
    for b in np.unique(bin_of):
        sel = bin_of == b
        count = int(sel.sum()) * blocks
        m, c, a = int(measured[sel].sum()), int(cvae_err[sel].sum()), int(awgn_err[sel].sum())
        judged = m >= JUDGED_MIN_ERRORS
        bins.append(
            {
                "snr_db_low": float(b * SNR_BIN_DB),
                "frames": int(sel.sum()),
                "blocks": count,
                "measured_errors": m,
                "cvae_errors": c,
                "awgn_errors": a,
                "measured_bler": m / count,
                "cvae_bler": c / count,
                "awgn_bler": a / count,
                "judged": judged,
                "within": bool(judged and m / BLER_FACTOR_MAX <= c <= m * BLER_FACTOR_MAX),
            }
        )
    judged = [b for b in bins if b["judged"]]
    swd_cvae, points = point_distances(test, gen_cvae, n)
    swd_awgn, _ = point_distances(test, gen_awgn, n)
    total = max(int(measured.size) * blocks, 1)
    return {
        "frames": test.frames,
        "blocks": int(test.labels.size),
        "bler_measured": float(measured.sum()) / total,
        "bler_cvae": float(cvae_err.sum()) / total,
        "bler_awgn": float(awgn_err.sum()) / total,
        "bins": bins,
        "bler_pass": all(b["within"] for b in judged) if judged else None,
        "swd_cvae": swd_cvae,
        "swd_awgn": swd_awgn,
        "swd_ratio": swd_cvae / swd_awgn if swd_awgn else None,
        "swd_points": points,
        "neg_elbo": held_out_neg_elbo(channel.cvae, data, generator),
        "_clouds": {"captured": test.y, "cvae": gen_cvae, "awgn": gen_awgn, "sent": test.centre()},
    }


def summary_line(fid: dict[str, Any]) -> str:
    """One line of :func:`fidelity`'s figures."""
    judged = [b for b in fid["bins"] if b["judged"]]
    verdict = (
        "no SNR bin with >= 100 block errors to judge"
        if not judged
        else f"{sum(b['within'] for b in judged)}/{len(judged)} judged SNR bins within {BLER_FACTOR_MAX:g}x"
    )
    return (
        f"BLER measured {fid['bler_measured']:.3e}, through the CVAE {fid['bler_cvae']:.3e}, AWGN baseline "
        f"{fid['bler_awgn']:.3e} ({fid['frames']} frames; {verdict}); sliced Wasserstein per point: CVAE "
        f"{fid['swd_cvae']:.4f}, AWGN {fid['swd_awgn']:.4f} "
        f"(ratio {fid['swd_ratio']:.2f}, {fid['swd_points']} points)"
    )


def public(fid: dict[str, Any]) -> dict[str, Any]:
    """:func:`fidelity`'s figures without the clouds (for JSON)."""
    return {k: v for k, v in fid.items() if not k.startswith("_")}


def plot_clouds(fid: dict[str, Any], lut: np.ndarray, path: str | Path) -> Path:
    """PNG of :func:`fidelity`'s clouds (:func:`aeradio.learning.plots.plot_channel_clouds`)."""
    from aeradio.learning.plots import plot_channel_clouds

    clouds = fid["_clouds"]
    panels = {
        "captured": clouds["captured"],
        f"CVAE (SWD {fid['swd_cvae']:.3f})": clouds["cvae"],
        f"AWGN baseline (SWD {fid['swd_awgn']:.3f})": clouds["awgn"],
    }
    return plot_channel_clouds(panels, lut, path)


def save_channel_model(out_dir: str | Path, channel: LearnedChannel) -> Path:
    """Write the channel-model directory atomically (temporary sibling, then rename); an
    existing non-empty ``out_dir`` is never replaced (:class:`ModelFormatError`)."""
    import json

    from safetensors.torch import save_file

    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise ModelFormatError(f"--out {out_dir} exists and is not empty; refusing to overwrite it")
    with staged_directory(out_dir, overwrite=False) as tmp:
        state = {k: v.detach().contiguous().float() for k, v in channel.cvae.state_dict().items()}
        save_file(state, str(tmp / CHANNEL_WEIGHTS), metadata={"format": "aeradio-channel-model"})
        meta = {
            **channel.meta,
            "format_version": CHANNEL_FORMAT_VERSION,
            "files": {CHANNEL_WEIGHTS: {"sha256": sha256_file(tmp / CHANNEL_WEIGHTS)}},
        }
        text = (json.dumps(meta, indent=2) + "\n").encode()
        if len(text) > MAX_CHANNEL_JSON_BYTES:
            raise ModelFormatError(
                f"{CHANNEL_JSON} would be {len(text)} bytes, more than {MAX_CHANNEL_JSON_BYTES}"
            )
        (tmp / CHANNEL_JSON).write_bytes(text)
    return out_dir


def load_channel_model(cm_dir: str | Path, model_dir: str | Path | None = None) -> LearnedChannel:
    """Load a checked channel-model directory (:mod:`aeradio.core.channel_model_dir`); with
    ``model_dir``, refuse one fitted for another transmitter or sample rate."""
    from safetensors.torch import load_file

    meta = verify_channel_model_dir(cm_dir)
    if model_dir is not None:
        from aeradio.core.model_dir import load_link_config, model_hash32

        check_fitted_for(
            meta, cm_dir, model_hash32(model_dir), load_link_config(model_dir).radio.sample_rate_hz, model_dir
        )
    cvae = ConditionalVAE.from_architecture(meta["architecture"])
    cvae.load_state_dict(load_file(str(Path(cm_dir) / CHANNEL_WEIGHTS)))
    cvae.eval()
    return LearnedChannel(cvae, AwgnBaseline(float(meta["awgn"]["noise_scale"]), cvae.half_window), meta)


def fit_channel_model(
    model_dir: str | Path,
    captures: str | Path,
    out_dir: str | Path,
    *,
    settings: FitSettings | None = None,
    seed: int = 0,
    validation_fraction: float = 0.2,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Fit a channel model on ``captures`` of ``model_dir``'s transmitter and write ``out_dir``.

    The frames are split (by frame) into training and held-out sets; the CVAE and the AWGN
    baseline are fitted on the training frames, :func:`fidelity` is measured on the
    held-out ones and stored in channel_model.json. Returns the report (``fidelity``,
    ``train_frames``, ``seconds``, ...). Raises :class:`CaptureFormatError` for captures
    without probe frames or with too few frames, before anything is written.
    """
    from aeradio.core.model_dir import load_link_config, model_hash32
    from aeradio.learning.dataset import build_symbol_dataset
    from aeradio.learning.inference import load_receiver
    from aeradio.learning.training import torch_threads

    settings = settings or FitSettings()
    say = log or (lambda _msg: None)
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise ModelFormatError(f"--out {out_dir} exists and is not empty; refusing to overwrite it")
    start = time.perf_counter()
    config = load_link_config(model_dir)
    data = build_symbol_dataset(
        captures,
        model_dir,
        rng=np.random.default_rng(seed),
        validation_fraction=validation_fraction,
        on_recording=lambda p, k: say(f"{p.name}: {k} frames"),
    )
    check_symbol_dataset(data, captures)
    train, held = data.training_set(), data.validation_set()
    say(f"{train.frames} training frames ({int(train.probe.sum())} probe), {held.frames} held-out frames")
    generator = torch.Generator().manual_seed(seed)
    with torch_threads(1):
        cvae, history = fit_cvae(train, settings, generator, progress=progress)
        awgn = AwgnBaseline.fit(
            train.centre().reshape(-1),
            train.y.reshape(-1),
            np.repeat(train.snr_db, train.y.shape[1]),
            settings.half_window,
        )
        meta = {
            "kind": "cvae",
            "model_hash32": f"{model_hash32(model_dir):08x}",
            "sample_rate_hz": config.radio.sample_rate_hz,
            "architecture": settings.architecture(),
            "awgn": {"noise_scale": awgn.noise_scale},
            "probe_radius": data.info["probe_radius"],
            "snr_db_range": [float(data.snr_db.min()), float(data.snr_db.max())],
            "frames": {
                "train": train.frames,
                "held_out": held.frames,
                "probe": int(data.probe.sum()),
                "test_pattern": int((~data.probe).sum()),
            },
            "training": {**asdict(settings), "seed": seed, "final_neg_elbo": history[-1]["loss"]},
            "recordings": data.info["recordings"],
        }
        channel = LearnedChannel(cvae, awgn, meta)
        fid = (
            fidelity(channel, load_receiver(model_dir), held, config.model.n, generator)
            if (~held.probe).any()
            else None
        )
    if fid is not None:
        meta["fidelity"] = public(fid)
    save_channel_model(out_dir, channel)
    return {
        "out": str(out_dir),
        "train_frames": train.frames,
        "held_out_frames": held.frames,
        "fidelity": meta.get("fidelity"),
        "seconds": time.perf_counter() - start,
        "summary": summary_line(fid) if fid is not None else NO_FIDELITY,
    }


def check_channel_model(
    cm_dir: str | Path,
    model_dir: str | Path,
    captures: str | Path,
    *,
    seed: int = 0,
    plots: str | Path | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Fidelity of the channel model ``cm_dir`` on other ``captures`` of ``model_dir`` (every
    test-pattern frame), with the clouds PNG written to ``plots`` when given."""
    from aeradio.core.model_dir import load_link_config, load_lut
    from aeradio.learning.dataset import build_symbol_dataset
    from aeradio.learning.inference import load_receiver
    from aeradio.learning.training import torch_threads

    say = log or (lambda _msg: None)
    channel = load_channel_model(cm_dir, model_dir)
    config = load_link_config(model_dir)
    data = build_symbol_dataset(
        captures,
        model_dir,
        rng=np.random.default_rng(seed),
        validation_fraction=0.0,
        on_recording=lambda p, k: say(f"{p.name}: {k} frames"),
    )
    with torch_threads(1):
        fid = fidelity(
            channel, load_receiver(model_dir), data, config.model.n, torch.Generator().manual_seed(seed)
        )
    report = {
        "channel_model": str(cm_dir),
        "model": str(model_dir),
        "captures": str(captures),
        **public(fid),
        "summary": summary_line(fid),
    }
    if plots is not None:
        Path(plots).mkdir(parents=True, exist_ok=True)
        report["clouds_png"] = str(plot_clouds(fid, load_lut(model_dir), Path(plots) / "clouds.png"))
    return report
