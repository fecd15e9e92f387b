"""Atomic file writes: the one way aeradio publishes a file.

A file is written under a temporary sibling name (``.NAME.tmp-XXXX``, in the same
directory so the final rename stays on one file system), flushed and fsynced, then renamed
into place. A reader therefore sees the old file or the whole new one, never half of it,
and a failure (an exception, Ctrl-C) removes the temporary file instead of leaving it.

``overwrite=False`` refuses to replace an existing file, also when it appears while the
new one is being written (the final step is a hard link, which fails if the name exists).

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = write_json_atomic(d / "a.json", {"x": 1})
>>> (d / "a.json").read_text()
'{\\n  "x": 1\\n}\\n'
>>> write_text_atomic(d / "a.json", "again", overwrite=False)
Traceback (most recent call last):
...
FileExistsError: ...a.json exists; refusing to overwrite it
>>> sorted(p.name for p in d.iterdir())
['a.json']
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def publish_tree(directory: str | os.PathLike[str]) -> None:
    """Give a staged directory and the files in it the permissions of ordinary new ones
    (0777 and 0666 less the umask), not mkdtemp's 0700 and the 0600 some writers use
    (safetensors): a model directory another user can read, every file alike."""
    mask = _umask()
    directory = Path(directory)
    os.chmod(directory, 0o777 & ~mask)
    for entry in directory.iterdir():
        if entry.is_file() and not entry.is_symlink():
            os.chmod(entry, 0o666 & ~mask)


def temporary_sibling(path: str | os.PathLike[str], suffix: str = "") -> Path:
    """A new, empty temporary file next to ``path`` (the caller removes or renames it).

    Its permissions are those of an ordinary new file (0666 less the umask), not
    mkstemp's 0600, since it becomes the published file.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", suffix=suffix, dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
    finally:
        os.close(fd)
    return Path(tmp)


def rename_no_replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
    """Rename ``src`` to ``dst``; :class:`FileExistsError` if ``dst`` exists (never replaced)."""
    try:
        os.link(src, dst)  # fails if dst exists, unlike os.replace
    except FileExistsError:
        raise FileExistsError(f"{dst} exists; refusing to overwrite it") from None
    os.unlink(src)


def publish(tmp: str | os.PathLike[str], path: str | os.PathLike[str], *, overwrite: bool = True) -> None:
    """Move a finished temporary file to its final name (replacing it only if ``overwrite``)."""
    if overwrite:
        os.replace(tmp, path)
    else:
        rename_no_replace(tmp, path)


def write_atomic(
    path: str | os.PathLike[str],
    write: Callable[[IO[bytes]], None],
    *,
    overwrite: bool = True,
) -> Path:
    """Call ``write(f)`` on a temporary sibling of ``path``, then rename it into place.

    The parent directory is created if missing. On any exception the temporary file is
    removed and the exception propagates; ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not overwrite and path.exists():
        raise FileExistsError(f"{path} exists; refusing to overwrite it")
    tmp = temporary_sibling(path)
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        publish(tmp, path, overwrite=overwrite)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes, *, overwrite: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return write_atomic(path, lambda f: f.write(data), overwrite=overwrite)


def write_text_atomic(path: str | os.PathLike[str], text: str, *, overwrite: bool = True) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return write_bytes_atomic(path, text.encode("utf-8"), overwrite=overwrite)


def write_json_atomic(path: str | os.PathLike[str], document: Any, *, overwrite: bool = True) -> Path:
    """Write ``document`` as indented JSON (with a final newline) atomically."""
    return write_text_atomic(path, json.dumps(document, indent=2) + "\n", overwrite=overwrite)


def save_npy_atomic(path: str | os.PathLike[str], array: np.ndarray, *, overwrite: bool = True) -> Path:
    """Save one array as ``.npy`` (no pickle) atomically."""
    return write_atomic(path, lambda f: np.save(f, array, allow_pickle=False), overwrite=overwrite)
