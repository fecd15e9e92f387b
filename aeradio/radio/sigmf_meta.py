"""SigMF metadata, done once: the keys, one builder, one reader and validator.

Every SigMF recording aeradio writes (``tx --device file:``, ``rx --capture``) is built by
:func:`build_metadata` and checked by :func:`check_metadata` before it is published; every
recording aeradio reads (``rx --device file:``, the dataset builder, crash recovery) goes
through :func:`read_metadata`, which applies the same checks.

Keys are named constants, as in sigmf-python's ``keys`` module: ``CORE_*`` for the SigMF
core namespace, ``AERADIO_*`` for the ``aeradio`` extension (declared in
``core:extensions`` whenever one of its keys is used):

- global: ``aeradio:model_hash32`` (8 hex digits), ``aeradio:link`` (link config name),
  ``aeradio:recovered`` (finished by crash recovery), and, read but no longer written,
  ``aeradio:seed`` (the test-pattern seed of recordings made before frames carried it, an
  integer in [0, 2**64 - 1]);
- annotations (one per detected frame): ``aeradio:seq``, ``aeradio:header_ok``,
  ``aeradio:model_ok``, ``aeradio:kind``, ``aeradio:last``, ``aeradio:seed``,
  ``aeradio:blocks``, ``aeradio:block_errors``, ``aeradio:cfo_hz``, ``aeradio:snr_db``,
  ``aeradio:truncated``.

What the reader refuses, always with :class:`~aeradio.core.errors.CaptureFormatError` naming
the file (never another exception): a file that is missing, not a regular file (a FIFO is
refused before it is opened, so it cannot block), larger than :data:`MAX_METADATA_BYTES`,
not UTF-8 JSON (nesting too deep included), without a ``global`` object, with ``captures``
or ``annotations`` that are not lists of objects, a datatype other than ``cf32_le``, a
``core:sample_rate`` that is not a number in (0, 1e12], an ``aeradio:seed`` out of range,
or anything the ``sigmf`` library's schema rejects (reported as one line with its JSON path).

>>> meta = build_metadata(
...     sample_rate_hz=1e6, hw="doc", captures=[capture_segment(0, datetime_utc=None, frequency_hz=915e6)],
...     annotations=[annotation(10, 50, "frame 3", seq=3)], extra_global={AERADIO_SEED: 7})
>>> checked = check_metadata(meta, "doc.sigmf-meta")
>>> checked.sample_rate_hz, checked.seed, checked.center_freq_hz, meta[GLOBAL][CORE_EXTENSIONS][0]["name"]
(1000000.0, 7, 915000000.0, 'aeradio')
>>> check_metadata({**meta, GLOBAL: {**meta[GLOBAL], AERADIO_SEED: 2**80}}, "x")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
aeradio.core.errors.CaptureFormatError: x: aeradio:seed must be an integer in [0, 2**64 - 1], ...
"""

from __future__ import annotations

import json
import math
import os
import stat
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from aeradio.core.errors import CaptureFormatError
from aeradio.core.version import __version__

# ---- top-level sections ------------------------------------------------------------------
GLOBAL = "global"
CAPTURES = "captures"
ANNOTATIONS = "annotations"

# ---- core keys (SigMF specification) -----------------------------------------------------
CORE_DATATYPE = "core:datatype"
CORE_SAMPLE_RATE = "core:sample_rate"
CORE_VERSION = "core:version"
CORE_RECORDER = "core:recorder"
CORE_HW = "core:hw"
CORE_SHA512 = "core:sha512"
CORE_EXTENSIONS = "core:extensions"
CORE_DESCRIPTION = "core:description"
CORE_SAMPLE_START = "core:sample_start"
CORE_SAMPLE_COUNT = "core:sample_count"
CORE_GLOBAL_INDEX = "core:global_index"
CORE_DATETIME = "core:datetime"
CORE_FREQUENCY = "core:frequency"
CORE_LABEL = "core:label"

# ---- the aeradio extension ---------------------------------------------------------------
EXTENSION_NAME = "aeradio"
EXTENSION_VERSION = "0.1.0"


def aeradio_key(name: str) -> str:
    """The ``aeradio:`` extension key of a field name (``"seq"`` -> ``"aeradio:seq"``)."""
    return f"{EXTENSION_NAME}:{name}"


AERADIO_SEED = aeradio_key("seed")
AERADIO_MODEL_HASH32 = aeradio_key("model_hash32")
AERADIO_LINK = aeradio_key("link")
AERADIO_RECOVERED = aeradio_key("recovered")
AERADIO_SEQ = aeradio_key("seq")
AERADIO_HEADER_OK = aeradio_key("header_ok")
AERADIO_MODEL_OK = aeradio_key("model_ok")
AERADIO_KIND = aeradio_key("kind")
AERADIO_BLOCKS = aeradio_key("blocks")
AERADIO_BLOCK_ERRORS = aeradio_key("block_errors")
AERADIO_CFO_HZ = aeradio_key("cfo_hz")
AERADIO_SNR_DB = aeradio_key("snr_db")
AERADIO_TRUNCATED = aeradio_key("truncated")

# ---- values --------------------------------------------------------------------------------
#: The only datatype read and written: complex float32, little-endian (8 bytes per sample).
DATATYPE = "cf32_le"
#: SigMF specification version written in ``core:version``.
SIGMF_VERSION = "1.2.0"
#: Largest metadata file read (bytes); larger ones are refused before reading.
MAX_METADATA_BYTES = 16 << 20
#: Largest ``core:sample_rate`` (the SigMF schema's maximum), S/s.
MAX_SAMPLE_RATE_HZ = 1e12
#: Test-pattern seeds are 64-bit (the pattern hash works on uint64).
SEED_MAX = 2**64 - 1
#: Longest value repr quoted in an error message (characters).
_QUOTE_CHARS = 80


def _quote(value: Any) -> str:
    """A short repr of a value read from a file, for an error message."""
    try:
        text = repr(value)
    except (RecursionError, ValueError):  # nested too deep; an int too long to print
        return f"({type(value).__name__} too large to quote)"
    return text if len(text) <= _QUOTE_CHARS else text[: _QUOTE_CHARS - 3] + "..."


# ---- builder ---------------------------------------------------------------------------------
def utc_iso(t: datetime) -> str:
    """A UTC time as SigMF's ``core:datetime`` (``YYYY-MM-DDTHH:MM:SS.ffffffZ``)."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def capture_segment(
    sample_start: int,
    *,
    datetime_utc: datetime | None,
    frequency_hz: float | None,
    global_index: int | None = None,
) -> dict[str, Any]:
    """One capture segment: data file samples from ``sample_start`` on were taken at
    ``datetime_utc`` (None: left out), tuned to ``frequency_hz`` (None: left out), and are
    stream sample ``global_index`` onwards (None: left out, i.e. equal to ``sample_start``)."""
    seg: dict[str, Any] = {CORE_SAMPLE_START: int(sample_start)}
    if global_index is not None:
        seg[CORE_GLOBAL_INDEX] = int(global_index)
    if datetime_utc is not None:
        seg[CORE_DATETIME] = utc_iso(datetime_utc)
    if frequency_hz is not None:
        seg[CORE_FREQUENCY] = float(frequency_hz)
    return seg


def annotation(
    sample_start: int, sample_count: int, label: str | None = None, **fields: Any
) -> dict[str, Any]:
    """One annotation of samples ``[sample_start, sample_start + sample_count)`` of the data
    file; ``fields`` go under ``aeradio:``. None values are left out, and so are non-finite
    floats (JSON has no NaN: an estimate that failed is absent, not an invalid file)."""
    ann: dict[str, Any] = {CORE_SAMPLE_START: int(sample_start), CORE_SAMPLE_COUNT: int(sample_count)}
    if label:
        ann[CORE_LABEL] = label
    ann.update({
        aeradio_key(k): v for k, v in fields.items()
        if v is not None and not (isinstance(v, float) and not math.isfinite(v))
    })
    return ann


def _uses_extension(*sections: dict[str, Any]) -> bool:
    prefix = EXTENSION_NAME + ":"
    return any(k.startswith(prefix) for s in sections for k in s)


def build_metadata(
    *,
    sample_rate_hz: float,
    hw: str,
    captures: list[dict[str, Any]],
    annotations: list[dict[str, Any]],
    sha512: str | None = None,
    extra_global: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The SigMF metadata of a ``cf32_le`` recording (not yet validated: see :func:`check_metadata`).

    Args:
        sample_rate_hz: ``core:sample_rate``.
        hw: ``core:hw`` (the device).
        captures: capture segments (:func:`capture_segment`), sorted here by sample start.
        annotations: annotations (:func:`annotation`), sorted here by sample start.
        sha512: hex sha512 of the data file (None: left out).
        extra_global: more global fields (``core:description``, ``aeradio:seed``, ...).

    The ``aeradio`` extension is declared when any ``aeradio:`` key is used.
    """
    g: dict[str, Any] = {
        CORE_DATATYPE: DATATYPE,
        CORE_SAMPLE_RATE: float(sample_rate_hz),
        CORE_VERSION: SIGMF_VERSION,
        CORE_RECORDER: f"aeradio {__version__}",
        CORE_HW: hw,
    }
    if sha512 is not None:
        g[CORE_SHA512] = sha512
    g.update(extra_global or {})
    caps = sorted(captures, key=lambda c: c[CORE_SAMPLE_START])
    anns = sorted(annotations, key=lambda a: a[CORE_SAMPLE_START])
    if _uses_extension(g, *caps, *anns):
        g[CORE_EXTENSIONS] = [{"name": EXTENSION_NAME, "version": EXTENSION_VERSION, "optional": True}]
    return {GLOBAL: g, CAPTURES: caps, ANNOTATIONS: anns}


# ---- reader and validator ---------------------------------------------------------------
@dataclass(frozen=True)
class SigmfMetadata:
    """A checked SigMF metadata document and the fields aeradio uses from it."""

    document: dict[str, Any]
    sample_rate_hz: float
    #: ``core:sha512`` (hex), None when the recording has none.
    sha512: str | None
    #: ``aeradio:seed``, None when absent.
    seed: int | None

    @property
    def global_fields(self) -> dict[str, Any]:
        return self.document[GLOBAL]

    @property
    def captures(self) -> list[dict[str, Any]]:
        return self.document[CAPTURES]

    @property
    def annotations(self) -> list[dict[str, Any]]:
        return self.document[ANNOTATIONS]

    @property
    def center_freq_hz(self) -> float | None:
        """``core:frequency`` of the first capture segment (None when absent)."""
        freq = self.captures[0].get(CORE_FREQUENCY) if self.captures else None
        return float(freq) if isinstance(freq, (int, float)) and not isinstance(freq, bool) else None


def _check_library(doc: dict[str, Any], where: str | Path) -> None:
    """The ``sigmf`` library's validation (schema, ordering), as one line."""
    import jsonschema
    from sigmf import validate as sigmf_validate

    try:
        with warnings.catch_warnings():
            # Undeclared extensions only warn in sigmf 1.x; recordings of other tools may have them.
            warnings.simplefilter("ignore", DeprecationWarning)
            sigmf_validate.validate(doc)
    except jsonschema.exceptions.ValidationError as exc:
        path = getattr(exc, "json_path", "$")
        msg = " ".join(str(exc.message).split())
        if len(msg) > 2 * _QUOTE_CHARS:  # a long value or pattern: say which rule it broke
            msg = f"{_quote(exc.instance)} breaks the schema's {exc.validator!r} rule"
        raise CaptureFormatError(f"{where}: invalid SigMF metadata at {path}: {msg}") from None
    except Exception as exc:  # anything else the validator trips on (RecursionError included)
        msg = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        raise CaptureFormatError(f"{where}: invalid SigMF metadata: {msg}") from None


def check_metadata(doc: Any, where: str | Path) -> SigmfMetadata:
    """Check a metadata document as aeradio reads and writes it; :class:`CaptureFormatError`
    naming ``where`` on the first problem (see the module docstring for the list)."""
    if not isinstance(doc, dict) or not isinstance(doc.get(GLOBAL), dict):
        raise CaptureFormatError(f"{where}: no 'global' object in the metadata")
    g = doc[GLOBAL]
    datatype = g.get(CORE_DATATYPE)
    if datatype != DATATYPE:
        raise CaptureFormatError(f"{where}: {CORE_DATATYPE} must be {DATATYPE!r}, got {_quote(datatype)}")
    rate = g.get(CORE_SAMPLE_RATE)
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 < rate <= MAX_SAMPLE_RATE_HZ:
        raise CaptureFormatError(f"{where}: {CORE_SAMPLE_RATE} must be a number in "
                                 f"(0, {MAX_SAMPLE_RATE_HZ:g}] S/s, got {_quote(rate)}")
    seed = g.get(AERADIO_SEED)
    if seed is not None and not (type(seed) is int and 0 <= seed <= SEED_MAX):  # bool is no seed
        raise CaptureFormatError(f"{where}: {AERADIO_SEED} must be an integer in [0, 2**64 - 1], "
                                 f"got {_quote(seed)}")
    for section in (CAPTURES, ANNOTATIONS):
        items = doc.get(section)
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            raise CaptureFormatError(f"{where}: '{section}' must be a list of objects, got {_quote(items)}")
    _check_library(doc, where)
    sha512 = g.get(CORE_SHA512)
    return SigmfMetadata(doc, float(rate), sha512 if isinstance(sha512, str) else None, seed)


def open_regular(path: str | Path, what: str) -> IO[bytes]:
    """Open ``path`` for reading only if it is a regular file (binary, unbuffered reads).

    A FIFO, a device or a directory is refused before it is opened (opening a FIFO would
    block until a writer appears), and checked again on the open descriptor.
    :class:`CaptureFormatError` names ``path`` and ``what`` it is (e.g. "the data file").
    """
    path = Path(path)
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise CaptureFormatError(f"{path}: cannot open {what}: not a regular file")
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise CaptureFormatError(f"{path}: cannot open {what}: no such file") from None
    except OSError as exc:
        raise CaptureFormatError(f"{path}: cannot open {what}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):  # replaced between the stat and the open
        os.close(fd)
        raise CaptureFormatError(f"{path}: cannot open {what}: not a regular file")
    return os.fdopen(fd, "rb")


def read_metadata(path: str | Path, *, max_bytes: int = MAX_METADATA_BYTES) -> SigmfMetadata:
    """Read and check a ``.sigmf-meta`` file (also a ``.sigmf-meta.partial`` one).

    The file must be a regular file of at most ``max_bytes`` bytes, checked before anything
    is read. Raises :class:`CaptureFormatError` naming the file for every problem.
    """
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        raise CaptureFormatError(f"{path}: no such recording (the metadata file is missing)")
    with open_regular(path, "the metadata file") as f:
        size = os.fstat(f.fileno()).st_size
        raw = f.read(max_bytes + 1) if size <= max_bytes else b""
        if size > max_bytes or len(raw) > max_bytes:
            raise CaptureFormatError(
                f"{path}: metadata file must be at most {max_bytes} bytes, got {max(size, len(raw))}"
            )
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        msg = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        raise CaptureFormatError(f"{path}: not readable SigMF metadata (UTF-8 JSON): {msg}") from None
    return check_metadata(doc, path)
