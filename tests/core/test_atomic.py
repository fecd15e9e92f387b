"""core.atomic: published files are whole, temporary files never stay behind."""

import os
import stat

import pytest

from aeradio.core.atomic import write_atomic, write_bytes_atomic


def test_failed_write_leaves_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "f.bin"
    write_bytes_atomic(target, b"old")

    def boom(f):
        f.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_atomic(target, boom)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]


def test_no_overwrite_refuses_existing(tmp_path):
    target = tmp_path / "f.bin"
    write_bytes_atomic(target, b"a")
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        write_bytes_atomic(target, b"b", overwrite=False)
    assert target.read_bytes() == b"a"


def test_published_file_has_ordinary_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        path = write_bytes_atomic(tmp_path / "f.bin", b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
