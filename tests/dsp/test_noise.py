"""The pooled Gaussian noise source: power, circularity, whiteness, Gaussian tails, renewal."""

import math

import numpy as np
import pytest

from aeradio.dsp.noise import DEFAULT_POOL_SIZE, REFRESH_DIVISOR, GaussianPool

N = 1_000_000
#: A draw's averages converge to the pool's, which are within 1/sqrt(size) of the Gaussian's.
SPREAD = math.sqrt(1 / N + 1 / DEFAULT_POOL_SIZE)


@pytest.fixture
def noise():
    pool = GaussianPool(np.random.default_rng(7))
    # Several draws of the simulator's block size: the statistics hold across draws too.
    return np.concatenate([pool.draw(65536) for _ in range(N // 65536)] + [pool.draw(N % 65536)])


def test_unit_power_and_circular(noise):
    assert noise.dtype == np.complex64 and len(noise) == N
    assert np.mean(np.abs(noise) ** 2) == pytest.approx(1.0, abs=0.01)
    assert np.var(noise.real) == pytest.approx(0.5, abs=0.005)
    assert np.var(noise.imag) == pytest.approx(0.5, abs=0.005)
    assert abs(np.mean(noise)) < 5 * SPREAD
    assert abs(np.mean(noise.real * noise.imag)) < 5 * 0.5 * SPREAD  # I and Q uncorrelated
    assert abs(np.mean(noise * noise)) < 5 * SPREAD  # circular: E[n^2] = 0


def test_white(noise):
    """Autocorrelation at lags 1..64 (draw boundaries included) and a flat spectrum."""
    bound = 5 / math.sqrt(N)  # distinct draws are independent given the pool: no pool term
    for lag in range(1, 65):
        assert abs(np.vdot(noise[:-lag], noise[lag:])) / N < bound, lag
    psd = np.mean(np.abs(np.fft.fft(noise[: N // 1024 * 1024].reshape(-1, 1024), axis=1)) ** 2, axis=0) / 1024
    # 976 averaged periodograms: each bin within +-20 % of the unit level.
    assert np.all(np.abs(psd - 1.0) < 0.2)


def test_gaussian_tails(noise):
    """|n|^2 of a unit-power circular Gaussian is exponential: P(|n|^2 > a) = exp(-a)."""
    power = np.abs(noise.astype(np.complex128)) ** 2
    for a in (1.0, 4.0, 9.0):
        expected = math.exp(-a)
        assert np.mean(power > a) == pytest.approx(expected, rel=5 / math.sqrt(N * expected))


def test_pool_is_renewed_and_draws_are_reproducible():
    pool = GaussianPool(np.random.default_rng(3), size=1 << 12)
    before = pool.pool.copy()
    for _ in range(REFRESH_DIVISOR):
        pool.draw(1 << 12)
    assert not np.any(pool.pool == before)  # every entry redrawn
    a = GaussianPool(np.random.default_rng(5), size=1 << 12).draw(1000)
    b = GaussianPool(np.random.default_rng(5), size=1 << 12).draw(1000)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("size", [1000, 1 << 8, 1 << 25])
def test_pool_size_checked(size):
    with pytest.raises(ValueError, match="power of two"):
        GaussianPool(np.random.default_rng(0), size=size)


def test_add_scaled_is_x_plus_std_times_the_draw(rng):
    x = (rng.standard_normal(5000) + 1j * rng.standard_normal(5000)).astype(np.complex64)
    fused = GaussianPool(np.random.default_rng(9), size=1 << 12).add_scaled(x, 0.3)
    drawn = GaussianPool(np.random.default_rng(9), size=1 << 12).draw(5000)
    np.testing.assert_allclose(fused, x + np.float32(0.3) * drawn, rtol=1e-6, atol=1e-6)
