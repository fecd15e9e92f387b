"""``aeradio finetune``: the command around :func:`aeradio.learning.finetune.finetune_model`."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from aeradio.core.atomic import write_json_atomic
from aeradio.core.errors import ConfigError, check_range
from aeradio.core.paths import check_file_output
from aeradio.learning.finetune import FinetuneSettings, finetune_model

#: Exit code of a fine-tuning that learned nothing and wrote no model (user errors are 2).
EXIT_UNIMPROVED = 1


def _line(name: str, before: dict[str, Any], after: dict[str, Any]) -> str:
    return (
        f"{name}: BLER {before['bler']:.3e} -> {after['bler']:.3e} "
        f"({before['block_errors']} -> {after['block_errors']} errors in {after['blocks']} blocks "
        f"of {after['frames']} frames)"
    )


def cmd_finetune(args: argparse.Namespace) -> int:
    """``aeradio finetune --model DIR --captures DIR --out DIR2 [--json FILE] [--eval-captures DIR]``.

    Exit 0 when the fine-tuned model was written; 1 when it learned nothing (the reason on
    stderr) and nothing was written; with ``--keep-unimproved`` such a model is written,
    stderr says so and the exit code is 0 (the JSON report's ``learned`` is false); 2 on a
    user error.

    With ``--end-to-end --channel-model CM``, the LUT and the receiver are trained through
    the learned channel instead (:mod:`aeradio.learning.end_to_end`); the BLER lines are
    then the ones through the channel model (the real channel judges the new pair over the
    air).
    """
    check_range("--seed", args.seed, 0, 2**63 - 1)
    if getattr(args, "json", None) is not None:
        check_file_output(args.json, "--json", model_dir=args.model)
    if getattr(args, "end_to_end", False) or getattr(args, "channel_model", None) is not None:
        return _end_to_end(args)
    settings = FinetuneSettings(learning_rate=args.learning_rate, max_epochs=args.max_epochs)
    report = finetune_model(
        args.model,
        args.captures,
        args.out,
        seed=args.seed,
        settings=settings,
        validation_fraction=args.validation_fraction,
        eval_captures=getattr(args, "eval_captures", None),
        dataset_out=getattr(args, "save_dataset", None),
        log=lambda msg: print(f"aeradio finetune: {msg}", file=sys.stderr),
        overwrite=getattr(args, "overwrite", False),
        keep_unimproved=getattr(args, "keep_unimproved", False),
    )
    print(_line("validation", report["validation"]["before"], report["validation"]["after"]))
    if "fresh" in report:
        print(_line("fresh capture", report["fresh"]["before"], report["fresh"]["after"]))
    written = f"model written to {args.out}" if report["written"] else "no model written"
    if not report["learned"]:
        written = f"learned nothing, {written}"
    print(
        f"{report['epochs']} epochs (best {report['best_epoch']}, stopped: {report['stopped']}) "
        f"in {report['seconds']:.1f} s on {report['train_frames']} frames; {written}"
    )
    return _conclude(args, report)


def _conclude(args: argparse.Namespace, report: dict) -> int:
    """Write ``--json``; exit 0 when the model learned (or was kept with --keep-unimproved),
    else say why on stderr and return the exit code of an unimproved model."""
    if getattr(args, "json", None):
        write_json_atomic(args.json, report)
    if report["learned"]:
        return 0
    what = ("written anyway (--keep-unimproved)" if report["written"]
            else "not written (--keep-unimproved writes it anyway)")
    print(f"aeradio finetune: learned nothing: {report['unimproved']}; the model was {what}", file=sys.stderr)
    return 0 if report["written"] else EXIT_UNIMPROVED


def _end_to_end(args: argparse.Namespace) -> int:
    """``finetune --end-to-end --channel-model CM``."""
    from aeradio.learning.end_to_end import EndToEndSettings, finetune_end_to_end

    if not args.end_to_end or args.channel_model is None:
        missing = "--channel-model CM" if args.channel_model is None else "--end-to-end"
        raise ConfigError(f"finetune: --end-to-end and --channel-model go together; {missing} is missing")
    report = finetune_end_to_end(
        args.model, args.captures, args.channel_model, args.out,
        seed=args.seed, settings=EndToEndSettings(steps=args.steps),
        progress=not getattr(args, "quiet", False),
        log=lambda msg: print(f"aeradio finetune: {msg}", file=sys.stderr),
        overwrite=getattr(args, "overwrite", False), keep_unimproved=getattr(args, "keep_unimproved", False),
    )
    b = report["bler_channel_model"]
    print(f"through the channel model: BLER {b['before']:.3e} -> {b['after']:.3e} ({b['blocks']} blocks of "
          f"{b['frames']} frames); LUT moved {report['lut_rms_move']:.3f} rms, peak amplitude "
          f"{report['lut_peak_amplitude']:.3f} (probe radius {report['probe_radius']:.3f})")
    written = (f"model written to {args.out} (model hash {report['model_hash32']})" if report["written"]
               else "no model written")
    print(f"{report['steps']} steps (best {report['best_step']}, stopped: {report['stopped']}) in "
          f"{report['seconds']:.1f} s; {written}")
    return _conclude(args, report)
