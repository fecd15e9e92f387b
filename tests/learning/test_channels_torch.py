"""The torch channels against the numpy impairment definitions they must share."""

import math

import numpy as np
import pytest
import torch

from aeradio.core.config import TrainingConfig
from aeradio.core.errors import ConfigError
from aeradio.dsp import impairments as imp
from aeradio.learning.channels import (
    AWGN,
    IQImbalance,
    Multipath,
    RandomPhase,
    RappPA,
    RayleighBlockFading,
    ResidualCFO,
    WienerPhaseNoise,
    build_channel,
    draw_noise_var,
    iq_imbalance_coefficients,
)

B = 20000


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _ones(b: int = B, n: int = 4) -> torch.Tensor:
    return torch.ones(b, n, dtype=torch.complex64)


def test_awgn_variance_per_real_component():
    noise_var = torch.full((B,), 0.05)
    noise = AWGN()(torch.zeros(B, 4, dtype=torch.complex64), noise_var, _gen()).numpy()
    for part in (noise.real, noise.imag):
        # 80k samples: the variance estimate has ~0.5 % relative std; allow 3 %.
        assert np.var(part) == pytest.approx(0.05, rel=0.03)
    assert abs(np.mean(noise.real * noise.imag)) < 0.002  # circular


def test_noise_var_follows_the_ebn0_convention():
    nv = draw_noise_var(B, 6.0, 6.0, 2.0, _gen()).numpy()
    assert nv == pytest.approx(1.0 / (2 * 2.0 * 10**0.6))
    nv = draw_noise_var(B, 2.0, 8.0, 1.0, _gen()).numpy()
    ebn0_db = 10 * np.log10(1.0 / (2 * nv))
    assert ebn0_db.min() >= 2.0 - 1e-4 and ebn0_db.max() <= 8.0 + 1e-4
    assert np.mean(ebn0_db) == pytest.approx(5.0, abs=0.05)  # uniform in dB


def test_random_phase_is_uniform_and_keeps_amplitude():
    y = RandomPhase()(_ones(), None, _gen()).numpy()
    assert np.allclose(np.abs(y), 1.0, atol=1e-6)
    assert np.allclose(y, y[:, :1])  # one phase per block
    assert abs(np.mean(y[:, 0])) < 0.03  # E[exp(j theta)] = 0 for theta ~ U[0, 2 pi)


def test_residual_cfo_matches_apply_cfo_per_block():
    f_max = 0.01
    y = ResidualCFO(f_max)(_ones(B, 8), None, _gen()).numpy()
    # Each block is apply_cfo(ones, f) for its own f: recover f from symbol 1.
    f = np.angle(y[:, 1]) / (2 * np.pi)
    assert np.abs(f).max() <= f_max + 1e-7
    assert np.mean(np.abs(f)) == pytest.approx(f_max / 2, rel=0.05)
    for b in range(3):
        ref = imp.apply_cfo(np.ones(8, np.complex64), float(f[b]))
        assert np.allclose(y[b], ref, atol=1e-5)


def test_rayleigh_block_fading_statistics():
    y = RayleighBlockFading()(_ones(B, 3), None, _gen()).numpy()
    assert np.allclose(y, y[:, :1])
    h = y[:, 0]
    assert np.mean(np.abs(h) ** 2) == pytest.approx(1.0, rel=0.04)
    assert np.var(h.real) == pytest.approx(0.5, rel=0.05)
    # |h|^2 is exponential: P(|h|^2 < 0.1) = 1 - exp(-0.1).
    assert np.mean(np.abs(h) ** 2 < 0.1) == pytest.approx(1 - math.exp(-0.1), abs=0.01)


def test_multipath_is_apply_multipath_with_the_drawn_taps():
    ch = Multipath(3, 0.5)
    x = torch.view_as_complex(torch.randn(50, 6, 2, generator=_gen(5)))
    taps = ch.draw_taps(50, _gen(9)).numpy()
    y = ch(x, None, _gen(9)).numpy()
    for b in range(50):
        assert np.allclose(y[b], imp.apply_multipath(x[b].numpy(), taps[b]), atol=1e-5)
    big = ch.draw_taps(B, _gen(1)).numpy()
    powers = np.mean(np.abs(big) ** 2, axis=0)
    assert powers.sum() == pytest.approx(1.0, rel=0.03)
    assert powers[1] / powers[0] == pytest.approx(0.5, rel=0.05)


@pytest.mark.parametrize("gain_db, phase_deg", [(0.0, 0.0), (1.5, -7.0), (-0.8, 12.0)])
def test_iq_coefficients_match_numpy(gain_db, phase_deg):
    k1, k2 = iq_imbalance_coefficients(torch.tensor(gain_db), torch.tensor(phase_deg))
    r1, r2 = imp.iq_imbalance_coefficients(gain_db, phase_deg)
    assert complex(k1) == pytest.approx(r1, abs=1e-6)
    assert complex(k2) == pytest.approx(r2, abs=1e-6)


def test_iq_stage_is_apply_iq_imbalance_with_drawn_parameters():
    x = torch.view_as_complex(torch.randn(B, 2, 2, generator=_gen(3)))
    y = IQImbalance(2.0, 10.0)(x, None, _gen()).numpy()
    xn = x.numpy()
    # I is untouched (the model's I' = I); Q' = g (Q cos phi - I sin phi).
    assert np.allclose(y.real, xn.real, atol=1e-5)
    # Recover (g, phi) of block 0 from two symbols and check against the numpy model.
    a = np.array([[xn[0, 0].imag, -xn[0, 0].real], [xn[0, 1].imag, -xn[0, 1].real]])
    gc, gs = np.linalg.solve(a, y[0].imag)
    g_db, phi_deg = 20 * np.log10(np.hypot(gc, gs)), np.degrees(np.arctan2(gs, gc))
    assert abs(g_db) <= 2.0 + 1e-4 and abs(phi_deg) <= 10.0 + 1e-3
    assert np.allclose(y[0], imp.apply_iq_imbalance(xn[0], g_db, phi_deg), atol=1e-4)


def test_rapp_matches_numpy_model():
    x = torch.view_as_complex(torch.randn(200, 4, 2, generator=_gen(4)))
    y = RappPA(2.0, 3.0)(x, None, _gen()).numpy()
    ref = imp.apply_rapp(x.numpy(), 2.0, 10 ** (3.0 / 20))
    assert np.allclose(y, ref, atol=1e-5)


def test_phase_noise_is_a_wiener_process():
    std = 0.05
    y = WienerPhaseNoise(std)(_ones(B, 6), None, _gen()).numpy()
    phase = np.unwrap(np.angle(y), axis=1)
    assert np.var(phase[:, 0]) == pytest.approx(std**2, rel=0.05)  # one step, as apply_phase_noise
    assert np.var(np.diff(phase, axis=1)) == pytest.approx(std**2, rel=0.05)
    assert np.var(phase[:, 5]) == pytest.approx(6 * std**2, rel=0.05)


def test_composition_uses_physical_order_and_rejects_unknown_names():
    cfg = TrainingConfig(iq_gain_db_max=1.0, cfo_cps_max=0.01)
    ch = build_channel("iq+awgn+phase+rapp+cfo", cfg)
    assert ch.names == ("rapp", "phase", "cfo", "awgn", "iq")
    y = ch(_ones(8, 7), torch.full((8,), 0.01), _gen())
    assert y.shape == (8, 7) and y.dtype == torch.complex64
    with pytest.raises(ConfigError, match="unknown channel 'fog'"):
        build_channel("awgn+fog", cfg)


def test_channels_are_differentiable():
    leaf = torch.randn(16, 5, 2, generator=_gen(), requires_grad=True)
    x = torch.view_as_complex(leaf)
    cfg = TrainingConfig(cfo_cps_max=0.01, phase_noise_std_rad=0.02, iq_gain_db_max=1, iq_phase_deg_max=5)
    ch = build_channel(
        "+".join(("awgn", "phase", "cfo", "rayleigh", "multipath", "iq", "rapp", "phasenoise")), cfg
    )
    ch(x, torch.full((16,), 0.1), _gen()).abs().sum().backward()
    assert leaf.grad is not None and torch.isfinite(leaf.grad).all()
