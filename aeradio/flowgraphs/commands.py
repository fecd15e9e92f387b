"""``aeradio tx`` and ``aeradio rx``: the chains on any device (radio, ZMQ stream, SigMF file)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from aeradio.config import LinkConfig
from aeradio.errors import ConfigError
from aeradio.flowgraphs.framing import PAYLOAD_DATA
from aeradio.flowgraphs.rx_chain import FrameResult, RxChain, StageDumper
from aeradio.flowgraphs.tx_chain import TxChain
from aeradio.radio.base import DeviceSettings

#: Frames modulated per device write.
TX_FRAMES_PER_WRITE = 64
#: Most samples per device read. Large: the RX chain works on whole batches of frames
#: (per-call costs dominate small reads: 64k-sample reads ran at 11 MS/s, 1M-sample reads at
#: 25 MS/s), and a stream (ZMQ) returns what is queued, so a slow stream still gives
#: small reads and little latency.
RX_READ_SAMPLES = 1 << 20
#: Test-pattern frames sent when neither --frames nor --file is given.
DEFAULT_TX_FRAMES = 100


def _settings(args: argparse.Namespace, cfg: LinkConfig) -> DeviceSettings:
    rate = args.sample_rate_hz if args.sample_rate_hz is not None else cfg.radio.sample_rate_hz
    freq = args.freq_hz if args.freq_hz is not None else cfg.radio.center_freq_hz
    return DeviceSettings(rate, freq, args.gain_db, args.bandwidth_hz, args.antenna)


def _open(args: argparse.Namespace, direction: str, settings: DeviceSettings, **kwargs: Any) -> Any:
    from aeradio.radio.uri import open_device

    return open_device(args.device, direction, settings, **kwargs)


def _calibration(args: argparse.Namespace, rate: float) -> Any:
    if getattr(args, "calibration", None) is None:
        return None
    from aeradio.calibration.calfile import load_calibration

    return load_calibration(args.calibration, rate)


def cmd_tx(args: argparse.Namespace) -> int:
    """Send test-pattern frames (``--frames``) or a file's bytes (``--file``)."""
    from aeradio.learning.model_io import load_link_config, load_lut, model_hash32

    cfg = load_link_config(args.model)
    tx = TxChain(cfg, load_lut(args.model), model_hash32(args.model))
    settings = _settings(args, cfg)
    cal = _calibration(args, settings.sample_rate_hz)
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
    t_start = time.perf_counter()
    sent = 0
    extra = {"overwrite": True} if getattr(args, "overwrite", False) else {}
    with _open(args, "tx", settings, **extra) as dev:
        for i, make in enumerate(batches):
            x = make()
            if cal is not None and cal.cfo_cps:
                from aeradio.calibration.corrections import correct_cfo

                x = correct_cfo(x, cal.cfo_cps, start_index=sent)
            dev.write(x, end_burst=i == len(batches) - 1)
            sent += len(x)
    dt = time.perf_counter() - t_start
    print(f"aeradio tx: {total} frames, {sent} samples in {dt:.2f} s", file=sys.stderr)
    return 0


def _write_json(path: str, report: dict[str, Any]) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2)
    os.replace(tmp, path)


def _write_data(path: str, results: dict[int, bytes]) -> dict[str, Any]:
    """Write received data frames in sequence order; report the missing ones."""
    if not results:
        return {"data_frames": 0, "data_frames_missing": None, "data_bytes": 0}
    last = max(results)
    missing = [s for s in range(last + 1) if s not in results]
    blob = b"".join(results[s] for s in sorted(results))
    tmp = f"{path}.tmp{os.getpid()}"
    Path(tmp).write_bytes(blob)
    os.replace(tmp, path)
    return {"data_frames": len(results), "data_frames_missing": missing, "data_bytes": len(blob)}


#: Seconds between two live status lines of ``aeradio rx``.
RX_STATUS_INTERVAL_S = 1.0
#: Synchronized payload symbols kept for ``rx --constellation``.
CONSTELLATION_SYMBOLS = 8192


class _StopOnSignal:
    """SIGTERM and SIGINT end the receive loop cleanly, so the report is still written."""

    def __init__(self) -> None:
        self.reason: str | None = None
        self._previous: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        return self.reason is not None

    def _handle(self, signum: int, frame: Any) -> None:
        self.reason = signal.Signals(signum).name

    def __enter__(self) -> _StopOnSignal:
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


class _RxStatus:
    """Live status on stderr: a first line when samples arrive, then one line a second."""

    def __init__(self, device: str, sample_rate_hz: float) -> None:
        self.device = device
        self.sample_rate_hz = sample_rate_hz
        self.started = False
        self.next_time = time.monotonic() + RX_STATUS_INTERVAL_S

    def update(self, rx: RxChain, dev: Any, *, received: bool) -> None:
        if received and not self.started:
            self.started = True
            print(f"aeradio rx: receiving from {self.device} at {self.sample_rate_hz / 1e6:g} MS/s",
                  file=sys.stderr, flush=True)
        now = time.monotonic()
        if now < self.next_time:
            return
        self.next_time = now + RX_STATUS_INTERVAL_S
        st = rx.stats
        bler = f"{st.block_errors / st.blocks:.2e}" if st.blocks else "-"
        recent = np.array(st.recent, dtype=np.float64).reshape(-1, 2)
        snr = f"{recent[:, 0].mean():.1f} dB" if len(recent) else "-"
        cfo = f"{recent[:, 1].mean() * self.sample_rate_hz:.0f} Hz" if len(recent) else "-"
        print(
            f"aeradio rx: frames {st.frames_detected} detected, {st.frames_decoded} decoded | "
            f"BLER {bler} | SNR {snr} | CFO {cfo} | dropped {dev.stats.samples_dropped}",
            file=sys.stderr, flush=True,
        )


class _SymbolKeeper:
    """The first synchronized payload symbols, saved as a raw complex64 .npy (no pickle)."""

    def __init__(self, limit: int = CONSTELLATION_SYMBOLS) -> None:
        self.limit = limit
        self.parts: list[np.ndarray] = []
        self.count = 0

    def add(self, payload: np.ndarray) -> None:
        if self.count < self.limit:
            part = np.asarray(payload, np.complex64).reshape(-1)[: self.limit - self.count]
            self.parts.append(part)
            self.count += part.size

    def save(self, path: str) -> None:
        symbols = np.concatenate(self.parts) if self.parts else np.zeros(0, np.complex64)
        tmp = f"{path}.tmp{os.getpid()}.npy"
        np.save(tmp, symbols, allow_pickle=False)
        os.replace(tmp, path)


def cmd_rx(args: argparse.Namespace) -> int:
    """Receive, decode and report; stops at --frames, --duration-s or the end of the source."""
    from aeradio.learning.inference import ReceiverRuntime
    from aeradio.learning.model_io import load_link_config, model_hash32

    cfg = load_link_config(args.model)
    runtime = ReceiverRuntime.load(args.model)
    # One torch thread by default: in the loopback, channel, TX and RX share the cores, and
    # a second thread fighting them made decoding several times slower, not faster.
    import torch

    if not 1 <= args.threads <= 64:
        raise ConfigError(f"--threads must be in [1, 64], got {args.threads}")
    torch.set_num_threads(args.threads)
    if args.frames is not None and args.frames < 1:
        raise ConfigError(f"--frames must be >= 1, got {args.frames}")
    model_hash = model_hash32(args.model)
    dump = StageDumper(args.dump_dir) if getattr(args, "dump_dir", None) else None
    rx = RxChain(cfg, runtime.decide, seed=args.seed, model_hash=model_hash, dump=dump)
    settings = _settings(args, cfg)
    cal = _calibration(args, settings.sample_rate_hz)
    corrector = None
    if cal is not None:
        from aeradio.calibration.corrections import RxCorrector

        corrector = RxCorrector.from_calibration(cal)
    data: dict[int, bytes] = {}
    constellation = _SymbolKeeper() if getattr(args, "constellation", None) else None
    t_start = time.perf_counter()
    processing_s = 0.0  # time in the RX chain: how fast it could go, whatever the source's rate
    from aeradio.radio.capture import annotate_results, open_rx_capture

    with _StopOnSignal() as stop, _open(args, "rx", settings) as dev, open_rx_capture(
        args.capture, sample_rate_hz=dev.sample_rate_hz, center_freq_hz=settings.freq_hz,
        device=args.device, rx=rx, model_hash=model_hash, link_name=cfg.name,
    ) as recorder:
        status = _RxStatus(args.device, dev.sample_rate_hz)
        while not stop.requested:
            block = dev.read(RX_READ_SAMPLES, timeout_s=0.5)
            if block is None:
                rx.flush()
                break
            status.update(rx, dev, received=len(block) > 0)
            if len(block):
                if corrector is not None:
                    block = corrector.process(block)
                if recorder is not None:
                    recorder.write(block)
                t_process = time.perf_counter()
                results: list[FrameResult] = rx.process(block)
                processing_s += time.perf_counter() - t_process
                if recorder is not None:
                    annotate_results(recorder, results, rx)
                for r in results:
                    if r.header is not None and r.header.kind == PAYLOAD_DATA and r.data is not None:
                        data[r.header.seq] = r.data
                    if constellation is not None and r.payload is not None:
                        constellation.add(r.payload)
            if args.frames is not None and rx.stats.frames_detected >= args.frames:
                break
            if args.duration_s is not None and rx.stats.samples >= args.duration_s * dev.sample_rate_hz:
                break
        report = rx.report(dev.sample_rate_hz, args.frames)
        report["samples_dropped"] = int(dev.stats.samples_dropped)
        report["device"] = dev.describe()
        report["events"] = list(dev.stats.events)
    report["elapsed_s"] = time.perf_counter() - t_start
    report["processing_s"] = processing_s
    report["processing_msps"] = report["samples"] / processing_s / 1e6 if processing_s > 0 else None
    report["stopped_by"] = stop.reason
    if constellation is not None:
        constellation.save(args.constellation)
    if args.out is not None:
        report.update(_write_data(args.out, data))
    if args.json is not None:
        _write_json(args.json, report)
    bler = report["bler"]
    print(
        f"aeradio rx: {report['frames_decoded']}/{report['frames_detected']} frames decoded, "
        f"{report['block_errors']}/{report['blocks']} block errors"
        + (f" (BLER {bler:.2e})" if bler is not None else "")
        + f", {report['header_crc_failures']} header CRC failures"
        + (f"; RX chain {report['processing_msps']:.1f} MS/s" if report["processing_msps"] else ""),
        file=sys.stderr,
    )
    return 0
