"""Fixtures of the radio tests.

``fake_soapy``: a stand-in for the SoapySDR module's data path, ``fake_soapy.Device`` with
the method names and result objects of ``SoapySDR.Device``, scripted: ``rx_results`` and
``tx_results`` are queues of ``Result(ret, flags, timeNs)`` that ``readStream`` /
``writeStream`` return in order (then defaults), and every write is logged.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pytest

from aeradio.radio import soapy as s


@dataclass
class Result:
    ret: int
    flags: int = 0
    timeNs: int = 0  # noqa: N815 - the SoapySDR attribute name


@dataclass
class Range:
    lo: float
    hi: float

    def minimum(self) -> float:
        return self.lo

    def maximum(self) -> float:
        return self.hi


class FakeSoapyDevice:
    """One RX and one TX channel; rates 1e5..2e7, gains 0..70 dB, antennas TX/RX and RX2."""

    def __init__(self, *, channels: int = 1, hardware_time: bool = False) -> None:
        self.channels = channels
        self.hardware_time = hardware_time
        self.settings: dict[str, object] = {"rate": 0.0, "freq": 0.0, "gain": 0.0, "bw": 0.0, "ant": "TX/RX"}
        self.rx_results: list[Result] = []
        self.tx_results: list[Result] = []
        self.status_results: list[Result] = []
        self.writes: list[tuple[int, int, int]] = []  # (count, flags, time_ns)
        self.written: list[np.ndarray] = []
        self.closed = False
        self.time_ns = 1_000_000_000
        self.rx_value = np.complex64(0.5 - 0.25j)

    def getNumChannels(self, direction):  # noqa: N802
        return self.channels

    def getSampleRateRange(self, direction, ch):  # noqa: N802
        return [Range(1e5, 2e7)]

    def getFrequencyRange(self, direction, ch):  # noqa: N802
        return [Range(70e6, 6e9)]

    def getGainRange(self, direction, ch):  # noqa: N802
        return Range(0.0, 70.0)

    def listAntennas(self, direction, ch):  # noqa: N802
        return ("TX/RX", "RX2")

    def setSampleRate(self, direction, ch, rate):  # noqa: N802
        self.settings["rate"] = round(rate / 1000) * 1000.0  # the hardware rounds

    def getSampleRate(self, direction, ch):  # noqa: N802
        return self.settings["rate"]

    def setFrequency(self, direction, ch, freq):  # noqa: N802
        self.settings["freq"] = freq + 3.0  # tuning residual

    def getFrequency(self, direction, ch):  # noqa: N802
        return self.settings["freq"]

    def setGain(self, direction, ch, gain):  # noqa: N802
        self.settings["gain"] = float(int(gain))  # 1 dB steps

    def getGain(self, direction, ch):  # noqa: N802
        return self.settings["gain"]

    def setBandwidth(self, direction, ch, bw):  # noqa: N802
        self.settings["bw"] = bw

    def getBandwidth(self, direction, ch):  # noqa: N802
        return self.settings["bw"]

    def setAntenna(self, direction, ch, name):  # noqa: N802
        self.settings["ant"] = name

    def getAntenna(self, direction, ch):  # noqa: N802
        return self.settings["ant"]

    def getDriverKey(self):  # noqa: N802
        return "fake"

    def getHardwareKey(self):  # noqa: N802
        return "fake-hw"

    def hasHardwareTime(self, what=""):  # noqa: N802
        return self.hardware_time

    def getHardwareTime(self, what=""):  # noqa: N802
        return self.time_ns

    def setupStream(self, direction, fmt, channels):  # noqa: N802
        assert fmt == s.SOAPY_SDR_CF32
        return "stream"

    def activateStream(self, stream):  # noqa: N802
        return 0

    def getStreamMTU(self, stream):  # noqa: N802
        return 1000

    def readStream(self, stream, buffs, numElems, flags=0, timeoutUs=100000):  # noqa: N802, N803
        r = self.rx_results.pop(0) if self.rx_results else Result(numElems)
        if r.ret == s.SOAPY_SDR_TIMEOUT:
            time.sleep(min(timeoutUs * 1e-6, 0.01))  # a real timeout takes time
        if r.ret > 0:
            buffs[0][: r.ret] = self.rx_value
        return r

    def writeStream(self, stream, buffs, numElems, flags=0, timeNs=0, timeoutUs=100000):  # noqa: N802, N803
        r = self.tx_results.pop(0) if self.tx_results else Result(numElems)
        if r.ret == s.SOAPY_SDR_TIMEOUT:
            time.sleep(min(timeoutUs * 1e-6, 0.01))  # a real timeout takes time
        if r.ret > 0:
            self.writes.append((r.ret, flags, timeNs))
            self.written.append(np.array(buffs[0][: r.ret]))
        return r

    def readStreamStatus(self, stream, timeoutUs=100000):  # noqa: N802, N803
        return self.status_results.pop(0) if self.status_results else Result(s.SOAPY_SDR_TIMEOUT)

    def deactivateStream(self, stream):  # noqa: N802
        return 0

    def closeStream(self, stream):  # noqa: N802
        self.closed = True


@pytest.fixture
def fake_soapy() -> SimpleNamespace:
    """``.Device`` (the fake device class) and ``.Result`` (a stream result)."""
    return SimpleNamespace(Device=FakeSoapyDevice, Result=Result)
