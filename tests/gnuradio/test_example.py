"""examples/gnuradio/bler_awgn.grc: an aeradio model in GNU Radio, its BLER against aeradio's own."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from aeradio.learning.evaluate import simulate_bler, wilson_interval
from tests.gnuradio.conftest import ROOT, gr_env

EXAMPLE = ROOT / "scripts" / "gnuradio-example.sh"
#: Eb/N0 (dB) of the comparison: BLER ~2e-2 for the test model, hundreds of errors.
EBN0_DB = 6.0
BLOCKS = 40_000


def run_example(gr_python: str, *args: str, blocks: int = BLOCKS) -> subprocess.CompletedProcess:
    env = dict(gr_env(), GR_PYTHON=gr_python, BLOCKS=str(blocks), SEED="1")
    return subprocess.run(["bash", str(EXAMPLE), *map(str, args)], env=env, capture_output=True, text=True,
                          timeout=300)


def test_example_bler_matches_aeradio_simulation(gr_python, gr_model):
    done = run_example(gr_python, gr_model, EBN0_DB)
    assert done.returncode == 0, done.stderr
    counts, last = done.stdout.strip().splitlines()[-2:]
    _, blocks, _, errors, _, _ = counts.split()
    blocks, errors = int(blocks), int(errors)
    assert last == f"BLER {errors / blocks:.6g}"
    # The flowgraph loses only the blocks still in its filters at the end.
    assert BLOCKS - 10 <= blocks < BLOCKS and errors >= 300
    sim = simulate_bler(gr_model, EBN0_DB, target_errors=1000, max_blocks=400_000, seed=3)["neural"]
    gr_lo, gr_hi = wilson_interval(errors, blocks)
    sim_lo, sim_hi = sim["bler_ci"]
    # Same model, same Eb/N0 under the same energy convention: the 95 % intervals overlap.
    # (0.5 dB of noise error moves the BLER by ~40 %, several interval widths.)
    assert gr_lo <= sim_hi and sim_lo <= gr_hi, (errors / blocks, sim["bler"], gr_lo, gr_hi, sim_lo, sim_hi)


def test_example_noiseless_is_error_free(gr_python, gr_model):
    done = run_example(gr_python, gr_model, 60, blocks=5000)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "BLER 0"


def test_example_refuses_a_bad_model_in_one_line(gr_python, tmp_path):
    done = run_example(gr_python, tmp_path / "nothing", 6)
    assert done.returncode == 2
    assert done.stderr.strip() == f"gnuradio-example: model directory {tmp_path / 'nothing'} does not exist"
    usage = subprocess.run(["bash", str(EXAMPLE)], capture_output=True, text=True, timeout=30)
    assert usage.returncode == 2 and "usage:" in usage.stderr


def test_grcc_generates_the_committed_python(gr_python, gr_model, tmp_path):
    """examples/gnuradio/bler_awgn.py is what GRC generates from bler_awgn.grc (both kept in sync)."""
    grcc = shutil.which("grcc")
    if grcc is None:
        pytest.skip("grcc (GNU Radio Companion's compiler) is not installed")
    # GRC evaluates the flowgraph's variables, which read the default model directory.
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "ae-n7-k8").symlink_to(gr_model)
    env = dict(gr_env(), GRC_BLOCKS_PATH=str(ROOT / "aeradio" / "gnuradio" / "grc"), HOME=str(tmp_path))
    done = subprocess.run([grcc, "-o", str(tmp_path), str(ROOT / "examples" / "gnuradio" / "bler_awgn.grc")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    generated = (tmp_path / "bler_awgn.py").read_text()
    assert generated == (ROOT / "examples" / "gnuradio" / "bler_awgn.py").read_text()
