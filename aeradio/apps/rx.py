"""``aeradio rx``: receive, decode and report from any device (radio, ZMQ stream, SigMF file).

A run, in order:

1. checks its arguments, and that ``--out FILE`` may be written (an existing FILE only
   with ``--overwrite``), before it opens anything;
2. opens the device and prints ``aeradio rx: ready, receiving from URI at R MS/s`` when the
   first samples arrive: the device is open and, for a ZMQ stream, subscribed (a SUB
   socket's subscription reaches the publisher asynchronously; its first message proves
   it). Start the transmitter after this line, never after a fixed sleep. With
   ``--monitor [HOST:]PORT`` the live page (:mod:`aeradio.apps.monitor`) is served first:
   its address is checked and bound before the device opens;
3. decodes, printing a status line a second; when no samples came for 5 s it warns, once
   per 5 s (``no samples from URI for 5 s: is the channel running?``), and the status line
   says so;
4. stops at ``--frames N`` (frames detected), ``--duration-s T`` (wall-clock seconds since
   the device opened, whether samples arrive or not), the end of a recording, or SIGINT /
   SIGTERM, whichever comes first; the report's ``stopped_by`` is ``"frames"``,
   ``"duration"``, ``"end of source"``, ``"SIGINT"`` or ``"SIGTERM"``;
5. writes ``--out`` (:mod:`aeradio.apps.rx_out`), ``--constellation`` and the ``--json``
   report, prints one summary line and at most one verdict line, and exits.

The summary line counts frames expected (the larger of ``--frames`` and the frames the
transmitter runs sent as the decoded headers tell, :attr:`RxStats.frames_expected`; unknown
without either), detected and decoded, header CRC failures, model mismatches, block errors,
samples (dropped, non-finite), malformed messages, device faults and the ``--out`` outcome
(rare counts are left out when zero).

With two cores or more the RX chain runs as a two-stage pipeline (``--pipeline auto``, the
default, except from a ZMQ stream, whose channel and TX usually share the machine; ``on`` or
``off`` to choose): the DSP of each read (detection, synchronization) on
a worker thread beside the headers, neural receiver, scoring and statistics of the read
before (:class:`~aeradio.flowgraphs.rx_chain.RxChain`, ``pipelined``). The frames, their
decisions and every count of the report are the same either way; the status line and the
live page see a read's frames one read later, and ``--frames N`` stops after the same read
(frames are counted as detected, before their decoding). An error in the worker stops the
run as it would single-threaded.

A coded model (a ``[code]`` section) is received with its bit LLRs (its bit-wise receiver's,
fed the frame's noise variance as the demapper was trained, or its message receiver's
posteriors marginalized per bit, ``[model] bit_llrs = "marginal"``) and its outer code's
decoder: the
summary line and the report add the coded BLER (``codewords``, ``codeword_errors``,
``coded_bler`` of the test-pattern frames; ``bler`` stays the AE blocks' error rate before
decoding) and ``decoder_failures`` (codewords whose decoding ended with parity
unsatisfied); a data frame with such a codeword is not passed on (``data_decode_failures``),
so ``--out`` lists it missing. Frames of a coded model at a receiver of an uncoded one (or
the reverse) are model mismatches, counted apart as ``code_mismatches`` and named so.

Exit code 0: the result is usable. Losses that leave it usable are counted on the summary
line and named on a ``warning:`` line: expected frames not decoded (not detected, header
CRC failures, frames of another model), data CRC failures, frames cut off by the end of the
stream, dropped samples, non-finite samples, malformed messages.

Exit code 1: the run finished but its result is unusable; a ``FAILED:`` line says why:

- the device reported faults (integrity problems such as a recording cut mid-sample or a
  checksum mismatch): what was read is suspect;
- no frame was decoded: no samples, every sample non-finite, no frame detected, only
  frames of another model (model hash mismatch), or only header CRC failures;
- ``--out FILE`` is incomplete (the data is in ``FILE.partial``, never in FILE).

Exit code 2 stays for usage and input errors (bad argument, unreadable model, recording or
calibration, ``--out`` exists), raised before anything is received.

The report (``--json``) carries everything needed to reproduce the run: model directory and
``model_hash32``, the test-pattern seeds the frames carried, calibration file and its
sha256, device URI, settings and what the device really set, software version, command
line, start time (UTC).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import os
import shlex
import sys
import time
from datetime import UTC, datetime
from typing import Any

import numpy as np

from aeradio.apps.capture import annotate_results, open_rx_capture
from aeradio.apps.device_args import device_settings, load_args_calibration, open_args_device
from aeradio.apps.monitor import parse_monitor_address
from aeradio.apps.processes import StopOnSignal
from aeradio.apps.rx_out import FileTransfer, check_out_path
from aeradio.core.atomic import save_npy_atomic, write_json_atomic
from aeradio.core.errors import ConfigError, check_range
from aeradio.core.paths import check_file_output
from aeradio.dsp.framing import PAYLOAD_TEST_PATTERN
from aeradio.flowgraphs.rx_chain import FrameResult, RxChain, StageDumper
from aeradio.radio.uri import split_uri

#: Most samples per device read. Large: the RX chain works on whole batches of frames
#: (per-call costs dominate small reads: 64k-sample reads ran at 11 MS/s, 1M-sample reads at
#: 25 MS/s), and a stream (ZMQ) returns what is queued, so a slow stream still gives
#: small reads and little latency.
RX_READ_SAMPLES = 1 << 20
#: Longest wait for samples per read: how quickly a signal or --duration-s is acted on.
RX_READ_TIMEOUT_S = 0.5
#: Seconds between two live status lines of ``aeradio rx``.
RX_STATUS_INTERVAL_S = 1.0
#: Seconds without samples after which rx warns (again every as many seconds).
NO_SAMPLES_WARN_S = 5.0
#: Synchronized payload symbols kept for ``rx --constellation``.
CONSTELLATION_SYMBOLS = 8192
#: Exit code of a run that finished with an unusable result.
EXIT_BAD_RESULT = 1


def _silence_hint(device: str) -> str:
    """What to check when ``device`` delivers nothing."""
    if device.startswith("zmq:"):
        return "is the channel running?"
    return "is the radio streaming?" if device.startswith("soapy:") else "is the source running?"


class _RxStatus:
    """Live status on stderr: the ready line when samples first arrive, a status line a
    second, and a warning every :data:`NO_SAMPLES_WARN_S` seconds without samples."""

    def __init__(self, device: str, sample_rate_hz: float, now: float) -> None:
        self.device = device
        self.sample_rate_hz = sample_rate_hz
        self.ready = False
        self.last_samples = now  # the device opened: silence counts from here
        self.silence_warnings = 0
        self.next_time = now + RX_STATUS_INTERVAL_S

    def _say(self, text: str) -> None:
        print(f"aeradio rx: {text}", file=sys.stderr, flush=True)

    def update(self, rx: RxChain, dev: Any, *, received: int, now: float) -> None:
        if received:
            self.last_samples, self.silence_warnings = now, 0
            if not self.ready:
                self.ready = True
                self._say(f"ready, receiving from {self.device} at {self.sample_rate_hz / 1e6:g} MS/s")
        silent_s = now - self.last_samples
        warnings = int(silent_s // NO_SAMPLES_WARN_S)
        if warnings > self.silence_warnings:
            self.silence_warnings = warnings
            self._say(f"warning: no samples from {self.device} for {warnings * NO_SAMPLES_WARN_S:g} s: "
                      f"{_silence_hint(self.device)}")
        if now < self.next_time:
            return
        self.next_time = now + RX_STATUS_INTERVAL_S
        st = rx.stats
        bler = f"{st.block_errors / st.blocks:.2e}" if st.blocks else "-"
        if st.codewords:
            bler += f" | coded BLER {st.codeword_errors / st.codewords:.2e}"
        recent = np.array(st.recent, dtype=np.float64).reshape(-1, 2)
        snr = f"{recent[:, 0].mean():.1f} dB" if len(recent) else "-"
        cfo = f"{recent[:, 1].mean() * self.sample_rate_hz:.0f} Hz" if len(recent) else "-"
        self._say(
            f"frames {st.frames_detected} detected, {st.frames_decoded} decoded | "
            f"BLER {bler} | SNR {snr} | CFO {cfo} | dropped {dev.stats.samples_dropped}"
            + (f" | no samples for {silent_s:.0f} s" if warnings else "")
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


def _why_nothing_decoded(report: dict[str, Any]) -> str:
    """The reason a run decoded no frame, most specific first."""
    samples, detected = report["samples"], report["frames_detected"]
    if not samples:
        return "no samples received"
    if report["nonfinite_samples"] >= samples:
        return f"all {samples} samples were non-finite (NaN or infinite)"
    if report["nonfinite_samples"] + report["overrange_samples"] >= samples:
        return f"all {samples} samples were non-finite or out of range (|x| > 1e6), zeroed"
    if not detected:
        return f"no frame detected in {samples} samples"
    if report["code_mismatches"]:
        if report["coded"]:
            what = "an uncoded model, and --model is coded (a [code] section)"
        else:
            what = "a coded model (LDPC codewords), and --model has no [code] section"
        return (
            f"{report['code_mismatches']} of {detected} frames were sent with {what}: "
            "give rx the transmitter's model"
        )
    if report["model_mismatches"]:
        return (
            f"{report['model_mismatches']} of {detected} frames were sent with another model "
            f"(model hash mismatch; this is model_hash32 {report['model_hash32']}): "
            "is --model the transmitter's model?"
        )
    return f"all {detected} detected frames failed their header CRC"


def _frame_counts(report: dict[str, Any]) -> tuple[int | None, int, int]:
    """(expected or None, detected, decoded)."""
    return report["frames_expected"], report["frames_detected"], report["frames_decoded"]


def assess(report: dict[str, Any]) -> tuple[list[str], list[str]]:
    """``(failures, losses)`` of a finished run's report (see the module docstring).

    Any failure makes the result unusable (exit code 1); losses leave it usable.
    """
    failures: list[str] = []
    faults = report["device_faults"]
    if faults["count"]:
        latest = f" (latest: {faults['recent'][-1]})" if faults["recent"] else ""
        failures.append(f"the device reported {faults['count']} fault(s){latest}")
    if not report["frames_decoded"]:
        failures.append(_why_nothing_decoded(report))
    transfer = report.get("transfer")
    if transfer is not None and not transfer["complete"]:
        kept = (f"; received data in {transfer['path']}, gaps listed in {transfer['sidecar']}"
                if transfer["path"] is not None else "")
        failures.append(f"{transfer['file']} incomplete ({'; '.join(transfer['problems'])}){kept}")
    losses: list[str] = []
    expected, detected, decoded = _frame_counts(report)
    if expected is not None and decoded < expected:
        losses.append(f"{expected - decoded} of {expected} expected frames not decoded")
    elif detected > decoded:
        losses.append(f"{detected - decoded} of {detected} detected frames not decoded")
    nonfinite = report["nonfinite_samples"]
    for count, what in (
        (report["data_crc_failures"], "data frames failed their CRC-32"),
        (report["data_decode_failures"], "data frames with a codeword that did not decode"),
        (report["frames_truncated"], "frames cut off by the end of the stream"),
        (report["samples_dropped"], "samples dropped"),
        (nonfinite if nonfinite < report["samples"] else 0, "non-finite samples (zeroed)"),
        (report["overrange_samples"], "out-of-range samples (|x| > 1e6, zeroed)"),
        (report["malformed_messages"], "malformed messages skipped"),
    ):
        if count:
            losses.append(f"{count} {what}")
    return failures, losses


def summary_line(report: dict[str, Any]) -> str:
    """The one-line summary of a finished run (see the module docstring)."""
    expected, detected, decoded = _frame_counts(report)
    frames = (
        f"{decoded} of {expected} expected frames decoded ({detected} detected"
        if expected is not None
        else f"{decoded} of {detected} detected frames decoded (frames sent unknown"
    )
    frames += f", {report['header_crc_failures']} header CRC failures"
    for key, what in (("model_mismatches", "model mismatches"), ("frames_truncated", "truncated")):
        if report[key]:
            frames += f", {report[key]} {what}"
    frames += ")"
    if report["blocks"]:  # test-pattern frames: the BLER measurement
        frames += f", {report['block_errors']}/{report['blocks']} block errors (BLER {report['bler']:.2e})"
    if report["codewords"]:  # coded test-pattern frames: after decoding
        frames += (f", {report['codeword_errors']}/{report['codewords']} codeword errors "
                   f"(coded BLER {report['coded_bler']:.2e})")
    if report["decoder_failures"]:
        frames += f", {report['decoder_failures']} codewords not decoded (parity unsatisfied)"
    if report["data_crc_failures"]:
        frames += f", {report['data_crc_failures']} data CRC failures"
    if report["data_decode_failures"]:
        frames += f", {report['data_decode_failures']} data frames not decoded"
    samples = f"{report['samples']} samples, {report['samples_dropped']} dropped"
    if report["nonfinite_samples"]:
        samples += f", {report['nonfinite_samples']} non-finite"
    if report["overrange_samples"]:
        samples += f", {report['overrange_samples']} out of range"
    parts = [frames, samples]
    if report["malformed_messages"]:
        parts.append(f"{report['malformed_messages']} malformed messages")
    if report["device_faults"]["count"]:
        parts.append(f"{report['device_faults']['count']} device faults")
    if report.get("transfer") is not None:
        parts.append(_transfer_clause(report["transfer"]))
    if report["processing_msps"]:
        parts.append(f"RX chain {report['processing_msps']:.1f} MS/s")
    parts.append(f"stopped by {report['stopped_by']}")
    return "aeradio rx: " + "; ".join(parts)


def _transfer_clause(t: dict[str, Any]) -> str:
    if t["complete"]:
        return f"file complete, {t['bytes']} bytes in {t['path']}"
    kept = f": received data in {t['path']}" if t["path"] is not None else ""
    return f"file INCOMPLETE, {'; '.join(t['problems'])}{kept}"


def _file_sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _transfer_expected_frames(frames_arg: int | None, test_pattern_frames: int) -> int | None:
    """The transfer's frame count known before its last frame: ``--frames N`` counts it
    when the run received data frames only (test-pattern frames count towards N too)."""
    return frames_arg if test_pattern_frames == 0 else None


def _check_args(args: argparse.Namespace) -> None:
    """Every argument rx can check before loading and opening anything."""
    if not 1 <= args.threads <= 64:
        raise ConfigError(f"--threads must be in [1, 64], got {args.threads}")
    if args.frames is not None and args.frames < 1:
        raise ConfigError(f"--frames must be >= 1, got {args.frames}")
    if args.duration_s is not None:
        check_range("--duration-s", args.duration_s, 0.0, 1e7, unit="s")
    if args.out is not None:
        check_out_path(args.out, overwrite=getattr(args, "overwrite", False))
    if args.json is not None:
        check_file_output(args.json, "--json", model_dir=args.model)
    if getattr(args, "monitor", None) is not None:
        parse_monitor_address(args.monitor)


def _open_monitor(args: argparse.Namespace, cfg: Any, run_info: dict[str, Any]) -> Any:
    """``--monitor``: the live page, serving once this returns (its address checked and bound
    before anything is received); a do-nothing context without it."""
    if getattr(args, "monitor", None) is None:
        return contextlib.nullcontext()
    from aeradio.apps.monitor import LiveMonitor, monitor_config
    from aeradio.core.model_dir import load_lut

    address = parse_monitor_address(args.monitor)
    monitor = LiveMonitor(address, monitor_config(cfg, run_info), load_lut(args.model)).start()
    print(f"aeradio rx: monitor at {monitor.url}", file=sys.stderr, flush=True)
    if monitor.exposed:
        print(f"aeradio rx: warning: the monitor page (no authentication) is reachable by whoever reaches "
              f"{monitor.host}", file=sys.stderr, flush=True)
    return monitor


def use_pipeline(choice: str, device_uri: str) -> bool:
    """``--pipeline``: ``on``, ``off``, or ``auto``: the DSP front end of one read beside the
    neural receiver of the one before (:class:`~aeradio.flowgraphs.rx_chain.RxChain`'s
    ``pipelined``) when this process may run on two cores or more and the device is not a
    ZMQ stream. A ZMQ stream is the loopback, whose channel simulator and TX usually share
    the machine: there the second thread took their CPU (the whole loop at 10 MS/s on 2
    cores lost 3 to 5 of 129,757 frames a minute to TX running late, in 3 of 3 runs; none
    single-threaded). A recording or a radio has the cores to itself.

    >>> use_pipeline("on", "zmq:tcp://127.0.0.1:5556"), use_pipeline("off", "file:x.sigmf-meta")
    (True, False)
    >>> use_pipeline("auto", "zmq:tcp://127.0.0.1:5556")
    False
    """
    if choice == "auto":
        return len(os.sched_getaffinity(0)) >= 2 and split_uri(device_uri)[0] != "zmq"
    return choice == "on"


def receiver_for(model_dir: str, cfg: Any) -> tuple[Any, Any]:
    """``(decoder, code)`` for :class:`RxChain` of a model directory: the message receiver's
    decisions (uncoded); a coded model's bit LLRs (its bit-wise receiver's, or its message
    posteriors marginalized) and its outer code; an uncoded bit-wise model's hard decisions."""
    if cfg.code is None:
        from aeradio.learning.evaluate import load_block_runtime

        return load_block_runtime(model_dir).decide, None
    from aeradio.learning.bitwise import load_llr_runtime
    from aeradio.learning.coded import outer_code

    return load_llr_runtime(model_dir).llrs, outer_code(cfg)


def cmd_rx(args: argparse.Namespace) -> int:
    """Receive, decode and report; 0 when the result is usable, 1 when not (module docstring)."""
    from aeradio.core.model_dir import load_link_config, model_hash32
    from aeradio.core.version import __version__

    _check_args(args)
    started_utc = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    cfg = load_link_config(args.model)
    decoder, code = receiver_for(args.model, cfg)
    # One torch thread by default: in the loopback, channel, TX and RX share the cores, and
    # a second thread fighting them made decoding several times slower, not faster.
    import torch

    torch.set_num_threads(args.threads)
    model_hash = model_hash32(args.model)
    dump = StageDumper(args.dump_dir) if getattr(args, "dump_dir", None) else None
    rx = RxChain(cfg, decoder, model_hash=model_hash, dump=dump, code=code,
                 pipelined=use_pipeline(args.pipeline, args.device))
    settings = device_settings(args, cfg.radio)
    cal = load_args_calibration(args, settings.sample_rate_hz)
    corrector = cal.rx_corrector() if cal is not None else None
    run_info = {  # what reproduces the run
        "started_utc": started_utc,
        "command_line": shlex.join(["aeradio", *getattr(args, "argv", sys.argv[1:])]),
        "aeradio_version": __version__,
        "model_dir": str(args.model),
        "model_hash32": f"{model_hash:08x}",
        "link_name": cfg.name,
        "calibration": None if cal is None else {
            "path": str(args.calibration), "sha256": _file_sha256(args.calibration),
        },
        "device_uri": args.device,
        "device_settings": dataclasses.asdict(settings),
        "pipelined": rx.pipelined,  # what --pipeline (auto by default) chose
    }
    frames = _FrameSink(args, rx)
    t_start = time.perf_counter()
    processing_s = 0.0  # time in the RX chain: how fast it could go, whatever the source's rate
    stopped_by = None

    # From here until the report is written a signal only asks the loop to stop: one that
    # arrives once the loop is done (closing the device, writing --out and --json) waits for
    # them, so a finished transfer is never lost to a late Ctrl-C.
    with StopOnSignal() as stop:
        with contextlib.closing(rx), _open_monitor(args, cfg, run_info) as monitor, \
                open_args_device(args, "rx", settings) as dev, open_rx_capture(
            args.capture, sample_rate_hz=dev.sample_rate_hz, center_freq_hz=settings.freq_hz,
            device=args.device, rx=rx, model_hash=model_hash, link_name=cfg.name,
            keep_all=getattr(args, "capture_all", False),
        ) as recorder:
            t_open = time.monotonic()
            status = _RxStatus(args.device, dev.sample_rate_hz, t_open)
            while True:
                now = time.monotonic()
                if stop.requested:
                    stopped_by = stop.reason
                    break
                timeout_s = RX_READ_TIMEOUT_S
                if args.duration_s is not None:
                    left_s = t_open + args.duration_s - now
                    if left_s <= 0:
                        stopped_by = "duration"
                        break
                    timeout_s = min(timeout_s, left_s)
                block = dev.read(RX_READ_SAMPLES, timeout_s=timeout_s)
                if block is None:
                    stopped_by = "end of source"
                    break
                status.update(rx, dev, received=len(block), now=time.monotonic())
                results: list[FrameResult] = []
                if len(block):
                    if corrector is not None:
                        block = corrector.process(block)
                    if recorder is not None:
                        recorder.write(block)
                    t_process = time.perf_counter()
                    results = rx.process(block)
                    processing_s += time.perf_counter() - t_process
                    if recorder is not None:
                        annotate_results(recorder, results, rx)
                    frames.add(results)
                if monitor is not None:
                    monitor.feed(results, block, rx, dev)
                if args.frames is not None and rx.stats.frames_detected >= args.frames:
                    stopped_by = "frames"
                    break
            # The frames not returned yet (the pipeline's last block; a frame cut by the end).
            t_process = time.perf_counter()
            results = rx.flush() if stopped_by == "end of source" else rx.drain()
            processing_s += time.perf_counter() - t_process
            if recorder is not None:
                annotate_results(recorder, results, rx)
            frames.add(results)
            if monitor is not None:
                monitor.feed(results, np.zeros(0, np.complex64), rx, dev)
            report: dict[str, Any] = rx.report(dev.sample_rate_hz)
            # --frames N says how many frames were sent; more decoded sequence numbers say more
            # (a read can hold frames beyond the Nth).
            if args.frames is not None:
                report["frames_expected"] = max(args.frames, report["frames_expected"] or 0)
            report["samples_dropped"] = int(dev.stats.samples_dropped)
            report["malformed_messages"] = int(dev.stats.malformed)
            report["device_faults"] = dev.stats.faults.to_report()
            report["events"] = dev.stats.events.to_report()
            report["device"] = dev.describe()
            if monitor is not None:
                monitor.finish(rx, dev, stopped_by)
        if recorder is not None:
            report["capture"] = recorder.report()
        report["elapsed_s"] = time.perf_counter() - t_start
        report["processing_s"] = processing_s
        report["processing_msps"] = report["samples"] / processing_s / 1e6 if processing_s > 0 else None
        report["stopped_by"] = stopped_by
        report.update(run_info)
        frames.finish(report)
        code = _conclude(report, args.json)
        if stop.requested and stopped_by != stop.reason:
            print(f"aeradio rx: {stop.reason} arrived while the run was finishing: its files and report "
                  "were completed first", file=sys.stderr)
        return code


class _FrameSink:
    """Where decoded frames go besides the statistics: the test-pattern seeds seen, the
    ``--out`` file transfer and the ``--constellation`` symbols."""

    def __init__(self, args: argparse.Namespace, rx: RxChain) -> None:
        self.args = args
        self.test_pattern_frames = 0
        self.seeds: set[int] = set()  # test-pattern seeds, from the frames' headers
        self.transfer = (
            FileTransfer(rx.layout.data_capacity) if args.out else None
        )
        self.constellation = _SymbolKeeper() if getattr(args, "constellation", None) else None

    def add(self, results: list[FrameResult]) -> None:
        for r in results:
            if r.header is not None and r.decisions is not None:
                if r.header.payload == PAYLOAD_TEST_PATTERN:
                    self.test_pattern_frames += 1
                    self.seeds.add(r.header.seed)
                if self.transfer is not None and r.header.is_data:
                    self.transfer.add_header(r)
                    if r.data is not None:
                        self.transfer.add(r)
            if self.constellation is not None and r.payload is not None:
                self.constellation.add(r.payload)

    def finish(self, report: dict[str, Any]) -> None:
        """Write the constellation and the transfer's file; their entries into ``report``."""
        args = self.args
        if self.constellation is not None:
            self.constellation.save(args.constellation)
        if self.transfer is not None:
            expected = _transfer_expected_frames(args.frames, self.test_pattern_frames)
            report["transfer"] = self.transfer.finish(
                args.out, expected, overwrite=getattr(args, "overwrite", False)
            ).to_report()
        report["test_pattern_seeds"] = sorted(self.seeds)


def _conclude(report: dict[str, Any], json_path: str | None) -> int:
    """Judge the run (:func:`assess`), write the report, print the summary and the verdict
    lines; the exit code."""
    failures, losses = assess(report)
    code = EXIT_BAD_RESULT if failures else 0
    report.update(usable=not failures, failures=failures, losses=losses, exit_code=code)
    if json_path is not None:
        write_json_atomic(json_path, report)
    print(summary_line(report), file=sys.stderr)
    if failures:
        print(f"aeradio rx: FAILED: {'; '.join(failures)}", file=sys.stderr)
    elif losses:
        print(f"aeradio rx: warning: {'; '.join(losses)}", file=sys.stderr)
    return code
