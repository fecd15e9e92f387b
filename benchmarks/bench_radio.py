"""Benchmarks of the ZMQ loopback: the channel process in real time, and a soak.

``BENCHMARKS`` maps a name to ``fn(ctx) -> dict`` with ``"figures"`` (the harness is
``aeradio bench``, :mod:`aeradio.apps.bench`). Settings are read from ``ctx`` (a mapping
or an object with attributes), else from the environment (``AERADIO_SOAK_S``,
``AERADIO_RATE_TRIAL_S``), else the defaults below:

- ``radio.channel_throughput``: in-process throughput of the impairment chain (MS/s), all stages.
- ``radio.channel_max_realtime_rate``: the highest sample rate (from RATES_MSPS) at which the
  ``aeradio channel`` process, with AWGN and CFO, fed by a continuous TX process and read
  by an RX device, keeps real time: its output rate within 2 % of the nominal one, no late
  resync, no sample lost at RX; ``radio.channel_max_realtime_rate_all``: the same with every impairment on.
- ``radio.loopback_soak``: TX -> channel -> RX (three processes: a continuous TX feeder, the
  channel, the RX device in this process) at 1 MS/s in real time for ``soak_s`` seconds
  (``AERADIO_SOAK_S``, default 10 s; the acceptance run is 600 s): samples received and
  dropped, and the channel's resident memory over time.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from aeradio.apps.bench import figure
from aeradio.apps.processes import stop_process
from aeradio.flowgraphs.channel_sim import ChannelModel, ChannelSettings
from aeradio.radio import DeviceSettings, open_device
from aeradio.radio.zmq_stream import free_endpoint

#: Candidate rates for the real-time search (MS/s), tried in order until one fails.
RATES_MSPS = (1.0, 2.0, 5.0, 10.0, 20.0)
RATE_TRIAL_S = 3.0
DEFAULT_SOAK_S = 10.0
SOAK_RATE_HZ = 1e6
RSS_PERIOD_S = 1.0


def _setting(ctx: Any, name: str, default: float) -> float:
    if isinstance(ctx, Mapping) and name in ctx:
        return float(ctx[name])
    if ctx is not None and hasattr(ctx, name):
        return float(getattr(ctx, name))
    return float(os.environ.get(f"AERADIO_{name.upper()}", default))


def _log(ctx: Any, message: str) -> None:
    if hasattr(ctx, "log"):
        ctx.log(message)


def _rss_mb(pid: int) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", text).group(1)) / 1024.0


class _ChannelProcess:
    """An ``aeradio channel`` subprocess with its log in a temporary file."""

    def __init__(self, rate_hz: float, *extra: str) -> None:
        self.tx, self.rx = free_endpoint(), free_endpoint()
        self._log = tempfile.NamedTemporaryFile("w+", suffix=".log")  # noqa: SIM115
        cmd = [sys.executable, "-m", "aeradio.cli", "channel", "--tx", f"zmq:{self.tx}",
               "--rx", f"zmq:{self.rx}", "--sample-rate-hz", str(rate_hz), "--realtime", *extra]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self._log)

    def log(self) -> str:
        return Path(self._log.name).read_text()

    def stop(self) -> dict[str, float]:
        """Terminate; the last status line as numbers (out, MS/s, late resyncs)."""
        stop_process(self.proc)
        lines = [ln for ln in self.log().splitlines() if "out=" in ln]
        self._log.close()
        if not lines:
            return {}
        m = re.search(r"t=([\d.]+)s out=(\d+) \(([\d.]+) MS/s\) in=(\d+).*late=(\d+)", lines[-1])
        if not m:
            return {}
        return {"elapsed_s": float(m[1]), "samples_out": int(m[2]), "msps": float(m[3]),
                "samples_in": int(m[4]), "late_resyncs": int(m[5])}


def feed(endpoint: str, rate_hz: float) -> None:
    """A TX process: push noise-like samples of frame power (1/4) until terminated."""
    rng = np.random.default_rng(0)
    block = (rng.standard_normal(8192) + 1j * rng.standard_normal(8192)) * np.sqrt(1 / 8)
    block = block.astype(np.complex64)
    with open_device(f"zmq:{endpoint}", "tx", DeviceSettings(sample_rate_hz=rate_hz)) as tx:
        while True:
            tx.write(block, timeout_s=30.0)


class _TxProcess:
    """A continuous TX (:func:`feed`) in its own process, as ``aeradio tx`` would be."""

    def __init__(self, endpoint: str, rate_hz: float) -> None:
        self.proc = subprocess.Popen([sys.executable, __file__, "--feed", endpoint, str(rate_hz)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self) -> None:
        stop_process(self.proc, timeout_s=5)


def _wait_for_stream(rx: Any, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if len(rx.read(1 << 16, timeout_s=0.2)):
            return
    raise RuntimeError("the channel process sent nothing")


def bench_channel_throughput(ctx: Any) -> dict:
    """MS/s of ChannelModel.process with every impairment on, blocks of 4096."""
    settings = ChannelSettings(
        signal_power=0.25, noise_power=0.0025, cfo_cps=1e-3, sco_ppm=20.0, delay_samples=2.5,
        multipath_taps=(1, 0.2j), iq_gain_db=0.3, iq_phase_deg=2.0, dc_offset=0.01 + 0.01j,
        phase_noise_std_rad=1e-3, pa_rapp_p=3.0,
    )
    rng = np.random.default_rng(0)
    block = (rng.standard_normal(4096) + 1j * rng.standard_normal(4096)).astype(np.complex64) * 0.5
    out = {}
    for name, s in (("all_impairments", settings),
                    ("awgn_only", ChannelSettings(signal_power=0.25, noise_power=0.0025))):
        model = ChannelModel(s, np.random.default_rng(1))
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < 1.0:
            n += len(model.process(block))
        out[f"{name}_msps"] = round(n / (time.perf_counter() - t0) / 1e6, 2)
    out["figures"] = [
        figure("channel chain, all impairments", out["all_impairments_msps"], "MS/s"),
        figure("channel chain, AWGN only", out["awgn_only_msps"], "MS/s"),
    ]
    return out


#: ``aeradio channel`` options of the "all impairments" trials (the Hz ones scale with the rate).
ALL_IMPAIRMENTS = ("--sco-ppm", "20", "--delay-samples", "2.5", "--multipath", "1,0.2j",
                   "--iq-imbalance-db", "0.3", "--iq-imbalance-deg", "2", "--dc-offset", "0.01+0.01j",
                   "--phase-noise-dbc", "-90", "--pa-rapp-p", "3")


def _rate_trial(rate_hz: float, trial_s: float, extra: tuple[str, ...]) -> dict:
    ch = _ChannelProcess(rate_hz, "--snr-db", "20", "--stats-interval-s", "1",
                         "--cfo-hz", str(rate_hz * 1e-3), *extra)
    tx = None
    try:
        with open_device(f"zmq:{ch.rx}", "rx", DeviceSettings(sample_rate_hz=rate_hz)) as rx:
            _wait_for_stream(rx)
            tx = _TxProcess(ch.tx, rate_hz)
            received, t0 = 0, time.monotonic()
            while time.monotonic() - t0 < trial_s:
                received += len(rx.read(1 << 18, timeout_s=0.2))
            elapsed = time.monotonic() - t0
            dropped = rx.stats.samples_dropped
    finally:
        if tx is not None:
            tx.stop()
        status = ch.stop()
    ok = (
        bool(status)
        and status["msps"] >= 0.98 * rate_hz / 1e6
        and status["late_resyncs"] == 0
        and dropped == 0
    )
    return {"rate_msps": rate_hz / 1e6, "channel_msps": status.get("msps"), "late_resyncs":
            status.get("late_resyncs"), "tx_samples_in": status.get("samples_in"),
            "rx_msps": round(received / elapsed / 1e6, 3), "rx_samples_dropped": dropped,
            "sustained": ok}


def _max_realtime_rate(ctx: Any, extra: tuple[str, ...], label: str, need_1msps: bool) -> dict:
    trial_s = _setting(ctx, "rate_trial_s", RATE_TRIAL_S)
    trials, best = [], 0.0
    for msps in RATES_MSPS:
        result = _rate_trial(msps * 1e6, trial_s, extra)
        _log(ctx, f"channel at {msps:g} MS/s ({label}): {result}")
        trials.append(result)
        if not result["sustained"]:
            break
        best = msps
    fig = figure(f"highest real-time channel rate ({label})", best, "MS/s",
                 target=">= 1" if need_1msps else None, passed=best >= 1.0 if need_1msps else None)
    return {"max_realtime_msps": best, "trials": trials, "figures": [fig]}


def bench_loopback_soak(ctx: Any) -> dict:
    """TX -> channel -> RX at 1 MS/s in real time: drops, and the RSS of the channel process
    over time (and of this RX process at both ends)."""
    soak_s = _setting(ctx, "soak_s", DEFAULT_SOAK_S)
    ch = _ChannelProcess(SOAK_RATE_HZ, "--snr-db", "20", "--stats-interval-s", "10")
    settings = DeviceSettings(sample_rate_hz=SOAK_RATE_HZ)
    rss: list[tuple[float, float]] = []
    rx_rss_first = _rss_mb(os.getpid())
    tx = None
    try:
        with open_device(f"zmq:{ch.rx}", "rx", settings) as rx:
            _wait_for_stream(rx)
            tx = _TxProcess(ch.tx, SOAK_RATE_HZ)
            received, t0, next_rss = 0, time.monotonic(), 0.0
            while (elapsed := time.monotonic() - t0) < soak_s:
                received += len(rx.read(1 << 16, timeout_s=0.2))
                if elapsed >= next_rss:
                    rss.append((round(elapsed, 1), round(_rss_mb(ch.proc.pid), 1)))
                    next_rss += RSS_PERIOD_S
            elapsed = time.monotonic() - t0
            result = {
                "soak_s": round(elapsed, 1),
                "rx_samples": received,
                "rx_msps": round(received / elapsed / 1e6, 4),
                "rx_samples_dropped": rx.stats.samples_dropped,
                "rx_process_rss_mb_first": round(rx_rss_first, 1),
                "rx_process_rss_mb_last": round(_rss_mb(os.getpid()), 1),
            }
    finally:
        if tx is not None:
            tx.stop()
        status = ch.stop()
    rss_values = [v for _, v in rss]
    half = len(rss_values) // 2
    result.update({
        "channel_late_resyncs": status.get("late_resyncs"),
        "tx_samples_in": status.get("samples_in"),
        "channel_rss_mb_first": rss_values[0] if rss_values else None,
        "channel_rss_mb_max": max(rss_values) if rss_values else None,
        # Flat memory: the second half's peak against the first half's.
        "channel_rss_growth_mb": round(max(rss_values[half:]) - max(rss_values[: max(half, 1)]), 1)
        if len(rss_values) >= 2 else None,
        "channel_rss_mb_over_time": rss,
    })
    growth = result["channel_rss_growth_mb"]
    result["figures"] = [
        figure("soak duration at 1 MS/s", result["soak_s"], "s"),
        figure("soak samples dropped", result["rx_samples_dropped"], "samples", target="0",
               passed=result["rx_samples_dropped"] == 0 and status.get("late_resyncs") == 0),
        figure("soak RX rate", result["rx_msps"], "MS/s", target=">= 0.99", passed=result["rx_msps"] >= 0.99),
        figure("soak channel RSS growth", growth, "MB", target="< 5",
               passed=growth is not None and growth < 5.0),
    ]
    return result


def bench_channel_max_realtime_rate(ctx: Any) -> dict:
    """The highest rate of RATES_MSPS that the channel (AWGN + CFO) and one RX sustain."""
    return _max_realtime_rate(ctx, (), "AWGN + CFO", need_1msps=True)


def bench_channel_max_realtime_rate_all(ctx: Any) -> dict:
    """The same with every impairment on (resampling for the clock offset dominates)."""
    return _max_realtime_rate(ctx, ALL_IMPAIRMENTS, "all impairments", need_1msps=False)


BENCHMARKS: dict[str, Callable[[Any], dict]] = {
    "radio.channel_throughput": bench_channel_throughput,
    "radio.channel_max_realtime_rate": bench_channel_max_realtime_rate,
    "radio.channel_max_realtime_rate_all": bench_channel_max_realtime_rate_all,
    "radio.loopback_soak": bench_loopback_soak,
}


if __name__ == "__main__":  # python benchmarks/bench_radio.py [NAME ...] | --feed ENDPOINT RATE
    import json

    if sys.argv[1:2] == ["--feed"]:
        feed(sys.argv[2], float(sys.argv[3]))
    for name in sys.argv[1:] or list(BENCHMARKS):
        print(name, json.dumps(BENCHMARKS[name](None)), flush=True)
