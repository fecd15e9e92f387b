"""SigMF recordings (``cf32_le``) as a :class:`~aeradio.radio.base.Device`.

- ``rx``: reads ``PATH.sigmf-data`` in blocks; checks the datatype, the sample rate
  against the settings, a data file cut mid-sample (the partial sample is dropped and
  reported); non-finite samples are passed on and counted in ``stats.events``' summary
  (the RX chain zeroes them). ``read()`` returns None at the end of the file.
- ``tx``: writes samples to a temporary data file; on ``close()`` writes the metadata
  (sample rate, center frequency, datetime, hardware, annotations), validates it with
  the ``sigmf`` library and renames both files into place. An existing recording is
  never replaced unless ``overwrite=True``.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> with SigmfFileDevice(d / "a.sigmf-meta", "tx", DeviceSettings(1e6)) as dev:
...     dev.write(np.ones(8, np.complex64))
>>> with SigmfFileDevice(d / "a.sigmf-meta", "rx", DeviceSettings(1e6)) as dev:
...     len(dev.read(100)), dev.read(100)
(8, None)
"""

from __future__ import annotations

import json
import math
import os
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from aeradio.core.constants import SAMPLE_DTYPE
from aeradio.core.errors import CaptureFormatError, ConfigError, StreamError
from aeradio.core.version import __version__
from aeradio.radio.base import Device, DeviceSettings, Direction

#: The only datatype read and written: complex float32, little-endian.
DATATYPE = "cf32_le"
#: Relative sample-rate mismatch tolerated between a recording and the settings.
RATE_TOLERANCE = 1e-6
SIGMF_VERSION = "1.2.0"


def sigmf_paths(path: str | Path) -> tuple[Path, Path]:
    """(meta, data) paths of a recording named by either file."""
    p = Path(path)
    if p.suffix not in (".sigmf-meta", ".sigmf-data"):
        raise ConfigError(f"a SigMF path must end in .sigmf-meta or .sigmf-data, got {str(p)!r}")
    return p.with_suffix(".sigmf-meta"), p.with_suffix(".sigmf-data")


def _validate(meta: dict[str, Any], where: Path) -> None:
    from sigmf import validate as sigmf_validate

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            sigmf_validate.validate(meta)
    except Exception as exc:  # jsonschema's ValidationError and friends
        msg = str(exc).splitlines()[0]
        raise CaptureFormatError(f"{where}: invalid SigMF metadata: {msg}") from None


class SigmfFileDevice(Device):
    """A SigMF recording read (``rx``) or written (``tx``) as a sample stream.

    Args:
        path: ``X.sigmf-meta`` or ``X.sigmf-data``.
        direction: "rx" or "tx".
        settings: the sample rate must match a recording's; ``freq_hz`` is written.
        overwrite: (tx) replace an existing recording.
        metadata: (tx) extra global fields, e.g. ``{"core:description": "..."}``.
    """

    def __init__(
        self,
        path: str | Path,
        direction: Direction,
        settings: DeviceSettings,
        *,
        overwrite: bool = False,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if direction not in ("rx", "tx"):
            raise ConfigError(f"direction must be 'rx' or 'tx', got {direction!r}")
        self.direction = direction
        self.meta_path, self.data_path = sigmf_paths(path)
        self.settings = settings
        self.sample_rate_hz = settings.sample_rate_hz
        self.nonfinite_samples = 0
        self.annotations: list[dict[str, Any]] = []
        self._closed = False
        self._file: Any = None
        if direction == "rx":
            self._open_rx()
        else:
            self._open_tx(overwrite, metadata or {})

    # ---- rx --------------------------------------------------------------------------
    def _open_rx(self) -> None:
        try:
            meta = json.loads(self.meta_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise CaptureFormatError(f"{self.meta_path}: no such recording") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CaptureFormatError(f"{self.meta_path}: not a readable SigMF metadata file: {exc}") from None
        if not isinstance(meta, dict) or not isinstance(meta.get("global"), dict):
            raise CaptureFormatError(f"{self.meta_path}: no 'global' object in the metadata")
        g = meta["global"]
        datatype = g.get("core:datatype")
        if datatype != DATATYPE:
            raise CaptureFormatError(f"{self.meta_path}: datatype must be {DATATYPE!r}, got {datatype!r}")
        rate = g.get("core:sample_rate")
        if not isinstance(rate, (int, float)) or not math.isfinite(rate) or rate <= 0:
            raise CaptureFormatError(
                f"{self.meta_path}: core:sample_rate must be a positive number, got {rate!r}"
            )
        want = self.settings.sample_rate_hz
        if abs(rate - want) > RATE_TOLERANCE * want:
            raise CaptureFormatError(
                f"{self.meta_path}: recorded at {rate:g} S/s but the link runs at {want:g} S/s"
            )
        self.metadata = meta
        self.sample_rate_hz = float(rate)
        captures = meta.get("captures") or [{}]
        self.center_freq_hz = captures[0].get("core:frequency")
        try:
            size = self.data_path.stat().st_size
            self._file = open(self.data_path, "rb")  # noqa: SIM115 - closed in close()
        except OSError as exc:
            raise CaptureFormatError(f"{self.data_path}: cannot open the data file: {exc.strerror}") from None
        itemsize = np.dtype(SAMPLE_DTYPE).itemsize
        self.num_samples = size // itemsize
        self.truncated_bytes = size % itemsize
        if self.truncated_bytes:
            self.stats.events.append(
                f"data file ends mid-sample: {self.truncated_bytes} trailing bytes ignored"
            )

    def read(self, max_samples: int, timeout_s: float = 1.0) -> np.ndarray | None:
        if self.direction != "rx" or self._closed:
            raise StreamError(f"{self.meta_path}: not open for reading")
        remaining = self.num_samples - self.stats.samples
        if remaining <= 0:
            return None
        count = min(max_samples, remaining)
        raw = self._file.read(count * np.dtype(SAMPLE_DTYPE).itemsize)
        x = np.frombuffer(raw, dtype="<c8").astype(SAMPLE_DTYPE)
        if len(x) == 0:
            return None
        bad = int(np.count_nonzero(~np.isfinite(x)))
        if bad:
            self.nonfinite_samples += bad
        self.stats.samples += len(x)
        return x

    # ---- tx --------------------------------------------------------------------------
    def _open_tx(self, overwrite: bool, metadata: dict[str, Any]) -> None:
        for p in (self.meta_path, self.data_path):
            if p.exists() and not overwrite:
                raise CaptureFormatError(f"{p} exists; refusing to overwrite it (pass overwrite)")
        if not self.meta_path.parent.is_dir():
            raise CaptureFormatError(f"{self.meta_path.parent}: no such directory")
        self._extra = dict(metadata)
        self._datetime = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        self._tmp_data = self.data_path.with_name(self.data_path.name + f".tmp{os.getpid()}")
        self._file = open(self._tmp_data, "wb")  # noqa: SIM115 - closed in close()

    def write(self, samples: np.ndarray, *, end_burst: bool = False, timeout_s: float = 5.0) -> None:
        if self.direction != "tx" or self._closed:
            raise StreamError(f"{self.meta_path}: not open for writing")
        x = np.ascontiguousarray(samples, dtype="<c8")
        self._file.write(x.tobytes())
        self.stats.samples += len(x)

    def annotate(self, start: int, length: int, label: str | None = None, **fields: Any) -> None:
        """Annotate samples ``[start, start + length)``; ``fields`` go under ``aeradio:``."""
        ann: dict[str, Any] = {"core:sample_start": int(start), "core:sample_count": int(length)}
        if label:
            ann["core:label"] = label
        for key, value in fields.items():
            ann[f"aeradio:{key}"] = value
        self.annotations.append(ann)

    def _metadata(self) -> dict[str, Any]:
        g: dict[str, Any] = {
            "core:datatype": DATATYPE,
            "core:sample_rate": float(self.sample_rate_hz),
            "core:version": SIGMF_VERSION,
            "core:recorder": f"aeradio {__version__}",
            "core:hw": "aeradio",
        }
        g.update(self._extra)
        if any(k.startswith("aeradio:") for a in self.annotations for k in a) or any(
            k.startswith("aeradio:") for k in g
        ):
            g["core:extensions"] = [{"name": "aeradio", "version": "0.1.0", "optional": True}]
        capture: dict[str, Any] = {"core:sample_start": 0, "core:datetime": self._datetime}
        if self.settings.freq_hz is not None:
            capture["core:frequency"] = float(self.settings.freq_hz)
        annotations = sorted(self.annotations, key=lambda a: a["core:sample_start"])
        return {"global": g, "captures": [capture], "annotations": annotations}

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._file is not None:
            self._file.close()
        if self.direction != "tx":
            return
        meta = self._metadata()
        try:
            _validate(meta, self.meta_path)
            tmp_meta = self.meta_path.with_name(self.meta_path.name + f".tmp{os.getpid()}")
            tmp_meta.write_text(json.dumps(meta, indent=2), encoding="utf-8")
            os.replace(self._tmp_data, self.data_path)
            os.replace(tmp_meta, self.meta_path)
        except BaseException:
            self._tmp_data.unlink(missing_ok=True)
            raise

    def describe(self) -> dict[str, object]:
        return {
            "sample_rate_hz": self.sample_rate_hz,
            "path": str(self.meta_path),
            "samples": self.stats.samples,
        }
