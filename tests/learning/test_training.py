import numpy as np
import pytest
import torch

from aeradio.config import LinkConfig, TrainingConfig
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


def test_training_is_seeded(qpsk_like):
    again = train_autoencoder(_tiny(), progress=False)
    assert np.array_equal(again.lut, qpsk_like.lut)
    other = train_autoencoder(_tiny(seed=1, steps=20), progress=False)
    assert not np.array_equal(other.lut, qpsk_like.lut[:, :])


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
