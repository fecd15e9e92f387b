"""``aeradio tx``: test-pattern frames or a file's bytes through the TX chain to any device.

``--pattern probe`` sends probe frames instead of test patterns: known i.i.d. symbols over
the amplitude range the transmitter may use (:mod:`aeradio.dsp.probe`), for learning a
channel model (``aeradio channel-model fit``).

A coded model (a ``[code]`` section) sends whole codewords per frame: the test pattern's
information bits or the file's bytes with their CRC-32, LDPC-encoded, k bits per block
(:mod:`aeradio.dsp.framing`). Its encoder is the 5G NR LDPC code of
:mod:`aeradio.learning.ldpc` (torch and Sionna); an uncoded model's TX needs no torch.

One run numbers its frames from 0 and flags the last one (the header's LAST flag), so a
receiver knows how many frames the run sent, a missing tail included. Test-pattern frames
carry their seed in the header: receivers need no ``--seed``.

SIGTERM or Ctrl-C stops it between two writes: it prints how many frames it sent and exits
with 128 + the signal's number (130, 143); a ``file:`` recording cut short is not written
(nothing is left behind, see :mod:`aeradio.radio.sigmf_file`).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator
from contextlib import nullcontext
from typing import BinaryIO

import numpy as np

from aeradio.apps.device_args import device_settings, load_args_calibration, open_args_device
from aeradio.apps.processes import StopOnSignal
from aeradio.core.errors import ConfigError, check_range
from aeradio.dsp.framing import MAX_RUN_FRAMES, MAX_TEST_PATTERN_SEED
from aeradio.flowgraphs.tx_chain import TxChain
from aeradio.radio.sigmf_file import SigmfFileDevice


def _pattern_batches(
    tx: TxChain, frames: int, seed: int, per_write: int, kind: str = "test"
) -> Iterator[tuple[int, np.ndarray]]:
    """``(frames, samples)`` of test-pattern (or probe) frames 0 .. frames - 1, ``per_write``
    per batch, the last one flagged."""
    for first in range(0, frames, per_write):
        seqs = np.arange(first, min(first + per_write, frames))
        yield len(seqs), tx.pattern(kind, seqs, seed, last=seqs[-1] == frames - 1)


def _open_data_file(path: str, capacity_bytes: int) -> tuple[BinaryIO, int]:
    """``--file``, open, and the frames it takes (:class:`ConfigError` if it cannot be read
    or needs more than MAX_RUN_FRAMES frames)."""
    if capacity_bytes < 1:
        raise ConfigError("--file: frames of this model carry no data (blocks_per_frame x k bits, or a "
                          "coded frame's information bits, must exceed the 32-bit CRC)")
    try:
        f = open(path, "rb")  # noqa: SIM115 - the caller closes it
    except OSError as exc:
        raise ConfigError(f"--file {path}: {exc.strerror}") from None
    size = os.fstat(f.fileno()).st_size
    frames = max(1, -(-size // capacity_bytes))
    if frames > MAX_RUN_FRAMES:
        f.close()
        raise ConfigError(
            f"--file must fit in {MAX_RUN_FRAMES} frames ({MAX_RUN_FRAMES * capacity_bytes} bytes), "
            f"got {size} bytes"
        )
    return f, frames


def _file_batches(tx: TxChain, f: BinaryIO, frames: int, per_write: int) -> Iterator[tuple[int, np.ndarray]]:
    """``(frames, samples)`` of the file's data frames, read as it goes (an empty file: one
    empty frame), the last one flagged."""
    cap = tx.data_capacity
    for first in range(0, frames, per_write):
        count = min(per_write, frames - first)
        yield count, tx.data([f.read(cap) for _ in range(count)], first, last=first + count == frames)


def cmd_tx(args: argparse.Namespace) -> int:
    """Send test-pattern frames (``--frames``) or a file's bytes (``--file``)."""
    from aeradio.core.model_dir import load_link_config, load_lut, model_hash32

    if args.file is not None and getattr(args, "pattern", "test") != "test":
        raise ConfigError(f"--pattern {args.pattern} sets the payload of --frames; "
                          "--file sends the file's bytes")
    cfg = load_link_config(args.model)
    code = None
    if cfg.code is not None:  # torch and Sionna only for a coded model
        import torch

        from aeradio.learning.coded import outer_code

        torch.set_num_threads(1)  # the encoder is small; in the loopback, the cores are RX's
        code = outer_code(cfg)
    tx = TxChain(cfg, load_lut(args.model), model_hash32(args.model), code=code)
    settings = device_settings(args, cfg.radio)
    cal = load_args_calibration(args, settings.sample_rate_hz)
    check_range("--seed", args.seed, 0, MAX_TEST_PATTERN_SEED)
    if args.frames is not None:
        check_range("--frames", args.frames, 1, MAX_RUN_FRAMES)
    precorrector = cal.tx_precorrector() if cal is not None and cal.cfo_cps else None
    extra: dict[str, object] = {"overwrite": True} if getattr(args, "overwrite", False) else {}
    check_range("--write-timeout-s", args.write_timeout_s, 0.01, 3600.0, unit="s")
    if args.device.startswith("zmq:"):
        check_range("--connect-timeout-s", args.connect_timeout_s, 0.01, 3600.0, unit="s")
        extra["connect_timeout_s"] = args.connect_timeout_s
    # Modulated in batches of bounded samples (not frames): memory stays bounded whatever
    # the frame length the config allows.
    per_write = tx.frames_per_write
    source: BinaryIO | None = None
    if args.file is not None:
        source, total = _open_data_file(args.file, tx.data_capacity)
        batches = _file_batches(tx, source, total, per_write)
    else:
        total = args.frames  # the CLI default: aeradio.core.defaults.DEFAULT_TX_FRAMES
        batches = _pattern_batches(tx, total, args.seed, per_write, getattr(args, "pattern", "test"))
    num_batches = -(-total // per_write)
    t_start = time.perf_counter()
    sent = frames_sent = 0
    # SIGTERM and Ctrl-C end the loop between two writes: the device is then aborted, so
    # a file: recording cut short is not published.
    with (
        source or nullcontext(),
        StopOnSignal() as stop,
        open_args_device(args, "tx", settings, **extra) as dev,
    ):
        for i, (count, x) in enumerate(batches):
            if stop.requested:
                break
            if precorrector is not None:
                x = precorrector.process(x)
            dev.write(x, end_burst=i == num_batches - 1, timeout_s=args.write_timeout_s)
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
