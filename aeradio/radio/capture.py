"""Capture recorder behind ``aeradio rx --capture DIR``: SigMF recordings of what RX decoded.

Each recording is a ``cf32_le`` SigMF pair named ``capture-<UTC time>-<index>`` with the
sample rate, the center frequency, the datetime of its first sample, the device, the
sha512 of the data (so a damaged data file is detected), and one annotation per detected
frame (start, length, sequence number, CFO, SNR, decode result). The samples recorded are
those the RX chain decoded (after any calibration correction), so annotation positions
match them.

Crash safety: while a recording is open its files are ``X.sigmf-data.partial`` and
``X.sigmf-meta.partial`` (the metadata rewritten atomically every ``meta_every_samples``
samples); when finished the metadata is validated with the ``sigmf`` library and both files
are renamed to their final names. A crash therefore leaves either a finished recording or a
clearly marked partial one, which :func:`recover_partial` turns into a valid recording.
Nothing is ever overwritten: names are chosen free, and the final renames refuse to
replace an existing file.

Rotation: once a recording holds ``max_file_bytes`` of data a new one starts; the previous
one stays open for annotations for ``grace_samples`` more samples (frames are reported a
little after their samples were recorded), then it is finished. A frame straddling the
boundary is annotated in the file where it starts, its length clipped, with
``aeradio:truncated``.

>>> import tempfile
>>> d = tempfile.mkdtemp()
>>> with CaptureRecorder(d, sample_rate_hz=1e6, center_freq_hz=915e6, device="doc") as rec:
...     rec.write(np.zeros(100, np.complex64))
...     rec.annotate_frame(10, 50, seq=3, cfo_hz=1.0, snr_db=20.0, header_ok=True)
>>> [p.name.endswith(".sigmf-meta") for p in rec.finished]
[True]
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from aeradio.core.atomic import rename_no_replace, write_json_atomic
from aeradio.core.constants import SAMPLE_DTYPE
from aeradio.core.errors import CaptureFormatError, ConfigError
from aeradio.core.version import __version__
from aeradio.radio.sigmf_file import DATATYPE, SIGMF_VERSION, _validate

#: Default size at which a recording is closed and the next one started (bytes of data).
DEFAULT_MAX_FILE_BYTES = 1 << 30
#: Default period of the partial metadata checkpoints (samples).
DEFAULT_META_EVERY_SAMPLES = 1 << 20
#: Suffix of the files of a recording that is not finished.
PARTIAL_SUFFIX = ".partial"
#: Name of the aeradio SigMF extension (annotation and global fields ``aeradio:*``).
EXTENSION = {"name": "aeradio", "version": "0.1.0", "optional": True}
_ITEMSIZE = np.dtype(SAMPLE_DTYPE).itemsize


def _rename_no_replace(src: Path, dst: Path) -> None:
    """Rename ``src`` to ``dst``; :class:`CaptureFormatError` if ``dst`` exists (never replaced)."""
    try:
        rename_no_replace(src, dst)
    except FileExistsError as exc:
        raise CaptureFormatError(str(exc)) from None


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class _Recording:
    """One open recording: samples ``[first_sample, first_sample + samples)`` of the stream."""

    base: Path  # directory / stem, without suffixes
    first_sample: int
    datetime: str
    file: Any
    digest: Any = field(default_factory=hashlib.sha512)
    samples: int = 0
    annotations: list[dict[str, Any]] = field(default_factory=list)
    closed_at: int | None = None  # stream sample where the data file was closed

    @property
    def data_partial(self) -> Path:
        return self.base.with_name(self.base.name + ".sigmf-data" + PARTIAL_SUFFIX)

    @property
    def meta_partial(self) -> Path:
        return self.base.with_name(self.base.name + ".sigmf-meta" + PARTIAL_SUFFIX)


class CaptureRecorder:
    """Records a sample stream into rotating SigMF recordings in ``directory``.

    Args:
        directory: created if missing.
        sample_rate_hz: written as ``core:sample_rate``.
        center_freq_hz: written as ``core:frequency`` (None: left out).
        device: written as ``core:hw`` (e.g. the device URI or its description).
        max_file_bytes: data bytes per recording before rotating (>= one sample).
        meta_every_samples: period of the partial metadata checkpoints.
        grace_samples: samples after a rotation during which the previous recording still
            takes annotations of frames that started in it (about two frame lengths).
        extra_global: more ``global`` fields, e.g. ``{"aeradio:link": "ae-n7-k8"}``.
    """

    def __init__(
        self,
        directory: str | Path,
        *,
        sample_rate_hz: float,
        center_freq_hz: float | None,
        device: str,
        max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
        meta_every_samples: int = DEFAULT_META_EVERY_SAMPLES,
        grace_samples: int = 0,
        extra_global: dict[str, Any] | None = None,
    ) -> None:
        if max_file_bytes < _ITEMSIZE:
            raise ConfigError(f"capture max_file_bytes must be >= {_ITEMSIZE}, got {max_file_bytes}")
        if meta_every_samples < 1:
            raise ConfigError(f"capture meta_every_samples must be >= 1, got {meta_every_samples}")
        self.directory = Path(directory)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CaptureFormatError(f"--capture {self.directory}: {exc.strerror or exc}") from None
        self.sample_rate_hz = float(sample_rate_hz)
        self.center_freq_hz = center_freq_hz
        self.device = device
        self.max_samples = max_file_bytes // _ITEMSIZE
        self.meta_every = meta_every_samples
        self.grace_samples = grace_samples
        self.extra_global = dict(extra_global or {})
        self.stream_samples = 0
        #: Meta paths of the finished recordings, in order.
        self.finished: list[Path] = []
        self._start_time = datetime.now(UTC)
        self._stamp = self._start_time.strftime("%Y%m%dT%H%M%SZ")
        self._index = 0
        self._current: _Recording | None = None
        self._closing: list[_Recording] = []
        self._since_meta = 0
        self._closed = False

    # ---- naming ----------------------------------------------------------------------
    def _free_base(self) -> Path:
        """The next recording name none of whose four files exists."""
        while True:
            base = self.directory / f"capture-{self._stamp}-{self._index:04d}"
            self._index += 1
            names = [base.name + s for s in (".sigmf-data", ".sigmf-meta")]
            names += [n + PARTIAL_SUFFIX for n in names]
            if not any((self.directory / n).exists() for n in names):
                return base

    def _open(self) -> _Recording:
        while True:
            base = self._free_base()
            rec_time = self._start_time + timedelta(seconds=self.stream_samples / self.sample_rate_hz)
            rec = _Recording(base, self.stream_samples, _iso(rec_time), None)
            try:
                rec.file = open(rec.data_partial, "xb")  # noqa: SIM115 - closed in _close_data
            except FileExistsError:  # another recorder took the name meanwhile
                continue
            self._write_meta(rec, partial=True)
            return rec

    # ---- metadata --------------------------------------------------------------------
    def _metadata(self, rec: _Recording) -> dict[str, Any]:
        """The SigMF metadata of a recording (as it stands)."""
        g: dict[str, Any] = {
            "core:datatype": DATATYPE,
            "core:sample_rate": self.sample_rate_hz,
            "core:version": SIGMF_VERSION,
            "core:recorder": f"aeradio {__version__}",
            "core:hw": self.device,
            "core:sha512": rec.digest.hexdigest(),
            "core:extensions": [dict(EXTENSION)],
        }
        g.update(self.extra_global)
        capture: dict[str, Any] = {"core:sample_start": 0, "core:datetime": rec.datetime}
        if self.center_freq_hz is not None:
            capture["core:frequency"] = float(self.center_freq_hz)
        annotations = sorted(rec.annotations, key=lambda a: a["core:sample_start"])
        return {"global": g, "captures": [capture], "annotations": annotations}

    def _write_meta(self, rec: _Recording, *, partial: bool) -> None:
        meta = self._metadata(rec)
        if partial:
            write_json_atomic(rec.meta_partial, meta)
            return
        final_meta = rec.base.with_name(rec.base.name + ".sigmf-meta")
        _validate(meta, final_meta)
        write_json_atomic(rec.meta_partial, meta)
        # Data first: a crash between the renames leaves a finished data file and a
        # partial meta, which recover_partial() completes.
        _rename_no_replace(rec.data_partial, rec.base.with_name(rec.base.name + ".sigmf-data"))
        _rename_no_replace(rec.meta_partial, final_meta)
        self.finished.append(final_meta)

    def _close_data(self, rec: _Recording) -> None:
        if rec.file is not None and not rec.file.closed:
            rec.file.close()
        rec.closed_at = self.stream_samples

    # ---- recording -------------------------------------------------------------------
    def write(self, samples: np.ndarray) -> None:
        """Append samples ``[N]`` complex64 of the stream (rotating as needed)."""
        if self._closed:
            raise CaptureFormatError(f"capture in {self.directory} is closed")
        x = np.ascontiguousarray(samples, dtype="<c8")
        while len(x):
            if self._current is None:
                self._current = self._open()
            rec = self._current
            take = min(len(x), self.max_samples - rec.samples)
            chunk = x[:take].tobytes()
            rec.file.write(chunk)
            rec.digest.update(chunk)
            rec.samples += take
            self.stream_samples += take
            self._since_meta += take
            x = x[take:]
            if rec.samples >= self.max_samples:
                self._close_data(rec)
                self._closing.append(rec)
                self._current = None
        self._finish_expired()
        if self._since_meta >= self.meta_every:
            self.checkpoint()

    def checkpoint(self) -> None:
        """Flush the data and rewrite the partial metadata of the open recordings."""
        for rec in [*self._closing, *([self._current] if self._current else [])]:
            if rec.file is not None and not rec.file.closed:
                rec.file.flush()
            self._write_meta(rec, partial=True)
        self._since_meta = 0

    def _finish_expired(self) -> None:
        keep = []
        for rec in self._closing:
            if self.stream_samples - (rec.closed_at or 0) >= self.grace_samples:
                self._write_meta(rec, partial=False)
            else:
                keep.append(rec)
        self._closing = keep

    def annotate_frame(
        self,
        start_sample: float,
        length_samples: int,
        *,
        seq: int | None,
        cfo_hz: float,
        snr_db: float,
        header_ok: bool,
        model_ok: bool | None = None,
        kind: int | None = None,
        last: bool | None = None,
        seed: int | None = None,
        blocks: int | None = None,
        block_errors: int | None = None,
    ) -> None:
        """Annotate a detected frame starting at absolute stream sample ``start_sample``.

        ``header_ok``: the header CRC checked; ``model_ok``: the header's model hash is this
        model's; ``last``: the header's LAST flag; ``seed``: a test-pattern frame's seed;
        ``block_errors`` of ``blocks`` for a scored test-pattern frame.
        """
        start = int(round(start_sample))
        recs = [*self._closing, *([self._current] if self._current else [])]
        rec = next((r for r in recs if r.first_sample <= start < r.first_sample + r.samples), None)
        if rec is None:  # before the first recorded sample, or in a finished recording
            return
        offset = start - rec.first_sample
        count = int(length_samples)
        if rec.closed_at is not None:
            count = min(count, rec.samples - offset)
        ann: dict[str, Any] = {
            "core:sample_start": offset,
            "core:sample_count": max(count, 1),
            "core:label": f"frame {seq}" if seq is not None else "frame (bad header)",
            "aeradio:header_ok": bool(header_ok),
            "aeradio:cfo_hz": float(cfo_hz),
            "aeradio:snr_db": float(snr_db),
        }
        optional = {
            "seq": seq, "model_ok": model_ok, "kind": kind, "last": last, "seed": seed, "blocks": blocks,
            "block_errors": block_errors,
        }
        ann.update({f"aeradio:{k}": v for k, v in optional.items() if v is not None})
        if count < length_samples:
            ann["aeradio:truncated"] = True
        rec.annotations.append(ann)

    def close(self) -> None:
        """Finish every recording (validated, renamed into place); idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._current is not None:
            self._close_data(self._current)
            self._closing.append(self._current)
            self._current = None
        closing, self._closing = self._closing, []
        for rec in closing:
            if rec.samples == 0:
                rec.data_partial.unlink(missing_ok=True)
                rec.meta_partial.unlink(missing_ok=True)
            else:
                self._write_meta(rec, partial=False)

    def __enter__(self) -> CaptureRecorder:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def sha512_file(path: Path) -> str:
    """Hex sha512 of a file's bytes (SigMF ``core:sha512``)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha512").hexdigest()


def read_sigmf_meta(path: Path) -> dict[str, Any]:
    """SigMF metadata read and validated by the ``sigmf`` library; :class:`CaptureFormatError`
    naming the file when it is missing, not JSON, or not valid SigMF."""
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CaptureFormatError(f"{path}: metadata file is missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CaptureFormatError(f"{path}: not readable SigMF metadata: {exc}") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("global"), dict):
        raise CaptureFormatError(f"{path}: no 'global' object in the metadata")
    _validate(meta, path)
    return meta


def partial_recordings(directory: str | Path) -> list[Path]:
    """Metadata files of unfinished recordings (``*.sigmf-meta.partial``) in ``directory``."""
    return sorted(Path(directory).glob("*.sigmf-meta" + PARTIAL_SUFFIX))


def recover_partial(path: str | Path) -> Path:
    """Finish a recording left partial by a crash; returns the final ``.sigmf-meta`` path.

    ``path`` names either partial file (``X.sigmf-meta.partial`` or ``X.sigmf-data.partial``).
    The data is cut to whole samples, annotations beyond it are dropped (or clipped), the
    sha512 is recomputed, ``aeradio:recovered`` is set, the metadata is validated and both
    files get their final names (never replacing existing files). Raises
    :class:`CaptureFormatError` when the partial metadata or the data is missing or unreadable.
    """
    path = Path(path)
    stem = next(
        (path.name[: -len(s + PARTIAL_SUFFIX)] for s in (".sigmf-meta", ".sigmf-data")
         if path.name.endswith(s + PARTIAL_SUFFIX)),
        None,
    )
    if stem is None:
        raise CaptureFormatError(f"{path}: not a partial recording (*.sigmf-meta{PARTIAL_SUFFIX})")
    meta_partial = path.with_name(stem + ".sigmf-meta" + PARTIAL_SUFFIX)
    final_data = path.with_name(stem + ".sigmf-data")
    final_meta = path.with_name(stem + ".sigmf-meta")
    data_partial = path.with_name(stem + ".sigmf-data" + PARTIAL_SUFFIX)
    # A crash between the two final renames leaves the data already in place.
    data = data_partial if data_partial.exists() else final_data
    if not data.exists() or final_meta.exists():
        raise CaptureFormatError(f"{path}: no data file to recover ({data_partial.name} is missing)")
    meta = read_sigmf_meta(meta_partial)
    size = data.stat().st_size
    samples = size // _ITEMSIZE
    if size % _ITEMSIZE:
        with open(data, "r+b") as f:
            f.truncate(samples * _ITEMSIZE)
    annotations = []
    for ann in meta.get("annotations", []):
        start, count = ann.get("core:sample_start", 0), ann.get("core:sample_count", 0)
        if start >= samples:
            continue
        if start + count > samples:
            ann = {**ann, "core:sample_count": samples - start, "aeradio:truncated": True}
        annotations.append(ann)
    meta["annotations"] = annotations
    meta["global"]["core:sha512"] = sha512_file(data)
    meta["global"]["aeradio:recovered"] = True
    _validate(meta, final_meta)
    write_json_atomic(meta_partial, meta)
    if data != final_data:
        _rename_no_replace(data, final_data)
    _rename_no_replace(meta_partial, final_meta)
    return final_meta
