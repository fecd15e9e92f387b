"""Capture recorder behind ``aeradio rx --capture DIR``: SigMF recordings of the frames RX saw.

Each recording is a ``cf32_le`` SigMF pair named ``capture-<UTC time>-<index>`` with the
sample rate, the center frequency, the device, the sha512 of the data (so a damaged data
file is detected), and one annotation per detected frame (start, length, sequence number,
CFO, SNR, decode result). The samples recorded are those the RX chain decoded (after any
calibration correction), so annotation positions match them.

What is kept: by default each annotated frame with ``margin_samples`` before and after it
(the capture glue uses one frame length), not the idle noise between bursts;
``keep_all=True`` keeps every sample (8 bytes per sample: 8 MB/s at 1 MS/s).

Gaps: a recording holds the kept stretches of the stream one after the other. Each
stretch is one SigMF capture segment: ``core:sample_start`` is its first sample in the data
file, ``core:global_index`` its index in the stream (samples since the recorder started),
``core:datetime`` the time of that sample. Annotations are positions in the data file. A
reader that ignores the segments (the dataset builder, ``rx --device file:``) sees the
stretches back to back: every frame whole, with its margins around it.

Deciding: which samples to keep depends on where frames are, and RX reports a frame a
little after it received the frame's samples. The recorder therefore holds samples in memory
until :meth:`CaptureRecorder.settle` promises that no frame starting before a sample index
will be annotated any more (the capture glue passes the RX chain's
:attr:`~aeradio.flowgraphs.rx_chain.RxChain.settled_sample`). It holds at most
``max_pending_samples``: beyond that the oldest samples are decided as they are, and a frame
annotated after its samples were decided is counted in :attr:`CaptureRecorder.late_frames`
(and in :meth:`CaptureRecorder.report`), not recorded.

Rotation never splits a frame: once a recording holds ``max_file_bytes`` of data or
``max_annotations`` frames, the next one starts at the first sample outside every annotated
frame (so a recording can outgrow ``max_file_bytes`` by about a frame, or more while frames
overlap back to back), or at the next gap between stretches. A receiver needs some samples
after a frame, so the finished recording also takes the ``margin_samples`` after the cut
(as far as they are kept): two recordings of one stretch overlap by that much, and a frame
starting in the overlap is annotated (whole) in the later one only (a recording left with
no frame, only such a margin, is not kept).

Crash safety: while a recording is open its files are ``X.sigmf-data.partial`` and
``X.sigmf-meta.partial`` (the metadata rewritten atomically every ``meta_every_samples``
recorded samples); when finished the metadata is checked (aeradio's checks and the
``sigmf`` library's) and both files are renamed to their final names. A crash therefore
leaves either a finished recording or a clearly marked partial one, which
:func:`recover_partial` turns into a valid recording. Nothing is ever overwritten: names
are chosen free, and the final renames refuse to replace an existing file.

>>> import tempfile
>>> d = tempfile.mkdtemp()
>>> with CaptureRecorder(d, sample_rate_hz=1e6, center_freq_hz=915e6, device="doc", margin_samples=20) as rec:
...     rec.write(np.zeros(1000, np.complex64))
...     rec.annotate_frame(100, 50, seq=3, cfo_hz=1.0, snr_db=20.0, header_ok=True)
>>> [p.name.endswith(".sigmf-meta") for p in rec.finished], rec.report()["samples_recorded"]
([True], 90)
"""

from __future__ import annotations

import hashlib
import json
from bisect import bisect_left, bisect_right, insort
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from aeradio.core.atomic import rename_no_replace, write_json_atomic, write_text_atomic
from aeradio.core.constants import SAMPLE_DTYPE
from aeradio.core.errors import CaptureFormatError, ConfigError
from aeradio.radio.sigmf_meta import (
    AERADIO_RECOVERED,
    AERADIO_TRUNCATED,
    ANNOTATIONS,
    CAPTURES,
    CORE_SAMPLE_COUNT,
    CORE_SAMPLE_START,
    CORE_SHA512,
    GLOBAL,
    annotation,
    build_metadata,
    capture_segment,
    check_metadata,
    read_metadata,
)

#: Default size at which a recording is closed and the next one started (bytes of data).
DEFAULT_MAX_FILE_BYTES = 1 << 30
#: Default period of the partial metadata checkpoints (recorded samples).
DEFAULT_META_EVERY_SAMPLES = 1 << 20
#: Default bound of the samples held in memory before they are decided (64 MiB).
DEFAULT_MAX_PENDING_SAMPLES = 1 << 23
#: Default number of frames (annotations) per recording before rotating: keeps the metadata
#: (about 350 bytes a frame) far below the reader's limit, and its validation short (the
#: ``sigmf`` library took 0.6 s for 10,000 annotations, measured on a loaded 2-core host).
DEFAULT_MAX_ANNOTATIONS = 10_000
#: Suffix of the files of a recording that is not finished.
PARTIAL_SUFFIX = ".partial"
_ITEMSIZE = np.dtype(SAMPLE_DTYPE).itemsize


def _rename_no_replace(src: Path, dst: Path) -> None:
    """Rename ``src`` to ``dst``; :class:`CaptureFormatError` if ``dst`` exists (never replaced)."""
    try:
        rename_no_replace(src, dst)
    except FileExistsError as exc:
        raise CaptureFormatError(str(exc)) from None


class _Intervals:
    """Disjoint half-open intervals ``[start, end)`` of stream samples, sorted; ``add`` merges
    the ones that overlap (touching ones stay apart)."""

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []

    def add(self, start: int, end: int) -> None:
        i = bisect_right(self.ends, start)  # first interval ending after start
        k = bisect_left(self.starts, end)  # first interval starting at or after end
        if i < k:
            start, end = min(start, self.starts[i]), max(end, self.ends[k - 1])
        self.starts[i:k], self.ends[i:k] = [start], [end]

    def first_ending_after(self, p: int) -> int:
        """Index of the first interval with ``end > p`` (``len`` if none)."""
        return bisect_right(self.ends, p)

    def drop_before(self, p: int) -> None:
        """Forget the intervals that end at or before ``p``."""
        i = self.first_ending_after(p)
        del self.starts[:i], self.ends[:i]


@dataclass(order=True)
class _Frame:
    """A frame annotated but not yet written: stream samples ``[start, start + count)``."""

    start: int
    count: int = field(compare=False)
    label: str = field(compare=False)
    fields: dict[str, Any] = field(compare=False)


@dataclass
class _Recording:
    """One open recording: data file, digest, capture segments and annotations."""

    base: Path  # directory / stem, without suffixes
    file: Any = None
    digest: Any = field(default_factory=hashlib.sha512)
    samples: int = 0  # in the data file
    captures: list[dict[str, Any]] = field(default_factory=list)
    annotations: list[dict[str, Any]] = field(default_factory=list)
    next_index: int | None = None  # stream index after the last sample written; None: segment ended
    tail_until: int = 0  # once rotated: takes kept samples up to this stream index

    @property
    def data_partial(self) -> Path:
        return self.base.with_name(self.base.name + ".sigmf-data" + PARTIAL_SUFFIX)

    @property
    def meta_partial(self) -> Path:
        return self.base.with_name(self.base.name + ".sigmf-meta" + PARTIAL_SUFFIX)


class CaptureRecorder:
    """Records the frames of a sample stream (or all of it) into rotating SigMF recordings.

    Args:
        directory: created if missing.
        sample_rate_hz: written as ``core:sample_rate``.
        center_freq_hz: written as ``core:frequency`` of each capture segment (None: left out).
        device: written as ``core:hw`` (e.g. the device URI or its description).
        margin_samples: samples kept before and after each frame, and taken past a rotation.
        keep_all: keep every sample, not only the frames and their margins.
        max_file_bytes: data bytes per recording before rotating (>= one sample).
        max_annotations: frames per recording before rotating (>= 1).
        meta_every_samples: period of the partial metadata checkpoints (recorded samples).
        max_pending_samples: most samples held in memory before they are decided.
        extra_global: more ``global`` fields, e.g. ``{"aeradio:link": "ae-n7-k8"}``.
    """

    def __init__(
        self,
        directory: str | Path,
        *,
        sample_rate_hz: float,
        center_freq_hz: float | None,
        device: str,
        margin_samples: int = 0,
        keep_all: bool = False,
        max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
        max_annotations: int = DEFAULT_MAX_ANNOTATIONS,
        meta_every_samples: int = DEFAULT_META_EVERY_SAMPLES,
        max_pending_samples: int = DEFAULT_MAX_PENDING_SAMPLES,
        extra_global: dict[str, Any] | None = None,
    ) -> None:
        if max_file_bytes < _ITEMSIZE:
            raise ConfigError(f"capture max_file_bytes must be >= {_ITEMSIZE}, got {max_file_bytes}")
        if max_annotations < 1:
            raise ConfigError(f"capture max_annotations must be >= 1, got {max_annotations}")
        if meta_every_samples < 1:
            raise ConfigError(f"capture meta_every_samples must be >= 1, got {meta_every_samples}")
        if margin_samples < 0:
            raise ConfigError(f"capture margin_samples must be >= 0, got {margin_samples}")
        if max_pending_samples < 1:
            raise ConfigError(f"capture max_pending_samples must be >= 1, got {max_pending_samples}")
        self.directory = Path(directory)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CaptureFormatError(f"--capture {self.directory}: {exc.strerror or exc}") from None
        self.sample_rate_hz = float(sample_rate_hz)
        self.center_freq_hz = center_freq_hz
        self.device = device
        self.margin = int(margin_samples)
        self.keep_all = keep_all
        self.max_samples = max_file_bytes // _ITEMSIZE
        self.max_annotations = max_annotations
        self.meta_every = meta_every_samples
        self.max_pending = max_pending_samples
        self.extra_global = dict(extra_global or {})
        #: Samples received (the index of the next sample of the stream).
        self.stream_samples = 0
        #: Samples written to data files (the overlap after a rotation counted twice).
        self.samples_recorded = 0
        #: Frames annotated after their samples were decided (not recorded).
        self.late_frames = 0
        self.frames_annotated = 0
        #: Meta paths of the finished recordings, in order.
        self.finished: list[Path] = []
        self._start_time = datetime.now(UTC)
        self._stamp = self._start_time.strftime("%Y%m%dT%H%M%SZ")
        self._index = 0
        self._pending: list[np.ndarray] = []
        self._decided = 0  # stream index of the first pending sample
        self._settled = 0  # no frame starting before it will be annotated
        self._keep = _Intervals()  # frames with their margins
        self._spans = _Intervals()  # frames alone: where a recording must not be cut
        self._unwritten: list[_Frame] = []  # annotated frames whose start is not written yet
        self._current: _Recording | None = None
        self._closing: _Recording | None = None  # rotated, taking its tail
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
            rec = _Recording(self._free_base())
            try:
                rec.file = open(rec.data_partial, "xb")  # noqa: SIM115 - closed in _finish
            except FileExistsError:  # another recorder took the name meanwhile
                continue
            return rec

    # ---- metadata --------------------------------------------------------------------
    def _metadata(self, rec: _Recording) -> dict[str, Any]:
        """The SigMF metadata of a recording (as it stands)."""
        anns = []
        for ann in rec.annotations:  # the end of the stream may have cut the last frame
            room = rec.samples - ann[CORE_SAMPLE_START]
            if ann[CORE_SAMPLE_COUNT] > room:
                ann = {**ann, CORE_SAMPLE_COUNT: max(room, 1), AERADIO_TRUNCATED: True}
            anns.append(ann)
        return build_metadata(
            sample_rate_hz=self.sample_rate_hz, hw=self.device,
            captures=rec.captures or [capture_segment(0, datetime_utc=None, frequency_hz=None)],
            annotations=anns, sha512=rec.digest.hexdigest(), extra_global=self.extra_global,
        )

    def _finish(self, rec: _Recording) -> None:
        """Close the data file and publish the recording (validated). An empty one is removed,
        and so is one without frames when only frames are kept: it holds nothing but the
        margin after a rotation, which the previous recording has too."""
        rec.file.close()
        if rec.samples == 0 or not (self.keep_all or rec.annotations):
            rec.data_partial.unlink(missing_ok=True)
            rec.meta_partial.unlink(missing_ok=True)
            self.samples_recorded -= rec.samples
            return
        meta = self._metadata(rec)
        final_meta = rec.base.with_name(rec.base.name + ".sigmf-meta")
        check_metadata(meta, final_meta)
        write_json_atomic(rec.meta_partial, meta)
        # Data first: a crash between the renames leaves a finished data file and a
        # partial meta, which recover_partial() completes.
        _rename_no_replace(rec.data_partial, rec.base.with_name(rec.base.name + ".sigmf-data"))
        _rename_no_replace(rec.meta_partial, final_meta)
        self.finished.append(final_meta)

    def _write_partial_meta(self, rec: _Recording) -> None:
        # Compact: the C encoder, about 5 us a frame (indented JSON is the slow pure-Python one).
        write_text_atomic(rec.meta_partial, json.dumps(self._metadata(rec)))

    def checkpoint(self) -> None:
        """Flush the data and rewrite the partial metadata of the open recordings."""
        for rec in (self._closing, self._current):
            if rec is not None:
                rec.file.flush()
                self._write_partial_meta(rec)
        self._since_meta = 0

    # ---- the stream ------------------------------------------------------------------
    def write(self, samples: np.ndarray) -> None:
        """Append samples ``[N]`` complex64 of the stream (held until decided)."""
        if self._closed:
            raise CaptureFormatError(f"capture in {self.directory} is closed")
        x = np.array(samples, dtype="<c8")  # a copy: the caller may reuse its buffer
        if len(x):
            self._pending.append(x)
            self.stream_samples += len(x)
        if self.stream_samples - self._decided > self.max_pending:
            self._settled = max(self._settled, self.stream_samples - self.max_pending + self._lead)
        self._drain()

    def settle(self, sample: int) -> None:
        """Promise that no frame starting before stream sample ``sample`` will be annotated:
        the samples this decides are written (or dropped)."""
        self._settled = max(self._settled, int(sample))
        self._drain()

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
        """Annotate a detected frame starting at stream sample ``start_sample``.

        ``header_ok``: the header CRC checked; ``model_ok``: the header's model hash is this
        model's; ``last``: the header's LAST flag; ``seed``: a test-pattern frame's seed;
        ``block_errors`` of ``blocks`` for a scored test-pattern frame.
        """
        start, count = int(round(start_sample)), int(length_samples)
        truncated = start < 0  # the frame began before the first sample
        if truncated:
            start, count = 0, count + start
        if start < self._decided:
            self.late_frames += 1
            return
        count = max(count, 1)
        label = f"frame {seq}" if seq is not None else "frame (bad header)"
        values = {
            "header_ok": bool(header_ok), "cfo_hz": float(cfo_hz), "snr_db": float(snr_db), "seq": seq,
            "model_ok": model_ok, "kind": kind, "blocks": blocks, "block_errors": block_errors,
            "last": last, "seed": seed, "truncated": True if truncated else None,
        }
        insort(self._unwritten, _Frame(start, count, label, values))
        self._spans.add(start, start + count)
        self._keep.add(max(start - self.margin, 0), start + count + self.margin)
        self.frames_annotated += 1

    # ---- deciding --------------------------------------------------------------------
    @property
    def _lead(self) -> int:
        """How far before a frame kept samples begin (what settling must stay behind)."""
        return 0 if self.keep_all else self.margin

    def _take(self, n: int) -> np.ndarray:
        """The next ``n`` pending samples (decided), removed from the pending buffer."""
        parts, got = [], 0
        while got < n:
            head = self._pending[0]
            part = head[: n - got]
            if len(part) == len(head):
                self._pending.pop(0)
            else:
                self._pending[0] = head[len(part) :]
            parts.append(part)
            got += len(part)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def _run(self, p: int, until: int) -> tuple[bool, int]:
        """Whether sample ``p`` is kept, and where that stops being true (at most ``until``)."""
        if self.keep_all:
            return True, until
        i = self._keep.first_ending_after(p)
        if i < len(self._keep.starts) and self._keep.starts[i] <= p:
            return True, min(self._keep.ends[i], until)
        nxt = self._keep.starts[i] if i < len(self._keep.starts) else until
        return False, min(nxt, until)

    def _drain(self) -> None:
        until = min(self._settled - self._lead, self.stream_samples)
        while self._decided < until:
            p = self._decided
            kept, end = self._run(p, until)
            x = self._take(end - p)
            if kept:
                self._record(p, x)
            else:
                self._gap()
            self._decided = end
        self._keep.drop_before(self._decided)
        self._spans.drop_before(self._decided)
        if self._since_meta >= self.meta_every:
            self.checkpoint()

    def _full_at(self, rec: _Recording, p: int) -> int:
        """The stream index from which ``rec`` (written up to ``p``) is full: of samples, or of
        frames (the frame that would be one too many starts there)."""
        full_at = p + max(self.max_samples - rec.samples, 0)
        k = max(self.max_annotations - len(rec.annotations), 0)
        if k < len(self._unwritten):
            full_at = min(full_at, self._unwritten[k].start)
        return full_at

    def _cut_point(self, target: int) -> int:
        """The first stream index at or after ``target`` that is not inside a frame."""
        i = self._spans.first_ending_after(target)
        if i < len(self._spans.starts) and self._spans.starts[i] < target:
            return self._spans.ends[i]
        return target

    def _record(self, p: int, x: np.ndarray) -> None:
        """Write kept samples ``x``, stream samples ``[p, p + len(x))``, rotating between frames."""
        while len(x):
            if self._current is None:
                self._current = self._open()
            rec, closing, n, rotate = self._current, self._closing, len(x), False
            if closing is not None:  # the rotated recording takes its tail first
                n = min(n, closing.tail_until - p)
            else:
                cut = self._cut_point(self._full_at(rec, p))
                rotate = cut < p + n and (cut > p or rec.samples > 0)
                n = cut - p if rotate else n
            self._append(rec, p, x[:n], owner=True)
            if closing is not None:
                self._append(closing, p, x[:n], owner=False)
                if p + n >= closing.tail_until:
                    self._finish(closing)
                    self._closing = None
            if rotate:  # the next frame goes to a new recording
                self._current = None
                rec.tail_until = p + n + self.margin
                if self.margin:
                    self._closing = rec
                else:
                    self._finish(rec)
            p, x = p + n, x[n:]

    def _gap(self) -> None:
        """Samples not kept: open capture segments end; a full recording rotates here."""
        if self._closing is not None:
            self._finish(self._closing)
            self._closing = None
        rec = self._current
        if rec is not None:
            rec.next_index = None
            if rec.samples >= self.max_samples or len(rec.annotations) >= self.max_annotations:
                self._finish(rec)
                self._current = None

    def _append(self, rec: _Recording, p: int, x: np.ndarray, *, owner: bool) -> None:
        """Samples ``[p, p + len(x))`` to ``rec``; the owner also takes the frames starting there."""
        if not len(x):
            return
        if rec.next_index != p:  # a new stretch: a new capture segment
            when = self._start_time + timedelta(seconds=p / self.sample_rate_hz)
            rec.captures.append(capture_segment(
                rec.samples, datetime_utc=when, frequency_hz=self.center_freq_hz, global_index=p,
            ))
            if rec.samples == 0:
                self._write_partial_meta(rec)
        if owner:
            end = p + len(x)
            while self._unwritten and self._unwritten[0].start < end:
                f = self._unwritten.pop(0)
                rec.annotations.append(annotation(rec.samples + f.start - p, f.count, f.label, **f.fields))
        raw = x.tobytes()
        rec.file.write(raw)
        rec.digest.update(raw)
        rec.samples += len(x)
        rec.next_index = p + len(x)
        self.samples_recorded += len(x)
        self._since_meta += len(x)

    # ---- the end ---------------------------------------------------------------------
    def close(self) -> None:
        """Decide everything, finish every recording (validated, renamed into place); idempotent."""
        if self._closed:
            return
        self._settled = self.stream_samples + self._lead
        self._drain()
        self._closed = True
        self.late_frames += len(self._unwritten)  # frames starting after the last sample
        self._unwritten.clear()
        for rec in (self._closing, self._current):
            if rec is not None:
                self._finish(rec)
        self._closing = self._current = None

    def report(self) -> dict[str, Any]:
        """JSON-ready: what was kept, how much, in which recordings."""
        return {
            "directory": str(self.directory),
            "keep": "all" if self.keep_all else "frames",
            "margin_samples": self.margin,
            "recordings": [p.name for p in self.finished],
            "samples_received": self.stream_samples,
            "samples_recorded": self.samples_recorded,
            "bytes_recorded": self.samples_recorded * _ITEMSIZE,
            "frames_annotated": self.frames_annotated,
            "frames_not_recorded": self.late_frames,
        }

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


def partial_recordings(directory: str | Path) -> list[Path]:
    """Metadata files of unfinished recordings (``*.sigmf-meta.partial``) in ``directory``."""
    return sorted(Path(directory).glob("*.sigmf-meta" + PARTIAL_SUFFIX))


def recover_partial(path: str | Path) -> Path:
    """Finish a recording left partial by a crash; returns the final ``.sigmf-meta`` path.

    ``path`` names either partial file (``X.sigmf-meta.partial`` or ``X.sigmf-data.partial``).
    The data is cut to whole samples, capture segments and annotations beyond it are dropped
    (or clipped), the sha512 is recomputed, ``aeradio:recovered`` is set, the metadata is
    validated and both files get their final names (never replacing existing files). Raises
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
    meta = read_metadata(meta_partial).document
    size = data.stat().st_size
    samples = size // _ITEMSIZE
    if size % _ITEMSIZE:
        with open(data, "r+b") as f:
            f.truncate(samples * _ITEMSIZE)
    annotations = []
    for ann in meta[ANNOTATIONS]:
        start, count = ann[CORE_SAMPLE_START], ann.get(CORE_SAMPLE_COUNT, 0)
        if start >= samples:
            continue
        if start + count > samples:
            ann = {**ann, CORE_SAMPLE_COUNT: samples - start, AERADIO_TRUNCATED: True}
        annotations.append(ann)
    meta[ANNOTATIONS] = annotations
    captures = meta[CAPTURES]
    meta[CAPTURES] = captures[:1] + [c for c in captures[1:] if c[CORE_SAMPLE_START] < samples]
    meta[GLOBAL][CORE_SHA512] = sha512_file(data)
    meta[GLOBAL][AERADIO_RECOVERED] = True
    check_metadata(meta, final_meta)
    write_json_atomic(meta_partial, meta)
    if data != final_data:
        _rename_no_replace(data, final_data)
    _rename_no_replace(meta_partial, final_meta)
    return final_meta
