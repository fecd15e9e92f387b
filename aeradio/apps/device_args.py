"""The device arguments every radio command shares (``--device URI`` and its settings).

Rate and frequency default to the link's (``[radio]`` of the model, or the defaults of
:class:`~aeradio.core.config.RadioConfig`), so ``tx``, ``rx`` and ``calibrate`` agree.
"""

from __future__ import annotations

import argparse
from typing import Any

from aeradio.calibration.calfile import Calibration, load_calibration
from aeradio.core.config import RadioConfig
from aeradio.radio.base import Device, DeviceSettings
from aeradio.radio.uri import open_device


def device_settings(args: argparse.Namespace, radio: RadioConfig | None = None) -> DeviceSettings:
    """Device settings from ``--sample-rate-hz``, ``--freq-hz``, ``--gain-db``, ``--bandwidth-hz``
    and ``--antenna``; rate and frequency default to ``radio``'s."""
    radio = radio or RadioConfig()
    return DeviceSettings(
        sample_rate_hz=args.sample_rate_hz if args.sample_rate_hz is not None else radio.sample_rate_hz,
        freq_hz=args.freq_hz if args.freq_hz is not None else radio.center_freq_hz,
        gain_db=args.gain_db,
        bandwidth_hz=args.bandwidth_hz,
        antenna=args.antenna,
    )


def open_args_device(
    args: argparse.Namespace, direction: str, settings: DeviceSettings, **kwargs: Any
) -> Device:
    """The device of ``--device`` opened for ``direction`` ("tx" or "rx")."""
    return open_device(args.device, direction, settings, **kwargs)


def load_args_calibration(args: argparse.Namespace, sample_rate_hz: float) -> Calibration | None:
    """The ``--calibration`` file, checked against the link's sample rate (None without one)."""
    if getattr(args, "calibration", None) is None:
        return None
    return load_calibration(args.calibration, sample_rate_hz)
