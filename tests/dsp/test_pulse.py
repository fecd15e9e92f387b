"""RRC pulse shaping against float64 references."""

import numpy as np
import pytest
from scipy import signal

from aeradio.core.errors import ConfigError
from aeradio.dsp.pulse import rrc_pulse, rrc_taps, sample_matched, shape_bursts, shape_symbols


def _rrc_reference(t: np.ndarray, beta: float, sps: int) -> np.ndarray:
    """Textbook RRC (float64), evaluated away from its removable singularities."""
    x = t / sps
    return (np.sin(np.pi * x * (1 - beta)) + 4 * beta * x * np.cos(np.pi * x * (1 + beta))) / (
        np.pi * x * (1 - (4 * beta * x) ** 2)
    )


@pytest.mark.parametrize(("beta", "span", "sps"), [(0.35, 8, 4), (0.5, 6, 2), (0.25, 10, 8)])
def test_taps_unit_energy_symmetric_and_nyquist(beta: float, span: int, sps: int) -> None:
    h = rrc_taps(beta, span, sps)
    assert h.shape == (span * sps + 1,)
    assert np.sum(h**2) == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(h, h[::-1], atol=1e-15)
    # h * h is a raised cosine: zero at non-zero multiples of the symbol period (up to
    # the truncation of the span).
    rc = np.convolve(h, h)
    mid = len(rc) // 2
    isi = rc[mid + sps :: sps]
    assert np.max(np.abs(isi)) < 0.05 * rc[mid]


def test_pulse_matches_textbook_formula_and_singular_points() -> None:
    beta, sps = 0.35, 4
    t = np.linspace(-15.3, 15.1, 97)
    ref = _rrc_reference(t, beta, sps) / np.sqrt(sps)
    np.testing.assert_allclose(rrc_pulse(t, beta, sps), ref, rtol=1e-10, atol=1e-12)
    # At t = 0 and t = +-T/(4 beta) the closed form is 0/0; the pulse must be continuous.
    for t0 in (0.0, sps / (4 * beta), -sps / (4 * beta)):
        near = rrc_pulse(np.array([t0 - 1e-6, t0 + 1e-6]), beta, sps)
        assert rrc_pulse(np.array([t0]), beta, sps)[0] == pytest.approx(near.mean(), abs=1e-5)


def test_bad_rolloff_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="rolloff"):
        rrc_taps(1.5, 8, 4)


@pytest.mark.parametrize("num", [1, 7, 1000, 5000])
def test_shape_symbols_equals_upfirdn_reference(num: int, rng: np.random.Generator) -> None:
    h = rrc_taps(0.35, 8, 4)
    x = rng.standard_normal(num) + 1j * rng.standard_normal(num)
    y = shape_symbols(x, h, 4)
    ref = signal.upfirdn(h, x, up=4)  # float64
    assert y.dtype == np.complex64
    assert len(y) == num * 4 + len(h) - 1
    np.testing.assert_allclose(y[: len(ref)], ref, atol=2e-5 * np.max(np.abs(ref)))
    np.testing.assert_allclose(y[len(ref) :], 0, atol=1e-6)


@pytest.mark.parametrize("frac", [0.0, 0.25, 0.5, 0.83])
@pytest.mark.parametrize("first", [40.0, 3.0, 230.0])  # windows inside, left of, right of a segment
@pytest.mark.parametrize("sps", [4, 3, 5])  # the polyphase planes: one per sample of a symbol
def test_sample_matched_equals_float64_filter(frac: float, first: float, sps: int, rng: np.random.Generator
                                              ) -> None:
    beta, span = 0.35, 8
    x = (rng.standard_normal((2, 400)) + 1j * rng.standard_normal((2, 400))).astype(np.complex64)
    starts = np.array([first + frac, first + 17.0 + frac])
    z = sample_matched(x, starts, 50, beta, sps, span)
    half = span * sps // 2
    norm = np.sqrt(np.sum(rrc_pulse(np.arange(-half, half + 1), beta, sps) ** 2))
    for f in range(2):
        t = starts[f] + np.arange(50) * sps
        m = np.arange(400)
        w = rrc_pulse(t[:, None] - m[None, :], beta, sps) / norm
        w[np.abs(t[:, None] - m[None, :]) > half] = 0
        ref = w @ x[f].astype(np.complex128)
        np.testing.assert_allclose(z[f], ref, atol=1e-4)


@pytest.mark.parametrize("shifts", [(-1, 0, 1), (0, 2), (-3,), (0, 2, 2), (-4, 0, 4)])
def test_sample_matched_shifts_equal_separate_calls(shifts: tuple[int, ...], rng: np.random.Generator
                                                    ) -> None:
    x = (rng.standard_normal((3, 500)) + 1j * rng.standard_normal((3, 500))).astype(np.complex64)
    starts = np.array([14.3, 31.75, 44.0])  # the first windows start left of the segment
    z = sample_matched(x, starts, 100, 0.35, 4, 8, shifts=shifts)
    assert z.shape == (len(shifts), 3, 100)
    for i, d in enumerate(shifts):
        np.testing.assert_allclose(z[i], sample_matched(x, starts + d, 100, 0.35, 4, 8), atol=1e-5)


def test_shaping_then_matched_sampling_recovers_symbols(rng: np.random.Generator) -> None:
    h = rrc_taps(0.35, 8, 4)
    sym = np.exp(2j * np.pi * rng.random(300)).astype(np.complex64)
    y = shape_symbols(sym, h, 4)
    z = sample_matched(y[None, :], np.array([16.0]), 300, 0.35, 4, 8)[0]
    # Residual ISI of the truncated RRC pair stays below -25 dB.
    err = np.mean(np.abs(z[8:-8] - sym[8:-8]) ** 2)
    assert 10 * np.log10(err) < -25


@pytest.mark.parametrize("gap", [0, 1, 8, 30])
def test_shape_bursts_equals_shaping_the_padded_stream(gap: int, rng: np.random.Generator) -> None:
    h = rrc_taps(0.35, 8, 4)
    frames = (rng.standard_normal((5, 50)) + 1j * rng.standard_normal((5, 50))).astype(np.complex64)
    padded = np.zeros((5, 50 + gap), np.complex64)
    padded[:, :50] = frames
    ref = signal.upfirdn(h, padded.reshape(-1).astype(np.complex128), up=4)  # float64
    got = shape_bursts(frames, h, 4, (50 + gap) * 4)
    assert len(got) == 5 * (50 + gap) * 4 + len(h) - 1
    np.testing.assert_allclose(got[: len(ref)], ref, atol=2e-5 * np.max(np.abs(ref)))


@pytest.mark.parametrize(("beta", "sps", "span"), [(0.35, 4, 8), (0.25, 4, 8), (0.5, 2, 6), (0.2, 5, 10)])
def test_compiled_weights_equal_the_numpy_model(beta: float, sps: int, span: int) -> None:
    # The kernel's weights (angle-addition identities) against matched_filter_weights (the
    # pulse at every tap), the truncation and the removable singularities included: frac 0
    # puts taps on t = 0 and, for beta 0.25 and 0.2 (sps / (4 beta) = 4, 6.25), on t = +-4.
    from aeradio.dsp.pulse import _grid_norm, _tap_trig, _weights_into, matched_filter_weights

    fracs = np.array([0.0, 1e-12, 0.25, 0.5, 0.75, 0.999999])
    ref, half = matched_filter_weights(fracs, beta, sps, span)
    got = np.empty_like(ref)
    for f, frac in enumerate(fracs):
        _weights_into(frac, beta, sps, half, _grid_norm(beta, sps, half), _tap_trig(beta, sps, half), got[f])
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-7)


def test_sample_matched_repeated_shift_is_computed_once_and_returned_twice(rng: np.random.Generator) -> None:
    x = (rng.standard_normal((2, 300)) + 1j * rng.standard_normal((2, 300))).astype(np.complex64)
    z = sample_matched(x, np.array([20.4, 33.9]), 40, 0.35, 4, 8, shifts=(2, 0, 2))
    assert z.shape == (3, 2, 40)
    np.testing.assert_array_equal(z[0], z[2])
    np.testing.assert_array_equal(z[1], sample_matched(x, np.array([20.4, 33.9]), 40, 0.35, 4, 8))
