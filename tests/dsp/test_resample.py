"""The compiled polyphase resampler against the float64 windowed-sinc model and exact tones."""

import numpy as np
import pytest

from aeradio.dsp import impairments as imp
from aeradio.dsp import resample as rs

H = imp.INTERP_HALF_TAPS


def _lowpass(rng, n, band=0.8):
    """Unit-power complex noise within ``band`` of Nyquist."""
    spectrum = np.zeros(n, complex)
    k = int(n * band / 2)
    spectrum[:k] = rng.standard_normal(k) + 1j * rng.standard_normal(k)
    spectrum[-k:] = rng.standard_normal(k) + 1j * rng.standard_normal(k)
    x = np.fft.ifft(spectrum)
    return (x / np.sqrt(np.mean(np.abs(x) ** 2))).astype(np.complex64)


def _times(n_in, t0, ratio):
    count = int((n_in - H - 1 - t0) / ratio)
    return t0 + np.arange(count) * ratio


def test_table_rows_are_the_kernel_at_their_fractions():
    table = rs.polyphase_table()
    assert table.shape == (rs.PHASES + 1, 2 * H) and table.dtype == np.float32
    fractions = np.array([0.0, 0.25, 0.5, 1.0 - 1.0 / rs.PHASES])
    ref = imp.interp_kernel(fractions, H)
    np.testing.assert_allclose(table[(fractions * rs.PHASES).astype(int)], ref, atol=1e-7)


# 0 ppm: one run; 20-200 ppm: runs of 100-10 outputs (the run path); 1000 and 5000 ppm:
# runs shorter than MIN_RUN_OUTPUTS (the output-by-output path); negative: fraction falling.
@pytest.mark.parametrize("sco_ppm", [0.0, 20.0, 200.0, -150.0, 1000.0, -5000.0])
def test_matches_the_float64_model_within_1e_5(rng, sco_ppm):
    x = _lowpass(rng, 20_000)
    times = _times(len(x), H - 1 + 0.37, 1 + sco_ppm * 1e-6)
    out = rs.resample_into(x, times[0], 1 + sco_ppm * 1e-6, np.empty(len(times), np.complex64))
    ref = imp.interpolate_at(x.astype(np.complex128), times)
    assert np.max(np.abs(out - ref)) < 1e-5


@pytest.mark.parametrize("f_cps", [0.05, 0.2, 0.4])
def test_resampled_tone_error_below_minus_55_db(f_cps):
    """A tone within 80 % of Nyquist comes out as the tone at the new times (the windowed
    sinc's own -60 dB class of error, the table adding nothing visible)."""
    n = 30_000
    x = np.exp(2j * np.pi * f_cps * np.arange(n)).astype(np.complex64)
    ratio = 1 + 37e-6
    times = _times(n, H - 1 + 0.5, ratio)
    out = rs.resample_into(x, times[0], ratio, np.empty(len(times), np.complex64))
    exact = np.exp(2j * np.pi * f_cps * times)
    err_db = 10 * np.log10(np.mean(np.abs(out - exact) ** 2))
    assert err_db < -55


def test_output_split_in_pieces_equals_one_call(rng):
    x = _lowpass(rng, 10_000)
    ratio = 1 + 123e-6
    whole = rs.resample_into(x, H - 1.0, ratio, np.empty(9000, np.complex64))
    first = rs.resample_into(x, H - 1.0, ratio, np.empty(4321, np.complex64))
    rest = rs.resample_into(x, H - 1.0 + 4321 * ratio, ratio, np.empty(9000 - 4321, np.complex64))
    np.testing.assert_allclose(np.concatenate([first, rest]), whole, atol=1e-6)


@pytest.mark.parametrize(("t0", "count", "match"), [
    (H - 1.5, 10, "outside"),          # the first output's taps start before x
    (H - 1.0, 1000, "outside"),        # the last output's taps end after x
])
def test_times_outside_the_input_are_refused(t0, count, match):
    x = np.zeros(1000, np.complex64)
    with pytest.raises(ValueError, match=match):
        rs.resample_into(x, t0, 1.0, np.empty(count, np.complex64))


def test_wrong_dtype_or_ratio_refused():
    x = np.zeros(1000, np.complex64)
    with pytest.raises(ValueError, match="complex64"):
        rs.resample_into(x.astype(np.complex128), H, 1.0, np.empty(10, np.complex64))
    with pytest.raises(ValueError, match="ratio"):
        rs.resample_into(x, H, 3.0, np.empty(10, np.complex64))
