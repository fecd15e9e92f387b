"""Model-free training of the transmitter (Aït Aoudia and Hoydis, "Model-free training of
end-to-end communication systems", IEEE JSAC 2019), as a library: the learner alone, no
devices (``aeradio train-ota``, :mod:`aeradio.apps.train_ota`, drives it through a real link).

No channel model and no gradient through the channel. Training alternates:

- **receiver steps** (supervised): frames of known messages sent with the current LUT;
  cross-entropy of the receiver's logits on the received blocks;
- **transmitter steps** (policy gradient): frames of perturbed LUT symbols
  ``x_p = sqrt(1 - s^2) x + s w``, ``w`` complex Gaussian ``CN(0, 1)`` per symbol, drawn
  and kept by the trainer. The transmitter is a Gaussian policy
  ``pi(x_p | x) = CN(sqrt(1 - s^2) x, s^2 I)``; the current receiver scores each received
  block with its loss ``l_i`` (cross-entropy on the message sent), and the REINFORCE
  estimate of the gradient of the expected loss is

      g = 1/B sum_i (l_i - b_i) grad_theta log pi(x_p,i | x_theta(m_i)),
      log pi(x_p | x) = -||x_p - sqrt(1 - s^2) x||^2 / s^2 + const,

  with the leave-one-out baseline ``b_i`` (the mean loss of the other blocks): it lowers the
  variance and keeps the estimate unbiased, ``E[g] = grad_theta E_w[l]``.

  With ``antithetic`` perturbations the blocks come in pairs: block ``j + blocks/2`` of a
  frame carries the message of block ``j`` perturbed by ``-w`` (:meth:`OtaLearner.transmitter_messages`,
  :meth:`OtaLearner.perturbed`), and each block's baseline is the mean loss of its pair,
  ``b_i = (l_i + l_i') / 2``. The pair's two terms add up to ``l_i grad log pi_i + l_i' grad log pi_i'``
  (the two gradients are opposite): the estimate without a baseline, unbiased; what it
  removes is the pair's common part, the loss of the message itself and the even part of
  the loss in ``w`` (the per-message baseline, for free).

``E|x_p|^2 = (1 - s^2) E|x|^2 + s^2 = 1``: the perturbed symbols keep the unit mean energy
per channel use of the convention, and ``x`` is the transmitter's normalized LUT (its
``[model] normalization``, and DAC grid if any), so the learned LUT keeps the model's
power constraint.

With ``tied`` (training from scratch), the receiver's linear path is the matched filter of
the current LUT (:class:`~aeradio.learning.receiver.NeuralReceiver`, the LUT detached: no
gradient reaches the transmitter through it) and its MLP learns the residual; the exported
receiver has it folded into ordinary weights (:meth:`NeuralReceiver.untie`).

>>> import torch
>>> g = torch.Generator().manual_seed(0)
>>> x = torch.ones(4, 2, dtype=torch.complex64)
>>> xp = perturb(x, 0.1, g)
>>> tuple(xp.shape), xp.dtype
((4, 2), torch.complex64)
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from aeradio.core import defaults as d
from aeradio.core.config import LinkConfig
from aeradio.core.errors import ConfigError, check_range
from aeradio.learning.receiver import NeuralReceiver
from aeradio.learning.training import posterior_scale
from aeradio.learning.transmitter import CompandedTransmitter, Transmitter

#: What the transmitter steps train (``--transmitter``): ``"lut"`` every point of the LUT
#: (M n complex parameters, at ``tx_learning_rate``); ``"compander"`` a gain curve over
#: amplitude shared by all the model's points
#: (:class:`~aeradio.learning.transmitter.CompandedTransmitter`, 13 parameters, at
#: ``compander_learning_rate``); ``"compander+lut"`` both. The compander needs a trained
#: model to reshape.
TRANSMITTER_KINDS = ("lut", "compander", "compander+lut")


def perturb(x: torch.Tensor, std: float, generator: torch.Generator) -> torch.Tensor:
    """``sqrt(1 - std^2) x + std w``, ``w ~ CN(0, 1)`` i.i.d.; ``x`` ``[B, n]`` complex64 (detached)."""
    w = torch.randn(*x.shape, 2, generator=generator) * math.sqrt(0.5)
    return math.sqrt(1.0 - std * std) * x.detach() + std * torch.view_as_complex(w)


def log_policy(x_p: torch.Tensor, x: torch.Tensor, std: float) -> torch.Tensor:
    """``log pi(x_p | x)`` up to a constant, ``[B]``: ``x_p``, ``x`` ``[B, n]`` complex."""
    return -(x_p - math.sqrt(1.0 - std * std) * x).abs().pow(2).sum(dim=1) / (std * std)


def _require_even_blocks(blocks: int) -> None:
    """Antithetic pairs are a frame's blocks ``j`` and ``j + blocks/2``: ConfigError unless
    ``blocks`` is even."""
    if blocks % 2:
        raise ConfigError(f"antithetic perturbations pair a frame's blocks: blocks per frame must be even, "
                          f"got {blocks}")


def antithetic_partners(frames: int, blocks: int) -> torch.Tensor:
    """``[frames * blocks]`` int64: the index of each block's antithetic partner in a batch of
    whole frames (block ``j`` and ``j + blocks/2`` of each frame; ``blocks`` even).

    >>> antithetic_partners(2, 4).tolist()
    [2, 3, 0, 1, 6, 7, 4, 5]
    """
    _require_even_blocks(blocks)
    half = blocks // 2
    j = torch.arange(blocks)
    within = torch.where(j < half, j + half, j - half)
    return (torch.arange(frames)[:, None] * blocks + within[None, :]).reshape(-1)


def policy_gradient_surrogate(
    x: torch.Tensor, x_p: torch.Tensor, losses: torch.Tensor, std: float,
    partners: torch.Tensor | None = None,
) -> torch.Tensor:
    """A scalar whose gradient (through ``x`` only) is the REINFORCE estimate of
    ``grad E_w[loss]`` (module docstring): leave-one-out baseline, or with ``partners``
    (``[B]`` int64, block ``i``'s antithetic partner, :func:`antithetic_partners`) the
    pair's mean loss.

    ``x``: ``[B, n]`` complex, differentiable (the LUT rows of the messages sent);
    ``x_p``: ``[B, n]`` the perturbed symbols sent; ``losses``: ``[B]`` float, the per-block
    losses the receiver reported (no gradient). Needs ``B >= 2``.
    """
    b = losses.shape[0]
    if b < 2:
        raise ConfigError(f"a policy-gradient step needs at least 2 blocks, got {b}")
    losses = losses.detach()
    if partners is None:
        baseline = (losses.sum() - losses) / (b - 1)
    else:
        baseline = 0.5 * (losses + losses[partners])
    return ((losses - baseline) * log_policy(x_p.detach(), x, std)).mean()


@dataclass(frozen=True)
class OtaSettings:
    """Hyperparameters of the alternating algorithm (the defaults of ``aeradio train-ota``)."""

    #: ``s``: standard deviation of the complex perturbation (E|w|^2 = 1), in (0, 1).
    perturbation_std: float = d.DEFAULT_OTA_PERTURBATION_STD
    #: Adam learning rate of the receiver.
    rx_learning_rate: float = d.DEFAULT_OTA_RX_LEARNING_RATE
    #: Adam learning rate of the transmitter (its embedding weights).
    tx_learning_rate: float = d.DEFAULT_OTA_TX_LEARNING_RATE
    #: Receiver gradient steps per batch of received blocks (each on all of them).
    rx_steps: int = d.DEFAULT_OTA_RX_STEPS
    #: What the transmitter steps train, one of :data:`TRANSMITTER_KINDS`.
    transmitter: str = "lut"
    #: Adam learning rate of the compander (its log-gains), when one is trained.
    compander_learning_rate: float = d.DEFAULT_OTA_COMPANDER_LEARNING_RATE
    #: The transmitter's learning rates fall as ``1 / (1 + t / T)`` after ``t`` transmitter
    #: steps (``T`` this, in steps; 0: constant). A constant rate leaves the noisy estimate's
    #: random walk in the LUT: a floor on the BLER.
    tx_lr_decay_steps: int = 0
    #: Antithetic pairs of perturbations (``w`` and ``-w`` on one message, module docstring).
    antithetic: bool = False

    def __post_init__(self) -> None:
        check_range("--perturbation-std", self.perturbation_std, 1e-3, 0.9)
        check_range("--rx-learning-rate", self.rx_learning_rate, 1e-6, 1.0)
        check_range("--tx-learning-rate", self.tx_learning_rate, 1e-6, 10.0)
        check_range("--rx-steps", self.rx_steps, 1, 100)
        check_range("--compander-learning-rate", self.compander_learning_rate, 1e-6, 10.0)
        check_range("--tx-lr-decay-iterations", self.tx_lr_decay_steps, 0, 10_000_000)
        if self.transmitter not in TRANSMITTER_KINDS:
            raise ConfigError(f"--transmitter must be one of {', '.join(TRANSMITTER_KINDS)}, "
                              f"got {self.transmitter!r}")


@dataclass
class StepResult:
    """One step on a batch: the mean loss (nats) and the block errors of the receiver's
    decisions before the step (on blocks it had not trained on)."""

    loss: float
    errors: int
    blocks: int


class OtaLearner:
    """Transmitter and receiver under model-free training (module docstring).

    Args:
        config: the model's link config.
        tx: the transmitter (its LUT is what is sent).
        rx: the receiver.
        settings: hyperparameters.
        generator: draws the perturbations.
        tied: the receiver's linear path is the matched filter of the current LUT.
    """

    def __init__(
        self,
        config: LinkConfig,
        tx: Transmitter,
        rx: NeuralReceiver,
        settings: OtaSettings,
        generator: torch.Generator,
        *,
        tied: bool,
    ) -> None:
        self.config, self.tx, self.rx, self.settings = config, tx, rx, settings
        self.generator, self.tied = generator, tied
        rx_params = [p for name, p in rx.named_parameters() if tied or name != "log_scale"]
        self.rx_opt = torch.optim.Adam(rx_params, lr=settings.rx_learning_rate)
        groups = []
        if isinstance(tx, CompandedTransmitter):
            groups.append({"params": [tx.log_gain], "lr": settings.compander_learning_rate})
        if tx.weight.requires_grad:
            groups.append({"params": [tx.weight], "lr": settings.tx_learning_rate})
        self.tx_opt = torch.optim.Adam(groups)
        decay = settings.tx_lr_decay_steps
        self.tx_schedule = torch.optim.lr_scheduler.LambdaLR(
            self.tx_opt, lambda t: 1.0 / (1.0 + t / decay) if decay else 1.0)

    @classmethod
    def start(
        cls,
        config: LinkConfig,
        settings: OtaSettings,
        seed: int,
        *,
        lut: np.ndarray | None = None,
        receiver_state: dict[str, torch.Tensor] | None = None,
    ) -> OtaLearner:
        """From a model (``lut`` and ``receiver_state``), or from scratch (both None): a
        random LUT and a receiver tied to it. ``settings.transmitter`` ``"compander"``
        needs a model (a random LUT must move its points)."""
        model = config.model
        generator = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)  # nn.Linear init uses the global generator
        scratch = lut is None
        if scratch != (receiver_state is None):
            raise ConfigError("a model to start from needs both its LUT and its receiver")
        constraints = {"normalization": model.normalization, "peak_amplitude": model.peak_amplitude,
                       "dac_bits": model.dac_bits, "dac_full_scale": model.dac_full_scale}
        tx: Transmitter
        if settings.transmitter != "lut":
            if scratch:
                raise ConfigError(f"--transmitter {settings.transmitter} reshapes a trained LUT: it cannot "
                                  "start --from-scratch (use --transmitter lut)")
            # The deployed LUT is normalized: the compander at zero gain gives it back.
            tx = CompandedTransmitter(np.asarray(lut, np.complex64),
                                      train_points=settings.transmitter == "compander+lut", **constraints)
        else:
            tx = Transmitter(model.M, model.n, generator=generator, **constraints)
        rx = NeuralReceiver.from_config(model)
        if scratch:
            with torch.no_grad():
                rx.log_scale.fill_(math.log(config.training.tied_scale_ratio
                                            * posterior_scale(config.training, model.rate)))
        else:
            if settings.transmitter == "lut":
                with torch.no_grad():
                    # The deployed LUT is normalized: its rows are a valid embedding of itself.
                    tx.weight.copy_(torch.view_as_real(torch.from_numpy(np.asarray(lut, np.complex64))))
            rx.load_state_dict(receiver_state)
        return cls(config, tx, rx, settings, generator, tied=scratch)

    # ---- what is sent -------------------------------------------------------------------
    def lut(self) -> np.ndarray:
        """The LUT sent on receiver frames, ``[M, n]`` complex64 (the deployed one)."""
        with torch.no_grad():
            return self.tx.export_lut()

    def transmitter_messages(self, messages: np.ndarray) -> np.ndarray:
        """The messages of a transmitter batch ``[F, blocks]`` from ``messages`` ``[F, blocks]``:
        themselves, or with ``antithetic`` the first half of each frame's repeated in its
        second half (the pairs)."""
        m = np.array(messages, np.int64)
        if self.settings.antithetic:
            _require_even_blocks(m.shape[1])
            half = m.shape[1] // 2
            m[:, half:] = m[:, :half]
        return m

    def perturbed(self, messages: np.ndarray) -> np.ndarray:
        """Perturbed LUT rows of ``messages`` (any shape S, int in [0, M); with ``antithetic``
        ``[F, blocks]`` of :meth:`transmitter_messages`): ``[*S, n]`` complex64. With
        ``antithetic`` block ``j + blocks/2`` of a frame gets ``-w`` of block ``j``."""
        messages = np.asarray(messages, np.int64)
        m = torch.from_numpy(messages.reshape(-1))
        with torch.no_grad():
            x = self.tx.lut()[m]
        s = self.settings.perturbation_std
        if self.settings.antithetic:
            if messages.ndim != 2:
                raise ConfigError(f"antithetic perturbations need messages [frames, blocks], got shape "
                                  f"{list(messages.shape)}")
            frames, blocks = messages.shape
            _require_even_blocks(blocks)
            x = x.reshape(frames, blocks, -1)
            w = perturb(torch.zeros_like(x[:, : blocks // 2]), s, self.generator) / s  # CN(0, 1)
            x_p = math.sqrt(1.0 - s * s) * x + s * torch.cat([w, -w], dim=1)
        else:
            x_p = perturb(x, s, self.generator)
        return x_p.numpy().astype(np.complex64).reshape(*messages.shape, self.tx.n)

    # ---- steps --------------------------------------------------------------------------
    def _logits(self, y: torch.Tensor, noise_var: torch.Tensor | None) -> torch.Tensor:
        lut = self.tx.lut().detach() if self.tied else None
        return self.rx(y, noise_var if self.rx.noise_input else None, lut)

    def receiver_step(self, y: np.ndarray, noise_var: np.ndarray, labels: np.ndarray) -> StepResult:
        """Supervised steps on received blocks ``y`` ``[B, n]`` complex64 of known ``labels``
        ``[B]`` (noise variance per real component ``[B]``). Errors: before the first step."""
        yt, nv, lab = _tensors(y, noise_var, labels)
        errors, first_loss = 0, 0.0
        for i in range(self.settings.rx_steps):
            logits = self._logits(yt, nv)
            loss = nn.functional.cross_entropy(logits, lab)
            if i == 0:
                errors = int((logits.detach().argmax(dim=1) != lab).sum())
                first_loss = float(loss.detach())
            self.rx_opt.zero_grad(set_to_none=True)
            loss.backward()
            self.rx_opt.step()
        return StepResult(first_loss, errors, len(lab))

    def transmitter_step(
        self, y: np.ndarray, noise_var: np.ndarray, labels: np.ndarray, x_p: np.ndarray
    ) -> StepResult:
        """One policy-gradient step: ``x_p`` ``[B, n]`` the perturbed symbols sent for
        ``labels``, ``y`` what the receiver got of them; ``B`` whole frames of
        :meth:`perturbed` in order (the antithetic pairs are within a frame)."""
        yt, nv, lab = _tensors(y, noise_var, labels)
        partners = None
        if self.settings.antithetic:
            blocks = self.config.payload_blocks
            if len(lab) % blocks:
                raise ConfigError(f"antithetic steps take whole frames of {blocks} blocks, "
                                  f"got {len(lab)} blocks")
            partners = antithetic_partners(len(lab) // blocks, blocks)
        with torch.no_grad():
            logits = self._logits(yt, nv)
            losses = nn.functional.cross_entropy(logits, lab, reduction="none")
        x = self.tx.lut()[lab]
        surrogate = policy_gradient_surrogate(x, torch.from_numpy(np.asarray(x_p, np.complex64)), losses,
                                              self.settings.perturbation_std, partners)
        self.tx_opt.zero_grad(set_to_none=True)
        surrogate.backward()
        self.tx_opt.step()
        self.tx_schedule.step()
        errors = int((logits.argmax(dim=1) != lab).sum())
        return StepResult(float(losses.mean()), errors, len(lab))

    # ---- export -------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """The model as it stands: ``lut`` ``[M, n]`` complex64, ``receiver_state`` (untied),
        ``lut_grid`` (None for a float LUT), all copies."""
        rx = copy.deepcopy(self.rx)
        with torch.no_grad():
            if self.tied:
                rx.untie(self.tx.lut())
            lut_grid = self.tx.lut_grid()
        return {
            "lut": self.lut(),
            "receiver_state": {k: v.detach().clone() for k, v in rx.state_dict().items()},
            "lut_grid": lut_grid,
        }


def _tensors(
    y: np.ndarray, noise_var: np.ndarray, labels: np.ndarray
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return (
        torch.from_numpy(np.ascontiguousarray(y, np.complex64)),
        torch.from_numpy(np.ascontiguousarray(noise_var, np.float32)),
        torch.from_numpy(np.ascontiguousarray(labels, np.int64)),
    )
