"""numba's kernel cache is keyed by every aeradio source (aeradio/dsp/jit.py).

Regression: numba invalidates a cached kernel when its own file changes, not when a kernel
it calls from another file does (sync.py's timing track calls pulse.py's matched filter),
so an update of pulse.py alone would have left sync.py's cached kernels on the old code.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numba

import aeradio
from aeradio.dsp import jit


def _package(tmp_path: Path) -> Path:
    pkg = tmp_path / "pkg"
    (pkg / "dsp").mkdir(parents=True)
    (pkg / "dsp" / "pulse.py").write_text("def f(x):\n    return x\n")
    (pkg / "dsp" / "sync.py").write_text("from pkg.dsp.pulse import f\n")
    return pkg


def test_a_change_of_any_source_file_changes_the_cache_directory(tmp_path):
    pkg = _package(tmp_path)
    key = jit.sources_key(pkg)
    assert jit.sources_key(pkg) == key  # stable while nothing changes
    (pkg / "dsp" / "pulse.py").write_text("def f(x):\n    return 2 * x\n")  # the callee only
    changed = jit.sources_key(pkg)
    assert changed != key
    (pkg / "dsp" / "sync2.py").write_text("")  # a new file too
    assert jit.sources_key(pkg) not in (key, changed)


def test_kernels_of_this_process_cache_under_the_sources_key():
    package = Path(aeradio.__file__).resolve().parent
    assert jit.CACHE_PATH is not None
    assert jit.CACHE_PATH.name == f"aeradio-{jit.sources_key(package)}"
    assert numba.config.CACHE_DIR == str(jit.CACHE_PATH)


def test_numba_cache_dir_of_the_user_is_kept_as_the_base(tmp_path):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "nb"),
           "PYTHONPATH": str(Path(aeradio.__file__).resolve().parents[1])}
    code = ("import numpy, numba; from aeradio.dsp.crc import crc16_rows; "
            "crc16_rows(numpy.zeros((1, 4), numpy.uint8)); print(numba.config.CACHE_DIR)")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120, check=True)
    assert Path(out.stdout.strip()).parent == tmp_path / "nb"
    assert any((tmp_path / "nb").rglob("*.nbi"))  # the kernels were cached there


def test_cache_directories_of_old_versions_are_pruned_the_last_used_kept(tmp_path):
    base = tmp_path / "numba"
    old = [base / f"aeradio-{i:016x}" for i in range(7)]
    for age, d in enumerate(old):
        d.mkdir(parents=True)
        (d / "k.nbi").write_bytes(b"x")
        os.utime(d, (1e9 - age * 1000, 1e9 - age * 1000))  # old[0] used last
    (base / "other").mkdir()  # not ours: never touched
    current = base / "aeradio-current"
    deleted = jit.prune(base, current, keep=3)
    assert sorted(deleted) == sorted(old[3:])
    kept = ["other", current.name] + [d.name for d in old[:3]]
    assert sorted(p.name for p in base.iterdir()) == sorted(kept)
    assert current.stat().st_mtime > old[0].stat().st_mtime  # marked used now
