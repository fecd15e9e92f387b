"""``aeradio channel-model fit|check``: learn the real channel from captures, and check it.

``fit --model M --captures DIR --out CM`` fits the conditional VAE and the AWGN baseline
(:mod:`aeradio.learning.channel_model`) on the test-pattern and probe frames of M's
transmitter in DIR and writes the channel-model directory CM, with the fidelity measured
on held-out frames (printed). ``check --channel-model CM --model M --captures DIR`` measures
the fidelity on other captures: BLER through the learned channel against the measured one
per SNR bin, the sliced Wasserstein distance per transmitted point for the CVAE and the
AWGN baseline, ``--json F`` for the figures and ``--plots DIR`` for the clouds PNG.

Exit codes: 0; 2 on a user error (captures without probe frames, too few frames, a
channel model fitted for another model or sample rate, a tampered directory), one line.
"""

from __future__ import annotations

import argparse
import sys

from aeradio.core.atomic import write_json_atomic
from aeradio.core.errors import check_range
from aeradio.core.paths import check_dir_output, check_file_output, check_parents


def _bins(report: dict) -> list[str]:
    lines = []
    for b in report["bins"]:
        mark = " (judged: " + ("within" if b["within"] else "OUTSIDE") + " 1.5x)" if b["judged"] else ""
        lines.append(
            f"  SNR {b['snr_db_low']:5.1f} dB: {b['frames']:5d} frames, {b['blocks']:7d} blocks; "
            f"BLER measured {b['measured_bler']:.3e} ({b['measured_errors']}), "
            f"CVAE {b['cvae_bler']:.3e} ({b['cvae_errors']}), "
            f"AWGN {b['awgn_bler']:.3e} ({b['awgn_errors']}){mark}"
        )
    return lines


def cmd_channel_model(args: argparse.Namespace) -> int:
    """``aeradio channel-model fit|check``."""
    from aeradio.learning.channel_model import FitSettings, check_channel_model, fit_channel_model

    def log(msg: str) -> None:
        print(f"aeradio channel-model: {msg}", file=sys.stderr)

    check_range("--seed", args.seed, 0, 2**63 - 1)
    if getattr(args, "json", None):
        check_file_output(args.json, "--json")
    if args.channel_model_command == "fit":
        check_parents(args.out, "--out")
    if getattr(args, "plots", None) is not None:
        check_dir_output(args.plots, "--plots")
    if args.channel_model_command == "fit":
        settings = FitSettings(steps=args.steps)
        report = fit_channel_model(args.model, args.captures, args.out, settings=settings, seed=args.seed,
                                   progress=not args.quiet, log=log)
        if report["fidelity"] is not None:
            print("\n".join(_bins(report["fidelity"])))
        print(f"held-out fidelity: {report['summary']}")
        print(f"channel model written to {args.out} ({report['train_frames']} training frames, "
              f"{report['seconds']:.1f} s)")
    else:
        report = check_channel_model(args.channel_model, args.model, args.captures, seed=args.seed,
                                     plots=args.plots, log=log)
        print("\n".join(_bins(report)))
        print(report["summary"])
        if "clouds_png" in report:
            print(f"clouds: {report['clouds_png']}")
    if getattr(args, "json", None):
        write_json_atomic(args.json, report)
    return 0
