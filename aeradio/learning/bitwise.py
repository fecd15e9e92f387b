"""Bit-wise autoencoders: k bits -> n complex symbols with learned labels -> k bit LLRs.

This is the setting of Sionna's autoencoder tutorial (``configs/ae-n1-k6-ldpc.toml``): the
transmitter is the same power-normalized table as a message model
(:class:`~aeradio.learning.transmitter.Transmitter`), row ``m`` carrying the k bits of
``m`` (most significant first, :func:`message_bits`), so where a bit pattern lands in the
constellation is learned: the bit labelling is learned with the geometry. The receiver
(:class:`BitwiseReceiver`, Sionna's neural demapper) is an MLP from ``[Re y, Im y]`` per
symbol and ``log10(noise variance)`` to k LLRs, trained with binary cross-entropy, whose
minimum is the bit-metric decoding rate an outer code works with.

LLR convention: ``LLR = log P(b = 1 | y) / P(b = 0 | y)`` (the logit of binary
cross-entropy, and Sionna's), so a positive LLR decides 1.

A message model under an outer code (``configs/ae-n7-k8-ldpc.toml``, ``[model] bit_llrs =
"marginal"``) gets its bit LLRs by marginalizing its receiver's message posteriors
(:func:`marginal_llrs`, :class:`MarginalRuntime`): the same rows, labelled by the binary
label of the message index, trained on the messages with cross-entropy.

The classical counterpart, :func:`app_llrs`, is the exact APP demapper of any table on
AWGN (the likelihoods of the points whose label has the bit set, summed, against those
whose label has it clear);
with :func:`qam_gray_lut` it is the tutorial's baseline, 64-QAM + Gray + APP.

>>> message_bits(4, 2).tolist()
[[0, 0], [0, 1], [1, 0], [1, 1]]
>>> lut = qam_gray_lut(2)
>>> llr = app_llrs(lut[[2]], lut, noise_var=0.05)   # message 2 = bits 1, 0
>>> (llr > 0).astype(int).tolist()
[[1, 0]]
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from aeradio.core.config import LinkConfig, ModelConfig
from aeradio.core.constants import SAMPLE_DTYPE
from aeradio.core.errors import ConfigError, ModelFormatError
from aeradio.core.units import noise_var_per_real
from aeradio.learning.channels import build_channel, draw_noise_var
from aeradio.learning.receiver import complex_to_features

if TYPE_CHECKING:
    from aeradio.learning.inference import ReceiverRuntime
    from aeradio.learning.training import TrainResult


def message_bits(M: int, k: int) -> np.ndarray:
    """``[M, k]`` uint8: the bits of each message index, most significant first."""
    return ((np.arange(M)[:, None] >> np.arange(k - 1, -1, -1)) & 1).astype(np.uint8)


def bits_to_messages(bits: np.ndarray) -> np.ndarray:
    """``[..., k]`` bits (MSB first) -> ``[...]`` int64 message indices."""
    bits = np.asarray(bits, dtype=np.int64)
    return bits @ (1 << np.arange(bits.shape[-1] - 1, -1, -1))


def qam_gray_lut(k: int) -> np.ndarray:
    """Square 2^k-QAM with Gray labels as 5G NR defines it, ``[2^k, 1]`` complex64, mean
    energy 1: Sionna's ``Constellation("qam", k)`` (3GPP TS 38.211, 5.1: the even bits of
    a label select the in-phase level, the odd bits the quadrature level, most
    significant first), row m the point labelled m.
    """
    from sionna.phy.mapping import Constellation

    if k % 2 or not 2 <= k <= 16:
        raise ConfigError(f"square QAM needs an even number of bits per symbol in [2, 16], got k={k}")
    with torch.no_grad():
        points = Constellation("qam", k)().numpy().astype(np.complex128)
    points = points / np.sqrt(np.mean(np.abs(points) ** 2))  # exactly 1 after the float32 round trip
    return points.reshape(-1, 1).astype(SAMPLE_DTYPE)


def app_llrs(y: np.ndarray, lut: np.ndarray, noise_var: float | np.ndarray) -> np.ndarray:
    """Exact per-bit LLRs ``[B, k]`` float32 of blocks ``y [B, n]`` sent with ``lut [M, n]``
    on AWGN of ``noise_var`` per real component (float or ``[B]``), equiprobable messages."""
    y = torch.as_tensor(np.ascontiguousarray(y, dtype=SAMPLE_DTYPE))
    table = torch.as_tensor(np.ascontiguousarray(lut, dtype=SAMPLE_DTYPE))
    nv = torch.as_tensor(np.asarray(noise_var, dtype=np.float32)).reshape(-1, 1)
    diff = y[:, None, :] - table[None, :, :]
    distance = (diff.real.square() + diff.imag.square()).sum(dim=2)  # [B, M], no square root
    return label_sum_llrs(-distance / (2.0 * nv), int(round(math.log2(len(lut))))).float().numpy()


def label_sum_llrs(log_posterior: torch.Tensor, k: int) -> torch.Tensor:
    """:func:`marginal_llrs` of ``[B, 2^k]`` log-posteriors, ``[B, k]`` float64, by one
    float64 exp per message and the sums over each bit's labels as two small matrix
    products: k times fewer exps than k log-sum-exps (the APP demapper was most of a coded
    simulation's time). Differentiable (the row maximum is a constant of the gradient). A
    row where a bit's whole side underflows (a log-posterior gap beyond 700 nats, at very
    high SNR) is computed by :func:`marginal_llrs` instead, so every LLR stays finite.
    """
    x = log_posterior.double()
    weights = torch.exp(x - x.max(dim=1, keepdim=True).values.detach())
    labels = torch.from_numpy(message_bits(1 << k, k).astype(np.float64))
    llrs = torch.log(weights @ labels) - torch.log(weights @ (1.0 - labels))
    underflow = ~torch.isfinite(llrs).all(dim=1)
    if underflow.any():
        llrs[underflow] = marginal_llrs(log_posterior[underflow], k).double()
    return llrs


def marginal_llrs(log_posterior: torch.Tensor, k: int) -> torch.Tensor:
    """``[B, 2^k]`` message log-posteriors (up to a constant per row) -> ``[B, k]`` float32
    bit LLRs ``log P(b_i = 1 | y) / P(b_i = 0 | y)``, bits most significant first.

    ``LLR_i = logsumexp over the messages m with bit i of m set - logsumexp over the others``:
    the exact marginal of the message posterior when messages are equiprobable. Bit i
    splits the indices as ``[2^i, 2, 2^(k-1-i)]``, so each bit is two log-sum-exps over a
    view (no gathered copy of the posteriors).
    """
    x = log_posterior.float()
    rows = x.shape[0]
    llrs = []
    for i in range(k):
        halves = x.reshape(rows, 1 << i, 2, 1 << (k - 1 - i))
        ones, zeros = halves[:, :, 1], halves[:, :, 0]
        llrs.append(torch.logsumexp(ones, dim=(1, 2)) - torch.logsumexp(zeros, dim=(1, 2)))
    return torch.stack(llrs, dim=1)


class BitwiseReceiver(nn.Module):
    """``forward(y [B, n] complex64, noise_var [B] | None) -> [B, k]`` float32 LLRs.

    ``hidden_layers`` Linear + ReLU layers of ``hidden_width``, then a linear layer to k
    LLRs (Sionna's demapper: 128-128-k). With ``noise_input`` the network also sees
    ``log10(noise_var)`` (noise variance per real component); with ``scale_by_noise`` its
    outputs are divided by ``noise_var`` (``model.scale_by_noise``).
    """

    def __init__(
        self, k: int, n: int, hidden_width: int, hidden_layers: int, noise_input: bool = True,
        scale_by_noise: bool = False,
    ) -> None:
        super().__init__()
        if scale_by_noise and not noise_input:
            raise ValueError("scale_by_noise needs noise_input")
        self.k, self.n, self.noise_input, self.scale_by_noise = k, n, noise_input, scale_by_noise
        width = 2 * n + (1 if noise_input else 0)
        layers: list[nn.Module] = []
        for _ in range(hidden_layers):
            layers += [nn.Linear(width, hidden_width), nn.ReLU()]
            width = hidden_width
        self.hidden = nn.Sequential(*layers)
        self.out = nn.Linear(width, k)

    @classmethod
    def from_config(cls, model: ModelConfig) -> BitwiseReceiver:
        return cls(model.k, model.n, model.hidden_width, model.hidden_layers, model.noise_input,
                   model.scale_by_noise)

    def forward(self, y: torch.Tensor, noise_var: torch.Tensor | None = None) -> torch.Tensor:
        x = complex_to_features(y)
        if self.noise_input:
            if noise_var is None:
                raise ValueError("this receiver needs noise_var (built with noise_input=True)")
            nv = torch.as_tensor(noise_var, dtype=x.dtype).expand(x.shape[0])
            x = torch.cat([x, torch.log10(nv).unsqueeze(1)], dim=1)
            if self.scale_by_noise:
                return self.out(self.hidden(x)) / nv.unsqueeze(1)
        return self.out(self.hidden(x))


class BitwiseRuntime:
    """A loaded bit-wise receiver: ``llrs(y [B, n] complex64, noise_var) -> [B, k]`` float32.

    The network saw noise variances of Eb/N0 in ``[ebn0_db_min, ebn0_db_max]`` only; fed a
    smaller one (a cleaner channel: a recording without noise measures SNR near 30 dB) it
    extrapolates ``log10(noise_var)`` and its decisions fall apart (a 4000-step model of
    ``configs/ae-n1-k6-ldpc.toml``: uncoded BER 0.3 at Eb/N0 26 dB, every codeword lost).
    So the noise variance is floored at the training range's smallest,
    ``min_noise_var`` (per real component, Eb/N0 = ``ebn0_db_max``): the LLRs of a cleaner
    channel are those of the training's cleanest, with the same signs and less confidence.
    """

    def __init__(self, config: LinkConfig, receiver: BitwiseReceiver) -> None:
        self.config = config
        self.receiver = receiver.eval()
        self.min_noise_var = noise_var_per_real(config.training.ebn0_db_max, config.info_rate)

    @classmethod
    def load(cls, model_dir: str | Path) -> BitwiseRuntime:
        """The verified bit-wise receiver of a model directory (ModelFormatError otherwise)."""
        from aeradio.core.model_dir import load_link_config
        from aeradio.learning.inference import load_receiver_state

        config = load_link_config(model_dir)
        if not config.model.bitwise:
            raise ModelFormatError(
                f"{model_dir}: not a bit-wise model (model.receiver is {config.model.receiver!r})"
            )
        receiver = BitwiseReceiver.from_config(config.model)
        receiver.load_state_dict(load_receiver_state(model_dir))
        return cls(config, receiver)

    def llrs(self, y: np.ndarray, noise_var: float | np.ndarray | None) -> np.ndarray:
        """``[B, n]`` complex64 blocks, noise variance per real component (None for a receiver
        without the noise input) -> ``[B, k]`` LLRs."""
        y = np.ascontiguousarray(y, dtype=SAMPLE_DTYPE)
        nv = None  # a receiver without the noise input takes none
        if noise_var is not None:
            nv = np.maximum(np.broadcast_to(np.asarray(noise_var, np.float32), (len(y),)), self.min_noise_var)
            nv = torch.from_numpy(nv.astype(np.float32))
        with torch.inference_mode():
            return self.receiver(torch.from_numpy(y), nv).numpy()

    def decide(self, y: np.ndarray, noise_var: float | np.ndarray | None) -> np.ndarray:
        """Hard decisions: the message whose bits are the LLRs' signs, ``[B]`` int64 (the
        block decoder of an uncoded bit-wise model)."""
        return bits_to_messages(self.llrs(y, noise_var) > 0)


class MarginalRuntime:
    """A coded message model's bit LLRs: its receiver's M message logits (trained with
    cross-entropy: log-posteriors up to a constant per block) marginalized per bit
    (:func:`marginal_llrs`), ``[model] bit_llrs = "marginal"``.

    ``llrs(y [B, n] complex64, noise_var) -> [B, k]`` float32, the project's convention
    (positive decides 1). Their hard decisions are the bits of the most likely message
    whenever its posterior exceeds 1/2 (each of its bits then has at least that marginal);
    below, the bit-wise decisions may form another message.
    ``noise_var`` (per real component) reaches the receiver only if it was trained with the
    noise input. The logits of a receiver without it have the scale learned at the
    training's Eb/N0 range, so the LLRs are as confident there whatever the channel.
    """

    def __init__(self, runtime: ReceiverRuntime) -> None:
        self.runtime = runtime
        self.config = runtime.config
        self.receiver = runtime.receiver
        self.k = runtime.config.model.k

    @classmethod
    def load(cls, model_dir: str | Path) -> MarginalRuntime:
        """The verified message receiver of a model with ``bit_llrs = "marginal"``
        (ModelFormatError otherwise)."""
        from aeradio.core.model_dir import load_link_config
        from aeradio.learning.inference import ReceiverRuntime

        config = load_link_config(model_dir)
        if not config.model.marginal:
            raise ModelFormatError(
                f"{model_dir}: its bit LLRs do not come from marginalizing message posteriors "
                f"(model.bit_llrs is {config.model.bit_llrs!r}, model.receiver {config.model.receiver!r})"
            )
        return cls(ReceiverRuntime.load(model_dir))

    def llrs(self, y: np.ndarray, noise_var: float | np.ndarray | None) -> np.ndarray:
        """``[B, n]`` complex64 blocks -> ``[B, k]`` float32 LLRs, in chunks of bounded memory."""
        y = np.ascontiguousarray(y, dtype=SAMPLE_DTYPE)
        nv = None
        if noise_var is not None and self.receiver.noise_input:
            nv = np.broadcast_to(np.asarray(noise_var, np.float32), (len(y),))
        out = np.empty((len(y), self.k), np.float32)
        with torch.inference_mode():
            for i in range(0, len(y), _MARGINAL_CHUNK):
                j = i + _MARGINAL_CHUNK
                logits = self.runtime.logits(y[i:j], None if nv is None else nv[i:j])
                out[i:j] = marginal_llrs(torch.from_numpy(logits), self.k).numpy()
        return out

    def decide(self, y: np.ndarray, noise_var: float | np.ndarray | None) -> np.ndarray:
        """The most likely message per block, ``[B]`` int64 (the message receiver's decisions)."""
        return self.runtime.decide(y, noise_var if self.receiver.noise_input else None)


#: Blocks per chunk of :meth:`MarginalRuntime.llrs` (4096 logits of k = 12 each: 16 MB).
_MARGINAL_CHUNK = 1024


def load_llr_runtime(model_dir: str | Path) -> BitwiseRuntime | MarginalRuntime:
    """The bit-LLR source of a model with bit LLRs (``llrs(y, noise_var) -> [B, k]``): its
    bit-wise receiver, or its message receiver marginalized (``[model] bit_llrs``);
    ModelFormatError for an uncoded message model."""
    from aeradio.core.model_dir import load_link_config

    config = load_link_config(model_dir)
    return MarginalRuntime.load(model_dir) if config.model.marginal else BitwiseRuntime.load(model_dir)


def _initial_weight(config: LinkConfig, generator: torch.Generator) -> torch.Tensor | None:
    """The transmitter's starting table ``[M, n, 2]`` for ``training.tx_init`` (None: random)."""
    if config.training.tx_init == "random":
        return None
    if config.model.n != 1:
        raise ConfigError(f'training.tx_init = "qam" needs model.n = 1, got {config.model.n}')
    return torch.view_as_real(torch.from_numpy(qam_gray_lut(config.model.k))).clone()


def train_bitwise(
    config: LinkConfig, *, progress: bool = True, on_step: Callable[[int, float, float], None] | None = None
) -> TrainResult:
    """Train a bit-wise autoencoder (transmitter and :class:`BitwiseReceiver` jointly).

    Adam on binary cross-entropy between the receiver's LLRs and the bits of random
    messages, Eb/N0 ~ U[ebn0_db_min, ebn0_db_max] dB per block, counted per information
    bit (``config.info_rate``: the code rate included for a coded model, as Sionna's
    tutorial trains). Returns a :class:`~aeradio.learning.training.TrainResult` whose
    history's ``bler`` is the running rate of blocks with any bit wrong.

    The last ``training.receiver_only_fraction`` of the steps train the demapper alone, the
    constellation frozen (a fresh Adam, the learning-rate schedule continued): the demapper
    settles on the final constellation, which moved under it until then.
    ``training.plateau_steps`` stops early as the message trainer does.
    """
    from aeradio.learning.training import StepLog, TrainResult, learning_rate_at
    from aeradio.learning.transmitter import Transmitter

    cfg, model = config.training, config.model
    generator = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    tx = Transmitter(model.M, model.n, normalization=model.normalization, peak_amplitude=model.peak_amplitude,
                     dac_bits=model.dac_bits, dac_full_scale=model.dac_full_scale, generator=generator)
    start_weight = _initial_weight(config, generator)
    if start_weight is not None:
        with torch.no_grad():
            tx.weight.copy_(start_weight)
    rx = BitwiseReceiver.from_config(model)
    channel = build_channel(cfg.channel, cfg)
    optimizer = torch.optim.Adam(
        [{"params": list(tx.parameters()), "lr_scale": cfg.tx_lr_scale},
         {"params": list(rx.parameters()), "lr_scale": 1.0}],
        lr=cfg.learning_rate,
    )
    labels_table = torch.from_numpy(message_bits(model.M, model.k).astype(np.float32))
    joint_steps = cfg.steps - int(round(cfg.receiver_only_fraction * cfg.steps))
    lut = None  # the frozen constellation of the receiver-only phase
    log = StepLog(cfg.steps, f"train {config.name}", progress, "bce", on_step)
    stopped = "budget"
    start = time.perf_counter()
    step = 0
    for step in range(1, cfg.steps + 1):
        lr = learning_rate_at(step - 1, cfg)
        if step == joint_steps + 1:
            tx.requires_grad_(False)
            with torch.no_grad():
                lut = tx.lut()
            optimizer = torch.optim.Adam([{"params": list(rx.parameters()), "lr_scale": 1.0}],
                                         lr=cfg.learning_rate)
        for group in optimizer.param_groups:
            group["lr"] = lr * group["lr_scale"]
        messages = torch.randint(0, model.M, (cfg.batch_size,), generator=generator)
        noise_var = draw_noise_var(
            cfg.batch_size, cfg.ebn0_db_min, cfg.ebn0_db_max, config.info_rate, generator
        )
        y = channel(tx(messages) if lut is None else lut[messages], noise_var, generator)
        llrs = rx(y, noise_var)
        bits = labels_table[messages]
        loss = nn.functional.binary_cross_entropy_with_logits(llrs, bits)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        bler = float(((llrs.detach() > 0) != bits.bool()).any(dim=1).float().mean())
        log.record(step, float(loss.detach()), bler, lr)
        if log.plateau(step, cfg.plateau_steps):
            stopped = "plateau"
            break
    log.close()
    return TrainResult(
        lut=tx.export_lut(),
        receiver_state={k: v.detach().clone() for k, v in rx.state_dict().items()},
        history=log.history,
        steps=step,
        seconds=time.perf_counter() - start,
        stopped=stopped,
        lut_grid=tx.lut_grid(),
    )
