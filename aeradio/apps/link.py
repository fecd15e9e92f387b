"""The whole link on one machine: channel simulator, RX and TX as three real processes.

This is what ``aeradio demo`` and the process tests run, and what ``scripts/loopback.sh``
spells out by hand. Each process is the ordinary ``aeradio`` command, talking over ZMQ on
127.0.0.1 with the gr-zeromq wire format, so any of them can be replaced (by a radio, or
by a GNU Radio flowgraph). Processes are always stopped (SIGTERM, then SIGKILL) when the
run ends, whatever happened.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aeradio.apps.processes import stop_process
from aeradio.core.errors import ConfigError, StreamError


def aeradio_argv(*args: str) -> list[str]:
    """The command line of an ``aeradio`` subcommand run with this interpreter."""
    return [sys.executable, "-m", "aeradio.cli", *args]


class Process:
    """A child process whose stderr is copied to a log file and kept for :meth:`wait_for`."""

    def __init__(self, name: str, argv: list[str], log_path: Path) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.lines: list[str] = []
        self._cond = threading.Condition()
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.popen = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env
        )
        self._pump = threading.Thread(target=self._copy_stderr, daemon=True)
        self._pump.start()

    def _copy_stderr(self) -> None:
        assert self.popen.stderr is not None
        with open(self.log_path, "w", encoding="utf-8") as log:
            for line in self.popen.stderr:
                log.write(line)
                log.flush()
                with self._cond:
                    self.lines.append(line.rstrip("\n"))
                    self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_for(self, pattern: str, timeout_s: float) -> str:
        """The first stderr line matching ``pattern``; StreamError on exit or timeout."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout_s
        seen = 0
        with self._cond:
            while True:
                for line in self.lines[seen:]:
                    if regex.search(line):
                        return line
                seen = len(self.lines)
                if self.popen.poll() is not None and not self._pump.is_alive():
                    raise StreamError(
                        f"{self.name} exited with code {self.popen.returncode} before "
                        f"printing /{pattern}/; see {self.log_path}: {self.tail()}"
                    )
                left = deadline - time.monotonic()
                if left <= 0:
                    raise StreamError(f"{self.name} did not print /{pattern}/ within {timeout_s:g} s")
                self._cond.wait(min(left, 0.2))

    def wait(self, timeout_s: float) -> int | None:
        """The exit code, or None if still running after ``timeout_s``."""
        try:
            return self.popen.wait(timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Ask the process to stop (``sig``), kill it if it does not; its exit code."""
        code = stop_process(self.popen, sig)
        self._pump.join(timeout=2.0)
        return code

    def tail(self, lines: int = 3) -> str:
        with self._cond:
            return " | ".join(self.lines[-lines:])


@dataclass(frozen=True)
class LoopbackSettings:
    """What the loopback run sends and which channel it sends it through."""

    ebn0_db: float = 7.0
    sample_rate_hz: float = 1e6
    cfo_hz: float = 3000.0
    sco_ppm: float = 20.0
    delay_samples: float = 3.3
    frames: int = 300
    #: Bytes of the file sent after the test frames (0: no file).
    file_bytes: int = 20_000
    #: Channel pacing: "realtime" or a speed factor as a string ("4" = 4x real time).
    pace: str = "realtime"
    #: Seeds the channel noise, the file content and the test pattern (0 to 4095).
    seed: int = 0
    #: Seconds RX may take after TX finished before it is stopped.
    drain_s: float = 20.0
    extra_channel_args: tuple[str, ...] = field(default_factory=tuple)


def _pace_args(pace: str) -> list[str]:
    return ["--realtime"] if pace == "realtime" else ["--speed", pace]


def _tx_pace_args(pace: str, sample_rate_hz: float) -> list[str]:
    """TX's write timeout for a channel at ``pace``: a slow pace takes samples in bursts."""
    from aeradio.radio.zmq_stream import write_timeout_for

    speed = 1.0 if pace == "realtime" else float(pace)
    return ["--write-timeout-s", f"{write_timeout_for(sample_rate_hz, speed):g}"]


#: The line ``aeradio rx`` prints once its device is open and samples arrive (subscribed).
RX_READY = r"^aeradio rx: ready"
#: The line ``aeradio channel`` prints once both its sockets are bound.
CHANNEL_READY = r"^channel: PULL"
#: Seconds a process may take to start (imports, model loading) on a loaded machine.
START_TIMEOUT_S = 300.0


def _receive(
    name: str, rx_args: list[str], tx_args: list[str], *, model: str, rx_ep: str, tx_ep: str, rate: str,
    out: Path, drain_s: float, procs: list[Process],
) -> tuple[dict[str, Any], int]:
    """One RX session: start rx, wait for its ready line, run tx, let rx finish or stop it.

    Returns rx's report (``out/NAME.json``) and its exit code (0 usable, 1 unusable: the
    report says why); any other outcome raises :class:`StreamError`.
    """
    report_path = out / f"{name}.json"
    report_path.unlink(missing_ok=True)
    rx = Process(name, aeradio_argv(
        "rx", "--model", model, "--device", f"zmq:{rx_ep}", "--sample-rate-hz", rate,
        "--json", str(report_path), *rx_args,
    ), out / f"{name}.log")
    procs.append(rx)
    # Frames sent before rx subscribed would be lost, and rx would wait for them forever.
    rx.wait_for(RX_READY, timeout_s=START_TIMEOUT_S)
    tx_name = name.replace("rx", "tx", 1)
    tx = Process(tx_name, aeradio_argv("tx", "--model", model, "--device", f"zmq:{tx_ep}",
                                       "--sample-rate-hz", rate, *tx_args), out / f"{tx_name}.log")
    procs.append(tx)
    code = tx.wait(timeout_s=600)
    if code != 0:
        raise StreamError(f"tx exited with code {code}: {tx.tail()}")
    # RX stops by itself once it has seen every frame; frames lost on the way would keep it
    # waiting, so after the drain time it is stopped (it writes its report).
    rx.wait(timeout_s=drain_s)
    code = rx.stop(signal.SIGTERM)
    if code not in (0, 1):
        raise StreamError(f"rx exited with code {code}: {rx.tail()}")
    try:
        return json.loads(report_path.read_text()), code
    except (OSError, ValueError) as exc:
        raise StreamError(f"rx wrote no readable report ({exc})") from None


def run_loopback(model_dir: str | Path, out_dir: str | Path, s: LoopbackSettings) -> dict[str, Any]:
    """Run channel, RX and TX processes; return RX's report plus the transfer result.

    The test frames and the file go to two RX sessions in turn (a transfer is received in
    a run of its own, so ``rx --frames`` counts its frames). Writes into ``out_dir``:
    ``rx.json`` (the test frames' report, with ``constellation.npy``, the synchronized
    payload symbols), ``rx-file.json``, ``sent.bin`` and ``received.bin`` (the file transfer;
    ``received.bin.partial`` and its ``.json`` sidecar when incomplete) and one log per
    process. The report returned is the test frames' (the file's when there are none), with
    ``rx_exit_code`` and, for a file, ``transfer``.
    """
    from aeradio.apps.rx_out import partial_paths
    from aeradio.core.model_dir import load_link_config
    from aeradio.dsp.framing import FrameLayout
    from aeradio.radio.zmq_stream import free_endpoint

    capacity = FrameLayout(load_link_config(model_dir)).data_capacity
    data_frames = max(1, -(-s.file_bytes // capacity))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = str(model_dir)
    tx_ep, rx_ep = free_endpoint(), free_endpoint()
    rate = f"{s.sample_rate_hz:g}"
    sent_path, received_path = out / "sent.bin", out / "received.bin"
    if s.file_bytes:
        # Deterministic content, so a run is reproducible and the hash comparable.
        blob = hashlib.shake_256(f"aeradio demo {s.seed}".encode()).digest(s.file_bytes)
        sent_path.write_bytes(blob)
    for stale in (received_path, *partial_paths(received_path)):
        stale.unlink(missing_ok=True)
    sessions: list[tuple[str, list[str], list[str]]] = []
    tx_pace = _tx_pace_args(s.pace, s.sample_rate_hz)
    if s.frames:
        sessions.append((
            "rx",
            ["--constellation", str(out / "constellation.npy"), "--frames", str(s.frames)],
            ["--frames", str(s.frames), "--seed", str(s.seed), *tx_pace],
        ))
    if s.file_bytes:
        sessions.append((
            "rx-file", ["--frames", str(data_frames), "--out", str(received_path)],
            ["--file", str(sent_path), *tx_pace],
        ))
    if not sessions:
        raise ConfigError("a loopback run needs frames or file_bytes above 0, got neither")
    procs: list[Process] = []
    reports: dict[str, tuple[dict[str, Any], int]] = {}
    try:
        channel = Process(
            "channel",
            aeradio_argv(
                "channel", "--tx", tx_ep, "--rx", rx_ep, "--sample-rate-hz", rate,
                "--ebn0-db", f"{s.ebn0_db:g}", "--model", model, "--cfo-hz", f"{s.cfo_hz:g}",
                "--sco-ppm", f"{s.sco_ppm:g}", "--delay-samples", f"{s.delay_samples:g}",
                "--seed", str(s.seed), *_pace_args(s.pace), *s.extra_channel_args,
            ),
            out / "channel.log",
        )
        procs.append(channel)
        channel.wait_for(CHANNEL_READY, timeout_s=START_TIMEOUT_S)
        for name, rx_args, tx_args in sessions:
            reports[name] = _receive(name, rx_args, tx_args, model=model, rx_ep=rx_ep, tx_ep=tx_ep, rate=rate,
                                     out=out, drain_s=s.drain_s, procs=procs)
    finally:
        for p in reversed(procs):
            p.stop()
    report, code = reports[sessions[0][0]]
    report["rx_exit_code"] = code
    if s.file_bytes:
        file_report, file_code = reports["rx-file"]
        t = file_report["transfer"]
        sent = hashlib.sha256(sent_path.read_bytes()).hexdigest()
        got = hashlib.sha256(received_path.read_bytes()).hexdigest() if received_path.exists() else None
        report["transfer"] = {
            "bytes": s.file_bytes,
            "sha256_sent": sent,
            "sha256_received": got,
            "identical": got == sent,
            "frames_missing": t["missing_frames"],
            "problems": t["problems"],
            "rx_exit_code": file_code,
        }
    return report


#: The demo's two runs: BLER against the genie-synchronized simulation at an Eb/N0 where
#: errors are frequent enough to count, and a file transfer where frames arrive intact.
DEMO_BLER_RUN = LoopbackSettings(ebn0_db=5.0, frames=500, file_bytes=0, cfo_hz=5000, sco_ppm=40)
DEMO_FILE_RUN = LoopbackSettings(ebn0_db=10.0, frames=0, file_bytes=6000, cfo_hz=-3000, sco_ppm=-25)


def demo_link(model_dir: str | Path, out_dir: str | Path) -> list[str]:
    """The loopback part of ``aeradio demo``: prints the results; returns what went wrong
    (nothing when the link worked)."""
    from aeradio.core.model_dir import load_lut
    from aeradio.learning.evaluate import simulate_bler
    from aeradio.learning.plots import plot_received

    out = Path(out_dir)
    problems: list[str] = []
    s = DEMO_BLER_RUN
    print(
        f"\nloopback link: channel, rx and tx as three processes on 127.0.0.1, "
        f"{s.sample_rate_hz / 1e6:g} MS/s in real time, CFO {s.cfo_hz:g} Hz, clock offset "
        f"{s.sco_ppm:g} ppm, delay {s.delay_samples:g} samples",
        flush=True,
    )
    report = run_loopback(model_dir, out / "link-bler", s)
    if report["rx_exit_code"]:
        problems.append(f"test frames: {'; '.join(report['failures'])}")
        print(f"  {s.frames} test frames at Eb/N0 {s.ebn0_db:g} dB: FAILED: {problems[-1]}")
    else:
        genie = simulate_bler(model_dir, s.ebn0_db, target_errors=300, seed=3, ml=False)["neural"]
        print(
            f"  {s.frames} test frames at Eb/N0 {s.ebn0_db:g} dB: {report['frames_decoded']} decoded, "
            f"BLER {report['bler']:.2e} ({report['block_errors']}/{report['blocks']} blocks), "
            f"SNR {report['snr_db']:.1f} dB, CFO {report['cfo_hz']:.0f} Hz, "
            f"{report['samples_dropped']} samples dropped"
        )
        if report["losses"]:
            print(f"  losses: {'; '.join(report['losses'])}")
        print(f"  expected (genie-synchronized simulation of the same model): BLER {genie['bler']:.2e}")
        symbols = np.load(out / "link-bler" / "constellation.npy", allow_pickle=False)
        plot_received(symbols, load_lut(model_dir), out / "received-constellation.png",
                      title=f"received after synchronization, Eb/N0 {s.ebn0_db:g} dB")
        print(f"  plot: {out / 'received-constellation.png'}")
    f = DEMO_FILE_RUN
    t = run_loopback(model_dir, out / "link-file", f)["transfer"]
    if t["identical"]:
        verdict = "identical (sha256)"
    else:
        verdict = "INCOMPLETE: " + ("; ".join(t["problems"]) or "the received file differs from the one sent")
        problems.append(f"file transfer: {verdict}")
    print(f"  file of {t['bytes']} bytes at Eb/N0 {f.ebn0_db:g} dB: received {verdict}")
    print(f"  reports: {out}/link-*/rx*.json")
    return problems
