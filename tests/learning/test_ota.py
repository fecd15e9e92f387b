"""The model-free learner (aeradio/learning/ota.py): the policy-gradient estimator and its steps."""

import math

import numpy as np
import pytest
import torch

from aeradio.core.config import LinkConfig
from aeradio.core.errors import ConfigError
from aeradio.learning.ota import OtaLearner, OtaSettings, perturb, policy_gradient_surrogate

STD = 0.3


def _toy_loss(x_p: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """A smooth, non-quadratic per-block loss ``[B]`` of ``[B, n]`` complex symbols."""
    return torch.log1p((x_p - target).abs().pow(2)).sum(dim=1) + 0.3 * torch.cos(x_p.real).sum(dim=1)


def test_policy_gradient_expectation_is_the_gradient_of_the_expected_loss() -> None:
    """Averaged over many perturbation draws, the REINFORCE estimate (which never
    differentiates the loss) equals the gradient of E_w[loss] (here computed pathwise,
    differentiating the toy loss through the perturbed symbols, on far more draws)."""
    g = torch.Generator().manual_seed(7)
    M, n, batch = 3, 2, 256
    theta = torch.randn(M, n, dtype=torch.complex64, generator=g)
    targets = torch.randn(M, n, dtype=torch.complex64, generator=g)

    # Reference: pathwise gradient of the mean loss, 2M draws.
    ref = torch.zeros(M, n, dtype=torch.complex64)
    chunks = 20
    for _ in range(chunks):
        th = theta.clone().requires_grad_(True)
        labels = torch.randint(0, M, (100_000,), generator=g)
        w = torch.view_as_complex(torch.randn(len(labels), n, 2, generator=g) * math.sqrt(0.5))
        x_p = math.sqrt(1 - STD**2) * th[labels] + STD * w
        _toy_loss(x_p, targets[labels]).mean().backward()
        ref += th.grad / chunks

    # Policy gradient: the loss values only, averaged over many batches.
    est = torch.zeros(M, n, dtype=torch.complex64)
    batches = 1500
    for _ in range(batches):
        th = theta.clone().requires_grad_(True)
        labels = torch.randint(0, M, (batch,), generator=g)
        x_p = perturb(th[labels], STD, g)
        with torch.no_grad():
            losses = _toy_loss(x_p, targets[labels])
        policy_gradient_surrogate(th[labels], x_p, losses, STD).backward()
        est += th.grad / batches
    err = (est - ref).abs()
    # The estimator's standard error here is about 0.004 per entry; the gradient ~0.1-0.5.
    assert float(err.max()) < 0.03, (est, ref)
    assert float(ref.abs().min()) > 0.05  # a non-trivial gradient in every entry
    # A wrong sign or scale (e.g. log pi without the 1/s^2) would be far off.
    assert float((est.abs() - ref.abs()).abs().max() / ref.abs().max()) < 0.1


def test_policy_gradient_needs_two_blocks() -> None:
    x = torch.ones(1, 1, dtype=torch.complex64, requires_grad=True)
    with pytest.raises(ConfigError, match="at least 2 blocks"):
        policy_gradient_surrogate(x, x.detach(), torch.ones(1), STD)


def test_perturbation_keeps_unit_energy() -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.exp(1j * torch.rand(200_000, 1, generator=g) * 6.283).to(torch.complex64)
    x_p = perturb(x, 0.4, g)
    assert float(x_p.abs().pow(2).mean()) == pytest.approx(1.0, abs=0.01)


def test_settings_are_range_checked() -> None:
    with pytest.raises(ConfigError, match="--perturbation-std"):
        OtaSettings(perturbation_std=1.0)


def _awgn_batch(
    lut: np.ndarray, labels: np.ndarray, noise_var: float, rng: np.random.Generator
) -> np.ndarray:
    noise = (rng.standard_normal(lut[labels].shape) + 1j * rng.standard_normal(lut[labels].shape))
    return (lut[labels] + math.sqrt(noise_var) * noise).astype(np.complex64)


def test_alternating_steps_learn_qpsk_from_scratch_on_awgn() -> None:
    """The learner alone, AWGN symbols in place of the real loop: BLER from a random
    4-point LUT falls to near QPSK's (SER 2.4e-2 at Es/N0 = 7 dB... here Eb/N0 6 dB, k=2)."""
    cfg = LinkConfig.from_dict({"model": {"k": 2, "n": 1, "hidden_width": 16, "hidden_layers": 1}})
    learner = OtaLearner.start(cfg, OtaSettings(), seed=3)
    rng = np.random.default_rng(0)
    nv = 1 / (2 * 2 * 10 ** (6 / 10))  # noise variance per real component at Eb/N0 6 dB, R = 2
    blocks = 512

    def errors_now() -> float:
        labels = rng.integers(0, 4, 20_000)
        y = _awgn_batch(learner.lut(), labels, nv, rng)
        with torch.no_grad():
            logits = learner._logits(torch.from_numpy(y), torch.full((len(y),), nv))
        return float((logits.argmax(1).numpy() != labels).mean())

    before = errors_now()
    for _ in range(150):
        labels = rng.integers(0, 4, blocks)
        learner.receiver_step(_awgn_batch(learner.lut(), labels, nv, rng), np.full(blocks, nv), labels)
        labels = rng.integers(0, 4, blocks)
        x_p = learner.perturbed(labels)
        y = (x_p + math.sqrt(nv) * (rng.standard_normal(x_p.shape) + 1j * rng.standard_normal(x_p.shape)))
        learner.transmitter_step(y.astype(np.complex64), np.full(blocks, nv), labels, x_p)
    after = errors_now()
    assert after < 0.5 * before
    assert after < 0.012  # QPSK's SER at Eb/N0 6 dB is 4.7e-3 (docs/contracts.md)
    snap = learner.snapshot()
    assert np.mean(np.abs(snap["lut"]) ** 2) == pytest.approx(1.0, abs=1e-5)
