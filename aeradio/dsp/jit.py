"""Where numba keeps aeradio's compiled kernels: a cache directory keyed by the sources.

numba's on-disk cache (``cache=True``) is invalidated by a change of the file that defines
a kernel, not by a change of a kernel it calls from another file: after an update that
touched only ``pulse.py``, the cached kernels of ``sync.py`` would keep running the old
matched filter (numba issue #6845). So the cache lives in a directory named after a hash of
every aeradio source file (``$NUMBA_CACHE_DIR``, or ``$AERADIO_CACHE/numba`` by default,
then ``<key>/``): any change of the sources compiles every kernel afresh, once (a few
seconds), and an unchanged checkout reuses them. A directory's time stamp is its last use;
of the other versions' directories the :data:`KEEP_OTHER_VERSIONS` last used are kept (a
checkout of another version may still use them) and older ones deleted, so editing the
sources does not fill the disk (each is a few MB). Deleting any of them is always safe: numba
compiles again.

Imported by ``aeradio/dsp/__init__.py``, so it runs before any kernel of the package is
defined. Without numba (GNU Radio's own Python) it does nothing.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from aeradio.core.paths import cache_dir

try:
    import numba
except ImportError:  # pragma: no cover - exercised by GNU Radio's Python
    numba = None

#: Where the numba cache of this process was put (None without numba).
CACHE_PATH: Path | None = None

#: Cache directories of other source versions kept, the last used first.
KEEP_OTHER_VERSIONS = 8


def sources_key(package: Path | None = None) -> str:
    """16 hex digits of the sha256 of every ``*.py`` of the package (names and contents)."""
    package = package or Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def prune(base: Path, current: Path, keep: int = KEEP_OTHER_VERSIONS) -> list[Path]:
    """Mark ``current`` used now and delete the ``aeradio-*`` directories of ``base`` but
    ``current`` and the ``keep`` last used (by time stamp); the deleted ones. Errors (another
    process pruning at the same time, no permission) are ignored: pruning is housekeeping."""
    try:
        current.mkdir(parents=True, exist_ok=True)
        os.utime(current)
        others = [p for p in base.glob("aeradio-*") if p.is_dir() and p != current]
        others.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    except OSError:
        return []
    for old in others[keep:]:
        shutil.rmtree(old, ignore_errors=True)
    return others[keep:]


def _configure() -> Path | None:
    if numba is None:
        return None
    base = Path(os.environ.get("NUMBA_CACHE_DIR") or str(cache_dir() / "numba"))
    path = base / f"aeradio-{sources_key()}"
    numba.config.CACHE_DIR = str(path)
    prune(base, path)
    return path


CACHE_PATH = _configure()
