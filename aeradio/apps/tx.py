"""``aeradio tx``: test-pattern frames or a file's bytes through the TX chain to any device.

SIGTERM or Ctrl-C stops it between two writes: it prints how many frames it sent and exits
with 128 + the signal's number (130, 143); a ``file:`` recording cut short is not written
(nothing is left behind, see :mod:`aeradio.radio.sigmf_file`).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from aeradio.apps.device_args import device_settings, load_args_calibration, open_args_device
from aeradio.apps.processes import StopOnSignal
from aeradio.core.errors import ConfigError, check_range
from aeradio.flowgraphs.tx_chain import TxChain
from aeradio.radio.sigmf_file import SigmfFileDevice


def cmd_tx(args: argparse.Namespace) -> int:
    """Send test-pattern frames (``--frames``) or a file's bytes (``--file``)."""
    from aeradio.core.model_dir import load_link_config, load_lut, model_hash32

    cfg = load_link_config(args.model)
    tx = TxChain(cfg, load_lut(args.model), model_hash32(args.model))
    settings = device_settings(args, cfg.radio)
    cal = load_args_calibration(args, settings.sample_rate_hz)
    if args.frames is not None and args.frames < 1:
        raise ConfigError(f"--frames must be >= 1, got {args.frames}")
    # Modulated in batches of bounded samples (not frames): memory stays bounded whatever
    # the frame length the config allows.
    per_write = tx.frames_per_write
    if args.file is not None:
        try:
            data = Path(args.file).read_bytes()
        except OSError as exc:
            raise ConfigError(f"--file {args.file}: {exc.strerror}") from None
        cap = tx.data_capacity
        chunks = [data[i : i + cap] for i in range(0, len(data), cap)] or [b""]
        if len(chunks) > 1 << 16:
            raise ConfigError(f"--file must fit in 65536 frames ({65536 * cap} bytes), got {len(data)} bytes")
        batches = [
            (len(chunks[i : i + per_write]),
             lambda c=chunks[i : i + per_write], s=i: tx.data(c, s))
            for i in range(0, len(chunks), per_write)
        ]
        total = len(chunks)
    else:
        total = args.frames  # the CLI default: aeradio.core.defaults.DEFAULT_TX_FRAMES
        batches = [
            (min(per_write, total - s),
             lambda s=s: tx.test_pattern(np.arange(s, min(s + per_write, total)), args.seed))
            for s in range(0, total, per_write)
        ]
    precorrector = cal.tx_precorrector() if cal is not None and cal.cfo_cps else None
    t_start = time.perf_counter()
    sent = frames_sent = 0
    extra: dict[str, object] = {"overwrite": True} if getattr(args, "overwrite", False) else {}
    if args.device.startswith("zmq:"):
        check_range("--connect-timeout-s", args.connect_timeout_s, 0.01, 3600.0, unit="s")
        extra["connect_timeout_s"] = args.connect_timeout_s
    # SIGTERM and Ctrl-C end the loop between two writes: the device is then aborted, so
    # a file: recording cut short is not published.
    with StopOnSignal() as stop, open_args_device(args, "tx", settings, **extra) as dev:
        for i, (count, make) in enumerate(batches):
            if stop.requested:
                break
            x = make()
            if precorrector is not None:
                x = precorrector.process(x)
            dev.write(x, end_burst=i == len(batches) - 1)
            sent += len(x)
            frames_sent += count
        if frames_sent < total:
            dev.abort()
    dt = time.perf_counter() - t_start
    if frames_sent < total:
        what = "; the recording was not written" if isinstance(dev, SigmfFileDevice) else ""
        print(f"aeradio tx: interrupted by {stop.reason} after {frames_sent} of {total} frames{what}",
              file=sys.stderr)
        return stop.exit_code
    print(f"aeradio tx: {total} frames, {sent} samples in {dt:.2f} s", file=sys.stderr)
    return 0
