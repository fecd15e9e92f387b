"""SoapySDR radios (``soapy:driver=uhd,serial=...``, ``soapy:driver=hackrf``) as a Device.

Uses the real SoapySDR Python bindings (Debian's ``python3-soapysdr``, linked into the
virtual environment by ``scripts/install-soapysdr.sh``). Opening a device sets the sample
rate, center frequency, gain, analog bandwidth and antenna of one channel, checks them
against the ranges the device reports, and reads back what the hardware really set
(:meth:`SoapyDevice.describe`). Samples move as CF32 (``complex64``).

- RX: ``readStream``; a TIMEOUT returns an empty block, an OVERFLOW is counted and reading
  goes on; with hardware timestamps the samples lost in an overflow are counted from the
  gap in ``timeNs``.
- TX: ``writeStream`` in bursts; the last block of a burst carries END_BURST, and on
  devices with a hardware clock the first block of a burst is timed (HAS_TIME) a little
  ahead of "now", so a burst leaves the radio without gaps. Underflows reported by
  ``writeStream`` or ``readStreamStatus`` are counted.

A HackRF is half duplex: it transmits or receives, not both, so a HackRF link needs two
units (one ``aeradio tx``, one ``aeradio rx``). A USRP B2xx can do both, but the recipes
use two units as well, so the link crosses real air.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from aeradio.core.constants import SAMPLE_DTYPE
from aeradio.core.defaults import DEFAULT_WRITE_TIMEOUT_S
from aeradio.core.errors import ConfigError, DeviceError, StreamError
from aeradio.radio.base import Device, DeviceSettings, Direction

# SoapySDR's ABI constants (SoapySDR/Constants.h, Errors.h, Flags.h); the tests check them
# against the bindings. Kept here so the data path is testable without the bindings.
SOAPY_SDR_TX = 0
SOAPY_SDR_RX = 1
SOAPY_SDR_CF32 = "CF32"
SOAPY_SDR_TIMEOUT = -1
SOAPY_SDR_STREAM_ERROR = -2
SOAPY_SDR_CORRUPTION = -3
SOAPY_SDR_OVERFLOW = -4
SOAPY_SDR_NOT_SUPPORTED = -5
SOAPY_SDR_TIME_ERROR = -6
SOAPY_SDR_UNDERFLOW = -7
SOAPY_SDR_END_BURST = 1 << 1
SOAPY_SDR_HAS_TIME = 1 << 2

ERROR_NAMES = {
    SOAPY_SDR_TIMEOUT: "TIMEOUT",
    SOAPY_SDR_STREAM_ERROR: "STREAM_ERROR",
    SOAPY_SDR_CORRUPTION: "CORRUPTION",
    SOAPY_SDR_OVERFLOW: "OVERFLOW",
    SOAPY_SDR_NOT_SUPPORTED: "NOT_SUPPORTED",
    SOAPY_SDR_TIME_ERROR: "TIME_ERROR",
    SOAPY_SDR_UNDERFLOW: "UNDERFLOW",
}
#: Consecutive stream errors (other than timeouts, overflows, underflows) before giving up.
MAX_CONSECUTIVE_ERRORS = 10
#: How far ahead of the hardware clock a timed burst starts (ns).
TX_BURST_LEAD_NS = 50_000_000
#: Samples per readStream/writeStream call when the driver reports no MTU.
DEFAULT_MTU = 4096

SOAPYSDR_MISSING = (
    "SoapySDR Python bindings are not installed: apt-get install python3-soapysdr, "
    "then bash scripts/install-soapysdr.sh .venv"
)


def import_soapysdr() -> Any:
    """The SoapySDR module, or :class:`DeviceError` saying how to install it."""
    try:
        import SoapySDR
    except ImportError:
        raise DeviceError(SOAPYSDR_MISSING) from None
    return SoapySDR


def make_device(args: str) -> Any:
    """``SoapySDR.Device(args)``, with a clear :class:`DeviceError` when nothing matches."""
    soapy = import_soapysdr()
    try:
        return soapy.Device(args)
    except (RuntimeError, ValueError) as exc:
        raise DeviceError(
            f"no SoapySDR device matches {args!r} ({exc}); `aeradio devices` lists what is found"
        ) from None


def _in_ranges(value: float, ranges: Any) -> bool:
    return any(r.minimum() - 1e-9 <= value <= r.maximum() + 1e-9 for r in ranges)


def _ranges_text(ranges: Any) -> str:
    return ", ".join(f"[{r.minimum():g}, {r.maximum():g}]" for r in ranges)


class SoapyDevice(Device):
    """One channel of a SoapySDR device, streaming CF32 in one direction.

    ``args`` are SoapySDR device arguments (``driver=hackrf,serial=...``). ``sdr`` replaces
    the ``SoapySDR.Device`` object (tests pass a fake with the same API).
    """

    def __init__(
        self,
        args: str,
        direction: Direction,
        settings: DeviceSettings,
        *,
        channel: int = 0,
        timed_bursts: bool = True,
        sdr: Any = None,
    ) -> None:
        super().__init__()
        self.args = args
        self.direction = direction
        self.channel = channel
        self._dir = SOAPY_SDR_RX if direction == "rx" else SOAPY_SDR_TX
        self._sdr = sdr if sdr is not None else make_device(args)
        self._stream: Any = None
        self._closed = False
        try:
            self._configure(settings)
            self._open_stream()
            self._timed = timed_bursts and direction == "tx" and self._call("hasHardwareTime")
        except BaseException:
            self.close()
            raise
        self._next_rx_time_ns: int | None = None
        self._burst_time_ns: int | None = None
        self._in_burst = False
        self._status_supported = True
        self._errors = 0

    # -- configuration ------------------------------------------------------------------

    def _call(self, name: str, *args: Any) -> Any:
        """Call a device method; driver exceptions become :class:`DeviceError`."""
        try:
            return getattr(self._sdr, name)(*args)
        except (RuntimeError, ValueError, TypeError) as exc:
            raise DeviceError(f"SoapySDR {self.args!r}: {name} failed: {exc}") from None

    def _configure(self, s: DeviceSettings) -> None:
        d, ch = self._dir, self.channel
        count = self._call("getNumChannels", d)
        if count <= ch:
            raise DeviceError(
                f"SoapySDR device {self.args!r} has no {self.direction.upper()} channel {ch} "
                f"(it has {count} {self.direction.upper()} channels)"
            )
        self._set_in_range("sample rate", "Hz", s.sample_rate_hz, "getSampleRateRange", "setSampleRate")
        if s.freq_hz is not None:
            self._set_in_range("frequency", "Hz", s.freq_hz, "getFrequencyRange", "setFrequency")
        if s.gain_db is not None:
            self._set_in_range("gain", "dB", s.gain_db, "getGainRange", "setGain")
        if s.bandwidth_hz is not None:
            self._call("setBandwidth", d, ch, s.bandwidth_hz)
        if s.antenna is not None:
            antennas = list(self._call("listAntennas", d, ch))
            if s.antenna not in antennas:
                raise ConfigError(f"antenna must be one of {antennas} for {self.args!r}, got {s.antenna!r}")
            self._call("setAntenna", d, ch, s.antenna)
        self.sample_rate_hz = float(self._call("getSampleRate", d, ch))

    def _set_in_range(self, what: str, unit: str, value: float, get_range: str, setter: str) -> None:
        """Check ``value`` against the device's range(s) for it, then set it."""
        ranges = self._call(get_range, self._dir, self.channel)
        if not isinstance(ranges, (list, tuple)):
            ranges = [ranges]  # getGainRange returns one range
        if ranges and not _in_ranges(value, ranges):
            raise ConfigError(
                f"{what} must be in {_ranges_text(ranges)} {unit} for {self.args!r}, got {value:g}"
            )
        self._call(setter, self._dir, self.channel, value)

    def _open_stream(self) -> None:
        stream = self._call("setupStream", self._dir, SOAPY_SDR_CF32, [self.channel])
        if stream is None:
            raise DeviceError(f"SoapySDR {self.args!r} could not set up a CF32 {self.direction} stream")
        self._stream = stream
        ret = self._call("activateStream", stream)
        if isinstance(ret, int) and ret < 0:
            raise DeviceError(f"SoapySDR {self.args!r}: activateStream failed: {_error_name(ret)}")
        mtu = self._call("getStreamMTU", stream)
        self.mtu = int(mtu) if mtu and mtu > 0 else DEFAULT_MTU

    def describe(self) -> dict[str, object]:
        """What the hardware really set, read back from the device (None where it cannot say)."""
        d, ch = self._dir, self.channel

        def read_back(name: str, *args: Any) -> Any:
            try:
                return self._call(name, *args)
            except DeviceError:
                return None

        return {
            "device": f"soapy:{self.args}",
            "driver": read_back("getDriverKey"),
            "hardware": read_back("getHardwareKey"),
            "direction": self.direction,
            "channel": ch,
            "sample_rate_hz": read_back("getSampleRate", d, ch),
            "freq_hz": read_back("getFrequency", d, ch),
            "gain_db": read_back("getGain", d, ch),
            "bandwidth_hz": read_back("getBandwidth", d, ch),
            "antenna": read_back("getAntenna", d, ch),
        }

    # -- streaming ------------------------------------------------------------------------

    def _stream_error(self, ret: int, where: str) -> None:
        """Count an unexpected error code; raise after MAX_CONSECUTIVE_ERRORS of them."""
        self._errors += 1
        self.stats.events.append(f"{where}: {_error_name(ret)}")
        if self._errors >= MAX_CONSECUTIVE_ERRORS:
            raise StreamError(
                f"SoapySDR {self.args!r}: {where} failed {self._errors} times in a row "
                f"(last: {_error_name(ret)})"
            )

    def read(self, max_samples: int, timeout_s: float = 1.0) -> np.ndarray | None:
        """Up to ``max_samples`` samples ([n] complex64); empty on TIMEOUT.

        The first samples may take up to ``timeout_s``; then the read takes only what the
        driver already holds, so a receiver that fell behind catches up in large batches
        (the RX chain's cost per call dominates small reads) and a fast one adds no latency.
        """
        if self.direction != "rx":
            raise StreamError("a TX SoapySDR device cannot read; open it with direction 'rx'")
        buf = np.empty(max(1, max_samples), dtype=SAMPLE_DTYPE)
        got = 0
        deadline = time.monotonic() + timeout_s
        while got < len(buf):
            remaining_us = 0 if got else max(0, int((deadline - time.monotonic()) * 1e6))
            sr = self._sdr.readStream(self._stream, [buf[got:]], len(buf) - got, timeoutUs=remaining_us)
            if sr.ret > 0:
                self._errors = 0
                self._account_rx_time(sr)
                self.stats.samples += sr.ret
                got += sr.ret
                continue
            if sr.ret == SOAPY_SDR_OVERFLOW:
                self.stats.overflows += 1
            elif sr.ret < 0 and sr.ret != SOAPY_SDR_TIMEOUT:
                self._stream_error(sr.ret, "readStream")
            if got:  # nothing more queued (or a gap): hand over what came
                break
            if sr.ret == SOAPY_SDR_TIMEOUT or remaining_us == 0 or time.monotonic() >= deadline:
                self.stats.timeouts += 1
                return np.zeros(0, dtype=SAMPLE_DTYPE)
        # A short read is copied out of the large buffer rather than keeping it alive.
        return buf[:got] if 2 * got >= len(buf) else buf[:got].copy()

    def _account_rx_time(self, sr: Any) -> None:
        """Count the samples an overflow lost from the gap in hardware timestamps."""
        if not sr.flags & SOAPY_SDR_HAS_TIME:
            self._next_rx_time_ns = None
            return
        if self._next_rx_time_ns is not None:
            gap = round((sr.timeNs - self._next_rx_time_ns) * self.sample_rate_hz / 1e9)
            if gap > 0:
                self.stats.samples_dropped += gap
        self._next_rx_time_ns = sr.timeNs + round(sr.ret * 1e9 / self.sample_rate_hz)

    def write(
        self, samples: np.ndarray, *, end_burst: bool = False, timeout_s: float = DEFAULT_WRITE_TIMEOUT_S
    ) -> None:
        """Send all ``samples`` ([n] complex64); ``end_burst`` closes the burst (END_BURST)."""
        if self.direction != "tx":
            raise StreamError("an RX SoapySDR device cannot write; open it with direction 'tx'")
        samples = np.ascontiguousarray(samples, dtype=SAMPLE_DTYPE)
        if not len(samples):
            if end_burst and self._in_burst:  # close the burst with an empty END_BURST
                self._sdr.writeStream(self._stream, [samples], 0, SOAPY_SDR_END_BURST, 0, timeoutUs=0)
                self._in_burst = False
            return
        deadline = time.monotonic() + timeout_s
        pos = 0
        while pos < len(samples):
            chunk = samples[pos : pos + self.mtu]
            last = pos + len(chunk) >= len(samples)
            flags, time_ns = 0, 0
            if end_burst and last:
                flags |= SOAPY_SDR_END_BURST
            if not self._in_burst and self._timed:
                time_ns = self._burst_start_ns()
                flags |= SOAPY_SDR_HAS_TIME
            remaining_us = max(0, int((deadline - time.monotonic()) * 1e6))
            sr = self._sdr.writeStream(
                self._stream, [chunk], len(chunk), flags, time_ns, timeoutUs=remaining_us
            )
            if sr.ret > 0:
                self._errors = 0
                self._in_burst = True
                pos += sr.ret
            elif sr.ret == SOAPY_SDR_TIMEOUT or sr.ret == 0:
                self.stats.timeouts += 1
            elif sr.ret == SOAPY_SDR_UNDERFLOW:
                self.stats.underflows += 1
            else:
                self._stream_error(sr.ret, "writeStream")
            if pos < len(samples) and time.monotonic() >= deadline:
                raise StreamError(
                    f"SoapySDR {self.args!r} accepted {pos} of {len(samples)} samples in {timeout_s} s"
                )
        self.stats.samples += len(samples)
        if self._timed and self._burst_time_ns is not None:
            self._burst_time_ns += round(len(samples) * 1e9 / self.sample_rate_hz)
        if end_burst:
            self._in_burst = False
        self._poll_status()

    def _burst_start_ns(self) -> int:
        """Start of the next timed burst: just ahead of now, never inside the previous one."""
        start = int(self._call("getHardwareTime")) + TX_BURST_LEAD_NS
        if self._burst_time_ns is not None:
            start = max(start, self._burst_time_ns)
        self._burst_time_ns = start
        return start

    def _poll_status(self) -> None:
        """Collect asynchronous TX events (underflows, late bursts) without waiting."""
        if not self._status_supported:
            return
        for _ in range(16):
            sr = self._sdr.readStreamStatus(self._stream, timeoutUs=0)
            if sr.ret == SOAPY_SDR_NOT_SUPPORTED:
                self._status_supported = False
                return
            if sr.ret == SOAPY_SDR_TIMEOUT or sr.ret == 0:
                return
            if sr.ret == SOAPY_SDR_UNDERFLOW:
                self.stats.underflows += 1
            elif sr.ret == SOAPY_SDR_TIME_ERROR:
                self.stats.events.append("burst sent late (TIME_ERROR)")
            else:
                self.stats.events.append(f"stream status: {_error_name(sr.ret)}")

    def close(self) -> None:
        """Deactivate and close the stream and release the device; idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._stream is not None:
            try:
                self._sdr.deactivateStream(self._stream)
                self._sdr.closeStream(self._stream)
            except (RuntimeError, ValueError):
                pass
            self._stream = None
        self._sdr = None


def _error_name(ret: int) -> str:
    return ERROR_NAMES.get(ret, f"error {ret}")
