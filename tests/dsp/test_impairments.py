"""The impairment models against float64 references and their defining properties."""

import numpy as np
import pytest

from aeradio.dsp import impairments as imp


def _tone(n, f_cps, rng):
    t = np.arange(n)
    return np.exp(2j * np.pi * f_cps * t + 1j * rng.uniform(0, 2 * np.pi))


def test_awgn_power(rng):
    y = imp.add_awgn(np.zeros(200_000, np.complex64), 0.5, rng)
    assert y.dtype == np.complex64
    assert np.mean(np.abs(y) ** 2) == pytest.approx(0.5, rel=0.02)
    assert np.var(y.real) == pytest.approx(0.25, rel=0.02)


def test_cfo_matches_reference_and_continues_across_blocks(rng):
    x = (rng.standard_normal(1000) + 1j * rng.standard_normal(1000)).astype(np.complex64)
    ref = x.astype(np.complex128) * np.exp(1j * (2 * np.pi * 0.013 * np.arange(1000) + 0.4))
    y = imp.apply_cfo(x, 0.013, 0.4)
    np.testing.assert_allclose(y, ref, atol=1e-5)
    split = np.concatenate([imp.apply_cfo(x[:300], 0.013, 0.4),
                            imp.apply_cfo(x[300:], 0.013, 0.4, start_index=300)])
    np.testing.assert_allclose(split, y, atol=1e-6)


def test_fractional_delay_of_a_bandlimited_tone(rng):
    x = _tone(4000, 0.07, rng)
    y = imp.apply_delay(x.astype(np.complex64), 3.37)
    ref = x * np.exp(-2j * np.pi * 0.07 * 3.37)
    np.testing.assert_allclose(y[100:-100], ref[100:-100], atol=2e-3)


def test_sco_stretches_time(rng):
    f = 0.05
    x = _tone(20_000, f, rng)
    y = imp.apply_sco(x.astype(np.complex64), 100.0)
    # A receiver clock 100 ppm fast sees the tone at f (1 + 1e-4) cycles per sample.
    ph = np.unwrap(np.angle(y[200:-200].astype(np.complex128)))
    slope = np.polyfit(np.arange(ph.size), ph, 1)[0] / (2 * np.pi)
    assert slope == pytest.approx(f * (1 + 1e-4), rel=2e-8)
    assert y.size == pytest.approx(x.size / (1 + 1e-4), abs=1)


def test_iq_imbalance_definition(rng):
    x = (rng.standard_normal(100) + 1j * rng.standard_normal(100))
    y = imp.apply_iq_imbalance(x.astype(np.complex64), 1.5, 10.0)
    g, phi = 10 ** (1.5 / 20), np.deg2rad(10.0)
    np.testing.assert_allclose(y.real, x.real, atol=1e-5)
    np.testing.assert_allclose(y.imag, g * (x.imag * np.cos(phi) - x.real * np.sin(phi)), atol=1e-5)


def test_rapp_clips_smoothly_and_keeps_phase(rng):
    x = (rng.standard_normal(1000) + 1j * rng.standard_normal(1000)).astype(np.complex64)
    a_sat = float(np.sqrt(np.mean(np.abs(x) ** 2)))  # saturation at the RMS amplitude
    y = imp.apply_rapp(x, 3.0, a_sat)
    assert np.max(np.abs(y)) <= a_sat * (1 + 1e-6)
    np.testing.assert_allclose(np.angle(y), np.angle(x), atol=1e-5)
    small = x * 1e-3
    np.testing.assert_allclose(imp.apply_rapp(small, 3.0, a_sat), small, rtol=1e-5)


def test_phase_noise_increment_std(rng):
    std = imp.phase_noise_std_per_sample(-80.0, 10e3, 1e6)
    y, last = imp.apply_phase_noise(np.ones(100_000, np.complex64), std, rng)
    inc = np.diff(np.unwrap(np.angle(y)))
    assert np.std(inc) == pytest.approx(std, rel=0.02)
    assert np.isclose(np.angle(np.exp(1j * last)), np.angle(y[-1]), atol=1e-4)


def test_multipath_is_convolution(rng):
    x = (rng.standard_normal(50) + 1j * rng.standard_normal(50)).astype(np.complex64)
    taps = np.array([1.0, 0.3 - 0.2j])
    y = imp.apply_multipath(x, taps)
    np.testing.assert_allclose(y[1:], x[1:] + taps[1] * x[:-1], atol=1e-5)


def test_interpolation_in_chunks_equals_one_pass(rng, monkeypatch):
    x = (rng.standard_normal(1000) + 1j * rng.standard_normal(1000)).astype(np.complex64)
    times = np.sort(rng.uniform(-20, 1020, 777))
    whole = imp.interpolate_at(x, times)
    monkeypatch.setattr(imp, "INTERP_CHUNK_SAMPLES", 64)
    np.testing.assert_array_equal(imp.interpolate_at(x, times), whole)


def test_clock_offset_of_a_long_recording_stays_in_bounded_memory():
    """The benchmark's channel resamples tens of millions of samples: it took 18 GB before the
    interpolation ran in chunks (one [N, 32] index, weight and gather matrix each)."""
    import subprocess
    import sys

    code = (
        "import resource, numpy as np\n"
        "from aeradio.dsp import impairments as imp\n"
        "x = np.ones(4_000_000, np.complex64)\n"
        "imp.apply_sco(x, 20.0)\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(out.stdout) < 1500, out.stdout  # MB; one pass over 4 M samples needed ~5 GB
