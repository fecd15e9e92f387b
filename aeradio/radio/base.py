"""One streaming interface for every device backend (SoapySDR, ZMQ, SigMF file).

A :class:`Device` is opened for one direction (``"rx"`` or ``"tx"``) by
:func:`aeradio.radio.open_device` from a URI and :class:`DeviceSettings`, used as a context
manager (leaving it on an exception calls :meth:`Device.abort`, not :meth:`Device.close`), and
moves ``complex64`` samples:

- ``read(max_samples, timeout_s)`` returns up to ``max_samples`` samples; an empty array
  when nothing arrived before the timeout; ``None`` at the end of a finite source (a file).
  Samples the device lost (overflow, dropped ZMQ messages, detected from stream offsets)
  are counted in :attr:`Device.stats`, never silently.
- ``write(samples, end_burst=False, timeout_s)`` blocks until all samples are accepted;
  ``end_burst=True`` marks the end of a burst (SoapySDR END_BURST).

Fatal failures raise :class:`~aeradio.core.errors.StreamError` or
:class:`~aeradio.core.errors.DeviceError`.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal

import numpy as np

from aeradio.core.defaults import DEFAULT_WRITE_TIMEOUT_S
from aeradio.core.errors import ConfigError, check_range
from aeradio.core.eventlog import EventLog

Direction = Literal["rx", "tx"]


@dataclass(frozen=True)
class DeviceSettings:
    """What the user asked of the device; ``None`` leaves the device's own default."""

    sample_rate_hz: float
    freq_hz: float | None = None
    gain_db: float | None = None
    bandwidth_hz: float | None = None
    antenna: str | None = None

    def __post_init__(self) -> None:
        # The range of a config's radio.sample_rate_hz and of `aeradio channel`: a rate
        # outside it is a typo (MS/s for S/s), and train-ota's waits scale with 1 / rate.
        check_range("sample rate", self.sample_rate_hz, 1e3, 1e9, unit="Hz")
        if self.freq_hz is not None and not (math.isfinite(self.freq_hz) and self.freq_hz >= 0):
            raise ConfigError(f"frequency must be >= 0 Hz, got {self.freq_hz!r}")
        if self.gain_db is not None and not (-50.0 <= self.gain_db <= 120.0):
            raise ConfigError(f"gain must be in [-50, 120] dB, got {self.gain_db!r}")
        if self.bandwidth_hz is not None and not (
            math.isfinite(self.bandwidth_hz) and self.bandwidth_hz > 0
        ):
            raise ConfigError(f"bandwidth must be a positive number of Hz, got {self.bandwidth_hz!r}")


@dataclass
class StreamStats:
    """Counters a stream keeps; reported by RX and TX on exit."""

    samples: int = 0
    samples_dropped: int = 0
    overflows: int = 0
    underflows: int = 0
    timeouts: int = 0
    #: Messages (ZMQ) or records that were not valid and were skipped, never fatal.
    malformed: int = 0
    #: Backend events worth reporting (e.g. "stream restarted at offset N"), bounded.
    events: EventLog = field(default_factory=EventLog)
    #: Integrity problems that make what was read suspect (a recording cut mid-sample, a
    #: checksum that does not match): a receiver reports them and fails the run.
    faults: EventLog = field(default_factory=EventLog)


class Device(ABC):
    """A sample stream in one direction. Subclasses implement the four methods."""

    direction: Direction
    #: What the device really runs at (read back from hardware where possible).
    sample_rate_hz: float

    def __init__(self) -> None:
        self.stats = StreamStats()

    @abstractmethod
    def read(self, max_samples: int, timeout_s: float = 1.0) -> np.ndarray | None:
        """Up to ``max_samples`` complex64 samples; empty on timeout; None at end of source."""

    @abstractmethod
    def write(
        self, samples: np.ndarray, *, end_burst: bool = False, timeout_s: float = DEFAULT_WRITE_TIMEOUT_S
    ) -> None:
        """Send all ``samples`` (complex64); ``end_burst`` closes the current burst."""

    @abstractmethod
    def close(self) -> None:
        """Release the device, finishing what it was doing; idempotent."""

    def abort(self) -> None:
        """Release the device after a failure or an interruption: what was not finished is
        not published (a file device deletes its unfinished recording); idempotent.
        Streams and radios have nothing to discard: the default is :meth:`close`."""
        self.close()

    def describe(self) -> dict[str, object]:
        """What the device really set (rate, frequency, gain, ...), for logs and reports."""
        return {"sample_rate_hz": self.sample_rate_hz}

    def __enter__(self) -> Device:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
