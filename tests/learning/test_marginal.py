"""Coded message models: bit LLRs by marginalizing the message posteriors (``[model] bit_llrs =
"marginal"``, configs/ae-n7-k8-ldpc.toml)."""

import json

import numpy as np
import pytest
import torch

from aeradio import cli
from aeradio.core.config import MAX_MARGINAL_K, LinkConfig
from aeradio.core.errors import ConfigError, ModelFormatError
from aeradio.core.model_dir import MODEL_JSON, load_link_config, save_model
from aeradio.core.units import noise_var_per_real
from aeradio.learning.bitwise import MarginalRuntime, load_llr_runtime, marginal_llrs, message_bits
from aeradio.learning.inference import ReceiverRuntime
from aeradio.learning.receiver import NeuralReceiver
from tests.flowgraphs.conftest import random_lut

SMALL_CODE = {"rate": 0.5, "codeword_bits": 120, "bp_iterations": 20}


def marginal_config(**model) -> LinkConfig:
    return LinkConfig.from_dict({
        "name": "tiny-marginal",
        "model": {"k": 4, "n": 2, "hidden_width": 16, "hidden_layers": 1, "bit_llrs": "marginal", **model},
        "training": {"ebn0_db_min": 4.0, "ebn0_db_max": 8.0},
        "code": SMALL_CODE,
    })


def brute_force_llrs(logits: np.ndarray, k: int) -> np.ndarray:
    """Per bit, float64: log of the summed posteriors of the messages with the bit set over
    those with it clear (a max-shifted sum of exps, no log-sum-exp helper)."""
    logits = logits.astype(np.float64)
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    bits = message_bits(1 << k, k).astype(bool)
    return np.stack([np.log(p[:, bits[:, i]].sum(1)) - np.log(p[:, ~bits[:, i]].sum(1)) for i in range(k)], 1)


# ---- the marginalization ----------------------------------------------------------------------
@pytest.mark.parametrize("k", [1, 3, 8, 12])
def test_marginal_llrs_equal_a_brute_force_sum(k, rng):
    logits = rng.normal(0.0, 4.0, (64, 1 << k)) + rng.normal(0.0, 50.0, (64, 1))  # a constant per row
    got = marginal_llrs(torch.from_numpy(logits.astype(np.float32)), k).numpy()
    assert got.shape == (64, k) and got.dtype == np.float32
    np.testing.assert_allclose(got, brute_force_llrs(logits.astype(np.float32), k), rtol=1e-4, atol=2e-4)


def test_marginal_llrs_of_confident_posteriors_do_not_overflow(rng):
    """Logits 1e3 apart (a receiver at a clean channel): exp would overflow, log-sum-exp does not."""
    logits = np.zeros((5, 256), np.float32)
    messages = rng.integers(0, 256, 5)
    logits[np.arange(5), messages] = 1000.0
    got = marginal_llrs(torch.from_numpy(logits), 8).numpy()
    # 1000 against 128 messages of logit 0 on the other side: 1000 - log 128.
    assert np.all(np.isfinite(got)) and np.allclose(np.abs(got), 1000.0 - np.log(128.0), atol=1e-3)
    assert np.array_equal(got > 0, message_bits(256, 8)[messages].astype(bool))


def test_hard_decisions_are_the_bits_of_the_most_likely_message(rng):
    """When the most likely message has posterior > 1/2, every bit's marginal agrees with it
    (each of its bits has probability >= that posterior); below, bit-wise MAP decisions may
    form another message, and do on some of these draws."""
    logits = (rng.normal(0.0, 3.0, (4000, 256)) + rng.uniform(0, 20, (4000, 1)) * np.eye(256)[
        rng.integers(0, 256, 4000)]).astype(np.float32)
    got = marginal_llrs(torch.from_numpy(logits), 8).numpy()
    best = logits.argmax(axis=1)
    posterior = torch.softmax(torch.from_numpy(logits), dim=1).numpy().max(axis=1)
    agree = np.all((got > 0) == message_bits(256, 8)[best].astype(bool), axis=1)
    confident = posterior > 0.5
    assert 1000 < confident.sum() < 3900  # both kinds of rows are drawn
    assert agree[confident].all()
    assert not agree[~confident].all()


# ---- the config: bad input is one line ---------------------------------------------------------
@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"model": {"k": 6, "n": 1, "receiver": "bitwise", "bit_llrs": "marginal"}, "code": {}},
         "is bit-wise already"),
        ({"model": {"k": MAX_MARGINAL_K + 1, "n": 4, "hidden_width": 8, "hidden_layers": 1,
                    "bit_llrs": "marginal"}, "code": {"codeword_bits": 1326}},
         f'model.k must be in [1, {MAX_MARGINAL_K}] with bit_llrs = "marginal"'),
        ({"model": {"k": 8, "n": 7, "bit_llrs": "marginal"}, "code": {"codeword_bits": 1500}},
         "code.codeword_bits must be a multiple of model.k (8"),
        ({"model": {"k": 8, "n": 7, "bit_llrs": "marginal"}}, "needs a [code] section"),
        ({"model": {"k": 8, "n": 7}, "code": {"codeword_bits": 1504}}, 'bit_llrs = "marginal"'),
        ({"model": {"k": 8, "n": 7, "bit_llrs": "sum"}, "code": {"codeword_bits": 1504}},
         "model.bit_llrs must be one of receiver, marginal"),
    ],
)
def test_bad_marginal_configs_are_one_line(data, needle):
    with pytest.raises(ConfigError) as err:
        LinkConfig.from_dict(data)
    assert needle in str(err.value) and "\n" not in str(err.value), str(err.value)


@pytest.mark.parametrize(
    ("model", "code", "needle"),
    [
        ('k = 6\nn = 1\nreceiver = "bitwise"\nbit_llrs = "marginal"', "", "is bit-wise already"),
        ('k = 13\nn = 4\nhidden_width = 8\nbit_llrs = "marginal"', "codeword_bits = 1326",
         "model.k must be in [1, 12]"),
        ('k = 8\nn = 7\nbit_llrs = "marginal"', "codeword_bits = 1500", "multiple of model.k"),
    ],
)
def test_the_cli_refuses_bad_marginal_configs_with_exit_2(model, code, needle, tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text(f"[model]\n{model}\n[code]\n{code}\n")
    assert cli.main(["train", "--config", str(path), "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err, err
    assert not (tmp_path / "m").exists()


def test_the_shipped_config_is_ae_n7_k8_under_the_code():
    coded = LinkConfig.from_toml("configs/ae-n7-k8-ldpc.toml")
    plain = LinkConfig.from_toml("configs/ae-n7-k8.toml")
    assert coded.model.marginal and not coded.model.bitwise and coded.code.codeword_bits % 8 == 0
    assert coded.info_rate == pytest.approx(8 / 7 / 2)
    # The same training noise as ae-n7-k8: its range per channel bit plus 10 log10(2) dB.
    for key in ("ebn0_db_min", "ebn0_db_max"):
        coded_nv = noise_var_per_real(getattr(coded.training, key), coded.info_rate)
        assert coded_nv == pytest.approx(noise_var_per_real(getattr(plain.training, key), plain.info_rate),
                                         rel=0.005)
    for key in ("steps", "batch_size", "learning_rate", "tx_lr_scale", "receiver_only_fraction", "seed"):
        assert getattr(coded.training, key) == getattr(plain.training, key), key


# ---- a model directory --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def marginal_model(tmp_path_factory):
    """A coded message model whose receiver is ML detection of a random LUT (the matched
    filter at the posterior scale of Eb/N0 6 dB)."""
    cfg = marginal_config()
    lut = random_lut(cfg.model.M, cfg.model.n, np.random.default_rng(3))
    torch.manual_seed(0)
    rx = NeuralReceiver.from_config(cfg.model)
    with torch.no_grad():
        rx.log_scale.fill_(float(np.log(cfg.info_rate * 10 ** 0.6)))  # 1 / (2 sigma^2) at 6 dB
        rx.out.weight.zero_()
        rx.out.bias.zero_()
        rx.untie(torch.from_numpy(lut))
    return save_model(tmp_path_factory.mktemp("marginal") / "m", cfg, lut, rx.state_dict())


def test_model_json_records_marginal_llrs(marginal_model, tmp_path):
    meta = json.loads((marginal_model / MODEL_JSON).read_text())
    assert meta["bit_llrs"] == meta["config"]["model"]["bit_llrs"] == "marginal"
    assert meta["receiver_output"] == "message_logits" and meta["code"]["codeword_bits"] == 120
    forged = tmp_path / "forged"
    forged.mkdir()
    for f in marginal_model.iterdir():
        (forged / f.name).write_bytes(f.read_bytes())
    (forged / MODEL_JSON).write_text(json.dumps({**meta, "bit_llrs": "receiver"}))
    with pytest.raises(ModelFormatError, match="bit_llrs is 'receiver' but the config gives 'marginal'"):
        load_link_config(forged)


def test_runtime_llrs_are_the_receivers_logits_marginalized(marginal_model, rng):
    runtime = load_llr_runtime(marginal_model)
    assert isinstance(runtime, MarginalRuntime)
    y = (rng.normal(size=(3000, 2)) + 1j * rng.normal(size=(3000, 2))).astype(np.complex64)
    logits = ReceiverRuntime.load(marginal_model).logits(y)
    got = runtime.llrs(y, 0.1)  # chunked: 3000 blocks are three chunks
    np.testing.assert_allclose(got, brute_force_llrs(logits, 4), rtol=1e-4, atol=2e-4)
    confident = torch.softmax(torch.from_numpy(logits), dim=1).numpy().max(axis=1) > 0.5
    decided = message_bits(16, 4)[runtime.decide(y, 0.1)].astype(bool)
    np.testing.assert_array_equal((got > 0)[confident], decided[confident])


def test_uncoded_paths_refuse_a_coded_message_model(marginal_model, tmp_path, capsys):
    from aeradio.gnuradio.model import NumpyReceiver
    from aeradio.learning.bitwise import BitwiseRuntime
    from aeradio.learning.evaluate import simulate_bler

    with pytest.raises(ModelFormatError, match="is a coded model") as err:
        NumpyReceiver.load(marginal_model)
    assert "\n" not in str(err.value)
    with pytest.raises(ModelFormatError, match="block-error evaluation needs an uncoded message model"):
        simulate_bler(marginal_model, 5.0)
    with pytest.raises(ModelFormatError, match="not a bit-wise model"):
        BitwiseRuntime.load(marginal_model)
    assert cli.main(["train-ota", "--model", str(marginal_model), "--tx-device", "zmq:tcp://127.0.0.1:1",
                     "--rx-device", "zmq:tcp://127.0.0.1:2", "--out", str(tmp_path / "ota")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is a coded model" in err[0]
    assert "train-ota needs an uncoded message model" in err[0]


def test_a_bitwise_model_is_not_marginalized(tmp_path):
    from aeradio.learning.bitwise import BitwiseReceiver

    cfg = LinkConfig.from_dict({"model": {"k": 2, "n": 1, "receiver": "bitwise", "hidden_width": 4,
                                          "hidden_layers": 1}, "code": SMALL_CODE})
    lut = random_lut(4, 1, np.random.default_rng(0))
    model = save_model(tmp_path / "bw", cfg, lut, BitwiseReceiver.from_config(cfg.model).state_dict())
    assert json.loads((model / MODEL_JSON).read_text())["bit_llrs"] == "receiver"
    with pytest.raises(ModelFormatError, match="do not come from marginalizing"):
        MarginalRuntime.load(model)


def test_eval_of_a_marginal_model_reports_coded_figures(marginal_model, tmp_path, capsys):
    out = tmp_path / "eval.json"
    assert cli.main(["eval", "--model", str(marginal_model), "--ebn0-db", "3:9:6", "--target-errors", "20",
                     "--max-blocks", "400", "--json", str(out), "--quiet",
                     "--plots", str(tmp_path / "p")]) == 0
    doc = json.loads(out.read_text())
    assert doc["coded"] and doc["bit_llrs"] == "marginal" and doc["ebn0_db"] == [3.0, 9.0]
    assert doc["info_bits_per_channel_use"] == pytest.approx(1.0)  # 1/2 x 4/2
    assert doc["baselines"] == {}  # no square QAM matches n = 2
    # The receiver is ML detection of the LUT: its marginal LLRs decode about as the exact
    # APP demapper's (which knows the noise); at 9 dB the code corrects the raw bit errors.
    assert doc["uncoded_ber"][0] > doc["uncoded_ber"][1] > 0
    assert doc["bler"][0] > 0.5 and doc["bler"][1] < 0.05 and doc["ber"][1] < 0.1 * doc["uncoded_ber"][1]
    assert abs(doc["errors"][0] - doc["ml_errors"][0]) <= 10
    assert "N0 = 1 / (Eb/N0 x code rate x k / n)" in capsys.readouterr().out
    assert (tmp_path / "p" / "bler.png").stat().st_size > 0
    assert (tmp_path / "p" / "constellation.png").stat().st_size > 0
