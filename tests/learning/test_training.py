import numpy as np
import pytest
import torch

from aeradio.core.config import LinkConfig, TrainingConfig
from aeradio.learning.baselines import qpsk_ser
from aeradio.learning.evaluate import ml_decoder, simulate_lut
from aeradio.learning.receiver import NeuralReceiver
from aeradio.learning.training import learning_rate_at, train_autoencoder


def _tiny(**training):
    base = {"steps": 300, "batch_size": 512, "ebn0_db_min": 4.0, "ebn0_db_max": 8.0, "tx_lr_scale": 10.0}
    return LinkConfig.from_dict(
        {"model": {"k": 2, "n": 1, "hidden_width": 16, "hidden_layers": 1}, "training": base | training},
        name="tiny",
    )


@pytest.fixture(scope="module")
def qpsk_like():
    return train_autoencoder(_tiny(), progress=False)


def test_ae_n1_k2_learns_qpsk(qpsk_like):
    lut = qpsk_like.lut
    # QPSK: four points of equal energy, 90 degrees apart.
    assert np.allclose(np.abs(lut[:, 0]), 1.0, atol=0.05)
    angles = np.sort(np.mod(np.angle(lut[:, 0]) - np.angle(lut[0, 0]), 2 * np.pi))
    assert np.allclose(np.diff(angles), np.pi / 2, atol=0.08)
    cfg = _tiny()
    rx = NeuralReceiver.from_config(cfg.model)
    rx.load_state_dict(qpsk_like.receiver_state)
    rx.eval()

    def neural(y, nv):
        with torch.no_grad():
            return rx(torch.from_numpy(y)).argmax(dim=1).numpy()

    res = simulate_lut(
        lut,
        {"neural": neural, "ml": ml_decoder(lut)},
        6.0,
        2.0,
        target_errors=300,
        generator=torch.Generator().manual_seed(3),
    )
    for name in ("neural", "ml"):
        lo, hi = res[name]["bler_ci"]
        # QPSK SER 4.8e-3 at 6 dB; a near-QPSK LUT may be a little worse, never better.
        assert 0.9 * lo <= qpsk_ser(6.0) and res[name]["bler"] < 1.25 * qpsk_ser(6.0), (name, res[name])


def test_training_is_seeded():
    first = train_autoencoder(_tiny(steps=40, receiver_only_fraction=0.25), progress=False)
    again = train_autoencoder(_tiny(steps=40, receiver_only_fraction=0.25), progress=False)
    assert np.array_equal(again.lut, first.lut)
    assert all(torch.equal(again.receiver_state[k], v) for k, v in first.receiver_state.items())
    other = train_autoencoder(_tiny(steps=40, receiver_only_fraction=0.25, seed=1), progress=False)
    assert not np.array_equal(other.lut, first.lut)


def test_history_and_plateau_stop():
    res = train_autoencoder(
        _tiny(steps=5000, plateau_steps=40, learning_rate=1e-7, tx_lr_scale=1.0), progress=False
    )
    assert res.stopped == "plateau" and res.steps < 5000
    assert res.history and res.history[-1]["step"] <= res.steps


def test_cosine_schedule_decays_to_the_floor():
    cfg = TrainingConfig(steps=10, learning_rate=1.0, lr_min_ratio=0.1)
    rates = [learning_rate_at(s, cfg) for s in range(11)]
    assert rates[0] == 1.0 and rates[-1] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(rates, rates[1:], strict=False))


def test_receiver_phase_starts_from_ml_detection():
    from aeradio.dsp.detection import ml_detect
    from aeradio.learning.training import start_receiver_phase
    from aeradio.learning.transmitter import Transmitter

    cfg = LinkConfig.from_dict({"model": {"k": 5, "n": 3, "hidden_width": 8}}, name="t")
    tx = Transmitter(32, 3, generator=torch.Generator().manual_seed(0))
    rx = NeuralReceiver.from_config(cfg.model)
    torch.nn.init.normal_(rx.out.weight)  # as if the joint phase had trained the MLP
    start_receiver_phase(tx, rx, cfg)
    lut = tx.export_lut()
    rng = np.random.default_rng(0)
    y = (lut[rng.integers(0, 32, 4000)] + 0.4 * rng.standard_normal((4000, 3))).astype(np.complex64)
    with torch.no_grad():
        neural = rx(torch.from_numpy(y)).argmax(dim=1).numpy()
    assert np.mean(neural != ml_detect(y, lut)) < 1e-3
    assert not tx.weight.requires_grad


def test_joint_receiver_choice():
    from aeradio.learning.training import joint_receiver_mode

    assert joint_receiver_mode(TrainingConfig(receiver_only_fraction=0.2)) == "matched_filter"
    assert joint_receiver_mode(TrainingConfig()) == "tied"  # no receiver phase to train the MLP later
    assert joint_receiver_mode(TrainingConfig(channel="awgn+phase", receiver_only_fraction=0.2)) == "free"
    assert joint_receiver_mode(TrainingConfig(joint_receiver="tied", receiver_only_fraction=0.2)) == "tied"


def test_random_phase_training_learns():
    cfg = LinkConfig.from_dict(
        {
            "model": {"k": 3, "n": 2, "hidden_width": 32},
            "training": {
                "channel": "awgn+phase",
                "steps": 400,
                "batch_size": 256,
                "ebn0_db_min": 10.0,
                "ebn0_db_max": 12.0,
                "receiver_only_fraction": 0.2,
            },
        },
        name="phase",
    )
    res = train_autoencoder(cfg, progress=False)
    # Guessing is wrong 7/8 of the time; a phase-blind receiver of a phase-blind LUT far less.
    assert res.history[-1]["bler"] < 0.2
