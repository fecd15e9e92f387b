"""End-to-end training of transmitter and receiver through a differentiable channel.

Recipe (see :func:`train_autoencoder`): Adam, cross-entropy on the message index, Eb/N0
drawn uniformly (in dB) per block from the configured range, a cosine learning-rate decay
over the step budget, early stop on a loss plateau. Seeded by one ``torch.Generator``
(weights, messages, channel draws), so a config and a seed give the same model.

The receiver half (:func:`receiver_step`) is reusable on its own: fine-tuning trains the
receiver on received symbols with the LUT fixed.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from aeradio.core.config import LinkConfig, TrainingConfig
from aeradio.core.units import noise_var_per_real
from aeradio.learning.channels import Channel, build_channel, draw_noise_var
from aeradio.learning.receiver import NeuralReceiver
from aeradio.learning.transmitter import Transmitter

#: Smoothing of the running loss / BLER shown on the progress bar and used for plateaus.
EMA_WEIGHT = 0.02
#: Progress-bar refresh interval (steps).
PROGRESS_EVERY = 10


@dataclass
class TrainResult:
    """What training produced: the LUT ``[M, n]`` complex64, receiver weights, the curve."""

    lut: np.ndarray
    receiver_state: dict[str, torch.Tensor]
    #: One row per logged step: step, loss (nats), bler (running), lr.
    history: list[dict[str, float]] = field(default_factory=list)
    steps: int = 0
    seconds: float = 0.0
    #: "budget" or "plateau".
    stopped: str = "budget"
    #: The LUT's DAC grid (:meth:`Transmitter.lut_grid`); None for a float LUT.
    lut_grid: dict[str, Any] | None = None


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run the body with ``torch.set_num_threads(threads)``, restoring the previous count."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def learning_rate_at(step: int, cfg: TrainingConfig) -> float:
    """Learning rate at ``step`` (0-based) of the schedule.

    >>> cfg = TrainingConfig(steps=100, learning_rate=1e-2, lr_min_ratio=0.1)
    >>> round(learning_rate_at(0, cfg), 6), round(learning_rate_at(100, cfg), 6)
    (0.01, 0.001)
    """
    if cfg.lr_schedule == "constant":
        return cfg.learning_rate
    frac = min(step / max(cfg.steps, 1), 1.0)
    low = cfg.learning_rate * cfg.lr_min_ratio
    return low + 0.5 * (cfg.learning_rate - low) * (1.0 + math.cos(math.pi * frac))


def receiver_step(
    receiver: NeuralReceiver,
    optimizer: torch.optim.Optimizer,
    y: torch.Tensor,
    labels: torch.Tensor,
    noise_var: torch.Tensor | None = None,
    lut: torch.Tensor | None = None,
    mlp: bool = True,
) -> tuple[float, int]:
    """One gradient step on ``y [B, n] complex64`` with true ``labels [B] int64``.

    Returns ``(loss in nats, block errors in the batch)``. The optimizer may also hold
    transmitter parameters (joint training): the gradient flows back through ``y`` and,
    with ``lut`` (the receiver's linear path tied to it), through the matched filter.
    """
    logits = receiver(y, noise_var, lut, mlp)
    loss = nn.functional.cross_entropy(logits, labels)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    errors = int((logits.detach().argmax(dim=1) != labels).sum())
    return float(loss.detach()), errors


def autoencoder_step(
    tx: Transmitter,
    rx: NeuralReceiver,
    channel: Channel,
    optimizer: torch.optim.Optimizer,
    cfg: TrainingConfig,
    rate: float,
    generator: torch.Generator,
    *,
    tied: bool = True,
    mlp: bool = True,
) -> tuple[float, int]:
    """One step on a fresh batch of random messages; ``(loss, block errors)``.

    ``tied``: the receiver's linear path is the matched filter of the current LUT.
    ``mlp``: include the receiver's MLP (False: the linear path alone).
    """
    labels = torch.randint(0, tx.M, (cfg.batch_size,), generator=generator)
    noise_var = draw_noise_var(cfg.batch_size, cfg.ebn0_db_min, cfg.ebn0_db_max, rate, generator)
    lut = tx.lut()
    y = channel(lut[labels], noise_var, generator)
    return receiver_step(rx, optimizer, y, labels, noise_var, lut if tied else None, mlp)


def joint_receiver_mode(cfg: TrainingConfig) -> str:
    """The joint phase's receiver, ``training.joint_receiver`` with "auto" resolved.

    On pure AWGN, ML detection of any LUT is the matched filter: tying the linear path
    to the LUT gives the transmitter that gradient at once, and the MLP (which cannot
    improve on ML there) is left to the receiver phase, which makes steps ~3x cheaper.
    On other channels the matched filter is not the ML detector: the plain autoencoder.

    >>> joint_receiver_mode(TrainingConfig(channel="awgn+phase"))
    'free'
    """
    if cfg.joint_receiver != "auto":
        return cfg.joint_receiver
    if cfg.channel_names != ("awgn",):
        return "free"
    return "matched_filter" if cfg.receiver_only_fraction > 0 else "tied"


def posterior_scale(cfg: TrainingConfig, rate: float) -> float:
    """``1 / (2 sigma^2)`` at the middle of the Eb/N0 range: the ML logits' natural scale."""
    mid_db = 0.5 * (cfg.ebn0_db_min + cfg.ebn0_db_max)
    return 1.0 / (2.0 * noise_var_per_real(mid_db, rate))


def start_receiver_phase(
    tx: Transmitter, rx: NeuralReceiver, config: LinkConfig, *, restart_from_ml: bool = True
) -> torch.optim.Optimizer:
    """Freeze the LUT and restart the receiver from ML detection of it; returns its optimizer.

    The linear path becomes the exact log-posterior of the LUT at the middle of the Eb/N0
    range (``(2 Re<y, x_m> - |x_m|^2) / (2 sigma^2)``) and the MLP's output restarts at
    zero, so the receiver starts as ML detection and the MLP learns only what improves
    on it. (Keeping the joint phase's softer learned scale instead made the MLP learn to
    sharpen the logits, which cost ~0.1 dB against ML on AWGN.)
    """
    tx.requires_grad_(False)
    if restart_from_ml:
        with torch.no_grad():
            rx.log_scale.fill_(math.log(posterior_scale(config.training, config.info_rate)))
            rx.untie(tx.lut())
            nn.init.zeros_(rx.out.weight)
            nn.init.zeros_(rx.out.bias)
    params = [p for name, p in rx.named_parameters() if name != "log_scale"]
    return torch.optim.Adam([{"params": params, "lr_scale": 1.0}], lr=config.training.learning_rate)



class StepLog:
    """What a training loop reports: the running (EMA) loss and BLER, the history every
    :data:`PROGRESS_EVERY` steps, the progress bar (shown only when stderr is a terminal),
    the ``on_step`` callback, and whether the running loss has stopped improving
    (``training.plateau_steps``). :func:`_train` and the bit-wise trainer
    (:func:`aeradio.learning.bitwise.train_bitwise`) both use it.
    """

    def __init__(self, steps: int, desc: str, progress: bool, loss_name: str,
                 on_step: Callable[[int, float, float], None] | None) -> None:
        from tqdm import tqdm

        self.steps, self.loss_name, self.on_step = steps, loss_name, on_step
        self.history: list[dict[str, float]] = []
        self.ema_loss: float | None = None
        self.ema_bler: float | None = None
        self.best_loss, self.best_step = math.inf, 0  # the running loss's best, for plateau()
        # disable=None: the bar shows only when stderr is a terminal (not in logs).
        self.bar = tqdm(total=steps, desc=desc, disable=None if progress else True, leave=False)

    def record(self, step: int, loss: float, bler: float, lr: float) -> float:
        """One step's loss and batch BLER (``on_step`` gets them); returns the running loss."""
        self.ema_loss = loss if self.ema_loss is None else self.ema_loss + EMA_WEIGHT * (loss - self.ema_loss)
        self.ema_bler = bler if self.ema_bler is None else self.ema_bler + EMA_WEIGHT * (bler - self.ema_bler)
        if self.on_step is not None:
            self.on_step(step, loss, self.ema_bler)
        if step % PROGRESS_EVERY == 0 or step == self.steps:
            self.history.append({"step": step, "loss": self.ema_loss, "bler": self.ema_bler, "lr": lr})
            self.bar.update(step - self.bar.n)
            self.bar.set_postfix({self.loss_name: f"{self.ema_loss:.4f}", "bler": f"{self.ema_bler:.2e}"})
        return self.ema_loss

    def plateau(self, step: int, plateau_steps: int) -> bool:
        """After :meth:`record`: True once the running loss has not improved by 0.1 % for
        ``plateau_steps`` steps (0: never)."""
        if self.ema_loss < self.best_loss * (1.0 - 1e-3):
            self.best_loss, self.best_step = self.ema_loss, step
            return False
        return bool(plateau_steps) and step - self.best_step >= plateau_steps

    def close(self) -> None:
        self.bar.close()


def train_autoencoder(
    config: LinkConfig,
    *,
    progress: bool = True,
    on_step: Callable[[int, float, float], None] | None = None,
) -> TrainResult:
    """Train transmitter and receiver jointly per ``config.training``.

    ``progress`` shows a tqdm bar (stderr) with loss and running BLER. ``on_step`` is
    called as ``on_step(step, loss, running_bler)`` after each step. A bit-wise model
    (``model.receiver = "bitwise"``) trains with :func:`aeradio.learning.bitwise.train_bitwise`.
    The training range's Eb/N0 counts information bits (``config.info_rate``): for a coded
    message model (``bit_llrs = "marginal"``) the code rate is counted, as for a coded
    bit-wise one: the same noise is 10 log10(1 / rate) dB more per information bit than
    per channel bit.
    """
    with torch_threads(config.training.threads):
        if config.model.bitwise:
            from aeradio.learning.bitwise import train_bitwise

            return train_bitwise(config, progress=progress, on_step=on_step)
        return _train(config, progress, on_step)


def _train(
    config: LinkConfig, progress: bool, on_step: Callable[[int, float, float], None] | None
) -> TrainResult:
    cfg, model = config.training, config.model
    generator = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)  # nn.Linear init uses the global generator
    tx = Transmitter(
        model.M,
        model.n,
        normalization=model.normalization,
        peak_amplitude=model.peak_amplitude,
        dac_bits=model.dac_bits,
        dac_full_scale=model.dac_full_scale,
        generator=generator,
    )
    rx = NeuralReceiver.from_config(model)
    with torch.no_grad():
        rx.log_scale.fill_(math.log(cfg.tied_scale_ratio * posterior_scale(cfg, config.info_rate)))
    channel = build_channel(cfg.channel, cfg)
    optimizer = torch.optim.Adam(
        [
            {"params": list(tx.parameters()), "lr_scale": cfg.tx_lr_scale},
            {"params": list(rx.parameters()), "lr_scale": 1.0},
        ],
        lr=cfg.learning_rate,
    )
    joint_steps = cfg.steps - int(round(cfg.receiver_only_fraction * cfg.steps))
    mode = joint_receiver_mode(cfg)

    log = StepLog(cfg.steps, f"train {config.name}", progress, "loss", on_step)
    stopped = "budget"
    start = time.perf_counter()
    step = 0
    for step in range(1, cfg.steps + 1):
        lr = learning_rate_at(step - 1, cfg)
        if step == joint_steps + 1:
            optimizer = start_receiver_phase(tx, rx, config, restart_from_ml=mode != "free")
        for group in optimizer.param_groups:
            group["lr"] = lr * group["lr_scale"]
        joint = step <= joint_steps
        loss, errors = autoencoder_step(
            tx,
            rx,
            channel,
            optimizer,
            cfg,
            config.info_rate,
            generator,
            tied=joint and mode != "free",
            mlp=not (joint and mode == "matched_filter"),
        )
        log.record(step, loss, errors / cfg.batch_size, lr)
        if log.plateau(step, cfg.plateau_steps):
            stopped = "plateau"
            break
    log.close()
    if joint_steps == cfg.steps and mode != "free":
        rx.untie(tx.lut())
    return TrainResult(
        lut=tx.export_lut(),
        receiver_state={k: v.detach().clone() for k, v in rx.state_dict().items()},
        history=log.history,
        steps=step,
        seconds=time.perf_counter() - start,
        stopped=stopped,
        lut_grid=tx.lut_grid(),
    )
