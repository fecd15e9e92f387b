"""End-to-end fine-tuning through a learned channel: the LUT and the receiver trained together.

``aeradio finetune --channel-model CM --end-to-end`` trains the transmitter's LUT and the
receiver through the conditional VAE fitted on captures
(:mod:`aeradio.learning.channel_model`), whose samples are differentiable in the sent
symbols. Each step:

1. draws ``frames_per_step`` frames of random messages and, for each, the SNR estimate
   (and noise-variance estimate) of a captured frame, so the SNR spread is the real one;
2. builds the frames' symbols as the TX chain does (the known preamble, a header and the
   pilots around the payload), so every payload symbol has its real neighbours (ISI);
3. draws y for every payload symbol from the channel model (its ``half_window``
   neighbours and the frame's SNR as the condition);
4. takes an Adam step on the receiver's cross-entropy, for the receiver and (its learning
   rate scaled by ``tx_lr_scale``) the LUT.

Power constraint: the LUT is normalized on every use as at training (mean energy 1 per
complex use, deterministic, never from batch statistics) and its amplitudes are kept
within the probe radius the channel model was fitted on (``peak`` normalization at that
radius; ``energy``-normalized models keep their per-message energy), so the LUT does not
move where the channel model saw no input. A model with ``dac_bits`` stays on its DAC grid.

Early stopping: every ``eval_every`` steps the BLER through the channel model on a fixed
set of frames (fixed messages, SNRs and noise) is measured; the best LUT and receiver are
kept (step 0: the original pair). The new LUT gives a new model hash: its tx/rx pair works
like any model, and no longer with the original's transmitter or receiver.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from aeradio.core.config import LinkConfig
from aeradio.core.defaults import DEFAULT_END_TO_END_STEPS
from aeradio.core.errors import check_range
from aeradio.core.model_dir import (
    check_output_dir,
    load_link_config,
    load_lut,
    model_hash32,
    read_extra_meta,
    save_model,
)
from aeradio.dsp.framing import FrameLayout, Header, encode_header
from aeradio.learning.channel_model import LearnedChannel, check_symbol_dataset, load_channel_model
from aeradio.learning.dataset import build_symbol_dataset
from aeradio.learning.inference import load_receiver
from aeradio.learning.training import torch_threads
from aeradio.learning.transmitter import Transmitter


@dataclass(frozen=True)
class EndToEndSettings:
    """Optimizer and stopping rule of end-to-end fine-tuning."""

    steps: int = DEFAULT_END_TO_END_STEPS
    frames_per_step: int = 8
    #: Adam learning rate (3e-3 and 2000 steps: the best of four settings tried on the
    #: channelmodel benchmark's captures, by the fresh frames' BLER).
    learning_rate: float = 3e-3
    #: The LUT's learning rate relative to the receiver's.
    tx_lr_scale: float = 1.0
    eval_every: int = 100
    eval_frames: int = 64
    #: Stop after this many evaluations without a lower BLER through the channel model.
    patience: int = 5

    def __post_init__(self) -> None:
        check_range("end-to-end steps", self.steps, 1, 10_000_000)
        check_range("end-to-end frames per step", self.frames_per_step, 1, 10_000)
        check_range("end-to-end learning rate", self.learning_rate, 1e-7, 1.0)
        check_range("end-to-end tx_lr_scale", self.tx_lr_scale, 0.0, 100.0)
        check_range("end-to-end eval_every", self.eval_every, 1, 10_000_000)
        check_range("end-to-end eval_frames", self.eval_frames, 1, 100_000)
        check_range("end-to-end patience", self.patience, 1, 100_000)


class FrameBuilder:
    """Differentiable frames as the TX chain builds them, and the windows the channel model
    takes. ``build(payload [F, P] complex64) -> [F, S]``; ``windows(frames) -> [F, P, W]``."""

    def __init__(self, config: LinkConfig, half_window: int) -> None:
        lay = FrameLayout(config)
        self.layout, self.half_window = lay, half_window
        header = Header(0, 0, 0, 0)  # any header: it only gives the payload's first neighbours
        zeros = np.zeros((1, lay.blocks, lay.n), np.complex64)
        self.template = torch.from_numpy(lay.frame_symbols(encode_header(header)[None, :], zeros)[0])
        self.payload_index = torch.from_numpy(lay.payload_index.astype(np.int64))
        self.window_index = self.payload_index[:, None] + torch.arange(2 * half_window + 1)[None, :]

    def build(self, payload: torch.Tensor) -> torch.Tensor:
        frames = self.template.expand(payload.shape[0], -1)
        return frames.index_copy(1, self.payload_index, payload)

    def windows(self, frames: torch.Tensor) -> torch.Tensor:
        pad = torch.zeros((frames.shape[0], self.half_window), dtype=frames.dtype)
        return torch.cat([pad, frames, pad], dim=1)[:, self.window_index]


def _transmitter(config: LinkConfig, lut: np.ndarray, radius: float) -> Transmitter:
    """A transmitter starting at ``lut``, its amplitudes kept within ``radius`` (module docstring)."""
    model = config.model
    energy = model.normalization == "energy"
    peak = model.peak_amplitude if model.normalization == "peak" else radius
    tx = Transmitter(model.M, model.n, normalization="energy" if energy else "peak", peak_amplitude=peak,
                     dac_bits=model.dac_bits, dac_full_scale=model.dac_full_scale)
    with torch.no_grad():
        tx.weight.copy_(torch.view_as_real(torch.from_numpy(lut.astype(np.complex64))))
    return tx


def _logits(
    tx: Transmitter, rx: nn.Module, channel: LearnedChannel, builder: FrameBuilder, messages: torch.Tensor,
    snr_db: torch.Tensor, noise_var: torch.Tensor, generator: torch.Generator,
) -> torch.Tensor:
    """Receiver logits [F B, M] of ``messages`` [F, B] sent through the channel model at the
    frames' ``snr_db`` [F] (``noise_var`` [F]: the receiver's noise input)."""
    lay = builder.layout
    f = messages.shape[0]
    frames = builder.build(tx.lut()[messages].reshape(f, -1))
    win = builder.windows(frames)
    p = win.shape[1]
    y = channel.cvae.sample(win.reshape(f * p, -1), snr_db.repeat_interleave(p), generator)
    nv = noise_var.repeat_interleave(lay.blocks) if rx.noise_input else None
    return rx(y.reshape(f * lay.blocks, lay.n), nv)


def finetune_end_to_end(
    model_dir: str | Path,
    captures: str | Path,
    cm_dir: str | Path,
    out_dir: str | Path,
    *,
    seed: int = 0,
    settings: EndToEndSettings | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    overwrite: bool = False,
    keep_unimproved: bool = False,
) -> dict[str, Any]:
    """Train ``model_dir``'s LUT and receiver through the channel model ``cm_dir`` and write
    the new model ``out_dir`` (module docstring). ``captures`` (the ones the channel model
    was fitted on, or others of the same link) give the SNR spread and must hold probe
    frames. Returns the report: BLER through the channel model before and after, steps,
    seconds, ``learned``, ``written``, ``model_hash32`` of the new model.
    """
    from tqdm import tqdm

    settings = settings or EndToEndSettings()
    say = log or (lambda _msg: None)
    check_output_dir(out_dir, overwrite=overwrite, source=model_dir)
    channel = load_channel_model(cm_dir, model_dir)
    config, lut = load_link_config(model_dir), load_lut(model_dir)
    data = build_symbol_dataset(captures, model_dir, rng=np.random.default_rng(seed), validation_fraction=0.0,
                                on_recording=lambda p, k: say(f"{p.name}: {k} frames"))
    check_symbol_dataset(data, captures)
    start = time.perf_counter()
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    snr_all = torch.from_numpy(data.snr_db.astype(np.float32))
    nv_all = torch.from_numpy(data.noise_var.astype(np.float32))
    builder = FrameBuilder(config, channel.half_window)
    radius = float(channel.meta["probe_radius"])
    model = config.model
    with torch_threads(1):
        tx, rx = _transmitter(config, lut, radius), load_receiver(model_dir)
        channel.cvae.requires_grad_(False)
        eval_pick = torch.randint(0, data.frames, (settings.eval_frames,), generator=generator)
        eval_messages = torch.randint(0, model.M, (settings.eval_frames, config.frame.blocks_per_frame),
                                      generator=generator)
        eval_seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))

        @torch.no_grad()
        def evaluate() -> float:
            rx.eval()
            g = torch.Generator().manual_seed(eval_seed)
            snr, nv = snr_all[eval_pick], nv_all[eval_pick]
            logits = _logits(tx, rx, channel, builder, eval_messages, snr, nv, g)
            return float((logits.argmax(1) != eval_messages.reshape(-1)).double().mean())

        before = evaluate()
        best, best_step = before, 0
        best_state = (copy.deepcopy(tx.state_dict()), copy.deepcopy(rx.state_dict()))
        optimizer = torch.optim.Adam([
            {"params": list(tx.parameters()), "lr": settings.learning_rate * settings.tx_lr_scale},
            {"params": list(rx.parameters()), "lr": settings.learning_rate},
        ])
        history = [{"step": 0, "bler_channel_model": before}]
        bar = tqdm(total=settings.steps, desc="finetune end-to-end", disable=None if progress else True,
                   leave=False)
        step, stopped = 0, "budget"
        loss_fn = nn.CrossEntropyLoss()
        for step in range(1, settings.steps + 1):
            rx.train()
            pick = torch.randint(0, data.frames, (settings.frames_per_step,), generator=generator)
            messages = torch.randint(0, model.M, (settings.frames_per_step, config.frame.blocks_per_frame),
                                     generator=generator)
            logits = _logits(tx, rx, channel, builder, messages, snr_all[pick], nv_all[pick], generator)
            loss = loss_fn(logits, messages.reshape(-1))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            bar.update(1)
            if step % settings.eval_every == 0 or step == settings.steps:
                bler = evaluate()
                history.append({"step": step, "loss": float(loss.detach()), "bler_channel_model": bler})
                bar.set_postfix(loss=f"{float(loss.detach()):.4f}", bler=f"{bler:.2e}", best=f"{best:.2e}")
                if bler < best:
                    best, best_step = bler, step
                    best_state = (copy.deepcopy(tx.state_dict()), copy.deepcopy(rx.state_dict()))
                elif (step - best_step) // settings.eval_every >= settings.patience:
                    stopped = "patience"
                    break
        bar.close()
        tx.load_state_dict(best_state[0])
        rx.load_state_dict(best_state[1])
        new_lut = tx.export_lut()
        lut_grid = tx.lut_grid()
    seconds = time.perf_counter() - start
    learned = best_step > 0
    report: dict[str, Any] = {
        "model": str(model_dir), "out": str(out_dir), "captures": str(captures), "channel_model": str(cm_dir),
        "end_to_end": True,
        "bler_channel_model": {"before": before, "after": best, "frames": settings.eval_frames,
                               "blocks": settings.eval_frames * config.frame.blocks_per_frame},
        "steps": step, "best_step": best_step, "stopped": stopped, "seconds": round(seconds, 3),
        "settings": asdict(settings), "seed": seed, "learned": learned,
        "lut_peak_amplitude": float(np.max(np.abs(new_lut))), "probe_radius": radius,
        "lut_rms_move": float(np.sqrt(np.mean(np.abs(new_lut - lut) ** 2))),
        "history": history,
    }
    if not learned:
        report["unimproved"] = (f"best step 0: the BLER through the channel model did not improve "
                                f"({before:.3e} on {settings.eval_frames} frames)")
    report["written"] = learned or keep_unimproved
    if not report["written"]:
        return report
    provenance = {
        "base_model": str(Path(model_dir).resolve()),
        "base_model_hash32": f"{model_hash32(model_dir):08x}",
        "channel_model": str(Path(cm_dir).resolve()),
        "channel_model_sha256": channel.meta["files"]["channel_model.safetensors"]["sha256"],
        **{k: report[k] for k in ("captures", "bler_channel_model", "steps", "best_step", "seed", "learned")},
    }
    extra = {**read_extra_meta(model_dir), "finetune_end_to_end": provenance}
    save_model(out_dir, config, new_lut, rx.state_dict(), extra_meta=extra, overwrite=overwrite,
               lut_grid=lut_grid)
    report["model_hash32"] = f"{model_hash32(out_dir):08x}"
    return report
