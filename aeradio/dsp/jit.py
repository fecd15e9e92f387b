"""Where numba keeps aeradio's compiled kernels: a cache directory keyed by the sources.

numba's on-disk cache (``cache=True``) is invalidated by a change of the file that defines
a kernel, not by a change of a kernel it calls from another file: after an update that
touched only ``pulse.py``, the cached kernels of ``sync.py`` would keep running the old
matched filter (numba issue #6845). So the cache lives in a directory named after a hash of
every aeradio source file (``$NUMBA_CACHE_DIR``, or ``$AERADIO_CACHE/numba`` by default,
then ``<key>/``): any change of the sources compiles every kernel afresh, once (a few
seconds), and an unchanged checkout reuses them. Directories of other versions are left
in place (a checkout of the other version still uses them); deleting them is always safe.

Imported by ``aeradio/dsp/__init__.py``, so it runs before any kernel of the package is
defined. Without numba (GNU Radio's own Python) it does nothing.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from aeradio.core.paths import cache_dir

try:
    import numba
except ImportError:  # pragma: no cover - exercised by GNU Radio's Python
    numba = None

#: Where the numba cache of this process was put (None without numba).
CACHE_PATH: Path | None = None


def sources_key(package: Path | None = None) -> str:
    """16 hex digits of the sha256 of every ``*.py`` of the package (names and contents)."""
    package = package or Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _configure() -> Path | None:
    if numba is None:
        return None
    base = os.environ.get("NUMBA_CACHE_DIR") or str(cache_dir() / "numba")
    path = Path(base) / f"aeradio-{sources_key()}"
    numba.config.CACHE_DIR = str(path)
    return path


CACHE_PATH = _configure()
