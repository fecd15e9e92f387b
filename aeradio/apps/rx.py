"""``aeradio rx``: receive, decode and report from any device (radio, ZMQ stream, SigMF file)."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import numpy as np

from aeradio.apps.capture import annotate_results, open_rx_capture
from aeradio.apps.device_args import device_settings, load_args_calibration, open_args_device
from aeradio.apps.processes import StopOnSignal
from aeradio.core.atomic import save_npy_atomic, write_bytes_atomic, write_json_atomic
from aeradio.core.errors import ConfigError
from aeradio.dsp.framing import PAYLOAD_DATA
from aeradio.flowgraphs.rx_chain import FrameResult, RxChain, StageDumper

#: Most samples per device read. Large: the RX chain works on whole batches of frames
#: (per-call costs dominate small reads: 64k-sample reads ran at 11 MS/s, 1M-sample reads at
#: 25 MS/s), and a stream (ZMQ) returns what is queued, so a slow stream still gives
#: small reads and little latency.
RX_READ_SAMPLES = 1 << 20
def _write_data(path: str, results: dict[int, bytes], last_seq: int | None) -> dict[str, Any]:
    """Write received data frames in sequence order; report the missing ones (up to the
    transfer's LAST frame, ``last_seq``, when it was received: a missing tail counts)."""
    if not results:
        return {"data_frames": 0, "data_frames_missing": None, "data_bytes": 0,
                "data_last_frame_seen": last_seq is not None}
    last = max(results) if last_seq is None else last_seq
    missing = [s for s in range(last + 1) if s not in results]
    blob = b"".join(results[s] for s in sorted(results))
    write_bytes_atomic(path, blob)
    return {"data_frames": len(results), "data_frames_missing": missing, "data_bytes": len(blob),
            "data_last_frame_seen": last_seq is not None}


#: Seconds between two live status lines of ``aeradio rx``.
RX_STATUS_INTERVAL_S = 1.0
#: Synchronized payload symbols kept for ``rx --constellation``.
CONSTELLATION_SYMBOLS = 8192


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
        save_npy_atomic(path, symbols)


def cmd_rx(args: argparse.Namespace) -> int:
    """Receive, decode and report; stops at --frames, --duration-s or the end of the source."""
    from aeradio.core.model_dir import load_link_config, model_hash32
    from aeradio.learning.inference import ReceiverRuntime

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
    rx = RxChain(cfg, runtime.decide, model_hash=model_hash, dump=dump)
    settings = device_settings(args, cfg.radio)
    cal = load_args_calibration(args, settings.sample_rate_hz)
    corrector = cal.rx_corrector() if cal is not None else None
    data: dict[int, bytes] = {}  # by full sequence number
    data_last_seq: int | None = None  # of the transfer's LAST frame
    constellation = _SymbolKeeper() if getattr(args, "constellation", None) else None
    t_start = time.perf_counter()
    processing_s = 0.0  # time in the RX chain: how fast it could go, whatever the source's rate

    with StopOnSignal() as stop, open_args_device(args, "rx", settings) as dev, open_rx_capture(
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
                    if r.seq is not None and r.header is not None and r.header.payload == PAYLOAD_DATA:
                        if r.data is not None:
                            data[r.seq] = r.data
                        if r.header.last:
                            data_last_seq = r.seq
                    if constellation is not None and r.payload is not None:
                        constellation.add(r.payload)
            if args.frames is not None and rx.stats.frames_detected >= args.frames:
                break
            if args.duration_s is not None and rx.stats.samples >= args.duration_s * dev.sample_rate_hz:
                break
        report = rx.report(dev.sample_rate_hz, args.frames)
        report["samples_dropped"] = int(dev.stats.samples_dropped)
        report["device"] = dev.describe()
        report["events"] = dev.stats.events.to_report()
    report["elapsed_s"] = time.perf_counter() - t_start
    report["processing_s"] = processing_s
    report["processing_msps"] = report["samples"] / processing_s / 1e6 if processing_s > 0 else None
    report["stopped_by"] = stop.reason
    if constellation is not None:
        constellation.save(args.constellation)
    if args.out is not None:
        report.update(_write_data(args.out, data, data_last_seq))
    if args.json is not None:
        write_json_atomic(args.json, report)
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
