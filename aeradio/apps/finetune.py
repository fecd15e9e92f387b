"""``aeradio finetune``: the command around :func:`aeradio.learning.finetune.finetune_model`."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from aeradio.core.atomic import write_json_atomic
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
    """
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
    if getattr(args, "json", None):
        write_json_atomic(args.json, report)
    if report["learned"]:
        return 0
    what = ("written anyway (--keep-unimproved)" if report["written"]
            else "not written (--keep-unimproved writes it anyway)")
    print(f"aeradio finetune: learned nothing: {report['unimproved']}; the model was {what}", file=sys.stderr)
    return 0 if report["written"] else EXIT_UNIMPROVED
