"""The channel simulator's streaming stages: continuous across blocks, equal to one-shot models."""


import numpy as np
import pytest

from aeradio.dsp import impairments as imp
from aeradio.flowgraphs import channel_sim as cs


def _noise(rng, n):
    return ((rng.standard_normal(n) + 1j * rng.standard_normal(n)) / np.sqrt(2)).astype(np.complex64)


def _lowpass(rng, n):
    """A band-limited test signal (within 25 % of Nyquist), unit power."""
    spectrum = np.zeros(n, complex)
    k = n // 8
    spectrum[:k] = rng.standard_normal(k) + 1j * rng.standard_normal(k)
    spectrum[-k:] = rng.standard_normal(k) + 1j * rng.standard_normal(k)
    x = np.fft.ifft(spectrum)
    return (x / np.sqrt(np.mean(np.abs(x) ** 2))).astype(np.complex64)


def _stream(stage, x, rng, max_block=700):
    """Feed ``x`` through ``stage`` in random block sizes, concatenate the outputs."""
    out, pos = [], 0
    while pos < len(x):
        n = int(rng.integers(1, max_block))
        out.append(stage.process(x[pos : pos + n]))
        pos += n
    return np.concatenate(out)


def test_multipath_streaming_equals_one_shot(rng):
    x = _noise(rng, 5000)
    taps = [1.0, 0.3 - 0.2j, 0.0, 0.1j]
    y = _stream(cs.MultipathStage(taps), x, rng)
    ref = np.convolve(x.astype(np.complex128), np.array(taps))[: len(x)]
    np.testing.assert_allclose(y, ref, atol=1e-5)


def test_integer_delay_streaming(rng):
    x = _noise(rng, 3000)
    y = _stream(cs.IntegerDelayStage(37), x, rng)
    assert len(y) == len(x) and np.all(y[:37] == 0)
    np.testing.assert_array_equal(y[37:], x[:-37])


@pytest.mark.parametrize(("sco_ppm", "delay"), [(0.0, 2.5), (200.0, 0.0), (-150.0, 7.25)])
def test_resampler_streaming_equals_one_shot_model(rng, sco_ppm, delay):
    x = _lowpass(rng, 8192)
    y = _stream(cs.ResampleStage(sco_ppm, delay), x, rng)
    ratio = 1 + sco_ppm * 1e-6
    times = np.arange(len(y)) * ratio - delay
    ref = imp.interpolate_at(x, times)  # the same model, evaluated at once
    assert len(y) >= len(x) / ratio - imp.INTERP_HALF_TAPS - 2
    np.testing.assert_allclose(y, ref, atol=2e-5)
    if sco_ppm == 0:
        np.testing.assert_allclose(y[:4000], imp.apply_delay(x, delay)[:4000], atol=2e-5)


def test_resampler_sco_matches_apply_sco(rng):
    x = _lowpass(rng, 6000)
    y = _stream(cs.ResampleStage(500.0, 0.0), x, rng)
    ref = imp.apply_sco(x, 500.0)
    n = min(len(y), len(ref))
    assert n > 5900
    np.testing.assert_allclose(y[:n], ref[:n], atol=2e-5)


def test_cfo_continuous_across_blocks(rng):
    x = _noise(rng, 4000)
    y = _stream(cs.CfoStage(0.0123), x, rng)
    np.testing.assert_allclose(y, imp.apply_cfo(x, 0.0123), atol=2e-5)


def test_phase_noise_wiener_increments_continuous(rng):
    std = 0.01
    x = np.ones(200_000, np.complex64)
    stage = cs.PhaseNoiseStage(std, np.random.default_rng(3))
    y = _stream(stage, x, rng, max_block=5000)
    increments = np.diff(np.unwrap(np.angle(y.astype(np.complex128))))
    # Every increment, block boundaries included, is one N(0, std^2) step: no phase jumps.
    assert np.std(increments) == pytest.approx(std, rel=0.03)
    assert np.max(np.abs(increments)) < 6 * std


def test_block_size_tracks_rate():
    assert cs.block_samples_for(1e6) == 4096
    assert cs.block_samples_for(1e3) == cs.MIN_BLOCK_SAMPLES
    assert cs.block_samples_for(1e9) == cs.MAX_BLOCK_SAMPLES


def test_input_queue_takes_across_chunks():
    q = cs.InputQueue(capacity=100)
    q.push(np.arange(5).astype(np.complex64))
    q.push(np.arange(5, 12).astype(np.complex64))
    assert q.take(7).real.tolist() == list(range(7)) and q.size == 5
    assert q.take(100).real.tolist() == list(range(7, 12)) and q.size == 0



def test_cfo_phase_does_not_drift_over_a_long_stream():
    x = np.ones(4096 * 256, np.complex64)
    stage = cs.CfoStage(0.0123)
    y = np.concatenate([stage.process(x[i : i + 4096]) for i in range(0, len(x), 4096)])
    np.testing.assert_allclose(y, imp.apply_cfo(x, 0.0123), atol=1e-6)


def test_awgn_stage_power_and_whiteness_across_blocks(rng):
    """Pooled noise at the radio-rate block size: the set power, and no correlation between
    neighbours, the samples either side of a block boundary included."""
    stage = cs.AwgnStage(0.3, np.random.default_rng(1))
    block = cs.MAX_BLOCK_SAMPLES
    y = np.concatenate([stage.process(np.zeros(block, np.complex64)) for _ in range(16)])
    assert np.mean(np.abs(y) ** 2) == pytest.approx(0.3, rel=0.01)
    lag1 = np.vdot(y[:-1], y[1:]) / len(y) / 0.3
    assert abs(lag1) < 5 / np.sqrt(len(y))
    edges = np.arange(block, len(y), block)
    across = np.mean(y[edges - 1].conj() * y[edges])  # 15 pairs: only a gross repeat shows
    assert abs(across) < 0.3


def test_channel_chain_at_radio_block_size_keeps_signal_and_noise(rng):
    """CFO + clock offset + AWGN in 65536-sample blocks: the output minus the noiseless
    float64 model is noise of the set power; the model part is the reference's."""
    x = _lowpass(rng, 8 * cs.MAX_BLOCK_SAMPLES)
    settings = cs.ChannelSettings(noise_power=0.05, cfo_cps=0.0021, sco_ppm=20.0)
    model = cs.ChannelModel(settings, np.random.default_rng(2))
    y = np.concatenate([model.process(x[i : i + cs.MAX_BLOCK_SAMPLES])
                        for i in range(0, len(x), cs.MAX_BLOCK_SAMPLES)])
    times = np.arange(len(y)) * (1 + 20e-6)
    ref = imp.apply_cfo(imp.interpolate_at(x, times), 0.0021)
    noise = y.astype(np.complex128) - ref
    assert np.mean(np.abs(noise) ** 2) == pytest.approx(0.05, rel=0.01)
    # What is left once the noise is averaged out: the model within its 1e-5 error.
    assert abs(np.vdot(ref, noise) / np.vdot(ref, ref)) < 5 * np.sqrt(0.05 / len(y))
