"""Probe frames: known i.i.d. symbols over the amplitude range, mean energy 1."""

import math

import numpy as np
import pytest

from aeradio.core.config import LinkConfig
from aeradio.core.errors import ConfigError
from aeradio.dsp import conv_code
from aeradio.dsp.framing import PAYLOAD_PROBE, decode_header, encode_header
from aeradio.dsp.probe import MIN_PROBE_RADIUS, frame_seed, probe_header, probe_radius, probe_symbols


@pytest.mark.parametrize("radius", [1.0, math.sqrt(2.0), 2.0, 3.0])
def test_probe_symbols_fill_the_disc_with_unit_mean_energy(radius: float) -> None:
    x = probe_symbols(5, 11, 200_000, radius)
    assert np.abs(x).max() <= radius * (1 + 1e-6)
    assert np.mean(np.abs(x) ** 2) == pytest.approx(1.0, abs=0.01)
    # Phase uniform: the mean of x and of x^2 vanish.
    assert abs(np.mean(x)) < 0.01 and abs(np.mean(x**2)) < 0.01
    if radius > 1.0:  # amplitudes out to the edge, not only near 1
        assert np.quantile(np.abs(x), 0.999) > 0.9 * radius
    if radius == pytest.approx(math.sqrt(2.0)):  # uniform disc: P(|x| < R/2) = 1/4
        assert np.mean(np.abs(x) < radius / 2) == pytest.approx(0.25, abs=0.005)


def test_probe_symbols_follow_seed_and_seq_only() -> None:
    a = probe_symbols(1, 2, 100, 2.0)
    assert np.array_equal(a, probe_symbols(1, 2, 100, 2.0))
    assert not np.array_equal(a, probe_symbols(1, 3, 100, 2.0))
    assert not np.array_equal(a, probe_symbols(2, 2, 100, 2.0))
    with pytest.raises(ConfigError, match="probe seed"):
        probe_symbols(4096, 0, 10, 2.0)
    with pytest.raises(ConfigError, match="probe radius"):
        probe_symbols(0, 0, 10, 0.5)


def test_probe_header_roundtrip_carries_the_seed() -> None:
    h = probe_header(70000, seed=77, model_hash=0xBEEF, last=True)
    back = decode_header(4.0 * (1 - 2 * conv_code.encode(encode_header(h)[None, :])[0].astype(float)))
    assert back == h and back.payload == PAYLOAD_PROBE and back.last and frame_seed(back) == 77
    assert back.seed is None  # the test-pattern seed property stays test-pattern only


def test_probe_radius() -> None:
    cfg = LinkConfig.from_dict({"model": {"k": 2, "n": 1}})
    qpsk = np.exp(1j * np.pi / 4 * np.array([1, 3, 5, 7]))[:, None].astype(np.complex64)
    assert probe_radius(cfg, qpsk) == MIN_PROBE_RADIUS
    assert probe_radius(cfg, 2.5 * qpsk) == pytest.approx(2.5)
    peak = LinkConfig.from_dict({"model": {"k": 2, "n": 1, "normalization": "peak", "peak_amplitude": 1.7}})
    assert probe_radius(peak, qpsk) == 1.7
