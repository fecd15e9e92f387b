"""The model-free learner (aeradio/learning/ota.py): the policy-gradient estimator and its steps."""

import math

import numpy as np
import pytest
import torch

from aeradio.core.config import LinkConfig
from aeradio.core.errors import ConfigError
from aeradio.learning.ota import (
    OtaLearner,
    OtaSettings,
    antithetic_partners,
    perturb,
    policy_gradient_surrogate,
)
from aeradio.learning.transmitter import CompandedTransmitter

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


# ---- the compander (--transmitter compander, compander+lut) ---------------------------------


def _trained_like_lut(M: int, n: int, g: torch.Generator) -> np.ndarray:
    """A Gaussian-like table of mean energy 1 (amplitudes spread like a trained LUT's)."""
    u = torch.view_as_complex(torch.randn(M, n, 2, generator=g) * math.sqrt(0.5))
    return (u / u.abs().pow(2).mean().sqrt()).numpy().astype(np.complex64)


def _peak_loss(x_p: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """A PA-like per-block loss ``[B]``: large amplitudes cost, small ones too (a fuller
    centre), plus loss noise that has nothing to do with the perturbation (the channel's)."""
    a = x_p.abs()
    return (torch.relu(a - 1.2).pow(2) + 0.3 * torch.relu(0.5 - a)).sum(dim=1) + noise


def _cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a * b).sum() / (a.norm() * b.norm()))


def test_compander_starts_as_the_lut_and_trains_what_it_is_told() -> None:
    g = torch.Generator().manual_seed(4)
    lut = _trained_like_lut(16, 3, g)
    for train_points, trained in ((False, ["log_gain"]), (True, ["weight", "log_gain"])):
        tx = CompandedTransmitter(lut, train_points=train_points)
        assert torch.allclose(tx.lut(), torch.from_numpy(lut), atol=1e-6)
        assert [name for name, p in tx.named_parameters() if p.requires_grad] == trained
    with torch.no_grad():
        tx.log_gain.copy_(torch.linspace(0.5, -0.5, len(tx.log_gain)))  # compress
    x = tx.lut().detach()
    assert float(x.abs().pow(2).mean()) == pytest.approx(1.0, abs=1e-5)  # the normalization holds
    assert float(x.abs().max()) < 0.9 * float(np.abs(lut).max())  # lower peaks


@pytest.mark.parametrize("antithetic", [False, True])
def test_policy_gradient_through_the_compander_is_the_gradient_of_the_expected_loss(antithetic: bool) -> None:
    """The estimator is unbiased through the compander and the normalization as well; and
    with antithetic pairs (``w`` and ``-w`` on one message, the pair's mean loss as baseline)."""
    g = torch.Generator().manual_seed(11)
    lut = _trained_like_lut(8, 2, g)
    tx = CompandedTransmitter(lut, train_points=False)
    with torch.no_grad():
        tx.log_gain.copy_(0.2 * torch.randn(len(tx.log_gain), generator=g))
    labels_all = torch.arange(8).repeat(64)

    tx.zero_grad()
    for _ in range(20):  # pathwise reference, 20 x 20480 draws
        labels = labels_all.repeat(40)
        w = torch.view_as_complex(torch.randn(len(labels), 2, 2, generator=g) * math.sqrt(0.5))
        x_p = math.sqrt(1 - STD**2) * tx.lut()[labels] + STD * w
        (_peak_loss(x_p, torch.zeros(len(labels))).mean() / 20).backward()
    ref = tx.log_gain.grad.clone()

    tx.zero_grad()
    batches = 600
    half = len(labels_all) // 2
    for _ in range(batches):
        if antithetic:  # one frame: block j + half carries block j's message and -w
            labels = torch.cat([labels_all[:half], labels_all[:half]])
            x = tx.lut()[labels]
            w = perturb(torch.zeros(half, 2, dtype=torch.complex64), STD, g) / STD
            x_p = math.sqrt(1 - STD**2) * x.detach() + STD * torch.cat([w, -w])
            partners = antithetic_partners(1, len(labels))
        else:
            labels, partners = labels_all, None
            x = tx.lut()[labels]
            x_p = perturb(x, STD, g)
        with torch.no_grad():
            losses = _peak_loss(x_p, torch.zeros(len(labels)))
        (policy_gradient_surrogate(x, x_p, losses, STD, partners) / batches).backward()
    est = tx.log_gain.grad
    assert float(ref.abs().max()) > 0.05
    assert float((est - ref).abs().max()) < 0.15 * float(ref.abs().max()), (est, ref)


def test_one_batch_estimates_the_compander_where_it_cannot_estimate_the_points() -> None:
    """Why train-ota adapts a trained model through the compander: with the loop's noise in
    the per-block loss, one batch of 1024 blocks over AE(7,8)'s 256 x 7 points gives a
    policy-gradient estimate of the 13 compander parameters that points the right way, while
    its estimate of the 3584 point coordinates is mostly noise (docs/train-ota.md measured
    the same on a waveform model of the impaired loop: one batch's point estimate had cosine
    -0.01 with the gradient and 33 times its norm)."""
    g = torch.Generator().manual_seed(5)
    M, n, blocks = 256, 7, 1024
    tx = CompandedTransmitter(_trained_like_lut(M, n, g), train_points=True)

    def exact() -> tuple[torch.Tensor, torch.Tensor]:
        tx.zero_grad()
        for _ in range(10):
            labels = torch.arange(M).repeat(40)
            w = torch.view_as_complex(torch.randn(len(labels), n, 2, generator=g) * math.sqrt(0.5))
            x_p = math.sqrt(1 - STD**2) * tx.lut()[labels] + STD * w
            (_peak_loss(x_p, torch.zeros(len(labels))).mean() / 10).backward()
        return tx.log_gain.grad.clone(), tx.weight.grad.clone()

    ref_gain, ref_points = exact()
    cos_gain, cos_points = [], []
    for _ in range(5):
        tx.zero_grad()
        labels = torch.randint(0, M, (blocks,), generator=g)
        x = tx.lut()[labels]
        x_p = perturb(x, STD, g)
        with torch.no_grad():
            losses = _peak_loss(x_p, 2.0 * torch.randn(blocks, generator=g))
        policy_gradient_surrogate(x, x_p, losses, STD).backward()
        cos_gain.append(_cosine(tx.log_gain.grad, ref_gain))
        cos_points.append(_cosine(tx.weight.grad, ref_points))
    assert min(cos_gain) > 0.5, cos_gain
    assert max(cos_points) < 0.2, cos_points


def test_the_learner_trains_the_compander_its_settings_name(tmp_path: object) -> None:
    cfg = LinkConfig.from_dict({"model": {"k": 2, "n": 1, "hidden_width": 16, "hidden_layers": 1}})
    scratch = OtaLearner.start(cfg, OtaSettings(), seed=3)
    model = scratch.snapshot()
    with pytest.raises(ConfigError, match="--transmitter compander"):
        OtaLearner.start(cfg, OtaSettings(transmitter="compander"), seed=3)
    rng = np.random.default_rng(1)
    for kind, points_move in (("compander", False), ("compander+lut", True)):
        learner = OtaLearner.start(cfg, OtaSettings(transmitter=kind), seed=3, lut=model["lut"],
                                   receiver_state=model["receiver_state"])
        np.testing.assert_allclose(learner.lut(), model["lut"], atol=1e-6)
        labels = rng.integers(0, 4, 256)
        x_p = learner.perturbed(labels)
        noise = rng.standard_normal(x_p.shape) + 1j * rng.standard_normal(x_p.shape)
        y = (x_p + 0.3 * noise).astype(np.complex64)
        weight = learner.tx.weight.detach().clone()
        learner.transmitter_step(y, np.full(256, 0.09), labels, x_p)
        assert float(learner.tx.log_gain.detach().abs().max()) > 0  # the compander moved
        assert bool((learner.tx.weight.detach() != weight).any()) == points_move


def test_the_transmitter_learning_rate_decays_as_one_over_t() -> None:
    cfg = LinkConfig.from_dict({"model": {"k": 2, "n": 1, "hidden_width": 16, "hidden_layers": 1}})
    learner = OtaLearner.start(cfg, OtaSettings(tx_learning_rate=0.02, tx_lr_decay_steps=10), seed=3)
    rng = np.random.default_rng(2)
    for _ in range(10):
        labels = rng.integers(0, 4, 64)
        x_p = learner.perturbed(labels)
        learner.transmitter_step(x_p, np.full(64, 0.05), labels, x_p)
    assert learner.tx_opt.param_groups[0]["lr"] == pytest.approx(0.01)  # 1 / (1 + 10 / 10)
    constant = OtaLearner.start(cfg, OtaSettings(tx_learning_rate=0.02), seed=3)
    labels = rng.integers(0, 4, 64)
    x_p = constant.perturbed(labels)
    constant.transmitter_step(x_p, np.full(64, 0.05), labels, x_p)
    assert constant.tx_opt.param_groups[0]["lr"] == pytest.approx(0.02)


def test_antithetic_batches_pair_messages_and_opposite_perturbations() -> None:
    cfg = LinkConfig.from_dict({"model": {"k": 2, "n": 2, "hidden_width": 16, "hidden_layers": 1},
                                "frame": {"blocks_per_frame": 8}})
    scratch = OtaLearner.start(cfg, OtaSettings(), seed=3).snapshot()
    learner = OtaLearner.start(cfg, OtaSettings(transmitter="compander", antithetic=True), seed=3,
                               lut=scratch["lut"], receiver_state=scratch["receiver_state"])
    rng = np.random.default_rng(4)
    messages = learner.transmitter_messages(rng.integers(0, 4, (3, 8)))
    np.testing.assert_array_equal(messages[:, 4:], messages[:, :4])
    x_p = learner.perturbed(messages)
    assert x_p.shape == (3, 8, 2)
    w = x_p - math.sqrt(1 - STD**2) * learner.lut()[messages]
    np.testing.assert_allclose(w[:, 4:], -w[:, :4], atol=1e-6)
    assert float(np.abs(w).min()) > 0
    noise = rng.standard_normal(x_p.shape) + 1j * rng.standard_normal(x_p.shape)
    y = (x_p + 0.3 * noise).astype(np.complex64)
    learner.transmitter_step(y.reshape(-1, 2), np.full(24, 0.09), messages.reshape(-1), x_p.reshape(-1, 2))
    assert float(learner.tx.log_gain.detach().abs().max()) > 0  # the compander moved
    with pytest.raises(ConfigError, match="whole frames"):
        learner.transmitter_step(y.reshape(-1, 2)[:20], np.full(20, 0.09), messages.reshape(-1)[:20],
                                 x_p.reshape(-1, 2)[:20])
    with pytest.raises(ConfigError, match="even"):
        learner.transmitter_messages(np.zeros((1, 7), np.int64))
    with pytest.raises(ConfigError, match="frames, blocks"):
        learner.perturbed(np.zeros(8, np.int64))
