"""The whole loop as users run it: ``aeradio tx`` -> ``aeradio channel`` -> ``aeradio rx``.

- ``link.soak``: 1 MS/s in real time for ``AERADIO_SOAK_S`` seconds (default 30; the
  acceptance run is 600): samples dropped, frames sent and decoded, and the resident memory
  of the RX and channel processes over time (flat memory: the second half's peak against
  the first half's).
- ``link.max_realtime_rate``: the highest sample rate at which the three processes keep up
  in real time (no sample dropped, every frame decoded) for a few seconds of air.

Run alone: ``.venv/bin/python benchmarks/bench_link.py [NAME ...]``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aeradio.apps.bench import figure
from aeradio.apps.link import Process, aeradio_argv
from aeradio.radio.zmq_stream import free_endpoint

DEFAULT_SOAK_S = 30.0
SOAK_RATE_HZ = 1e6
#: Seconds between two memory samples of the soak.
RSS_PERIOD_S = 5.0
#: Rates tried by the real-time search (MS/s), lowest first.
RATES_MSPS = (1, 2, 4, 8, 12, 16, 20)
#: Seconds of air per rate trial.
TRIAL_S = 6.0
EBN0_DB = 10.0


def _rss_mb(pid: int) -> float | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    m = re.search(r"VmRSS:\s+(\d+)", text)
    return int(m.group(1)) / 1024.0 if m else None


def _work_dir(ctx: Any) -> Path:
    base = getattr(ctx, "work_dir", None)
    return Path(tempfile.mkdtemp(prefix="bench-link-", dir=base))


def _model(ctx: Any) -> Path:
    memo = getattr(ctx, "memo", None)
    if memo is not None and "default_model" in memo:
        return Path(memo["default_model"])
    from aeradio.apps.demo import ensure_default_model

    path = ensure_default_model(progress=False)
    if memo is not None:
        memo["default_model"] = str(path)
    return path


Tick = Callable[[Process, Process], None]


def _run_link(
    model: Path, out: Path, rate_hz: float, air_s: float, on_tick: Tick | None = None
) -> dict[str, Any]:
    """Channel, RX and a TX sending frames for ``air_s`` seconds of air at ``rate_hz``."""
    from aeradio.core.model_dir import load_link_config, load_lut
    from aeradio.flowgraphs.tx_chain import TxChain

    frame_samples = TxChain(load_link_config(model), load_lut(model), 0).test_pattern([0], 0).size
    frames = max(1, int(air_s * rate_hz / frame_samples))
    tx_ep, rx_ep = free_endpoint(), free_endpoint()
    rate = f"{rate_hz:g}"
    procs: list[Process] = []
    try:
        channel = Process("channel", aeradio_argv(
            "channel", "--tx", tx_ep, "--rx", rx_ep, "--sample-rate-hz", rate, "--ebn0-db", f"{EBN0_DB}",
            "--model", str(model), "--cfo-hz", f"{rate_hz * 0.002:g}", "--sco-ppm", "20", "--realtime",
        ), out / "channel.log")
        procs.append(channel)
        channel.wait_for(r"^channel: PULL", timeout_s=60)
        rx = Process("rx", aeradio_argv(
            "rx", "--model", str(model), "--device", f"zmq:{rx_ep}", "--sample-rate-hz", rate,
            "--json", str(out / "rx.json"), "--frames", str(frames),
        ), out / "rx.log")
        procs.append(rx)
        rx.wait_for("receiving", timeout_s=60)
        tx = Process("tx", aeradio_argv(
            "tx", "--model", str(model), "--device", f"zmq:{tx_ep}", "--sample-rate-hz", rate,
            "--frames", str(frames),
        ), out / "tx.log")
        procs.append(tx)
        t0 = time.monotonic()
        while tx.popen.poll() is None and time.monotonic() - t0 < air_s * 3 + 60:
            if on_tick is not None:
                on_tick(rx, channel)
            time.sleep(0.5)
        tx_code = tx.stop()
        # RX ends by itself at the last frame; what it has not seen 5 s later is lost.
        rx.wait(5.0)
        rx.stop(signal.SIGTERM)
    finally:
        for p in reversed(procs):
            p.stop()
    report = json.loads((out / "rx.json").read_text())
    # The channel's last status line: a channel that fell behind its real-time schedule
    # ("late" resyncs) drops nothing at RX, yet the loop was not real time.
    status = [ln for ln in channel.lines if "late=" in ln]
    m = re.search(r"\(([\d.]+) MS/s\).*late=(\d+)", status[-1]) if status else None
    report["channel_msps"] = float(m[1]) if m else None
    report["channel_late_resyncs"] = int(m[2]) if m else None
    report["frames_sent"] = frames
    report["tx_exit_code"] = tx_code
    report["air_s"] = frames * frame_samples / rate_hz
    return report


def bench_soak(ctx: Any) -> dict:
    soak_s = float(os.environ.get("AERADIO_SOAK_S", DEFAULT_SOAK_S))
    model, out = _model(ctx), _work_dir(ctx)
    rss: dict[str, list[tuple[float, float]]] = {"rx": [], "channel": []}
    t0 = time.monotonic()
    next_sample = [0.0]

    def sample(rx: Process, channel: Process) -> None:
        now = time.monotonic() - t0
        if now >= next_sample[0]:
            next_sample[0] += RSS_PERIOD_S
            for name, proc in (("rx", rx), ("channel", channel)):
                mb = _rss_mb(proc.popen.pid)
                if mb is not None:
                    rss[name].append((round(now, 1), round(mb, 1)))

    report = _run_link(model, out, SOAK_RATE_HZ, soak_s, sample)

    def growth(values: list[tuple[float, float]]) -> float | None:
        v = [mb for _, mb in values]
        if len(v) < 4:
            return None
        half = len(v) // 2
        return round(max(v[half:]) - max(v[:half]), 1)

    result = {
        "air_s": round(report["air_s"], 1),
        "frames_sent": report["frames_sent"],
        "frames_decoded": report["frames_decoded"],
        "samples_dropped": report["samples_dropped"],
        "channel_late_resyncs": report["channel_late_resyncs"],
        "bler": report["bler"],
        "rss_mb_over_time": rss,
        "rx_rss_growth_mb": growth(rss["rx"]),
        "channel_rss_growth_mb": growth(rss["channel"]),
    }
    lost = report["frames_sent"] - report["frames_decoded"]
    result["figures"] = [
        figure("link soak duration at 1 MS/s", result["air_s"], "s"),
        figure("link soak samples dropped", report["samples_dropped"], "samples", target="0",
               passed=report["samples_dropped"] == 0),
        figure("link soak channel late resyncs", report["channel_late_resyncs"], "count", target="0",
               passed=report["channel_late_resyncs"] == 0),
        figure("link soak frames not decoded", lost, "frames", target="0", passed=lost == 0),
        figure("link soak RX RSS growth", result["rx_rss_growth_mb"], "MB", target="< 5",
               passed=result["rx_rss_growth_mb"] is not None and result["rx_rss_growth_mb"] < 5),
        figure("link soak channel RSS growth", result["channel_rss_growth_mb"], "MB", target="< 5",
               passed=result["channel_rss_growth_mb"] is not None and result["channel_rss_growth_mb"] < 5),
    ]
    return result


def bench_max_rate(ctx: Any) -> dict:
    model = _model(ctx)
    trials = []
    best = 0.0
    for msps in RATES_MSPS:
        report = _run_link(model, _work_dir(ctx), msps * 1e6, TRIAL_S)
        ok = (report["samples_dropped"] == 0 and report["frames_decoded"] >= report["frames_sent"]
              and report["channel_late_resyncs"] == 0)
        trials.append({"msps": msps, "ok": ok, "samples_dropped": report["samples_dropped"],
                       "channel_late_resyncs": report["channel_late_resyncs"],
                       "channel_msps": report["channel_msps"],
                       "frames_sent": report["frames_sent"], "frames_decoded": report["frames_decoded"]})
        if not ok:
            break
        best = float(msps)
    return {
        "trials": trials,
        "figures": [figure("highest real-time rate of the whole loop (tx, channel, rx)", best, "MS/s")],
    }


BENCHMARKS: dict[str, Callable[[Any], dict]] = {
    "link.soak": bench_soak,
    "link.max_realtime_rate": bench_max_rate,
}

if __name__ == "__main__":
    for name in sys.argv[1:] or list(BENCHMARKS):
        result = BENCHMARKS[name](None)
        print(name, json.dumps(result["figures"], indent=1), flush=True)
