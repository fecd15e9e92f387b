"""``aeradio rx --out FILE``: a file transfer assembled from data frames, complete or flagged.

``aeradio tx --file`` cuts a file into data frames numbered 0, 1, ... by their sequence
number; every frame but the last carries exactly :attr:`FileTransfer.frame_bytes` bytes (the
model's data capacity), so frame ``s`` holds bytes ``[s * frame_bytes, ...)`` of the file.

At the end of a run :meth:`FileTransfer.finish` writes exactly one of two outcomes:

- ``FILE``, atomically, when the transfer is complete: every frame ``0 .. expected - 1``
  arrived (data CRC-32 passed), no frame contradicts another, nothing lies beyond the end.
  An existing ``FILE`` is replaced only with ``overwrite`` (``rx --overwrite``); rx checks
  that before it receives anything (:func:`check_out_path`). A ``FILE.partial`` and
  ``FILE.partial.json`` left by an earlier, incomplete attempt are refused likewise, and
  removed (with ``--overwrite``) once FILE is complete.
- otherwise ``FILE.partial``, the received bytes at their true offsets with the missing
  ranges zero-filled (it ends with the last frame received: the length of a missing tail is
  unknown), and ``FILE.partial.json``, the sidecar listing the missing frames and byte
  ranges and why the file is incomplete. ``FILE`` itself is never written then.
- nothing at all when no data frame arrived (no byte and no end to write): an earlier
  attempt's ``FILE.partial`` and sidecar, which may hold what that attempt received, are
  left as they were, ``--overwrite`` or not.

How many frames the transfer has (``expected_frames``) comes from the frame that marks the
end (the header's LAST flag, :func:`is_last_frame`), or from ``rx --frames N`` when the run
received only data frames. When neither says (the LAST frame was lost), the end is unknown
and the transfer cannot be called complete.

>>> compact_ranges([0, 1, 2, 5, 7, 8])
[(0, 2), (5, 5), (7, 8)]
>>> format_ranges([(0, 2), (5, 5), (7, 8)])
'0-2, 5, 7-8'
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from aeradio.core.atomic import write_atomic, write_json_atomic
from aeradio.core.errors import ConfigError
from aeradio.core.paths import check_file_output
from aeradio.flowgraphs.rx_chain import FrameResult

#: Ranges named in a summary line at most (the sidecar lists them all).
SUMMARY_RANGES = 8


def frame_seq(r: FrameResult) -> int:
    """The sequence number of a decoded frame: its place in the transfer (the RX chain's
    32-bit extension of the header's 16 bits)."""
    assert r.seq is not None
    return r.seq


def is_last_frame(r: FrameResult) -> bool:
    """Whether a decoded data frame is the transfer's last one: the header's LAST flag.

    A frame shorter than :attr:`FileTransfer.frame_bytes` without the flag is not taken as
    the end (it is reported as a short frame before the end if frames follow it).
    """
    assert r.header is not None
    return r.header.last


def compact_ranges(values: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted integers as inclusive ``(first, last)`` runs."""
    runs: list[tuple[int, int]] = []
    for v in sorted(set(values)):
        if runs and v == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], v)
        else:
            runs.append((v, v))
    return runs


def missing_ranges(received: Iterable[int], total: int) -> list[tuple[int, int]]:
    """Inclusive runs of ``0 .. total - 1`` not in ``received`` (work bounded by ``received``).

    >>> missing_ranges([0, 1, 4], 8)
    [(2, 3), (5, 7)]
    """
    runs: list[tuple[int, int]] = []
    following = 0
    for s in sorted(x for x in set(received) if x < total):
        if s > following:
            runs.append((following, s - 1))
        following = s + 1
    if following < total:
        runs.append((following, total - 1))
    return runs


def format_ranges(runs: list[tuple[int, int]], limit: int = SUMMARY_RANGES) -> str:
    """``"3-5, 17"``; after ``limit`` runs, ``"... (N ranges)"``."""
    text = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in runs[:limit])
    return text + (f", ... ({len(runs)} ranges)" if len(runs) > limit else "")


def _frames(runs: list[tuple[int, int]]) -> tuple[str, bool]:
    """``("frame 8", True)`` or ``("frames 3-5, 8", False)``: the phrase, and whether singular."""
    one = len(runs) == 1 and runs[0][0] == runs[0][1]
    return ("frame " if one else "frames ") + format_ranges(runs), one


def partial_paths(out: str | os.PathLike[str]) -> tuple[Path, Path]:
    """(``FILE.partial``, ``FILE.partial.json``) of ``--out FILE``."""
    out = Path(out)
    return out.with_name(out.name + ".partial"), out.with_name(out.name + ".partial.json")


def check_out_path(out: str | os.PathLike[str], *, overwrite: bool) -> None:
    """Refuse ``--out FILE`` before receiving when it exists (unless ``overwrite``) or when
    its directory does not; :class:`ConfigError` naming the path."""
    out = Path(out)
    check_file_output(out, "--out")
    if out.exists() and not overwrite:
        raise ConfigError(f"--out {out} exists; refusing to overwrite it (pass --overwrite)")
    for left in partial_paths(out):
        if left.exists() and not overwrite:
            raise ConfigError(
                f"--out {out}: {left} exists (an earlier incomplete transfer); refusing to overwrite "
                "it (pass --overwrite)"
            )
    if not out.parent.is_dir():
        raise ConfigError(f"--out {out}: no such directory {out.parent}")


@dataclass
class TransferResult:
    """What :meth:`FileTransfer.finish` wrote (the ``transfer`` object of the rx report)."""

    #: The ``--out`` path.
    file: str
    #: What was written: ``file`` when complete, else FILE.partial; None when nothing was
    #: (no data frame arrived).
    path: str | None
    complete: bool
    frame_bytes: int
    expected_frames: int | None
    frames_received: int
    #: Bytes written to ``path``.
    bytes: int
    #: Inclusive sequence-number runs not received (an unknown tail is not listed).
    missing_frames: list[tuple[int, int]] = field(default_factory=list)
    #: Half-open byte ranges ``[start, end)`` of the missing frames; the end of a missing
    #: last frame is at most ``end`` (its length is unknown).
    missing_bytes: list[tuple[int, int]] = field(default_factory=list)
    #: Why the file is incomplete (empty when complete).
    problems: list[str] = field(default_factory=list)
    #: FILE.partial.json when incomplete and something was received.
    sidecar: str | None = None

    def to_report(self) -> dict[str, Any]:
        return asdict(self)


class FileTransfer:
    """The data frames of one ``tx --file`` transfer, collected by sequence number.

    Memory: one entry per distinct sequence number received (a transfer's size at most).
    """

    def __init__(self, frame_bytes: int) -> None:
        self.frame_bytes = frame_bytes
        self.frames: dict[int, bytes] = {}
        #: Sequence numbers received twice with different bytes (two transfers mixed).
        self.conflicts: set[int] = set()
        #: Frame counts implied by frames marked last.
        self.ends: set[int] = set()
        #: The file's size from a LAST frame's header (its data CRC may have failed).
        self.end_bytes = 0

    def add_header(self, r: FrameResult) -> None:
        """Any decoded data frame, its data CRC passed or not: a LAST frame's header alone
        (sequence number, byte count) tells where the transfer ends."""
        assert r.header is not None
        if is_last_frame(r):
            seq = frame_seq(r)
            self.ends.add(seq + 1)
            self.end_bytes = max(self.end_bytes, seq * self.frame_bytes + r.header.length)

    def add(self, r: FrameResult) -> None:
        """One decoded data frame whose data CRC passed (``r.data`` not None)."""
        assert r.data is not None
        seq = frame_seq(r)
        if self.frames.setdefault(seq, r.data) != r.data:
            self.conflicts.add(seq)
        if is_last_frame(r):
            self.ends.add(seq + 1)

    def _expected(self, expected_frames: int | None, problems: list[str]) -> int | None:
        """The transfer's frame count from the caller's ``expected_frames`` and the frames
        marked last; disagreements are problems (the largest count is used)."""
        ends = set(self.ends)
        if expected_frames is not None:
            ends.add(expected_frames)
        if len(ends) > 1:
            problems.append(f"the transfer's end is ambiguous: {sorted(ends)} frames")
        if not ends:
            if self.frames:
                problems.append(
                    f"its end is unknown: the last frame received ({max(self.frames)}) is full; "
                    "frames after it may be missing (pass --frames N, the transfer's frame count)"
                )
            return None
        return max(ends)

    def _check(self, expected: int | None, problems: list[str]) -> list[tuple[int, int]]:
        """Missing frame runs, and problems of frames that do not fit one transfer."""
        if not self.frames and expected is None:
            problems.append("no data frames received")
            return []
        top = expected if expected is not None else max(self.frames) + 1
        missing = missing_ranges(self.frames, top)
        if missing:
            count = sum(b - a + 1 for a, b in missing)
            problems.append(f"missing {_frames(missing)[0]} "
                            f"({count} of {top})")
        beyond = [s for s in self.frames if s >= top]
        if beyond:
            name, one = _frames(compact_ranges(beyond))
            problems.append(f"{name} {'lies' if one else 'lie'} beyond the end ({top} frames)")
        short = [s for s, d in self.frames.items() if s < top - 1 and len(d) != self.frame_bytes]
        if short:
            name, one = _frames(compact_ranges(short))
            problems.append(f"{name} {'carries' if one else 'carry'} fewer than {self.frame_bytes} bytes "
                            "before the end (two transfers mixed?)")
        if self.conflicts:
            name = _frames(compact_ranges(self.conflicts))[0]
            problems.append(f"{name} arrived twice with different bytes (two transfers mixed?)")
        return missing

    def _write(self, f: IO[bytes]) -> None:
        """Every received frame at its offset (gaps, a missing tail included when the LAST
        frame's header told the size, are zeros)."""
        for seq in sorted(self.frames):
            f.seek(seq * self.frame_bytes)
            f.write(self.frames[seq])
        f.truncate(self._size())

    def _size(self) -> int:
        received = max((s * self.frame_bytes + len(d) for s, d in self.frames.items()), default=0)
        return max(received, self.end_bytes)

    def finish(
        self, out: str | os.PathLike[str], expected_frames: int | None, *, overwrite: bool
    ) -> TransferResult:
        """Write FILE (complete) or FILE.partial and its sidecar (see the module docstring).

        Args:
            out: the ``--out`` path.
            expected_frames: the transfer's frame count if known (None: unknown).
            overwrite: replace an existing FILE.
        """
        out = Path(out)
        partial, sidecar = partial_paths(out)
        problems: list[str] = []
        expected = self._expected(expected_frames, problems)
        missing = self._check(expected, problems)
        result = TransferResult(
            file=str(out), path=str(out), complete=not problems, frame_bytes=self.frame_bytes,
            expected_frames=expected, frames_received=len(self.frames), bytes=self._size(),
            missing_frames=missing, problems=problems,
            missing_bytes=[(a * self.frame_bytes, (b + 1) * self.frame_bytes) for a, b in missing],
        )
        if result.complete:
            try:
                write_atomic(out, self._write, overwrite=overwrite)
            except FileExistsError:
                problems.append(f"{out} appeared while receiving; it was not replaced")
                result.complete = False
            else:
                partial.unlink(missing_ok=True)
                sidecar.unlink(missing_ok=True)
                return result
        if not self.frames and not self.ends:
            # Nothing to keep: an empty FILE.partial would only replace an earlier attempt's.
            problems.append("nothing written")
            result.path = None
            return result
        result.path, result.sidecar = str(partial), str(sidecar)
        write_atomic(partial, self._write)
        write_json_atomic(sidecar, result.to_report())
        return result
