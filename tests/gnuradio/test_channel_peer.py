"""benchmarks/gr_channel_peer.py, the GNU Radio peer of ``channel.throughput``, does the
channel simulator's job: the same clock offset, CFO and noise power, in the same units."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from tests.gnuradio.conftest import ROOT, gr_env

PEER = ROOT / "benchmarks" / "gr_channel_peer.py"
SAMPLES = 200_000


def _run(gr_python, tmp_path, signal, **options):
    np.save(tmp_path / "signal.npy", signal)
    out = tmp_path / "out.c64"
    argv = [gr_python, str(PEER), "--signal", str(tmp_path / "signal.npy"), "--samples", str(SAMPLES),
            "--out", str(out)]
    for name, value in options.items():
        argv += [f"--{name.replace('_', '-')}", str(value)]
    done = subprocess.run(argv, env=gr_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["runs"][0]["samples"] == SAMPLES and report["runs"][0]["wall_s"] > 0
    return np.fromfile(out, np.complex64)


def test_peer_applies_clock_offset_and_cfo(gr_python, tmp_path):
    f_cps, cfo_cps, sco_ppm = 0.05, 0.002, 500.0
    tone = np.exp(2j * np.pi * f_cps * np.arange(8000)).astype(np.complex64)  # 400 periods: seamless
    y = _run(gr_python, tmp_path, tone, cfo_cps=cfo_cps, sco_ppm=sco_ppm)
    ratio = 1 + sco_ppm * 1e-6
    assert len(y) == pytest.approx(SAMPLES / ratio, abs=20)
    # Output sample m is the tone at time m ratio, rotated by the CFO: frequency f ratio + cfo.
    steady = y[1000:-1000].astype(np.complex128)
    f_out = np.angle(np.mean(steady[1:] * np.conj(steady[:-1]))) / (2 * np.pi)
    assert f_out == pytest.approx(f_cps * ratio + cfo_cps, abs=1e-6)


def test_peer_noise_power_is_the_setting(gr_python, tmp_path):
    y = _run(gr_python, tmp_path, np.zeros(8192, np.complex64), noise_power=0.05)
    assert np.mean(np.abs(y) ** 2) == pytest.approx(0.05, rel=0.03)
