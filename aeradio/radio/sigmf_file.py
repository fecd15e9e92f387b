"""SigMF recordings (``cf32_le``) as a :class:`~aeradio.radio.base.Device`.

- ``rx``: the metadata is read and checked by :func:`~aeradio.radio.sigmf_meta.read_metadata`
  (datatype, sample rate, schema), the sample rate compared with the settings, and
  ``PATH.sigmf-data`` read in blocks; ``read()`` returns None at the end of the file.
  By default the next block is read ahead on a small background thread (file read, hash
  and non-finite count of block i+1 while the caller processes block i): the same samples,
  in the same blocks, with the same faults, as reading on the caller's thread; a read error
  in that thread is raised by the next ``read()``. Each block is a new array (nothing is
  reused under the caller). ``read_ahead=False`` reads on the caller's thread.
  Integrity problems are recorded in ``stats.faults`` (a receiver reports them and fails):
  a data file whose size is not a whole number of samples (the partial sample is not
  returned), and a data file that does not match ``core:sha512`` (hashed while it is read,
  compared once the whole file was read). Non-finite samples are passed on and counted in
  :attr:`SigmfFileDevice.nonfinite_samples` (the RX chain zeroes them).
- ``tx``: samples go to a hidden temporary sibling of the data file
  (``.X.sigmf-data.tmp-XXXX``). ``close()`` publishes the recording: it builds the metadata
  (sample rate, center frequency, datetime, hardware, ``core:sha512``, annotations), checks
  it as a reader would, and renames the data then the metadata into place (an existing
  recording is never replaced unless ``overwrite=True``). A recording that did not end
  normally is never published: ``abort()``, or leaving a ``with`` block on an exception
  (Ctrl-C's KeyboardInterrupt, a MemoryError, ...), deletes the temporary file and leaves
  nothing behind. Only a process killed outright (SIGKILL, power loss) can leave the hidden
  temporary file.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> with SigmfFileDevice(d / "a.sigmf-meta", "tx", DeviceSettings(1e6)) as dev:
...     dev.write(np.ones(8, np.complex64))
>>> with SigmfFileDevice(d / "a.sigmf-meta", "rx", DeviceSettings(1e6)) as dev:
...     len(dev.read(100)), dev.read(100), dev.checksum_ok, dev.stats.faults.count
(8, None, True, 0)
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from aeradio.core.atomic import publish, temporary_sibling, write_json_atomic
from aeradio.core.constants import SAMPLE_DTYPE
from aeradio.core.defaults import DEFAULT_WRITE_TIMEOUT_S
from aeradio.core.errors import CaptureFormatError, ConfigError, StreamError
from aeradio.radio.base import Device, DeviceSettings, Direction
from aeradio.radio.sigmf_meta import (
    annotation,
    build_metadata,
    capture_segment,
    check_metadata,
    open_regular,
    read_metadata,
)

#: Relative sample-rate mismatch tolerated between a recording and the settings.
RATE_TOLERANCE = 1e-6
_ITEMSIZE = np.dtype(SAMPLE_DTYPE).itemsize


def _count_nonfinite(x: np.ndarray) -> int:
    """Samples of ``x`` (complex64) with a NaN or infinite part. A finite sum of the parts
    (one pass, no temporary array) means none; the exact count only otherwise (a NaN or an
    infinity, or finite parts whose sum overflows)."""
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(x.view(np.float32).sum()):
            return 0
    return int(np.count_nonzero(~np.isfinite(x)))


def sigmf_paths(path: str | Path) -> tuple[Path, Path]:
    """(meta, data) paths of a recording named by either file."""
    p = Path(path)
    if p.suffix not in (".sigmf-meta", ".sigmf-data"):
        raise ConfigError(f"a SigMF path must end in .sigmf-meta or .sigmf-data, got {str(p)!r}")
    return p.with_suffix(".sigmf-meta"), p.with_suffix(".sigmf-data")


class SigmfFileDevice(Device):
    """A SigMF recording read (``rx``) or written (``tx``) as a sample stream.

    Args:
        path: ``X.sigmf-meta`` or ``X.sigmf-data``.
        direction: "rx" or "tx".
        settings: the sample rate must match a recording's; ``freq_hz`` is written.
        overwrite: (tx) replace an existing recording.
        metadata: (tx) extra global fields, e.g. ``{"core:description": "..."}``.
        read_ahead: (rx) read the next block on a background thread (see the module docstring).
    """

    def __init__(
        self,
        path: str | Path,
        direction: Direction,
        settings: DeviceSettings,
        *,
        overwrite: bool = False,
        metadata: dict[str, Any] | None = None,
        read_ahead: bool = True,
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
        self._digest: Any = None
        self._read_ahead = read_ahead
        self._executor: ThreadPoolExecutor | None = None
        #: (the block being read, its sample count, the file position and digest before it)
        self._pending: tuple[Future[tuple[np.ndarray, int]], int, int, Any] | None = None
        if direction == "rx":
            self._open_rx()
        else:
            self._open_tx(overwrite, metadata or {})

    # ---- rx --------------------------------------------------------------------------
    def _open_rx(self) -> None:
        self.metadata = read_metadata(self.meta_path)
        rate, want = self.metadata.sample_rate_hz, self.settings.sample_rate_hz
        if abs(rate - want) > RATE_TOLERANCE * want:
            raise CaptureFormatError(
                f"{self.meta_path}: recorded at {rate:g} S/s but the link runs at {want:g} S/s"
            )
        self.sample_rate_hz = rate
        self.center_freq_hz = self.metadata.center_freq_hz
        self._file = open_regular(self.data_path, "the data file")
        size = os.fstat(self._file.fileno()).st_size
        self.num_samples = size // _ITEMSIZE
        #: Bytes after the last whole sample (a data file cut short), not returned by read().
        self.truncated_bytes = size % _ITEMSIZE
        #: True/False once the whole data file was read and compared with core:sha512;
        #: None before, or when the recording has no core:sha512.
        self.checksum_ok: bool | None = None
        if self.metadata.sha512 is not None:
            self._digest = hashlib.sha512()
        if self.truncated_bytes:
            self.stats.faults.append(
                f"{self.data_path}: data file ends mid-sample ({self.truncated_bytes} trailing bytes, "
                f"{size} bytes is not a multiple of {_ITEMSIZE}): the recording was cut short",
                kind="truncated",
            )

    def read(self, max_samples: int, timeout_s: float = 1.0) -> np.ndarray | None:
        if self.direction != "rx" or self._closed:
            raise StreamError(f"{self.meta_path}: not open for reading")
        remaining = self.num_samples - self.stats.samples
        if remaining <= 0:
            return None
        count = min(max_samples, remaining)
        x, nonfinite = self._next_block(count)
        self.stats.samples += len(x)
        if len(x) < count:
            self.num_samples = self.stats.samples
            self.stats.faults.append(
                f"{self.data_path}: data file shrank while it was read (ends at sample {self.stats.samples})",
                kind="truncated",
            )
        if self.stats.samples >= self.num_samples:
            self._check_sha512()
        elif self._read_ahead:
            self._start_read_ahead(min(max_samples, self.num_samples - self.stats.samples))
        if len(x) == 0:
            return None
        self.nonfinite_samples += nonfinite
        return x

    def _load(self, count: int) -> tuple[np.ndarray, int]:
        """Read ``count`` samples (fewer if the file shrank) into a new array and hash them:
        (samples (complex64, shape (<= count,)), how many are not finite)."""
        buf = np.empty(count, "<c8")
        raw = memoryview(buf).cast("B")
        got = self._file.readinto(raw) or 0
        if self._digest is not None:
            self._digest.update(raw[:got])
        x = buf[: got // _ITEMSIZE].astype(SAMPLE_DTYPE, copy=False)
        return x, _count_nonfinite(x)

    def _start_read_ahead(self, count: int) -> None:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="sigmf-read-ahead")
        position, digest = self._file.tell(), None if self._digest is None else self._digest.copy()
        self._pending = (self._executor.submit(self._load, count), count, position, digest)

    def _next_block(self, count: int) -> tuple[np.ndarray, int]:
        """The block read ahead if it has ``count`` samples (its read error raised here);
        otherwise that read is undone (file position and digest) and ``count`` read now."""
        pending, self._pending = self._pending, None
        if pending is not None:
            future, ahead_count, position, digest = pending
            block = future.result()
            if ahead_count == count:
                return block
            self._file.seek(position)
            self._digest = digest
        return self._load(count)

    def _stop_read_ahead(self) -> None:
        """Wait for a block being read ahead (its error is dropped: nobody reads it) and
        stop the thread; before the file is closed."""
        self._pending = None
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    def verify_data(self) -> bool | None:
        """Compare the whole data file with ``core:sha512`` now, before reading it (a reader
        that must not process damaged samples at all, e.g. the dataset builder); a mismatch
        is a fault. Only before the first :meth:`read`. Returns :attr:`checksum_ok`."""
        if self.stats.samples or self.direction != "rx":
            raise StreamError(f"{self.meta_path}: verify_data() comes before the first read")
        self._check_sha512()
        self._file.seek(0)
        return self.checksum_ok

    def _check_sha512(self) -> None:
        """Hash the rest of the data file (all of it, trailing bytes included) and compare
        the digest with core:sha512; once."""
        if self._digest is None or self.checksum_ok is not None:
            return
        while chunk := self._file.read(1 << 20):
            self._digest.update(chunk)
        self.checksum_ok = self._digest.hexdigest().lower() == str(self.metadata.sha512).lower()
        if not self.checksum_ok:
            self.stats.faults.append(
                f"{self.data_path}: data does not match core:sha512 of {self.meta_path.name} "
                "(the data file was altered or damaged)",
                kind="checksum",
            )

    # ---- tx --------------------------------------------------------------------------
    def _open_tx(self, overwrite: bool, metadata: dict[str, Any]) -> None:
        for p in (self.meta_path, self.data_path):
            if p.exists() and not overwrite:
                raise CaptureFormatError(f"{p} exists; refusing to overwrite it (pass --overwrite)")
        if not self.meta_path.parent.is_dir():
            raise CaptureFormatError(f"{self.meta_path.parent}: no such directory")
        self._overwrite = overwrite
        self._extra = dict(metadata)
        self._datetime = datetime.now(UTC)
        self._tmp_data = temporary_sibling(self.data_path)
        self._file = open(self._tmp_data, "wb")  # noqa: SIM115 - closed in close() or abort()
        self._digest = hashlib.sha512()

    def write(
        self, samples: np.ndarray, *, end_burst: bool = False, timeout_s: float = DEFAULT_WRITE_TIMEOUT_S
    ) -> None:
        if self.direction != "tx" or self._closed:
            raise StreamError(f"{self.meta_path}: not open for writing")
        raw = np.ascontiguousarray(samples, dtype="<c8").tobytes()
        self._file.write(raw)
        self._digest.update(raw)
        self.stats.samples += len(raw) // _ITEMSIZE

    def annotate(self, start: int, length: int, label: str | None = None, **fields: Any) -> None:
        """Annotate samples ``[start, start + length)``; ``fields`` go under ``aeradio:``."""
        self.annotations.append(annotation(start, length, label, **fields))

    def _metadata(self) -> dict[str, Any]:
        segment = capture_segment(0, datetime_utc=self._datetime, frequency_hz=self.settings.freq_hz)
        return build_metadata(
            sample_rate_hz=self.sample_rate_hz, hw="aeradio", captures=[segment],
            annotations=self.annotations, sha512=self._digest.hexdigest(), extra_global=self._extra,
        )

    def close(self) -> None:
        """rx: release the file. tx: publish the recording (see the module docstring)."""
        if self._closed:
            return
        if self.direction != "tx":
            self._closed = True
            self._stop_read_ahead()
            self._file.close()
            return
        data_published = False
        try:
            meta = self._metadata()
            check_metadata(meta, self.meta_path)
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            publish(self._tmp_data, self.data_path, overwrite=self._overwrite)
            data_published = True
            write_json_atomic(self.meta_path, meta, overwrite=self._overwrite)
        except BaseException as exc:
            if data_published:  # no metadata of ours: a data file alone is no recording
                self.data_path.unlink(missing_ok=True)
            self.abort()
            if isinstance(exc, FileExistsError):  # appeared while we were writing
                raise CaptureFormatError(str(exc)) from None
            raise
        self._closed = True

    def abort(self) -> None:
        """Stop without publishing: a recording being written is deleted; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._stop_read_ahead()
        if self._file is not None:
            self._file.close()
        if self.direction == "tx":
            self._tmp_data.unlink(missing_ok=True)

    def describe(self) -> dict[str, object]:
        return {
            "sample_rate_hz": self.sample_rate_hz,
            "path": str(self.meta_path),
            "samples": self.stats.samples,
        }
