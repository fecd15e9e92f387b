"""``aeradio finetune``: fine-tune the neural receiver on captured frames; the LUT stays fixed.

The transmitter is deployed (a LUT on the radios), so only the receiver learns: starting
from the trained weights, Adam on the cross-entropy of the captured blocks (the training
frames of :func:`~aeradio.learning.dataset.build_dataset`), one epoch after another, with
early stopping on the validation BLER (frames never trained on). The weights of the best
validation epoch are kept; epoch 0 is the original receiver, so fine-tuning never makes
the validation BLER worse.

A fine-tuning that learned nothing says so and writes nothing (unless asked to keep it):
when the original receiver makes no block error on the captures there is nothing to learn
(capture at a lower SNR), and when no epoch beat epoch 0 on the validation frames the
"fine-tuned" receiver is the original one. The captures' labels are checked against what
the frames decode to first (:func:`~aeradio.learning.dataset.check_labels`).

The output is a complete model directory (same LUT, same link config, the provenance in
``model.json``'s ``meta.finetune``) that ``aeradio rx`` loads like any model. The model hash
in the frame headers identifies the transmitter (LUT and waveform), so the fine-tuned
receiver still accepts frames from transmitters running the original model. The original
model directory is only read.

>>> # aeradio finetune --model models/ae-n7-k8 --captures caps/ --out models/ae-n7-k8-ft
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aeradio.core.defaults import (
    DEFAULT_FINETUNE_LEARNING_RATE,
    DEFAULT_FINETUNE_MAX_EPOCHS,
    DEFAULT_VALIDATION_FRACTION,
)
from aeradio.core.errors import CaptureFormatError, ConfigError, check_range
from aeradio.core.model_dir import (
    check_output_dir,
    load_link_config,
    load_lut,
    model_hash32,
    read_extra_meta,
    read_lut_grid,
    save_model,
    sha256_file,
)
from aeradio.learning.dataset import FrameDataset, build_dataset, check_labels
from aeradio.learning.inference import load_receiver
from aeradio.learning.receiver import NeuralReceiver
from aeradio.learning.training import receiver_step, torch_threads

#: Blocks decoded per forward pass when measuring BLER.
EVAL_BATCH = 65536


@dataclass(frozen=True)
class FinetuneSettings:
    """Optimizer and stopping rule of receiver fine-tuning."""

    learning_rate: float = DEFAULT_FINETUNE_LEARNING_RATE
    batch_size: int = 512
    #: Gradient steps between validation checks (one "epoch" here; batches are drawn from
    #: successive shuffles of the training blocks, so small datasets still train).
    epoch_steps: int = 100
    max_epochs: int = DEFAULT_FINETUNE_MAX_EPOCHS
    #: Stop after this many epochs without a better validation BLER.
    patience: int = 6
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        check_range("finetune learning rate", self.learning_rate, 1e-7, 1.0)
        check_range("finetune batch size", self.batch_size, 1, 1_000_000)
        check_range("finetune epoch steps", self.epoch_steps, 1, 1_000_000)
        check_range("finetune max epochs", self.max_epochs, 1, 100_000)
        check_range("finetune patience", self.patience, 1, 100_000)
        check_range("finetune weight decay", self.weight_decay, 0.0, 1.0)


@dataclass
class BlerCount:
    """Block errors over blocks of a set of frames."""

    errors: int
    blocks: int
    frames: int

    @property
    def bler(self) -> float | None:
        return self.errors / self.blocks if self.blocks else None

    def to_dict(self) -> dict[str, Any]:
        return {"bler": self.bler, "block_errors": self.errors, "blocks": self.blocks, "frames": self.frames}


@dataclass
class FinetuneResult:
    """Fine-tuned weights and the figures behind them."""

    receiver_state: dict[str, torch.Tensor]
    before: BlerCount
    after: BlerCount
    best_epoch: int
    epochs: int
    stopped: str  # "patience", "budget" or "no validation errors"
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)


@torch.no_grad()
def count_block_errors(receiver: NeuralReceiver, data: FrameDataset) -> BlerCount:
    """Block errors of ``receiver`` (argmax of its logits) on every block of ``data``."""
    y, labels, noise_var = data.flat()
    receiver.eval()
    errors = 0
    for i in range(0, len(labels), EVAL_BATCH):
        nv = torch.from_numpy(noise_var[i : i + EVAL_BATCH]) if receiver.noise_input else None
        logits = receiver(torch.from_numpy(np.ascontiguousarray(y[i : i + EVAL_BATCH])), nv)
        errors += int((logits.argmax(dim=1).numpy() != labels[i : i + EVAL_BATCH]).sum())
    return BlerCount(errors, int(len(labels)), data.frames)


def finetune_receiver(
    receiver: NeuralReceiver,
    train: FrameDataset,
    validation: FrameDataset,
    settings: FinetuneSettings,
    generator: torch.Generator,
    *,
    progress: bool = True,
    on_epoch: Callable[[int, float, BlerCount], None] | None = None,
) -> FinetuneResult:
    """Train ``receiver`` (in place; the LUT is not involved) on the blocks of ``train``.

    Each epoch runs ``settings.epoch_steps`` Adam steps on batches of the training blocks
    (taken in order from successive shuffles drawn with ``generator``), then measures the
    validation BLER; the best epoch's weights are returned (epoch 0: the starting weights).
    Stops after ``settings.patience`` epochs without improvement or at ``settings.max_epochs``,
    and before the first epoch when the validation frames have no block error to improve on.
    Inputs: ``FrameDataset.flat()`` blocks, y ``[B, n]`` complex64, labels ``[B]`` int64.
    """
    with torch_threads(1):
        return _finetune(receiver, train, validation, settings, generator, progress, on_epoch)


def _finetune(
    receiver: NeuralReceiver,
    train: FrameDataset,
    validation: FrameDataset,
    settings: FinetuneSettings,
    generator: torch.Generator,
    progress: bool,
    on_epoch: Callable[[int, float, BlerCount], None] | None,
) -> FinetuneResult:
    from tqdm import tqdm

    if train.frames == 0 or validation.frames == 0:
        raise ConfigError(
            f"fine-tuning needs training and validation frames, got {train.frames} and {validation.frames}"
        )
    y_np, labels_np, nv_np = train.flat()
    y, labels = torch.from_numpy(np.ascontiguousarray(y_np)), torch.from_numpy(labels_np)
    noise_var = torch.from_numpy(nv_np) if receiver.noise_input else None
    optimizer = torch.optim.Adam(receiver.parameters(), lr=settings.learning_rate,
                                 weight_decay=settings.weight_decay)
    before = count_block_errors(receiver, validation)
    best, best_epoch = before, 0
    best_state = copy.deepcopy(receiver.state_dict())
    history: list[dict[str, float]] = [{"epoch": 0, "loss": math.nan, "val_bler": before.bler or 0.0}]
    if before.errors == 0:  # nothing can beat epoch 0
        return FinetuneResult(
            receiver_state={k: v.detach().clone() for k, v in best_state.items()}, before=before, after=best,
            best_epoch=0, epochs=0, stopped="no validation errors", seconds=0.0, history=history,
        )
    batches = settings.epoch_steps
    order, pos = torch.randperm(len(labels), generator=generator), 0
    start = time.perf_counter()
    stopped, epoch = "budget", 0
    # disable=None: the bar shows only when stderr is a terminal (not in logs).
    bar = tqdm(total=settings.max_epochs * batches, desc="finetune", disable=None if progress else True,
               leave=False)
    bar.set_postfix(val_bler=f"{before.bler:.2e}")
    for epoch in range(1, settings.max_epochs + 1):
        receiver.train()
        total, count = 0.0, 0
        for _ in range(batches):
            if pos >= len(labels):
                order, pos = torch.randperm(len(labels), generator=generator), 0
            idx = order[pos : pos + settings.batch_size]
            pos += len(idx)
            loss, _ = receiver_step(receiver, optimizer, y[idx], labels[idx],
                                    None if noise_var is None else noise_var[idx])
            total, count = total + loss * len(idx), count + len(idx)
            bar.update(1)
        val = count_block_errors(receiver, validation)
        mean_loss = total / count
        history.append({"epoch": epoch, "loss": mean_loss, "val_bler": val.bler or 0.0})
        bar.set_postfix(loss=f"{mean_loss:.4f}", val_bler=f"{val.bler:.2e}", best=f"{best.bler:.2e}")
        if on_epoch is not None:
            on_epoch(epoch, mean_loss, val)
        if val.errors < best.errors:
            best, best_epoch = val, epoch
            best_state = copy.deepcopy(receiver.state_dict())
        elif epoch - best_epoch >= settings.patience:
            stopped = "patience"
            break
    bar.close()
    receiver.load_state_dict(best_state)
    return FinetuneResult(
        receiver_state={k: v.detach().clone() for k, v in best_state.items()},
        before=before,
        after=best,
        best_epoch=best_epoch,
        epochs=epoch,
        stopped=stopped,
        seconds=time.perf_counter() - start,
        history=history,
    )


def unimproved_reason(original: BlerCount, result: FinetuneResult) -> str | None:
    """Why fine-tuning learned nothing, or None when the validation BLER went down.

    ``original``: the original receiver on every frame of the captures (training and
    validation); ``result``: what :func:`finetune_receiver` returned.
    """
    if original.errors == 0:
        return (
            f"no block errors in the captures (0 in {original.blocks} blocks of {original.frames} frames): "
            "nothing to learn; capture at a lower SNR"
        )
    if result.best_epoch > 0:
        return None
    before = result.before
    if before.errors == 0:
        return (
            f"best epoch 0: the validation frames have no block error to improve on (0 in {before.blocks} "
            f"blocks; {original.errors} in all the captures); capture more frames or at a lower SNR"
        )
    tried = [h["val_bler"] for h in result.history[1:]]
    best_tried = f"; the best of {len(tried)} epochs: {min(tried):.3e}" if tried else ""
    return (
        f"best epoch 0: validation BLER did not improve ({before.bler:.3e}, {before.errors} errors in "
        f"{before.blocks} blocks{best_tried})"
    )


def finetune_model(
    model_dir: str | Path,
    captures: str | Path,
    out_dir: str | Path,
    *,
    seed: int = 0,
    settings: FinetuneSettings | None = None,
    validation_fraction: float = DEFAULT_VALIDATION_FRACTION,
    eval_captures: str | Path | None = None,
    dataset_out: str | Path | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    overwrite: bool = False,
    keep_unimproved: bool = False,
) -> dict[str, Any]:
    """Fine-tune ``model_dir``'s receiver on ``captures`` and write the model ``out_dir``.

    ``captures``: a capture directory, or a dataset ``.npz`` saved before (``dataset_out``).
    ``eval_captures``: another capture directory (frames never trained on or used for
    early stopping) on which BLER before and after is also measured. ``out_dir`` must not
    be a model directory already unless ``overwrite``. When fine-tuning learned nothing
    (:func:`unimproved_reason`), the model is written only with ``keep_unimproved``.

    Returns the report: BLER before and after with frame and block counts, epochs, seconds,
    provenance; ``captures_original`` (the original receiver on every captured frame),
    ``learned`` (bool), ``unimproved`` (the reason, when not learned) and ``written``
    (whether ``out_dir`` was written).

    Raises:
        CaptureFormatError: no usable frames, or labels that do not match the frames.
    """
    settings = settings or FinetuneSettings()
    check_output_dir(out_dir, overwrite=overwrite, source=model_dir)
    config, lut = load_link_config(model_dir), load_lut(model_dir)
    say = log or (lambda _msg: None)
    rng = np.random.default_rng(seed)
    if Path(captures).is_file():  # a dataset saved before (--save-dataset)
        dataset = FrameDataset.load(captures)
        if dataset.info.get("model_hash32") != f"{model_hash32(model_dir):08x}":
            raise CaptureFormatError(f"{captures}: dataset of another transmitter than {model_dir}")
        check_labels(dataset, model_dir)
    else:
        dataset = build_dataset(captures, model_dir, rng=rng, validation_fraction=validation_fraction,
                                on_recording=lambda p, n: say(f"{p.name}: {n} frames"))
    if dataset_out is not None:
        dataset.save(dataset_out)
    for s in dataset.info["skipped"]:
        say(f"skipped {s['recording']}: {s['reason']}")
    train, validation = dataset.training_set(), dataset.validation_set()
    say(f"{train.frames} training frames, {validation.frames} validation frames")
    torch.manual_seed(seed)
    receiver = load_receiver(model_dir)
    base = copy.deepcopy(receiver)
    with torch_threads(1):
        original = count_block_errors(base, dataset)
    result = finetune_receiver(receiver, train, validation, settings, torch.Generator().manual_seed(seed),
                               progress=progress)
    unimproved = unimproved_reason(original, result)
    report: dict[str, Any] = {
        "model": str(model_dir),
        "out": str(out_dir),
        "captures": str(captures),
        "train_frames": train.frames,
        "train_blocks": train.blocks,
        "captures_original": original.to_dict(),
        "validation": {"before": result.before.to_dict(), "after": result.after.to_dict()},
        "skipped": dataset.info["skipped"],
        "epochs": result.epochs,
        "best_epoch": result.best_epoch,
        "stopped": result.stopped,
        "seconds": round(result.seconds, 3),
        "settings": asdict(settings),
        "seed": seed,
        "learned": unimproved is None,
    }
    if unimproved is not None:
        report["unimproved"] = unimproved
    if eval_captures is not None:
        fresh = build_dataset(eval_captures, model_dir, rng=rng, validation_fraction=0.0)
        with torch_threads(1):
            report["fresh"] = {
                "captures": str(eval_captures),
                "before": count_block_errors(base, fresh).to_dict(),
                "after": count_block_errors(receiver, fresh).to_dict(),
            }
    report["written"] = unimproved is None or keep_unimproved
    if not report["written"]:
        return report
    provenance = {
        "base_model": str(Path(model_dir).resolve()),
        "base_model_hash32": f"{model_hash32(model_dir):08x}",
        "base_receiver_sha256": sha256_file(Path(model_dir) / "receiver.safetensors"),
        **{k: report[k] for k in ("captures", "train_frames", "validation", "epochs", "best_epoch", "seed",
                                  "learned")},
        "recordings": dataset.info["recordings"],
    }
    save_model(out_dir, config, lut, result.receiver_state,
               extra_meta={**read_extra_meta(model_dir), "finetune": provenance}, overwrite=overwrite,
               lut_grid=read_lut_grid(model_dir))
    report["model_hash32"] = f"{model_hash32(out_dir):08x}"
    return report
