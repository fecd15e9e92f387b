"""The project's error hierarchy.

Every error a user can cause (bad config, bad file, absent device) is an
:class:`AeradioError`; the CLI turns it into one line on stderr and exit code 2.
Messages name the parameter, the allowed range and the value received.
"""

from __future__ import annotations

import reprlib
from typing import Any


class AeradioError(Exception):
    """Base class of every error aeradio raises on purpose."""


class ConfigError(AeradioError, ValueError):
    """An invalid configuration value or command-line argument."""


class ModelFormatError(AeradioError):
    """A model directory that is missing a file, altered, or not in the expected format."""


class DeviceError(AeradioError):
    """A radio device that cannot be found, opened or configured."""


class StreamError(AeradioError):
    """A sample stream that failed while running (socket, device, file)."""


class CaptureFormatError(AeradioError):
    """A SigMF recording or dataset that is missing, corrupt or of the wrong kind."""


class CalibrationError(AeradioError):
    """A calibration that cannot be measured, or a calibration file that cannot be applied."""


def short_repr(value: Any) -> str:
    """A repr for error messages, cut to a few dozen characters and a few levels of nesting
    (a value read from a file may be a 4 MB string or a list nested 900 deep).

    >>> short_repr("x" * 1000)[:12], len(short_repr("x" * 1000)) < 40, short_repr([[[[[[1]]]]]])
    ("'xxxxxxxxxxx", True, '[[[[[[...]]]]]]')
    """
    return reprlib.repr(value)


def check_range(name: str, value: float, low: float, high: float, *, unit: str = "") -> None:
    """Raise :class:`ConfigError` unless ``low <= value <= high`` (NaN is rejected).

    >>> check_range("k", 3, 1, 16)
    >>> check_range("k", 0, 1, 16)
    Traceback (most recent call last):
    ...
    aeradio.core.errors.ConfigError: k must be in [1, 16], got 0

    Integer bounds print exactly (``[1, 2147483648]``), others in ``%g`` form.
    """
    if not (low <= value <= high):  # also False for NaN
        u = f" {unit}" if unit else ""
        lo, hi = (f"{b}" if isinstance(b, int) else f"{b:g}" for b in (low, high))
        raise ConfigError(f"{name} must be in [{lo}, {hi}]{u}, got {short_repr(value)}")
