"""``aeradio tx``: test-pattern frames or a file's bytes through the TX chain to any device."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from aeradio.apps.device_args import device_settings, load_args_calibration, open_args_device
from aeradio.core.errors import ConfigError, check_range
from aeradio.flowgraphs.tx_chain import TxChain

#: Frames modulated per device write.
TX_FRAMES_PER_WRITE = 64
#: Test-pattern frames sent when neither --frames nor --file is given.
DEFAULT_TX_FRAMES = 100


def cmd_tx(args: argparse.Namespace) -> int:
    """Send test-pattern frames (``--frames``) or a file's bytes (``--file``)."""
    from aeradio.core.model_dir import load_link_config, load_lut, model_hash32

    cfg = load_link_config(args.model)
    tx = TxChain(cfg, load_lut(args.model), model_hash32(args.model))
    settings = device_settings(args, cfg.radio)
    cal = load_args_calibration(args, settings.sample_rate_hz)
    if args.frames is not None and args.frames < 1:
        raise ConfigError(f"--frames must be >= 1, got {args.frames}")
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
            (lambda c=chunks[i : i + TX_FRAMES_PER_WRITE], s=i: tx.data(c, s))
            for i in range(0, len(chunks), TX_FRAMES_PER_WRITE)
        ]
        total = len(chunks)
    else:
        total = args.frames if args.frames is not None else DEFAULT_TX_FRAMES
        batches = [
            (lambda s=s: tx.test_pattern(np.arange(s, min(s + TX_FRAMES_PER_WRITE, total)), args.seed))
            for s in range(0, total, TX_FRAMES_PER_WRITE)
        ]
    precorrector = cal.tx_precorrector() if cal is not None and cal.cfo_cps else None
    t_start = time.perf_counter()
    sent = 0
    extra: dict[str, object] = {"overwrite": True} if getattr(args, "overwrite", False) else {}
    if args.device.startswith("zmq:"):
        from aeradio.radio.zmq_stream import DEFAULT_CONNECT_TIMEOUT_S

        timeout_s = args.connect_timeout_s
        if timeout_s is None:
            timeout_s = DEFAULT_CONNECT_TIMEOUT_S
        check_range("--connect-timeout-s", timeout_s, 0.01, 3600.0, unit="s")
        extra["connect_timeout_s"] = timeout_s
    with open_args_device(args, "tx", settings, **extra) as dev:
        for i, make in enumerate(batches):
            x = make()
            if precorrector is not None:
                x = precorrector.process(x)
            dev.write(x, end_burst=i == len(batches) - 1)
            sent += len(x)
    dt = time.perf_counter() - t_start
    print(f"aeradio tx: {total} frames, {sent} samples in {dt:.2f} s", file=sys.stderr)
    return 0
