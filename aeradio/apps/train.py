"""Handlers of ``aeradio train`` and ``aeradio eval`` (see aeradio/cli.py)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np

from aeradio.core.atomic import write_json_atomic
from aeradio.core.config import LinkConfig, parse_channel_spec
from aeradio.core.errors import ConfigError
from aeradio.core.model_dir import check_output_dir
from aeradio.core.paths import check_dir_output, check_file_output


def load_training_config(path: str | Path, seed: int | None = None, steps: int | None = None) -> LinkConfig:
    """A TOML link config with the CLI's --seed / --steps overrides applied (validated)."""
    cfg = LinkConfig.from_toml(path)
    overrides = {k: v for k, v in (("seed", seed), ("steps", steps)) if v is not None}
    if overrides:
        cfg = cfg.replace(training=dataclasses.replace(cfg.training, **overrides))
    return cfg


#: Training-history points kept in model.json at most (evenly spaced, the last one kept):
#: enough for the training plot, and model.json stays far below its size bound.
MAX_HISTORY_POINTS = 1000


def thin_history(history: list[dict[str, float]], limit: int = MAX_HISTORY_POINTS) -> list[dict[str, float]]:
    """At most ``limit`` entries of ``history``, evenly spaced, first and last included.

    >>> [h["step"] for h in thin_history([{"step": s} for s in range(10)], 4)]
    [0, 3, 6, 9]
    """
    if len(history) <= limit:
        return list(history)
    picks = np.unique(np.linspace(0, len(history) - 1, limit).round().astype(int))
    return [history[i] for i in picks]


def train_and_save(
    cfg: LinkConfig, out: str | Path, *, progress: bool = True, plots: bool = False, overwrite: bool = False
) -> Path:
    """Train ``cfg`` and write the model directory ``out`` (+ PNG plots); returns ``out``.

    An existing model directory ``out`` is refused before training starts unless
    ``overwrite`` (then it is replaced once the new model is complete).
    """
    from aeradio.core.model_dir import save_model
    from aeradio.learning.training import train_autoencoder

    check_output_dir(out, overwrite=overwrite)
    result = train_autoencoder(cfg, progress=progress)
    last = result.history[-1] if result.history else {}
    meta = {
        "training": {
            "steps": result.steps,
            "seconds": round(result.seconds, 3),
            "stopped": result.stopped,
            "final_loss": last.get("loss"),
            "final_running_bler": last.get("bler"),
        },
        "history": thin_history(result.history),
    }
    out = save_model(out, cfg, result.lut, result.receiver_state, extra_meta=meta, overwrite=overwrite,
                     lut_grid=result.lut_grid)
    if plots:
        from aeradio.learning.plots import plot_constellation, plot_training_curve

        plot_constellation(result.lut, out / "constellation.png", title=f"{cfg.name}: learned constellation")
        plot_training_curve(
            result.history, out / "training.png", title=f"{cfg.name} training", training=cfg.training
        )
    return out


def cmd_train(args: argparse.Namespace) -> int:
    cfg = load_training_config(args.config, args.seed, args.steps)
    out = train_and_save(cfg, args.out, progress=not args.quiet, plots=args.plots, overwrite=args.overwrite)
    from aeradio.core.model_dir import read_extra_meta

    info = read_extra_meta(out)["training"]
    # A coded model's training BLER is its blocks' (uncoded, over Eb/N0 drawn across the
    # training range), far above its codeword error rate: say so, or it reads as a failure.
    what = ("running uncoded block error rate (before the outer code; aeradio eval gives the coded BLER)"
            if cfg.code is not None else "running BLER")
    print(
        f"trained {cfg.name} (k={cfg.model.k}, n={cfg.model.n}) in {info['seconds']:.1f} s, "
        f"{info['steps']} steps ({info['stopped']}), {what} {info['final_running_bler']:.2e} "
        f"-> {out}"
    )
    return 0


def eval_channel_spec(spec: str) -> str:
    """Validate an eval channel; AWGN (set by Eb/N0) is always part of it."""
    names = parse_channel_spec(spec)
    return "+".join(names) if "awgn" in names else "+".join((*names, "awgn"))


def cmd_eval(args: argparse.Namespace) -> int:
    import torch

    from aeradio.learning.comparison import baseline_curves, comparison_curves, format_table
    from aeradio.learning.evaluate import parse_ebn0_range, sweep_model

    ebn0 = parse_ebn0_range(args.ebn0_db)
    channel = eval_channel_spec(args.channel)
    if args.target_errors < 1:
        raise ConfigError(f"--target-errors must be >= 1, got {args.target_errors}")
    if args.max_blocks < 1:
        raise ConfigError(f"--max-blocks must be >= 1, got {args.max_blocks}")
    if args.plots is not None:  # before the simulation, not after it
        check_dir_output(args.plots, "--plots")
    if args.json is not None:
        check_file_output(args.json, "--json", model_dir=args.model)
    from aeradio.core.model_dir import load_link_config

    if load_link_config(args.model).code is not None:
        return _eval_coded(args, ebn0, channel)
    doc = sweep_model(
        args.model,
        ebn0,
        channel,
        target_errors=args.target_errors,
        max_blocks=args.max_blocks,
        seed=args.seed,
        progress=not args.quiet,
    )
    baselines = {}
    if channel == "awgn":
        baselines = baseline_curves(
            doc["k"],
            doc["n"],
            ebn0,
            target_errors=args.target_errors,
            max_blocks=args.max_blocks,
            generator=torch.Generator().manual_seed(args.seed + 1),
            progress=not args.quiet,
        )
    doc["baselines"] = {name: b["bler"] for name, b in baselines.items()}
    doc["baselines_ci"] = {name: b["bler_ci"] for name, b in baselines.items()}
    print(format_table(doc, baselines))
    _print_few_errors_note(doc, args)
    if args.json:
        write_json_atomic(args.json, doc)
    if args.plots:
        from aeradio.core.model_dir import load_lut
        from aeradio.learning.plots import plot_bler, plot_constellation

        plots = Path(args.plots)
        plots.mkdir(parents=True, exist_ok=True)
        plot_bler(comparison_curves(doc, baselines), plots / "bler.png",
                  title=f"{doc['model']} on {channel}: up to {args.target_errors} block errors per point")
        plot_constellation(load_lut(args.model), plots / "constellation.png")
    sys.stdout.flush()
    return 0


def _print_few_errors_note(doc: dict, args: argparse.Namespace) -> None:
    from aeradio.learning.evaluate import few_errors_note

    note = few_errors_note(doc, args.target_errors, f"--max-blocks {args.max_blocks}")
    if note:
        print(note)


def _eval_coded(args: argparse.Namespace, ebn0: list[float], channel: str) -> int:
    """``aeradio eval`` of a coded model: coded BLER (codeword errors, ``--target-errors``
    counting them, ``--max-blocks`` bounding the codewords), BER, the uncoded figures, APP
    demapping of the LUT, and the QAM + Gray + APP + same-code baseline
    (:mod:`aeradio.learning.coded`)."""
    from aeradio.learning.coded import format_coded_table, sweep_coded

    doc = sweep_coded(args.model, ebn0, channel, target_errors=args.target_errors,
                      max_codewords=args.max_blocks, seed=args.seed, progress=not args.quiet)
    print(format_coded_table(doc))
    _print_few_errors_note(doc, args)
    if args.json:
        write_json_atomic(args.json, doc)
    if args.plots:
        from aeradio.core.model_dir import load_lut
        from aeradio.learning.coded import coded_curves
        from aeradio.learning.plots import plot_bler, plot_constellation

        plots = Path(args.plots)
        plot_bler(coded_curves(doc), plots / "bler.png",
                  title=f"{doc['model']} on {channel}, LDPC rate {doc['code']['rate']:g}, codewords of "
                        f"{doc['code']['codeword_bits']} bits\nEb/N0 per information bit, "
                        f"N0 = 1/(Eb/N0 r k/n); up to {args.target_errors} codeword errors")
        # A point's bits label it when a block is one symbol (n = 1); a block model's label
        # belongs to its n symbols together: 256 labels on each of 7 panels hid the points.
        plot_constellation(load_lut(args.model), plots / "constellation.png",
                           bit_labels=True if doc["n"] == 1 else None,
                           title=f"{doc['model']}: learned constellation and bit labels" if doc["n"] == 1
                           else f"{doc['model']}: learned code (row m carries the bits of m)")
    sys.stdout.flush()
    return 0
