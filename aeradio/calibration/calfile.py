"""The calibration file: versioned JSON written by ``calibrate rx``, read by ``tx``/``rx``.

Keys (docs/contracts.md): ``format_version``, ``sample_rate_hz``, ``center_freq_hz``, ``cfo_hz``,
``cfo_ppm`` (of the center frequency; null when it is unknown), ``sco_ppm``,
``iq_gain_db``, ``iq_phase_deg``, ``dc_offset`` (``[re, im]`` relative to the signal RMS),
``snr_db``, ``noise_floor_dbfs``, ``delay_samples``; also ``signal_rms_dbfs`` (so the DC
offset in full-scale units is ``dc_offset * 10^(signal_rms_dbfs / 20)``), ``bursts`` and
``recommended`` (gains for a target SNR, see :mod:`aeradio.calibration.gain`).

Loading reads at most :data:`MAX_CALIBRATION_FILE_BYTES`, then checks the version, the
sample rate and the physical range of every value and raises
:class:`~aeradio.core.errors.CalibrationError` naming the file, the key, the allowed range
and the value: a calibration is applied entirely or not at all.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aeradio.calibration.corrections import RxCorrector, TxPrecorrector
from aeradio.calibration.gain import GainRecommendation
from aeradio.calibration.measure import CaptureMeasurement
from aeradio.core.atomic import write_text_atomic
from aeradio.core.config import parse_json, read_bounded
from aeradio.core.errors import CalibrationError, ConfigError, check_range, short_repr

#: Version of the calibration file format written and accepted.
CALIBRATION_FORMAT_VERSION = 1
#: Relative difference of sample rates still considered the same rate.
SAMPLE_RATE_REL_TOLERANCE = 1e-6
#: Physical bounds (inclusive) of the measured values.
MAX_PPM = 1000.0
MAX_IQ_GAIN_DB = 6.0
MAX_IQ_PHASE_DEG = 45.0
MAX_DC_RELATIVE = 10.0
SNR_DB_RANGE = (-40.0, 200.0)
DBFS_RANGE = (-250.0, 20.0)
#: Size of a calibration file at most (one written by ``calibrate rx`` is about 1 kB).
MAX_CALIBRATION_FILE_BYTES = 1 << 20

_REQUIRED = (
    "format_version", "sample_rate_hz", "center_freq_hz", "cfo_hz", "cfo_ppm", "sco_ppm",
    "iq_gain_db", "iq_phase_deg", "dc_offset", "snr_db", "noise_floor_dbfs", "delay_samples",
)


@dataclass(frozen=True)
class Calibration:
    """One calibration, validated on construction (:class:`CalibrationError` otherwise)."""

    sample_rate_hz: float
    center_freq_hz: float | None
    cfo_hz: float
    cfo_ppm: float | None
    sco_ppm: float
    iq_gain_db: float
    iq_phase_deg: float
    #: DC offset relative to the signal RMS, (re, im).
    dc_offset: tuple[float, float]
    snr_db: float
    noise_floor_dbfs: float
    delay_samples: float
    signal_rms_dbfs: float = 0.0
    bursts: int = 1
    recommended: dict[str, Any] | None = None
    device: dict[str, Any] = field(default_factory=dict)
    format_version: int = CALIBRATION_FORMAT_VERSION

    def __post_init__(self) -> None:
        def check(name: str, value: Any, low: float, high: float, unit: str = "") -> None:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise CalibrationError(f"calibration {name} must be a number, got {short_repr(value)}")
            try:
                check_range(name, value, low, high, unit=unit)
            except ConfigError as exc:
                raise CalibrationError(f"calibration {exc}") from None

        check("sample_rate_hz", self.sample_rate_hz, 1.0, 1e10, "Hz")
        if self.center_freq_hz is not None:
            check("center_freq_hz", self.center_freq_hz, 0.0, 1e11, "Hz")
        check("cfo_hz", self.cfo_hz, -self.sample_rate_hz / 2, self.sample_rate_hz / 2, "Hz")
        if self.cfo_ppm is not None:
            check("cfo_ppm", self.cfo_ppm, -MAX_PPM, MAX_PPM, "ppm")
        check("sco_ppm", self.sco_ppm, -MAX_PPM, MAX_PPM, "ppm")
        check("iq_gain_db", self.iq_gain_db, -MAX_IQ_GAIN_DB, MAX_IQ_GAIN_DB, "dB")
        check("iq_phase_deg", self.iq_phase_deg, -MAX_IQ_PHASE_DEG, MAX_IQ_PHASE_DEG, "deg")
        if not (isinstance(self.dc_offset, (tuple, list)) and len(self.dc_offset) == 2):
            got = short_repr(self.dc_offset)
            raise CalibrationError(f"calibration dc_offset must be [re, im], got {got}")
        for part, value in zip(("re", "im"), self.dc_offset, strict=True):
            check(f"dc_offset {part}", value, -MAX_DC_RELATIVE, MAX_DC_RELATIVE, "x signal RMS")
        check("snr_db", self.snr_db, *SNR_DB_RANGE, "dB")
        check("noise_floor_dbfs", self.noise_floor_dbfs, *DBFS_RANGE, "dBFS")
        check("signal_rms_dbfs", self.signal_rms_dbfs, *DBFS_RANGE, "dBFS")
        check("delay_samples", self.delay_samples, -1e9, 1e9, "samples")
        check("bursts", self.bursts, 1, 1e9)
        for name, value in (("recommended", self.recommended), ("device", self.device)):
            if value is not None and not isinstance(value, dict):
                raise CalibrationError(f"calibration {name} must be an object, got {short_repr(value)}")

    @property
    def cfo_cps(self) -> float:
        """CFO in cycles/sample at this calibration's sample rate."""
        return self.cfo_hz / self.sample_rate_hz

    @property
    def dc_offset_fs(self) -> complex:
        """DC offset in full-scale units (what :func:`~.corrections.remove_dc` subtracts)."""
        return complex(*self.dc_offset) * 10.0 ** (self.signal_rms_dbfs / 20.0)

    def rx_corrector(self, *, correct_cfo: bool = False) -> RxCorrector:
        """DC and IQ correction; the CFO too when the transmitter does not pre-correct it."""
        return RxCorrector(self.dc_offset_fs, self.iq_gain_db, self.iq_phase_deg,
                           self.cfo_cps if correct_cfo else 0.0)

    def tx_precorrector(self) -> TxPrecorrector:
        """Pre-correct the CFO measured on this TX -> RX pair."""
        return TxPrecorrector(self.cfo_cps)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (``dc_offset`` as a list)."""
        out = dataclasses.asdict(self)
        out["dc_offset"] = [float(v) for v in self.dc_offset]
        return out


def calibration_from_measurement(
    m: CaptureMeasurement,
    sample_rate_hz: float,
    center_freq_hz: float | None,
    *,
    recommendation: GainRecommendation | None = None,
    device: dict[str, Any] | None = None,
) -> Calibration:
    """Physical units (Hz, ppm, dBFS) of a :class:`CaptureMeasurement` (cycles/sample inside)."""
    cfo_hz = m.cfo_cps * sample_rate_hz
    dc_rel = m.dc_relative
    return Calibration(
        sample_rate_hz=float(sample_rate_hz),
        center_freq_hz=None if center_freq_hz is None else float(center_freq_hz),
        cfo_hz=cfo_hz,
        cfo_ppm=cfo_hz / center_freq_hz * 1e6 if center_freq_hz else None,
        sco_ppm=m.sco_ppm,
        iq_gain_db=m.iq_gain_db,
        iq_phase_deg=m.iq_phase_deg,
        dc_offset=(dc_rel.real, dc_rel.imag),
        snr_db=m.snr_db,
        noise_floor_dbfs=10.0 * math.log10(m.noise_power),
        delay_samples=m.delay_samples,
        signal_rms_dbfs=10.0 * math.log10(m.signal_power),
        bursts=len(m.bursts),
        recommended=None if recommendation is None else dataclasses.asdict(recommendation),
        device=dict(device or {}),
    )


def calibration_from_dict(data: Any, *, source: str = "calibration") -> Calibration:
    """Validate a decoded JSON object; :class:`CalibrationError` names ``source``."""
    if not isinstance(data, dict):
        raise CalibrationError(f"{source}: expected a JSON object, got {type(data).__name__}")
    version = data.get("format_version")
    if version != CALIBRATION_FORMAT_VERSION:
        raise CalibrationError(
            f"{source}: format_version must be {CALIBRATION_FORMAT_VERSION}, got {short_repr(version)}"
        )
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise CalibrationError(f"{source}: missing key(s) {', '.join(missing)}")
    known = {f.name for f in dataclasses.fields(Calibration)}
    kwargs = {k: v for k, v in data.items() if k in known}
    dc = kwargs["dc_offset"]
    kwargs["dc_offset"] = tuple(dc) if isinstance(dc, list) else dc
    try:
        return Calibration(**kwargs)
    except CalibrationError as exc:
        raise CalibrationError(f"{source}: {exc}") from None


def load_calibration(path: str | os.PathLike[str], sample_rate_hz: float) -> Calibration:
    """Read and validate the calibration file ``path`` for a link at ``sample_rate_hz``.

    Raises:
        CalibrationError: unreadable, too large, not JSON, another format version, another
            sample rate, a missing key or a value out of its physical range.
    """
    path = Path(path)
    raw = read_bounded(path, MAX_CALIBRATION_FILE_BYTES, what="calibration file", error=CalibrationError)
    data = parse_json(raw, what=f"calibration file {path}", error=CalibrationError)
    cal = calibration_from_dict(data, source=f"calibration file {path}")
    if not math.isclose(cal.sample_rate_hz, sample_rate_hz, rel_tol=SAMPLE_RATE_REL_TOLERANCE):
        raise CalibrationError(
            f"calibration file {path} was measured at sample_rate_hz {cal.sample_rate_hz:g}, "
            f"this link runs at {sample_rate_hz:g}: calibrate again at this rate"
        )
    return cal


def save_calibration(cal: Calibration, path: str | os.PathLike[str]) -> None:
    """Write ``cal`` as JSON atomically (temporary file in the same directory, then rename)."""
    write_text_atomic(path, json.dumps(cal.to_dict(), indent=2, sort_keys=True) + "\n")
