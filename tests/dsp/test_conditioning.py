"""The condition stage's one-pass power and sum against numpy."""

import numpy as np
import pytest

from aeradio.dsp.conditioning import power_and_sum


@pytest.mark.parametrize("n", [0, 1, 7, 100_001])
def test_power_and_sum_equal_numpy(n: int, rng: np.random.Generator) -> None:
    x = (rng.standard_normal(n) + 1j * rng.standard_normal(n) + 0.3).astype(np.complex64)
    energy, total = power_and_sum(x)
    ref = x.astype(np.complex128)
    assert energy == pytest.approx(float(np.sum(np.abs(ref) ** 2)), rel=1e-9, abs=1e-12)
    assert total == pytest.approx(complex(ref.sum()), rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan, 3e38])
def test_a_non_finite_or_huge_sample_shows_in_the_power(bad: float) -> None:
    # The RX chain zeroes bad samples when the power is not below the limit: a non-finite
    # sample must make it inf or nan (no fast-math assumption hides it), a huge one large.
    x = np.ones(1000, np.complex64)
    x[500] = complex(bad, 0)
    energy, _ = power_and_sum(x)
    assert not energy < 1e12
