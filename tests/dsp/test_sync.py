"""Synchronization estimators against float64 references and noise statistics."""

import math

import numpy as np
import pytest

from aeradio.dsp import impairments as imp
from aeradio.dsp.framing import qpsk_sequence
from aeradio.dsp.pulse import rrc_taps, shape_symbols
from aeradio.dsp.sync import (
    GardnerTiming,
    TimingEstimator,
    amplitude_noise,
    detection_threshold,
    fit_phase,
    gardner_mean_error_reference,
    lag_cfo,
    linear_phasor,
    periodic_correlation,
    rotate_linear,
    scaled_columns,
    timing_line,
)


def test_periodic_correlation_equals_float64_loops(rng: np.random.Generator) -> None:
    x = (rng.standard_normal(300) + 1j * rng.standard_normal(300)).astype(np.complex64)
    lag, terms, stride = 8, 10, 4
    p, e1, e2 = periodic_correlation(x, lag, terms, stride)
    xd = x.astype(np.complex128)
    assert len(p) == 300 - lag - (terms - 1) * stride
    for d in (0, 7, 100, len(p) - 1):
        idx = d + stride * np.arange(terms)
        assert p[d] == pytest.approx(np.sum(np.conj(xd[idx]) * xd[idx + lag]), rel=1e-4, abs=1e-4)
        assert e1[d] == pytest.approx(np.sum(np.abs(xd[idx]) ** 2), rel=1e-4)
        assert e2[d] == pytest.approx(np.sum(np.abs(xd[idx + lag]) ** 2), rel=1e-4)


def test_periodic_correlation_measures_cfo_of_a_periodic_signal() -> None:
    period = np.tile(qpsk_sequence(8, np.random.default_rng(1)), 20)
    x = imp.apply_cfo(period, 0.021)
    p, e1, e2 = periodic_correlation(x, 8, 100, 1)
    np.testing.assert_allclose(np.abs(p) ** 2 / (e1 * e2), 1.0, rtol=1e-4)
    np.testing.assert_allclose(np.angle(p) / (2 * np.pi * 8), 0.021, atol=1e-6)


def test_threshold_false_alarm_rate_matches_target(rng: np.random.Generator) -> None:
    # Independent terms (stride >= lag is not needed: white noise, one term per sample
    # pair); check the empirical exceedance of a moderate target within binomial bounds.
    terms, target = 30, 1e-2
    t = detection_threshold(terms, target)
    x = (rng.standard_normal(400_000) + 1j * rng.standard_normal(400_000)).astype(np.complex64)
    p, e1, e2 = periodic_correlation(x, 8, terms, 4)
    rate = np.mean(np.abs(p) ** 2 > t * e1 * e2)
    assert 0.7 * target < rate < 1.3 * target


def test_linear_phasor_equals_float64_exp() -> None:
    f = np.array([0.013, -0.031, 0.0])
    ph = np.array([0.3, -2.0, 1.0])
    ref = np.exp(1j * (ph[:, None] + 2 * np.pi * f[:, None] * np.arange(1000)))
    np.testing.assert_allclose(linear_phasor(f, ph, 1000), ref, atol=2e-5)


@pytest.mark.parametrize("length", [1, 63, 64, 1000, 1116])
def test_rotate_linear_equals_the_product_with_linear_phasor(length: int, rng: np.random.Generator) -> None:
    z = (rng.standard_normal((3, length)) + 1j * rng.standard_normal((3, length))).astype(np.complex64)
    f, ph = np.array([0.013, -0.031, 0.0]), np.array([0.3, -2.0, 1.0])
    got = rotate_linear(z, f, ph)
    assert got.dtype == np.complex64 and got.shape == z.shape
    np.testing.assert_allclose(got, z * linear_phasor(f, ph, length), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("columns", [0, 1, 896])
def test_scaled_columns_are_numpys_scaled_copy_gathered_bit_for_bit(columns: int, rng: np.random.Generator
                                                                    ) -> None:
    u = (rng.standard_normal((5, 1116)) + 1j * rng.standard_normal((5, 1116))).astype(np.complex64)
    u[2, 7] = np.nan + 1e30j  # non-finite and huge values scale as numpy scales them
    scale = np.array([0.5, 3.7, 1e-3, 1 / 0.93, np.inf], np.float32)
    index = rng.permutation(1116)[:columns]
    index[:1] = 7  # the odd sample among them
    expected = np.ascontiguousarray((u.view(np.float32) * scale[:, None]).view(np.complex64)[:, index])
    got = scaled_columns(u[:, :], index, scale)
    assert got.dtype == np.complex64 and got.shape == (5, columns) and got.flags.c_contiguous
    np.testing.assert_array_equal(got.view(np.uint32), expected.view(np.uint32))
    with pytest.raises(ValueError, match="outside"):
        scaled_columns(u, np.array([0, 1116]), scale)


def test_lag_cfo_and_phase_fit_recover_a_phase_line(rng: np.random.Generator) -> None:
    k = np.arange(400)
    slope, phase0 = 0.004, 2.9  # rad/symbol, rad (wraps around pi)
    c = np.exp(1j * (phase0 + slope * k))[None, :] * (1 + 0.05 * rng.standard_normal((1, 400)))
    assert lag_cfo(c, 8, 4)[0] == pytest.approx(slope / (2 * np.pi * 4), rel=1e-3)
    groups = c.reshape(1, 25, 16).sum(axis=2)
    centres = k.reshape(25, 16).mean(axis=1)
    p0, s = fit_phase(groups, centres)
    assert s[0] == pytest.approx(slope, rel=1e-3)
    assert math.remainder(p0[0] - phase0, 2 * math.pi) == pytest.approx(0, abs=1e-2)


def test_amplitude_noise_estimates(rng: np.random.Generator) -> None:
    sent = np.exp(2j * np.pi * rng.random(2000))
    noise = 0.1 * (rng.standard_normal((1, 2000)) + 1j * rng.standard_normal((1, 2000)))
    gain, nvar = amplitude_noise(0.7 * sent[None, :] + noise, sent)
    assert gain[0] == pytest.approx(0.7, rel=0.01)
    assert nvar[0] == pytest.approx(0.02, rel=0.08)


@pytest.mark.parametrize("delay", [0.0, 0.2, 0.5, 0.77])
def test_timing_estimator_fractional_delay(delay: float, rng: np.random.Generator) -> None:
    taps = rrc_taps(0.35, 8, 4)
    ltf = qpsk_sequence(32, np.random.default_rng(2))
    est = TimingEstimator(ltf, taps, 0.35, 4)
    x = np.concatenate([np.zeros(50, np.complex64), shape_symbols(ltf, taps, 4), np.zeros(50, np.complex64)])
    y = imp.add_awgn(imp.apply_delay(x, delay), 0.01, rng)
    lag, quality = est.estimate(y[None, :], 30, 40)
    assert lag[0] == pytest.approx(50 + delay, abs=0.05)
    assert quality[0] > 0.8  # the integer-lag peak, up to half a sample off


def test_compiled_timing_peak_equals_the_numpy_model(rng: np.random.Generator) -> None:
    # Several frames, delays across a sample, noise from weak to none, one frame of noise
    # only: the compiled peak search gives the numpy model's lag and quality.
    taps = rrc_taps(0.35, 8, 4)
    ltf = qpsk_sequence(32, np.random.default_rng(2))
    est = TimingEstimator(ltf, taps, 0.35, 4)
    x = np.concatenate([np.zeros(50, np.complex64), shape_symbols(ltf, taps, 4), np.zeros(50, np.complex64)])
    rows = [imp.add_awgn(imp.apply_delay(x, d), nv, rng) for d, nv in
            [(0.0, 0.0), (0.3, 0.01), (0.71, 0.3), (0.5, 1.0), (0.95, 0.05)]]
    rows.append(imp.add_awgn(np.zeros_like(x), 1.0, rng))
    y = np.stack(rows).astype(np.complex64)
    lag, quality = est.estimate(y, 30, 40)
    lag_ref, quality_ref = est.estimate_reference(y, 30, 40)
    np.testing.assert_allclose(lag, lag_ref, atol=1e-6)
    np.testing.assert_allclose(quality, quality_ref, rtol=1e-5)


@pytest.mark.parametrize("sps", [4, 5])
def test_gardner_timing_measures_a_timing_error(sps: int) -> None:
    # Noise-free shaped symbols (another sequence than the calibration's) sampled off their
    # instants by a known error: the group estimate returns it, in samples, either sign.
    from aeradio.dsp.pulse import sample_matched

    rolloff, span = 0.35, 8
    gardner = GardnerTiming(rolloff, sps, span)
    symbols = qpsk_sequence(600, np.random.default_rng(5))
    x = shape_symbols(symbols, rrc_taps(rolloff, span, sps), sps)
    true = span * sps // 2
    for err in (-0.7, -0.3, -0.1, 0.0, 0.2, 0.3, 0.7):
        z = sample_matched(x[None, :], np.array([true - err]), 512, rolloff, sps, span, shifts=gardner.shifts)
        got = gardner.error(z)[0]
        if abs(err) <= 0.3:  # the linear part of the S-curve
            assert got == pytest.approx(err, abs=0.04)
        else:  # beyond, compressed (a sine) but of the right sign
            assert 0.6 * abs(err) < got * np.sign(err) < abs(err)


def test_timing_line_holds_its_slope_back_until_the_groups_span_time(rng: np.random.Generator) -> None:
    # A clock offset of 1e-3 samples per symbol, estimates with noise 0.05 samples.
    centres = np.arange(20) * 128.0
    offsets = 1e-3 * centres[None, :] + rng.normal(0, 0.05, (200, 20))
    weights = np.ones(20)
    far = timing_line(centres, offsets, weights, 20 * 128.0, 1e-3, 0.05)
    assert abs(np.mean(far) - 2.56) < 0.05 and np.std(far) < 0.06
    # Two groups 16 symbols apart, no clock offset: the prior keeps their noisy slope from
    # being extrapolated a group on; without it (a wide prior) the prediction is far noisier.
    noise = offsets[:, :2] - 1e-3 * centres[:2]
    held = timing_line(centres[:2] / 8, noise, weights[:2], 144.0, 2e-4, 0.05)
    free = timing_line(centres[:2] / 8, noise, weights[:2], 144.0, 1e3, 0.05)
    assert np.std(held) < 0.06 < 0.2 < np.std(free)


@pytest.mark.parametrize("shifts", [2, 3])
def test_compiled_gardner_error_equals_the_numpy_model(shifts: int, rng: np.random.Generator) -> None:
    shape = (shifts, 5, 257)
    zs = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)
    np.testing.assert_allclose(GardnerTiming._mean_error(zs), gardner_mean_error_reference(zs), rtol=1e-5,
                               atol=1e-7)


@pytest.mark.parametrize(("sps", "sco_ppm"), [(4, 150.0), (4, -200.0), (5, 80.0)])
def test_compiled_timing_track_equals_the_numpy_model(sps: int, sco_ppm: float, rng: np.random.Generator
                                                      ) -> None:
    # Shaped random QPSK with a clock offset: the compiled track (timing line, matched filter,
    # Gardner, group by group) gives the symbols and offsets of the numpy loop it replaced.
    from aeradio.dsp.sync import sample_tracked, sample_tracked_reference

    rolloff, span, n = 0.35, 8, 1116
    gardner = GardnerTiming(rolloff, sps, span)
    rows = []
    for _ in range(3):
        x = shape_symbols(qpsk_sequence(n, rng), rrc_taps(rolloff, span, sps), sps)
        x = imp.apply_sco(np.concatenate([x, np.zeros(400, np.complex64)]), sco_ppm)
        rows.append(imp.add_awgn(x, 0.05, rng)[: n * sps + 200])
    x = np.stack(rows)
    t0 = span * sps // 2 + rng.uniform(-0.3, 0.3, 3) - 1.0  # the first windows reach before the segments
    groups = [(0, 256), (256, 512), (512, 768), (768, n)]
    args = (t0, groups, n, 47.5, 2.0, 256, 200e-6 * sps, 0.1, gardner)
    # The segments as a buffer: each at its row's first sample, CFO zero.
    length = x.shape[1]
    z, offsets = sample_tracked(x.reshape(-1), np.arange(3) * length, np.zeros(3), length, *args)
    z_ref, offsets_ref = sample_tracked_reference(x, *args)
    np.testing.assert_allclose(offsets, offsets_ref, atol=1e-6)
    np.testing.assert_allclose(z, z_ref, atol=1e-5)
    assert np.ptp(offsets[:, 1:]) > 0.05  # the groups' estimates moved (a track, not constants)


def _tracked_stream(rng: np.random.Generator, sps: int, n: int, frames: int, pad: int, gap: int
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shaped QPSK frames at 120 ppm back to back in a buffer (``gap`` samples between them),
    each turned by its own CFO; the first segment starts ``pad`` samples before the buffer.
    Returns (buffer, segment starts, CFOs)."""
    rolloff, span = 0.35, 8
    cfo = rng.uniform(-0.02, 0.02, frames)
    parts, starts, at = [], [], -pad
    for f in range(frames):
        x = shape_symbols(qpsk_sequence(n, rng), rrc_taps(rolloff, span, sps), sps)
        x = imp.apply_sco(np.concatenate([x, np.zeros(40, np.complex64)]), 120.0)
        x = x * np.exp(2j * np.pi * (cfo[f] * np.arange(len(x)) + rng.uniform()))
        part = imp.add_awgn(np.concatenate([x, np.zeros(gap, np.complex64)]).astype(np.complex64), 0.05, rng)
        parts.append(part if f else part[pad:])
        starts.append(at)
        at += len(part)
    return np.concatenate(parts).astype(np.complex64), np.array(starts), cfo


@pytest.mark.parametrize("sps", [4, 5])
def test_timing_track_on_the_buffer_equals_the_model_on_derotated_segments(sps: int, rng: np.random.Generator
                                                                          ) -> None:
    # The timing track reading a stream buffer and derotating each group's window itself:
    # the numpy model on the numpy segments within float rounding, and the compiled track on
    # the compiled segments bit for bit (the same derotated values). The first segment starts
    # before the buffer (zeros), the last ends at the buffer's end, and the last group's
    # windows reach beyond the segments (zeros there too).
    from aeradio.dsp.segments import derotated_segments, derotated_segments_reference
    from aeradio.dsp.sync import sample_tracked, sample_tracked_reference

    n, frames, span = 1116, 4, 8
    x, starts, cfo = _tracked_stream(rng, sps, n, frames, pad=50, gap=30)
    length = n * sps + 20  # the last symbols' filter windows end beyond it
    starts[-1] = len(x) - length
    gardner = GardnerTiming(0.35, sps, span)
    t0 = span * sps // 2 + rng.uniform(-0.3, 0.3, frames) + 2.0
    args = (t0, [(0, 256), (256, 512), (512, 768), (768, n)], n, 47.5, 2.0, 256, 200e-6 * sps, 0.1, gardner)
    z, offsets = sample_tracked(x, starts, cfo, length, *args)
    z_ref, offsets_ref = sample_tracked_reference(derotated_segments_reference(x, starts, cfo, length), *args)
    np.testing.assert_allclose(offsets, offsets_ref, atol=1e-5)
    np.testing.assert_allclose(z, z_ref, atol=2e-5)
    assert np.ptp(offsets[:, 1:]) > 0.05  # a track, not constants
    assert np.median(np.abs(z)) > 0.5  # the CFO removed: the symbols add up (a turning phasor would not)
    seg = derotated_segments(x, starts, cfo, length)
    z_seg, offsets_seg = sample_tracked(seg.reshape(-1), np.arange(frames) * length, np.zeros(frames), length,
                                        *args)
    assert np.array_equal(z.view(np.uint32), z_seg.view(np.uint32))
    assert np.array_equal(offsets, offsets_seg)


def test_timing_track_refuses_a_segment_beyond_the_buffer() -> None:
    from aeradio.dsp.sync import sample_tracked

    with pytest.raises(ValueError, match="beyond the buffer of 100"):
        sample_tracked(np.zeros(100, np.complex64), np.array([0, 40]), np.zeros(2), 61, np.zeros(2),
                       [(0, 4)], 4, 0.0, 1.0, 4, 1e-3, 0.1, GardnerTiming(0.35, 4, 8))


@pytest.mark.parametrize("cfo_cps", [0.0, 3e-4, -1.2e-3])
def test_compiled_phase_line_equals_the_numpy_model(cfo_cps: float, rng: np.random.Generator) -> None:
    # The default frame's known symbols (preamble, pilots) with a residual CFO, a phase that
    # wraps across the frame, and noise: the same fine CFO, phase and slope as the numpy model.
    from aeradio.core.config import LinkConfig
    from aeradio.dsp.framing import FrameLayout
    from aeradio.dsp.sync import phase_line, phase_line_reference

    lay = FrameLayout(LinkConfig.from_dict({"model": {"k": 8, "n": 7}}))
    npre, sps, frames = len(lay.preamble), lay.sps, 6
    z = np.exp(2j * np.pi * rng.random((frames, lay.num_symbols))).astype(np.complex64)
    z[:, lay.known_index] = lay.known_symbols
    n = np.arange(lay.num_symbols)
    z = z * np.exp(1j * (rng.uniform(-np.pi, np.pi, (frames, 1)) + 2 * np.pi * cfo_cps * sps * n))
    z = (z + 0.2 * (rng.standard_normal(z.shape) + 1j * rng.standard_normal(z.shape))).astype(np.complex64)
    starts = np.concatenate([np.arange(0, npre, 16), npre + np.arange(0, len(lay.pilot_index), 2)])
    sizes = np.diff(np.append(starts, len(lay.known_index)))
    centres = np.add.reduceat(lay.known_index.astype(np.float64), starts) / sizes
    args = (z, lay.known_index, lay.known_symbols, npre, 8, sps, starts, centres)
    for got, ref in zip(phase_line(*args), phase_line_reference(*args), strict=True):
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-8)
    fine, _, slope = phase_line(*args)
    assert np.all(np.abs(fine + slope / (2 * np.pi * sps) - cfo_cps) < 2e-5)


def test_compiled_phase_line_with_spread_preamble_indices_equals_the_numpy_model(rng: np.random.Generator
                                                                                ) -> None:
    # Known symbols whose "preamble" indices are not consecutive (every other symbol): the
    # kernel cannot take the first CFO's rotation as one factor of the lag product there and
    # rotates symbol by symbol, as the model does.
    from aeradio.dsp.sync import phase_line, phase_line_reference

    npre, sps, frames, length = 40, 4, 5, 600
    known_index = np.concatenate([2 * np.arange(npre), np.arange(150, length, 50)])
    known_symbols = np.exp(2j * np.pi * rng.random(len(known_index))).astype(np.complex64)
    n = np.arange(length)
    z = np.exp(2j * np.pi * rng.random((frames, length))).astype(np.complex64)
    z[:, known_index] = known_symbols
    z = z * np.exp(1j * (rng.uniform(-np.pi, np.pi, (frames, 1)) + 2 * np.pi * 4e-4 * sps * n))
    z = (z + 0.1 * (rng.standard_normal(z.shape) + 1j * rng.standard_normal(z.shape))).astype(np.complex64)
    starts = np.concatenate([np.arange(0, npre, 10), npre + np.arange(0, len(known_index) - npre, 2)])
    sizes = np.diff(np.append(starts, len(known_index)))
    centres = np.add.reduceat(known_index.astype(np.float64), starts) / sizes
    args = (z, known_index, known_symbols, npre, 4, sps, starts, centres)
    for got, ref in zip(phase_line(*args), phase_line_reference(*args), strict=True):
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-8)


def test_compiled_early_late_ratio_equals_the_numpy_model(rng: np.random.Generator) -> None:
    # The refiner's early-late ratio on a shaped preamble with timing errors either side and
    # noise: the compiled pass gives the numpy model's ratio (and so the same refinement).
    from aeradio.dsp.sync import TimingRefiner

    known = qpsk_sequence(96, np.random.default_rng(3))
    refiner = TimingRefiner(known, 16, 0.35, 4, 8)
    x = shape_symbols(known, rrc_taps(0.35, 8, 4), 4)
    x = np.concatenate([np.zeros(30, np.complex64), x, np.zeros(30, np.complex64)])
    y = np.stack([imp.add_awgn(x, nv, rng) for nv in (0.0, 0.01, 0.3)]).astype(np.complex64)
    t0 = 30 + 16 + np.array([-0.4, 0.1, 0.35])
    np.testing.assert_allclose(refiner._ratio(y, t0), refiner._ratio_reference(y, t0), rtol=1e-4, atol=1e-6)
