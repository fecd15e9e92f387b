"""``aeradio calibrate tx`` and ``aeradio calibrate rx``.

``calibrate tx`` sends ``--bursts`` calibration bursts back to back
(:mod:`aeradio.calibration.bursts`). ``calibrate rx`` captures enough samples for
``--bursts`` bursts (or ``--duration-s`` of samples, or to the end of a recording),
measures them (:mod:`aeradio.calibration.measure`), recommends gains for
``--target-snr-db`` (:mod:`aeradio.calibration.gain`) and writes the calibration file
``--json`` (:mod:`aeradio.calibration.calfile`), which ``aeradio tx/rx --calibration``
apply.

``delay_samples`` is the arrival of the first burst modulo the burst period, counted from
the first sample the receiver read: the path delay when that sample is the transmitter's
first (a SigMF recording of the whole transmission, a full-duplex radio started with its
transmitter); over the ZMQ loopback or two free-running radios it is only the bursts'
phase in the receiver's stream.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aeradio.apps.device_args import device_settings
from aeradio.apps.processes import StopOnSignal
from aeradio.calibration.bursts import BurstLayout, calibration_burst
from aeradio.calibration.calfile import calibration_from_measurement, save_calibration
from aeradio.calibration.detection import detect_syncs
from aeradio.calibration.gain import recommend_gains
from aeradio.calibration.measure import NOISE_POWER_FLOOR, is_whole, measure_capture
from aeradio.core.errors import CalibrationError, ConfigError, check_range
from aeradio.core.paths import check_file_output
from aeradio.radio.base import Device, DeviceSettings
from aeradio.radio.uri import open_device

#: Samples asked of the device per read.
READ_BLOCK_SAMPLES = 1 << 16


def parse_gain_range(name: str, text: str | None) -> tuple[float, float] | None:
    """``"LO:HI"`` (dB) -> ``(LO, HI)``; None stays None.

    >>> parse_gain_range("--tx-gain-range-db", "0:47")
    (0.0, 47.0)
    """
    if text is None:
        return None
    try:
        low, high = (float(v) for v in text.split(":"))
    except ValueError:
        raise ConfigError(f"{name} must be LO:HI in dB, got {text!r}") from None
    if not (math.isfinite(low) and math.isfinite(high) and low <= high):
        raise ConfigError(f"{name} must be LO:HI with LO <= HI, got {text!r}")
    return low, high


def send_bursts(
    uri: str,
    settings: DeviceSettings,
    bursts: int,
    *,
    overwrite: bool = False,
    stop: StopOnSignal | None = None,
    connect_timeout_s: float | None = None,
) -> tuple[int, str]:
    """Send ``bursts`` calibration bursts to the device ``uri``: ``(bursts sent, one-line summary)``.

    With ``stop``, a signal ends the sending between two bursts; the device is then aborted
    (a ``file:`` recording cut short is not published).
    """
    check_range("--bursts", bursts, 1, 1_000_000)
    layout = BurstLayout()
    burst = calibration_burst(layout)
    extra: dict[str, object] = {"overwrite": True} if overwrite else {}
    if connect_timeout_s is not None and uri.startswith("zmq:"):
        check_range("--connect-timeout-s", connect_timeout_s, 0.01, 3600.0, unit="s")
        extra["connect_timeout_s"] = connect_timeout_s
    sent = 0
    with open_device(uri, "tx", settings, **extra) as dev:
        for _ in range(bursts):
            if stop is not None and stop.requested:
                dev.abort()
                return sent, f"interrupted by {stop.reason} after {sent} of {bursts} bursts; not published"
            dev.write(burst, end_burst=True)
            sent += 1
        seconds = bursts * layout.length / dev.sample_rate_hz
    return sent, f"sent {bursts} calibration bursts of {layout.length} samples ({seconds:.2f} s) to {uri}"


def cmd_calibrate_tx(args: argparse.Namespace) -> int:
    """Send ``args.bursts`` calibration bursts to ``args.device``; SIGTERM/Ctrl-C stop it cleanly."""
    overwrite = bool(getattr(args, "overwrite", False))
    with StopOnSignal() as stop:
        settings = device_settings(args)
        sent, line = send_bursts(args.device, settings, args.bursts, overwrite=overwrite, stop=stop,
                                 connect_timeout_s=getattr(args, "connect_timeout_s", None))
    if sent < args.bursts:
        print(f"aeradio calibrate tx: {line}", file=sys.stderr)
        return stop.exit_code
    print(line)
    return 0


@dataclass
class Capture:
    """Samples kept by :func:`capture_bursts` and the stream index of the first one."""

    samples: np.ndarray
    stream_start_index: int
    samples_read: int
    #: Syncs detected while reading (whole bursts or not).
    syncs_seen: int
    #: Times the device lost samples: each time, what was kept is dropped and the capture
    #: starts again after the loss, so ``samples`` is one contiguous stretch of the stream.
    restarts: int = 0


def capture_bursts(
    dev: Device,
    layout: BurstLayout,
    *,
    bursts: int,
    max_samples: int | None,
    timeout_s: float,
    threshold: float,
) -> Capture:
    """Read until ``bursts`` whole bursts arrived, ``max_samples`` were read, the recording
    ended, or ``timeout_s`` of wall clock passed without a new burst (or any sample).

    Detection scans each new stretch of samples once as they arrive; while no burst has
    been seen, only the newest period is kept, so a radio streaming noise for minutes
    before the transmitter starts costs no memory. When the device loses samples (its
    ``stats.samples_dropped`` grows over a read), everything kept is dropped, that read's
    block too (the gap is before it or inside it), and the capture starts again: a burst
    across a gap would bias every estimate (the tones' phases jump), so the bursts measured
    come from one contiguous stretch. The stream index goes on counting the lost samples.
    """
    blocks: list[np.ndarray] = []
    kept = 0  # samples in blocks
    dropped_front = 0  # samples read and discarded before blocks[0]
    syncs: list[int] = []  # absolute sync indices (stream order)
    checked_at = 0
    scan_from = 0  # index in the kept samples where the next detection scan starts
    last_progress = time.monotonic()
    read_total = 0
    lost_seen = dev.stats.samples_dropped
    lost_total = restarts = 0
    while max_samples is None or read_total < max_samples:
        ask = READ_BLOCK_SAMPLES if max_samples is None else min(READ_BLOCK_SAMPLES, max_samples - read_total)
        block = dev.read(ask, timeout_s=min(timeout_s, 0.5))
        if block is None:
            break
        if dev.stats.samples_dropped != lost_seen:  # a gap before or inside this block
            lost_total += dev.stats.samples_dropped - lost_seen
            lost_seen = dev.stats.samples_dropped
            restarts += 1
            read_total += block.size
            blocks, kept, syncs, scan_from, checked_at = [], 0, [], 0, read_total
            dropped_front = read_total + lost_total
            continue
        if block.size:
            blocks.append(block)
            kept += block.size
            read_total += block.size
        if read_total - checked_at >= layout.length // 2 or not block.size:
            checked_at = read_total
            buffer = np.concatenate(blocks) if len(blocks) > 1 else blocks[0] if blocks else None
            if buffer is not None and kept - scan_from >= layout.sync_samples:
                blocks = [buffer]
                for d in detect_syncs(buffer[scan_from:], layout, threshold):
                    absolute = dropped_front + scan_from + d.sync_index
                    if all(abs(absolute - s) > layout.sync_samples for s in syncs):
                        syncs.append(absolute)
                        last_progress = time.monotonic()
                # Overlap the next scan so a peak cut by this scan's end is found whole.
                scan_from = max(0, kept - 2 * layout.sync_samples)
                whole = [s for s in syncs if is_whole(s - dropped_front, layout, kept)]
                if len(whole) >= bursts:
                    break
                if not syncs and kept > 2 * layout.length:
                    blocks = [buffer[-layout.length :]]
                    dropped_front += kept - layout.length
                    scan_from = max(0, scan_from - (kept - layout.length))
                    kept = layout.length
        if time.monotonic() - last_progress > timeout_s:
            break
    samples = np.concatenate(blocks) if blocks else np.zeros(0, np.complex64)
    return Capture(samples, dropped_front, read_total, len(syncs), restarts)


def _center_freq_hz(settings: DeviceSettings, described: dict[str, Any]) -> float | None:
    """What the device reports it is tuned to, else what it was asked."""
    freq = described.get("freq_hz", settings.freq_hz)
    return float(freq) if freq else None


def cmd_calibrate_rx(args: argparse.Namespace) -> int:
    """Capture, measure, recommend gains and write the calibration file ``args.json``."""
    if Path(args.json).exists() and not getattr(args, "overwrite", False):
        raise ConfigError(f"--json {args.json} exists; refusing to overwrite it (pass --overwrite)")
    check_file_output(args.json, "--json")
    check_range("--bursts", args.bursts, 1, 10_000)
    check_range("--target-snr-db", args.target_snr_db, -10.0, 60.0, unit="dB")
    check_range("--timeout-s", args.timeout_s, 0.01, 3600.0, unit="s")
    tx_range = parse_gain_range("--tx-gain-range-db", args.tx_gain_range_db)
    rx_range = parse_gain_range("--rx-gain-range-db", args.rx_gain_range_db)
    layout = BurstLayout()
    threshold = args.threshold
    check_range("--threshold", threshold, 0.05, 1.0)
    if args.duration_s is not None:
        check_range("--duration-s", args.duration_s, 1e-3, 1e6, unit="s")
    settings = device_settings(args)
    with open_device(args.device, "rx", settings) as dev:
        rate = dev.sample_rate_hz
        got = capture_bursts(
            dev,
            layout,
            bursts=args.bursts if args.duration_s is None else 1 << 30,
            max_samples=None if args.duration_s is None else int(args.duration_s * rate),
            timeout_s=args.timeout_s,
            threshold=threshold,
        )
        described = dev.describe()
        dropped = dev.stats.samples_dropped
    if dropped:
        print(f"aeradio calibrate rx: warning: the device lost {dropped} samples ({got.restarts} time(s)); "
              "the capture started again after each loss, so the bursts measured are contiguous",
              file=sys.stderr)
    if not got.syncs_seen:
        raise CalibrationError(
            f"no calibration bursts found in {got.samples_read} samples read from {args.device} "
            f"(detection threshold {threshold:g}): is `aeradio calibrate tx` sending at "
            f"{rate:g} S/s?" + (f" (the device lost samples {got.restarts} time(s), and the capture "
                                 "started again after each loss)" if got.restarts else "")
        )
    x = got.samples
    m = measure_capture(x, layout, threshold=threshold, stream_start_index=got.stream_start_index)
    rx_range = rx_range or described.get("gain_range_db")
    # No noise at all (a digital recording): the SNR is the floor's, nothing to recommend.
    noiseless = m.noise_power <= NOISE_POWER_FLOOR
    rec = None if noiseless else recommend_gains(
        m.snr_db,
        args.target_snr_db,
        10.0 * math.log10(m.signal_power),
        tx_gain_db=args.tx_gain_db,
        rx_gain_db=described.get("gain_db", args.gain_db),
        tx_gain_range_db=tx_range,
        rx_gain_range_db=tuple(rx_range) if rx_range else None,
        target_level_dbfs=args.target_level_dbfs,
    )
    device = {**described, "samples_read": got.samples_read, "samples_dropped": int(dropped)}
    cal = calibration_from_measurement(
        m, rate, _center_freq_hz(settings, described), recommendation=rec, device=device
    )
    save_calibration(cal, args.json)
    dc = complex(*cal.dc_offset)
    print(
        f"{cal.bursts} bursts: CFO {cal.cfo_hz:+.1f} Hz"
        + (f" ({cal.cfo_ppm:+.3f} ppm)" if cal.cfo_ppm is not None else "")
        + f", clock {cal.sco_ppm:+.3f} ppm, IQ {cal.iq_gain_db:+.3f} dB {cal.iq_phase_deg:+.2f} deg,"
        f" DC {abs(dc) * 100:.2f} % of RMS, SNR {cal.snr_db:.2f} dB,"
        f" noise floor {cal.noise_floor_dbfs:.1f} dBFS, delay {cal.delay_samples:.3f} samples;"
        + (" no noise measured, no gain recommendation;" if rec is None else
           f" for {rec.target_snr_db:g} dB SNR change TX gain by {rec.tx_gain_change_db:+.1f} dB,"
           f" RX gain by {rec.rx_gain_change_db:+.1f} dB")
        + f" -> {args.json}"
    )
    return 0
