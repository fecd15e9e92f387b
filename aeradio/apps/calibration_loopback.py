"""Calibrate over the ZMQ loopback: ``calibrate tx`` -> ``aeradio channel`` -> ``calibrate rx``.

Runs the channel simulator and ``calibrate rx`` as real processes and ``calibrate tx`` in
this one, as a user would in three terminals; the channel knows the truth, so tests and
benchmarks compare the calibration file against it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from aeradio.apps.calibrate import send_bursts
from aeradio.apps.processes import stop_process
from aeradio.core.errors import CalibrationError
from aeradio.radio.base import DeviceSettings
from aeradio.radio.zmq_stream import free_endpoint

#: Time for the channel to bind and the receiver to subscribe (ZMQ slow joiner), s.
STARTUP_S = 1.5
#: The channel's pace (times real time) unless ``channel_args`` set one: real time, as a
#: radio would deliver. Unpaced, the compiled channel simulator (tens of MS/s) outran
#: ``calibrate rx`` (numpy), whose SUB socket then dropped millions of samples, the bursts
#: among them: a CI failure about one run in five (still failing at 4x real time).
CHANNEL_SPEED = 1.0


def run_loopback_calibration(
    work_dir: Path,
    channel_args: list[str],
    *,
    sample_rate_hz: float = 1e6,
    freq_hz: float = 915e6,
    bursts: int = 2,
    timeout_s: float = 60.0,
) -> dict[str, Any]:
    """The calibration file ``calibrate rx`` wrote, as a dict (plus its ``stdout``).

    ``channel_args`` are the impairments, e.g. ``["--snr-db", "20", "--cfo-hz", "3000"]``.
    """
    tx, rx = free_endpoint(), free_endpoint()
    if not {"--realtime", "--speed"} & set(channel_args):
        channel_args = [*channel_args, "--speed", f"{CHANNEL_SPEED:g}"]
    out = Path(work_dir) / "loopback-calibration.json"
    rate = f"{sample_rate_hz:g}"
    with open(Path(work_dir) / "loopback-channel.log", "w") as log:
        channel = subprocess.Popen(
            [sys.executable, "-m", "aeradio.cli", "channel", "--tx", f"zmq:{tx}", "--rx", f"zmq:{rx}",
             "--sample-rate-hz", rate, *channel_args],
            stdout=subprocess.DEVNULL, stderr=log,
        )
        receiver = subprocess.Popen(
            [sys.executable, "-m", "aeradio.cli", "calibrate", "rx", "--device", f"zmq:{rx}",
             "--sample-rate-hz", rate, "--freq-hz", f"{freq_hz:g}", "--json", str(out),
             "--bursts", str(bursts), "--timeout-s", str(timeout_s / 2)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        try:
            time.sleep(STARTUP_S)
            for name, proc in (("channel", channel), ("calibrate rx", receiver)):
                if proc.poll() is not None:
                    raise CalibrationError(f"loopback: {name} exited early with code {proc.returncode}")
            send_bursts(f"zmq:{tx}", DeviceSettings(sample_rate_hz, freq_hz), bursts + 2)
            stdout, stderr = receiver.communicate(timeout=timeout_s)
        finally:
            stop_process(receiver)
            stop_process(channel)
    if receiver.returncode != 0:
        raise CalibrationError(f"loopback: calibrate rx failed: {stderr.strip()}")
    data = json.loads(out.read_text())
    data["stdout"] = stdout
    return data
