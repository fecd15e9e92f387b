"""``aeradio calibrate tx`` and ``aeradio calibrate rx``.

``calibrate tx`` sends ``--bursts`` calibration bursts back to back
(:mod:`aeradio.calibration.bursts`). ``calibrate rx`` captures enough samples for
``--bursts`` bursts (or ``--duration-s`` of samples, or to the end of a recording),
measures them (:mod:`aeradio.calibration.measure`), recommends gains for
``--target-snr-db`` (:mod:`aeradio.calibration.gain`) and writes the calibration file
``--json`` (:mod:`aeradio.calibration.calfile`), which ``aeradio tx/rx --calibration``
apply.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from typing import Any

import numpy as np

from aeradio.calibration.bursts import BurstLayout, calibration_burst
from aeradio.calibration.calfile import calibration_from_measurement, save_calibration
from aeradio.calibration.detection import DEFAULT_THRESHOLD
from aeradio.calibration.gain import TARGET_LEVEL_DBFS, recommend_gains
from aeradio.calibration.measure import measure_capture
from aeradio.config import RadioConfig
from aeradio.errors import CalibrationError, ConfigError, check_range
from aeradio.radio.base import Device, DeviceSettings
from aeradio.radio.uri import open_device

#: Samples asked of the device per read.
READ_BLOCK_SAMPLES = 1 << 16


def device_settings(args: argparse.Namespace) -> DeviceSettings:
    """Device settings from the common device arguments (rate defaults to the link's)."""
    return DeviceSettings(
        sample_rate_hz=args.sample_rate_hz or RadioConfig().sample_rate_hz,
        freq_hz=args.freq_hz,
        gain_db=args.gain_db,
        bandwidth_hz=args.bandwidth_hz,
        antenna=args.antenna,
    )


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


def cmd_calibrate_tx(args: argparse.Namespace) -> int:
    """Send ``args.bursts`` calibration bursts to ``args.device``."""
    check_range("--bursts", args.bursts, 1, 1_000_000)
    layout = BurstLayout()
    burst = calibration_burst(layout)
    with open_device(args.device, "tx", device_settings(args)) as dev:
        for _ in range(args.bursts):
            dev.write(burst, end_burst=True)
        seconds = args.bursts * layout.length / dev.sample_rate_hz
        print(
            f"sent {args.bursts} calibration bursts of {layout.length} samples "
            f"({seconds:.2f} s) to {args.device}"
        )
    return 0


def capture(dev: Device, max_samples: int, timeout_s: float) -> np.ndarray:
    """Read up to ``max_samples`` complex64 samples; stop early at the end of a recording.

    Raises :class:`CalibrationError` when nothing arrives for ``timeout_s`` seconds before
    the first sample (a silent device), and stops after that long a gap later on.
    """
    blocks: list[np.ndarray] = []
    total = 0
    last_data = time.monotonic()
    while total < max_samples:
        block = dev.read(min(READ_BLOCK_SAMPLES, max_samples - total), timeout_s=min(timeout_s, 0.5))
        if block is None:
            break
        if block.size:
            blocks.append(block)
            total += block.size
            last_data = time.monotonic()
        elif time.monotonic() - last_data > timeout_s:
            if not total:
                raise CalibrationError(f"no samples arrived from the device within {timeout_s:g} s")
            break
    return np.concatenate(blocks) if blocks else np.zeros(0, np.complex64)


def _center_freq_hz(args: argparse.Namespace, described: dict[str, Any]) -> float | None:
    freq = described.get("freq_hz", args.freq_hz)
    return float(freq) if freq else None


def cmd_calibrate_rx(args: argparse.Namespace) -> int:
    """Capture, measure, recommend gains and write the calibration file ``args.json``."""
    check_range("--bursts", args.bursts, 1, 10_000)
    check_range("--target-snr-db", args.target_snr_db, -10.0, 60.0, unit="dB")
    check_range("--timeout-s", args.timeout_s, 0.01, 3600.0, unit="s")
    tx_range = parse_gain_range("--tx-gain-range-db", args.tx_gain_range_db)
    rx_range = parse_gain_range("--rx-gain-range-db", args.rx_gain_range_db)
    layout = BurstLayout()
    with open_device(args.device, "rx", device_settings(args)) as dev:
        rate = dev.sample_rate_hz
        if args.duration_s is not None:
            check_range("--duration-s", args.duration_s, 1e-3, 3600.0, unit="s")
            max_samples = int(args.duration_s * rate)
        else:
            # One period more than asked: the first burst may start anywhere.
            max_samples = (args.bursts + 1) * layout.length
        x = capture(dev, max_samples, args.timeout_s)
        described = dev.describe()
        dropped = dev.stats.samples_dropped
    if dropped:
        print(f"aeradio calibrate rx: warning: the device lost {dropped} samples", file=sys.stderr)
    threshold = DEFAULT_THRESHOLD if args.threshold is None else args.threshold
    check_range("--threshold", threshold, 0.05, 1.0)
    m = measure_capture(x, layout, threshold=threshold)
    rx_range = rx_range or described.get("gain_range_db")
    rec = recommend_gains(
        m.snr_db,
        args.target_snr_db,
        10.0 * math.log10(m.signal_power),
        tx_gain_db=args.tx_gain_db,
        rx_gain_db=described.get("gain_db", args.gain_db),
        tx_gain_range_db=tx_range,
        rx_gain_range_db=tuple(rx_range) if rx_range else None,
        target_level_dbfs=TARGET_LEVEL_DBFS if args.target_level_dbfs is None else args.target_level_dbfs,
    )
    device = {**described, "samples_captured": int(x.size), "samples_dropped": int(dropped)}
    cal = calibration_from_measurement(
        m, rate, _center_freq_hz(args, described), recommendation=rec, device=device
    )
    save_calibration(cal, args.json)
    dc = complex(*cal.dc_offset)
    print(
        f"{cal.bursts} bursts: CFO {cal.cfo_hz:+.1f} Hz"
        + (f" ({cal.cfo_ppm:+.3f} ppm)" if cal.cfo_ppm is not None else "")
        + f", clock {cal.sco_ppm:+.3f} ppm, IQ {cal.iq_gain_db:+.3f} dB {cal.iq_phase_deg:+.2f} deg,"
        f" DC {abs(dc) * 100:.2f} % of RMS, SNR {cal.snr_db:.2f} dB,"
        f" noise floor {cal.noise_floor_dbfs:.1f} dBFS, delay {cal.delay_samples:.3f} samples;"
        f" for {rec.target_snr_db:g} dB SNR change TX gain by {rec.tx_gain_change_db:+.1f} dB,"
        f" RX gain by {rec.rx_gain_change_db:+.1f} dB -> {args.json}"
    )
    return 0
