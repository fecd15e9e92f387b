"""The whole loop as users run it: ``aeradio tx`` -> ``aeradio channel`` -> ``aeradio rx``.

- ``link.soak``: 1 MS/s in real time for ``AERADIO_SOAK_S`` seconds (default 30; the
  acceptance run is 600): samples dropped, frames sent and decoded, and the resident memory
  of the RX and channel processes over time (flat memory: the second half's peak against
  the first half's).
- ``link.max_realtime_rate``: the highest sample rate at which the three processes keep up
  in real time (no sample dropped, every frame decoded, the channel never late) for
  ``AERADIO_LINK_TRIAL_S`` seconds of air per rate (default 6; the issue's acceptance run
  is 60), trying RATES_MSPS in turn (or the comma-separated ``AERADIO_RATES_MSPS``; the
  receiver's ``--pipeline`` from ``AERADIO_LINK_RX_PIPELINE``, default ``auto``) and
  stopping at the first that fails. Each trial says what limited it (the channel late, RX
  dropping samples, frames not decoded, TX failing), why each frame not decoded was lost
  as far as RX's report tells (:func:`lost_frames`: its sequence numbers, detected or not,
  header CRC failure, samples dropped) and the CPU share of each process (percent of one
  core, from /proc). Then the channel alone (no TX, no RX: the same
  impairments on silence, which costs the same) in real time at CHANNEL_RATES_MSPS: its
  own headroom whatever the receiver's speed, and the rate one whole core would hold at
  the CPU cost per sample it showed (``radio.channel_max_realtime_rate`` is the channel
  between a TX feeder and an RX reader instead).

Both depend on the machine's load: the JSON records the load average of each trial.

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
from collections import Counter
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
#: Rates tried by the real-time search (MS/s), lowest first: HackRF's 10 and 20 among them.
RATES_MSPS = (1, 2, 5, 10, 15, 20)
#: Seconds of air per rate trial (``AERADIO_LINK_TRIAL_S``).
DEFAULT_TRIAL_S = 6.0
#: Rates at which the channel alone is run in real time (MS/s), and for how long (s).
CHANNEL_RATES_MSPS = (10, 20, 30, 40)
CHANNEL_ALONE_S = 6.0
#: A paced channel holds real time when its output rate is within this of the set rate.
REALTIME_TOLERANCE = 0.98
EBN0_DB = 10.0


def _rss_mb(pid: int) -> float | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    m = re.search(r"VmRSS:\s+(\d+)", text)
    return int(m.group(1)) / 1024.0 if m else None


def _cpu_s(pid: int) -> float | None:
    """CPU seconds (user + system, every thread) of a live process, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


#: The channel's status line: output rate, late resyncs, worst lag, CPU share.
STATUS = re.compile(r"\(([\d.]+) MS/s\).*late=(\d+).*lag_max=([\d.]+)ms cpu=(\d+)%")


def _channel_status(lines: list[str]) -> dict[str, Any]:
    """The figures of the channel's last status line (None each when it printed none)."""
    found = [m for m in map(STATUS.search, lines) if m]
    if not found:
        return {"channel_msps": None, "channel_late_resyncs": None, "channel_lag_max_ms": None,
                "channel_cpu_pct": None}
    m = found[-1]
    return {"channel_msps": float(m[1]), "channel_late_resyncs": int(m[2]),
            "channel_lag_max_ms": float(m[3]), "channel_cpu_pct": int(m[4])}


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


def _model_at_rate(ctx: Any, rate_hz: float) -> Path:
    """The default model with its link config's sample rate set to ``rate_hz`` (the channel
    refuses a rate other than the model's): same LUT, receiver and frame, saved once per rate."""
    import dataclasses

    from aeradio.core import model_dir as md

    source = _model(ctx)
    cfg, arrays = md.load_receiver_arrays(source)
    if cfg.radio.sample_rate_hz == rate_hz:
        return source
    radio = dataclasses.replace(cfg.radio, sample_rate_hz=rate_hz)
    out = _work_dir(ctx) / f"model-{rate_hz:g}"
    return md.save_model(out, dataclasses.replace(cfg, radio=radio), md.load_lut(source), arrays)


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
            "--pipeline", os.environ.get("AERADIO_LINK_RX_PIPELINE", "auto"),
        ), out / "rx.log")
        procs.append(rx)
        rx.wait_for("receiving", timeout_s=60)
        tx = Process("tx", aeradio_argv(
            "tx", "--model", str(model), "--device", f"zmq:{tx_ep}", "--sample-rate-hz", rate,
            "--frames", str(frames),
        ), out / "tx.log")
        procs.append(tx)
        t0 = time.monotonic()
        cpu0 = {p.name: _cpu_s(p.popen.pid) for p in procs}
        cpu = dict(cpu0)
        while tx.popen.poll() is None and time.monotonic() - t0 < air_s * 3 + 60:
            if on_tick is not None:
                on_tick(rx, channel)
            for p in procs:  # the last reading before TX exits
                cpu[p.name] = _cpu_s(p.popen.pid) or cpu[p.name]
            time.sleep(0.5)
        run_s = time.monotonic() - t0
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
    report.update(_channel_status(channel.lines))
    # CPU share (% of one core) of each process while TX sent (TX's life, 0.5 s readings).
    report["cpu_pct"] = {
        name: None if cpu[name] is None or cpu0[name] is None
        else round(100 * (cpu[name] - cpu0[name]) / run_s)
        for name in cpu
    }
    report["load_average_1m"] = round(os.getloadavg()[0], 2)
    report["frames_sent"] = frames
    report["frame_samples"] = frame_samples
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


def limits(report: dict[str, Any], rate_hz: float) -> list[str]:
    """What kept a trial from real time (empty when it held): the stages that fell short."""
    found = []
    late, msps = report.get("channel_late_resyncs"), report.get("channel_msps")
    if late is None:
        found.append("channel printed no status")
    elif late or (msps is not None and msps < REALTIME_TOLERANCE * rate_hz / 1e6):
        found.append(f"channel late ({late} resyncs, {msps} MS/s out)")
    if report.get("samples_dropped"):
        found.append(f"rx dropped {report['samples_dropped']} samples (slower than the stream)")
    lost = report["frames_sent"] - report.get("frames_decoded", 0)
    if lost > 0:
        causes = lost_frames(report)["causes"]
        why = "; ".join(f"{n} {what}" for what, n in causes.items() if n)
        found.append(f"{lost} of {report['frames_sent']} frames not decoded" + (f" ({why})" if why else ""))
    if report.get("tx_exit_code"):
        found.append(f"tx exited with {report['tx_exit_code']}")
    return found


def lost_frames(report: dict[str, Any]) -> dict[str, Any]:
    """Why the frames TX sent and RX did not decode were lost, as far as the ``rx --json``
    report tells (a trial's TX numbers its frames 0 to ``frames_sent`` - 1, back to back,
    ``frame_samples`` apart).

    Each run of sequence numbers missing between two decoded frames (``missing_ranges``, the
    latest 20) gets a cause. First from the stream positions of the two decoded frames
    around it: fewer samples between them than the frames sent there (by more than half a
    frame) means ``samples dropped`` (RX overflowed); more means a ``stream gap`` (the
    channel sent idle while TX, or the channel itself, was late, cutting the frames there).
    Otherwise from the detections between them that did not decode: ``header CRC failure``
    when there were as many as frames missing, ``not detected`` when none (``not detected,
    samples dropped`` without positions in a trial that dropped samples), ``not detected or
    header CRC failure`` in between. ``causes`` counts the lost frames of each kind, of the
    runs beyond the 20 listed, and after the last decoded frame (RX stopped before them, or
    they never arrived). A test-pattern frame has no payload CRC: its payload errors are
    block errors of a decoded frame (``block_errors``), not a loss.
    """
    sent, period = report["frames_sent"], report.get("frame_samples")
    dropped = report.get("samples_dropped") or 0
    miss = "not detected, samples dropped" if dropped and not period else "not detected"
    mixed = "not detected or header CRC failure"
    causes: Counter[str] = Counter()
    ranges = []
    for m in report.get("missing_ranges") or []:
        size = m["last_seq"] - m["first_seq"] + 1
        failed = min(m["undecoded_detections"], size)
        kind, detail = ("header CRC failure" if failed == size else mixed if failed else miss), ""
        if period and m["after_sample"] is not None:
            extra = m["before_sample"] - m["after_sample"] - (size + 1) * period
            between = f"between its neighbours than {size + 1} frame periods"
            if extra < -period / 2:
                kind, detail = "samples dropped", f" ({-extra:.0f} samples fewer {between})"
            elif extra > period / 2:
                kind, detail = "stream gap", f" ({extra:.0f} samples more {between}; {kind})"
        if kind == mixed:
            causes["header CRC failure"] += failed
            causes[miss] += size - failed
        else:
            causes[kind] += size
        ranges.append({**m, "cause": kind + detail})
    beyond = (report.get("frames_missing") or 0) - sum(causes.values())
    causes["in runs beyond the 20 listed"] = beyond
    if "last_decoded_seq" in report:  # (reports of rx before it had none)
        last = report["last_decoded_seq"]
        causes["after the last decoded frame"] = max(0, sent - (last + 1 if last is not None else 0))
    return {
        "not_decoded": sent - report.get("frames_decoded", 0),
        "causes": {k: v for k, v in causes.items() if v},
        "missing_ranges": ranges,
        "samples_dropped": dropped,
        "header_crc_failures": report.get("header_crc_failures"),
        "block_errors": report.get("block_errors"),
    }


def _channel_alone(model: Path, out: Path, rate_hz: float, seconds: float) -> dict[str, Any]:
    """``aeradio channel`` in real time with the loop's impairments and no peers."""
    tx_ep, rx_ep = free_endpoint(), free_endpoint()
    channel = Process("channel", aeradio_argv(
        "channel", "--tx", tx_ep, "--rx", rx_ep, "--sample-rate-hz", f"{rate_hz:g}",
        "--ebn0-db", f"{EBN0_DB}", "--model", str(model), "--cfo-hz", f"{rate_hz * 0.002:g}",
        "--sco-ppm", "20", "--realtime", "--duration-s", f"{seconds:g}", "--stats-interval-s", "1",
    ), out / "channel-alone.log")
    try:
        code = channel.wait(seconds + 120)
    finally:
        channel.stop()
    result = {"msps": rate_hz / 1e6, "exit_code": code, **_channel_status(channel.lines),
              "load_average_1m": round(os.getloadavg()[0], 2)}
    result["realtime"] = (code == 0 and result["channel_late_resyncs"] == 0
                          and (result["channel_msps"] or 0) >= REALTIME_TOLERANCE * rate_hz / 1e6)
    # What one whole core would hold at the CPU cost per sample measured: the channel's
    # headroom even when a loaded machine gave it less than it asked for.
    cpu, msps = result["channel_cpu_pct"], result["channel_msps"]
    result["msps_per_core"] = round(msps / (cpu / 100), 1) if cpu and msps else None
    return result


def _rates() -> tuple[float, ...]:
    text = os.environ.get("AERADIO_RATES_MSPS")
    return tuple(float(r) for r in text.split(",")) if text else RATES_MSPS


def _lost_summary(trial: dict[str, Any]) -> str:
    """One line: how many frames a trial lost, each run's sequence numbers and cause."""
    lost = trial["lost_frames"]
    if not lost["not_decoded"]:
        return "none"
    runs = ", ".join(
        str(r["first_seq"]) + (f"-{r['last_seq']}" if r["last_seq"] != r["first_seq"] else "")
        + f": {r['cause']}" for r in lost["missing_ranges"]
    )
    causes = ", ".join(f"{n} {what}" for what, n in lost["causes"].items() if n)
    return f"{lost['not_decoded']} ({causes})" + (f"; seq {runs}" if runs else "")


def bench_max_rate(ctx: Any) -> dict:
    trial_s = float(os.environ.get("AERADIO_LINK_TRIAL_S", DEFAULT_TRIAL_S))
    trials = []
    best = 0.0
    for msps in _rates():
        report = _run_link(_model_at_rate(ctx, msps * 1e6), _work_dir(ctx), msps * 1e6, trial_s)
        why = limits(report, msps * 1e6)
        trials.append({"msps": msps, "ok": not why, "limited_by": why, "air_s": round(report["air_s"], 1),
                       **{k: report.get(k) for k in (
                           "samples_dropped", "frames_sent", "frames_decoded", "processing_msps",
                           "channel_msps", "channel_late_resyncs", "channel_lag_max_ms", "channel_cpu_pct",
                           "cpu_pct", "load_average_1m")},
                       "frame_samples": report["frame_samples"], "lost_frames": lost_frames(report)})
        if why:
            break
        best = float(msps)
    alone = []
    for msps in CHANNEL_RATES_MSPS:
        model = _model_at_rate(ctx, msps * 1e6)
        alone.append(_channel_alone(model, _work_dir(ctx), msps * 1e6, CHANNEL_ALONE_S))
        if not alone[-1]["realtime"]:
            break
    channel_best = max([a["msps"] for a in alone if a["realtime"]], default=0.0)
    failed = trials[-1] if trials and not trials[-1]["ok"] else None
    return {
        "trial_s": trial_s,
        "trials": trials,
        "channel_alone": alone,
        "figures": [
            figure("highest real-time rate of the whole loop (tx, channel, rx)", best, "MS/s", target=">= 10",
                   passed=best >= 10),
            figure("what stopped the next rate", "; ".join(failed["limited_by"]) if failed else "none", ""),
            figure("highest real-time rate of the channel alone (CFO, 20 ppm, AWGN)", channel_best, "MS/s",
                   target=">= 20", passed=channel_best >= 20),
            *[figure(f"channel alone at {a['msps']:g} MS/s: output rate, CPU share, worst lag",
                     f"{a['channel_msps']} MS/s, {a['channel_cpu_pct']}%, {a['channel_lag_max_ms']} ms", "")
              for a in alone],
            figure("channel alone: rate one whole core holds (output rate / CPU share)",
                   max((a["msps_per_core"] or 0 for a in alone), default=None), "MS/s"),
            figure("frames not decoded in the last loop trial, and why (rx --json: missing sequence "
                   "numbers, what was detected between their neighbours)",
                   _lost_summary(trials[-1]) if trials else None, ""),
            figure("RX chain's own rate in the last loop trial (rx --json processing_msps)",
                   trials[-1].get("processing_msps") if trials else None, "MS/s"),
            figure("load average (1 min) at the end", round(os.getloadavg()[0], 2),
                   f"on {os.cpu_count()} cores"),
        ],
    }


BENCHMARKS: dict[str, Callable[[Any], dict]] = {
    "link.soak": bench_soak,
    "link.max_realtime_rate": bench_max_rate,
}

if __name__ == "__main__":
    for name in sys.argv[1:] or list(BENCHMARKS):
        result = BENCHMARKS[name](None)
        print(name, json.dumps(result["figures"], indent=1), flush=True)
