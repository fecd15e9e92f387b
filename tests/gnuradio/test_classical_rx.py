"""examples/gnuradio/classical_rx.py: the classical GNU Radio receive chain that the RX chain's
throughput is compared with (``aeradio bench --only rx.vs_gnuradio``) really receives QPSK."""

from __future__ import annotations

import json
import subprocess

import numpy as np

from aeradio.dsp import impairments as imp
from aeradio.dsp.pulse import rrc_taps, shape_symbols
from tests.gnuradio.conftest import ROOT, gr_env

PEER = ROOT / "examples" / "gnuradio" / "classical_rx.py"
#: GNU Radio's constellation_qpsk points, in its numbering (unit energy here).
QPSK = np.array([-1 - 1j, 1 - 1j, -1 + 1j, 1 + 1j]) / np.sqrt(2)
SYMBOLS = 20_000
#: Symbols left out while the timing and Costas loops lock.
LOCK_SYMBOLS = 2_000
SPS, ROLLOFF, SPAN = 4, 0.35, 8


def run_peer(gr_python: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([gr_python, str(PEER), *args], env=gr_env(), capture_output=True, text=True,
                          timeout=300)


def best_match(sent: np.ndarray, decided: np.ndarray) -> float:
    """Symbol error rate after lock-in, over the chain's delay and QPSK's four rotations."""
    rotate = np.array([np.argmin(np.abs(QPSK - p * 1j)) for p in QPSK])  # index of point * j
    best = 1.0
    for _ in range(4):
        sent = rotate[sent]
        for lag in range(-40, 41):
            a = decided[LOCK_SYMBOLS + lag : LOCK_SYMBOLS + lag + SYMBOLS // 2]
            b = sent[LOCK_SYMBOLS : LOCK_SYMBOLS + len(a)]
            best = min(best, float(np.mean(a != b)))
    return best


def test_peer_receives_qpsk_with_cfo_and_fractional_delay(gr_python, tmp_path):
    rng = np.random.default_rng(5)
    sent = rng.integers(0, 4, SYMBOLS)
    x = shape_symbols(QPSK[sent], rrc_taps(ROLLOFF, SPAN, SPS), SPS)
    x = imp.apply_delay(x, 0.37)
    x = imp.apply_cfo(x, 2e-4, phase_rad=1.0)
    x = imp.add_awgn(x, 10 ** (-20 / 10) / SPS, rng)  # Es/N0 20 dB
    rec, out = tmp_path / "rec.cf32", tmp_path / "decisions.u8"
    x.astype(np.complex64).tofile(rec)
    done = run_peer(gr_python, "--input", str(rec), "--sps", str(SPS), "--rolloff", str(ROLLOFF),
                    "--span-symbols", str(SPAN), "--out", str(out))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["samples"] == len(x) and report["seconds"] > 0
    assert report["samples_per_s"] == report["samples"] / report["seconds"]
    decided = np.fromfile(out, np.uint8)
    # One decision per symbol, give or take the filters' delay and the loop's slips.
    assert abs(len(decided) - SYMBOLS) <= 20 and report["symbols"] == len(decided)
    assert best_match(sent, decided.astype(np.int64)) < 1e-3


def test_peer_refuses_bad_arguments_in_one_line(gr_python, tmp_path):
    done = run_peer(gr_python, "--input", str(tmp_path / "nothing.cf32"))
    assert done.returncode == 2
    assert done.stderr.strip() == f"classical_rx: --input {tmp_path / 'nothing.cf32'}: no such file"
    odd = tmp_path / "odd.cf32"
    odd.write_bytes(b"\0" * 12)
    done = run_peer(gr_python, "--input", str(odd))
    assert done.returncode == 2 and "not a multiple of 8 bytes" in done.stderr
    done = run_peer(gr_python, "--input", str(odd), "--sps", "1")
    assert done.returncode == 2 and done.stderr.strip() == "classical_rx: --sps must be in [2, 64], got 1"
