"""``aeradio finetune``: the command around :func:`aeradio.learning.finetune.finetune_model`."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from aeradio.core.atomic import write_json_atomic
from aeradio.learning.finetune import FinetuneSettings, finetune_model


def _line(name: str, before: dict[str, Any], after: dict[str, Any]) -> str:
    return (
        f"{name}: BLER {before['bler']:.3e} -> {after['bler']:.3e} "
        f"({before['block_errors']} -> {after['block_errors']} errors in {after['blocks']} blocks "
        f"of {after['frames']} frames)"
    )


def cmd_finetune(args: argparse.Namespace) -> int:
    """``aeradio finetune --model DIR --captures DIR --out DIR2 [--json FILE] [--eval-captures DIR]``."""
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
    )
    print(_line("validation", report["validation"]["before"], report["validation"]["after"]))
    if "fresh" in report:
        print(_line("fresh capture", report["fresh"]["before"], report["fresh"]["after"]))
    print(
        f"{report['epochs']} epochs (best {report['best_epoch']}, stopped: {report['stopped']}) "
        f"in {report['seconds']:.1f} s on {report['train_frames']} frames; model written to {args.out}"
    )
    if getattr(args, "json", None):
        write_json_atomic(args.json, report)
    return 0
