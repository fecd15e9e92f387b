"""Welch's PSD against scipy.signal.welch (float64 reference) and Parseval."""

import numpy as np
import pytest
from scipy import signal

from aeradio.dsp.spectrum import welch_psd


@pytest.mark.parametrize(("n", "segment"), [(8192, 512), (1000, 64), (513, 512), (64, 64)])
def test_welch_psd_matches_scipy(rng: np.random.Generator, n: int, segment: int) -> None:
    t = np.arange(n)
    x = np.exp(2j * np.pi * 0.123 * t) + 0.3 * (rng.standard_normal(n) + 1j * rng.standard_normal(n))
    f, p = welch_psd(x, 2e6, segment)
    f_ref, p_ref = signal.welch(x, fs=2e6, window="hann", nperseg=segment, noverlap=segment // 2,
                                detrend=False, return_onesided=False, scaling="density")
    np.testing.assert_allclose(f, np.fft.fftshift(f_ref), rtol=0, atol=1e-9)
    np.testing.assert_allclose(p, np.fft.fftshift(p_ref), rtol=1e-10, atol=0)


def test_welch_psd_integrates_to_the_power(rng: np.random.Generator) -> None:
    x = (rng.standard_normal(1 << 16) + 1j * rng.standard_normal(1 << 16)).astype(np.complex64)  # power 2
    f, p = welch_psd(x, 1e6, 256)
    assert abs(np.sum(p) * (f[1] - f[0]) - 2.0) < 0.03


def test_welch_psd_refuses_too_few_samples() -> None:
    with pytest.raises(ValueError, match="at least that many samples"):
        welch_psd(np.zeros(10, np.complex64), 1e6, 16)
