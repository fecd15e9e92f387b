"""Coded models: the [code] section, bit-wise receivers, the 5G NR LDPC code, coded evaluation."""

import json
import math

import numpy as np
import pytest
import torch

from aeradio import cli
from aeradio.core.config import CodeConfig, LinkConfig
from aeradio.core.errors import ConfigError, ModelFormatError
from aeradio.core.model_dir import MODEL_JSON, load_link_config
from aeradio.learning.bitwise import app_llrs, bits_to_messages, message_bits, qam_gray_lut
from aeradio.learning.coded import app_demapper, simulate_coded, uncoded_bler_bound
from aeradio.learning.ldpc import DECODERS, Ldpc5GCode

#: A short code (60 information bits) keeps every test in seconds.
SMALL_CODE = {"rate": 0.5, "codeword_bits": 120, "bp_iterations": 20}


def coded_config(**training) -> LinkConfig:
    return LinkConfig.from_dict({
        "model": {"k": 6, "n": 1, "receiver": "bitwise", "noise_input": True, "hidden_width": 16},
        "training": {"tx_init": "qam", "steps": 20, "batch_size": 256, **training},
        "code": SMALL_CODE,
        "name": "tiny-coded",
    })


@pytest.fixture(scope="module")
def small_code() -> Ldpc5GCode:
    return Ldpc5GCode(CodeConfig(**SMALL_CODE), bits_per_symbol=6)


# ---- config -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("code", "needle"),
    [
        ({"rate": 0.55}, "code.rate must be one of"),
        ({"codeword_bits": 100_000}, "code.codeword_bits must be in [16, 16384]"),
        ({"rate": 1 / 3, "codeword_bits": 100}, "whole number of information bits"),
        ({"rate": 0.5, "codeword_bits": 16}, "whole number of information bits in [12, 8448]"),
        ({"bp_iterations": 0}, "code.bp_iterations must be in [1, 200]"),
        ({"kind": "turbo"}, "code.kind must be one of ldpc5g"),
        ({"depth": 3}, "unknown key 'depth' in [code]"),
    ],
)
def test_unsupported_code_is_one_line(code, needle):
    with pytest.raises(ConfigError, match=None) as err:
        LinkConfig.from_dict({"model": {"k": 6, "n": 1, "receiver": "bitwise"}, "code": code})
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_the_rates_listed_by_the_error_are_accepted_as_written():
    """The error listed 0.333333 (rounded), which it then refused when written in a config."""
    import re

    with pytest.raises(ConfigError) as err:
        LinkConfig.from_dict({"model": {"k": 6, "n": 1, "receiver": "bitwise"},
                              "code": {"rate": 0.333333}})
    listed = re.search(r"one of (.*), got", str(err.value)).group(1)
    values = [float(item.split(" ")[0]) for item in listed.split(", ")]
    assert len(values) == 6 and "(1/3)" in listed
    for rate in values:
        LinkConfig.from_dict({"model": {"k": 6, "n": 1, "receiver": "bitwise"},
                              "code": {"rate": rate, "codeword_bits": 1800}})


def test_code_needs_a_bitwise_receiver_and_whole_blocks():
    with pytest.raises(ConfigError, match='needs bit LLRs: model.receiver = "bitwise", or a message receiver '
                       'with model.bit_llrs = "marginal"'):
        LinkConfig.from_dict({"model": {"k": 6, "n": 1}, "code": {}})
    with pytest.raises(ConfigError, match="multiple of model.k"):
        LinkConfig.from_dict({"model": {"k": 4, "n": 1, "receiver": "bitwise"},
                              "code": {"codeword_bits": 1502}})


def test_info_rate_counts_information_bits():
    cfg = LinkConfig.from_toml("configs/ae-n1-k6-ldpc.toml")
    assert cfg.info_rate == pytest.approx(3.0)  # r k / n = 1/2 x 6 / 1
    assert cfg.code.info_bits == 750 and cfg.model.bitwise
    # the uncoded configs keep R = k / n and no code in their dict (old model.json unchanged)
    plain = LinkConfig.from_dict({"model": {"k": 4, "n": 7}})
    assert plain.info_rate == pytest.approx(4 / 7) and "code" not in plain.to_dict()
    assert LinkConfig.from_dict(cfg.to_dict()) == cfg


def test_train_of_a_coded_model_names_its_block_error_rate_uncoded(tmp_path, capsys):
    """New-user trial: "running BLER 6.0e-01" after training a coded model read as a failed
    run; it is the blocks' error rate before the outer code, and the summary says so."""
    path = tmp_path / "tiny.toml"
    path.write_text('[model]\nk = 6\nn = 1\nreceiver = "bitwise"\nnoise_input = true\nhidden_width = 16\n'
                    '[training]\nsteps = 5\nbatch_size = 64\n[code]\nrate = 0.5\ncodeword_bits = 1500\n')
    assert cli.main(["train", "--config", str(path), "--out", str(tmp_path / "m"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "running uncoded block error rate (before the outer code" in out and "running BLER" not in out


def test_the_cli_refuses_an_unsupported_rate_with_exit_2(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text('[model]\nk = 6\nn = 1\nreceiver = "bitwise"\n[code]\nrate = 0.7\n')
    assert cli.main(["train", "--config", str(path), "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "code.rate must be one of" in err and "0.7" in err


# ---- bit labels and LLRs ------------------------------------------------------------------
def test_llr_sign_convention_positive_means_one():
    lut = qam_gray_lut(6)
    bits = message_bits(64, 6)
    llrs = app_llrs(lut, lut, noise_var=0.01)  # each point received exactly
    assert np.array_equal(llrs > 0, bits.astype(bool))
    assert np.array_equal(bits_to_messages(bits), np.arange(64))


def test_qam_is_gray_labelled_with_unit_energy():
    lut = qam_gray_lut(6)[:, 0]
    assert np.mean(np.abs(lut) ** 2) == pytest.approx(1.0, abs=1e-6)
    spacing = np.min(np.abs(lut[:, None] - lut[None, :]) + 9 * np.eye(64))
    neighbours = np.argwhere(np.isclose(np.abs(lut[:, None] - lut[None, :]), spacing, atol=1e-5))
    assert all(bin(a ^ b).count("1") == 1 for a, b in neighbours)


def test_app_llrs_match_a_float64_reference():
    rng = np.random.default_rng(0)
    lut = qam_gray_lut(4)
    y = (lut[rng.integers(0, 16, 50)] + 0.2 * (rng.normal(size=(50, 1)) + 1j * rng.normal(size=(50, 1))))
    got = app_llrs(y.astype(np.complex64), lut, 0.04)
    d = np.abs(y.astype(np.complex128) - lut[:, 0].astype(np.complex128)[None]) ** 2
    like = np.exp(-d / 0.08)
    bits = message_bits(16, 4).astype(bool)
    want = np.log(np.stack([like[:, bits[:, j]].sum(1) / like[:, ~bits[:, j]].sum(1) for j in range(4)], 1))
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-3)


def test_app_llrs_equal_the_log_sum_exp_marginals_far_from_and_near_underflow():
    """The APP demapper sums each bit's labels after one exp per point; where one side of a
    bit underflows (points 1e3 and more nats apart: a clean channel) it falls back to the
    log-sum-exp marginals, so every LLR stays finite and equal to them."""
    from aeradio.learning.bitwise import marginal_llrs

    rng = np.random.default_rng(3)
    lut = qam_gray_lut(6)
    y = lut[rng.integers(0, 64, 400)] + 0.1 * (rng.normal(size=(400, 1)) + 1j * rng.normal(size=(400, 1)))
    for noise_var in (0.02, 1e-5):  # moderate SNR; a gap of 1e4 nats between neighbours
        got = app_llrs(y.astype(np.complex64), lut, noise_var)
        d = np.abs(y.astype(np.complex64) - lut[:, 0][None]) ** 2
        want = marginal_llrs(torch.from_numpy((-d / (2 * noise_var)).astype(np.float32)), 6).numpy()
        assert np.all(np.isfinite(got))
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3)


def test_bmd_rate_of_the_app_demapper_bounds_any_other_and_grows_with_snr():
    from aeradio.learning.coded import bmd_rate

    cfg = LinkConfig.from_dict({"model": {"k": 6, "n": 1, "receiver": "bitwise", "noise_input": True},
                                "code": {"kind": "ldpc5g", "rate": 0.5, "codeword_bits": 1500}})
    qam = qam_gray_lut(6)
    app = app_demapper(qam)

    def rate(demapper, ebn0_db):
        generator = torch.Generator().manual_seed(1)
        return bmd_rate(qam, demapper, cfg, ebn0_db, blocks=40_000, generator=generator)

    low, high, clean = rate(app, 4.0)[0], rate(app, 8.0)[0], rate(app, 30.0)[0]
    assert 2.5 < low < high < 6.0 and clean == pytest.approx(6.0, abs=1e-3)
    at_6_5, err = rate(app, 6.5)
    assert 0 < err < 0.01
    # The same draws: LLRs at half their magnitude (a demapper that underestimates the SNR)
    # and LLRs of no information score less; a sign-flipped demapper scores below zero.
    assert rate(lambda y, nv: 0.5 * app(y, nv), 6.5)[0] < at_6_5 - 0.05
    assert rate(lambda y, nv: np.zeros((len(y), 6), np.float32), 6.5)[0] == pytest.approx(0.0, abs=1e-9)
    assert rate(lambda y, nv: -app(y, nv), 6.5)[0] < 0


# ---- the LDPC code --------------------------------------------------------------------------
def test_encode_decode_roundtrip_and_parity(small_code):
    rng = np.random.default_rng(1)
    info = rng.integers(0, 2, (8, small_code.info_bits), dtype=np.uint8)
    words = small_code.encode(info)
    assert words.shape == (8, 120) and np.all(small_code.syndrome_ok(words, info))
    for decoder in DECODERS:
        decoded, ok = small_code.decode(np.where(words == 1, 3.0, -3.0), decoder)
        assert np.array_equal(decoded, info) and ok.all()
    # one corrupted bit is corrected; a flipped sign convention is not a codeword at all
    llrs = np.where(words == 1, 3.0, -3.0)
    llrs[:, 5] *= -1
    for decoder in DECODERS:
        assert np.array_equal(small_code.decode(llrs, decoder)[0], info)
        assert not small_code.decode(-np.where(words == 1, 3.0, -3.0), decoder)[1].all()


def test_both_decoders_agree_on_noisy_codewords(small_code):
    rng = np.random.default_rng(2)
    info = rng.integers(0, 2, (60, small_code.info_bits), dtype=np.uint8)
    words = small_code.encode(info)
    llrs = (np.where(words == 1, 2.0, -2.0) + rng.normal(0, 2.0, words.shape)).astype(np.float32)
    a, ok_a = small_code.decode(llrs, "ldpc")
    wrong_a = np.any(a != info, axis=1)
    assert 0 < wrong_a.sum() < 60  # the point is neither trivial nor hopeless
    for decoder in ("sionna", "flooding"):
        b, ok_b = small_code.decode(llrs, decoder)
        assert np.mean(np.all(a == b, axis=1)) >= 0.95
        assert abs(int(wrong_a.sum()) - int(np.any(b != info, axis=1).sum())) <= 3


def test_unknown_decoder_is_refused(small_code):
    with pytest.raises(ConfigError, match="decoder must be one of"):
        small_code.decode(np.zeros((1, 120), np.float32), "viterbi")


def test_coded_bler_is_far_below_the_uncoded_figure(small_code):
    cfg = coded_config()
    qam = qam_gray_lut(6)
    res = simulate_coded(qam, {"app": app_demapper(qam)}, small_code, cfg, 7.0, target_errors=10**6,
                         max_codewords=200, generator=torch.Generator().manual_seed(3))["app"]
    uncoded = uncoded_bler_bound(res["uncoded_ber"], small_code.info_bits)
    assert res["codewords"] == 200 and res["uncoded_ber"] > 0.02
    assert uncoded > 0.5 and res["bler"] < 0.1 * uncoded
    assert res["ber"] <= res["bler"]


# ---- bit-wise models end to end ---------------------------------------------------------------
@pytest.fixture(scope="module")
def coded_model(tmp_path_factory):
    from aeradio.apps.train import train_and_save

    return train_and_save(coded_config(), tmp_path_factory.mktemp("coded") / "model", progress=False)


def test_model_json_carries_the_code_and_the_bitwise_receiver(coded_model):
    meta = json.loads((coded_model / MODEL_JSON).read_text())
    assert meta["receiver_output"] == "bit_llrs"
    assert meta["code"] == meta["config"]["code"] == {"kind": "ldpc5g", **SMALL_CODE}
    assert load_link_config(coded_model).code == CodeConfig(**SMALL_CODE)
    meta["receiver_output"] = "message_logits"
    (coded_model.parent / "forged").mkdir()
    for f in coded_model.iterdir():
        (coded_model.parent / "forged" / f.name).write_bytes(f.read_bytes())
    (coded_model.parent / "forged" / MODEL_JSON).write_text(json.dumps(meta))
    with pytest.raises(ModelFormatError, match="receiver_output"):
        load_link_config(coded_model.parent / "forged")


def test_a_coded_model_given_to_an_uncoded_path_is_one_line(coded_model):
    from aeradio.learning.inference import ReceiverRuntime

    with pytest.raises(ModelFormatError, match="bit-wise receiver") as err:
        ReceiverRuntime.load(coded_model)
    assert "\n" not in str(err.value)


def test_eval_of_a_coded_model(coded_model, tmp_path, capsys):
    out = tmp_path / "eval.json"
    rc = cli.main(["eval", "--model", str(coded_model), "--ebn0-db", "9", "--target-errors", "3",
                   "--max-blocks", "64", "--json", str(out), "--quiet", "--plots", str(tmp_path / "p")])
    assert rc == 0
    doc = json.loads(out.read_text())
    assert doc["coded"] and doc["ebn0_db"] == [9.0] and "ebn0_convention" in doc
    assert doc["codewords"][0] <= 64 and 0 <= doc["bler"][0] <= 1 and doc["uncoded_ber"][0] > 0
    assert list(doc["baselines"]) == ["64-QAM Gray + APP + LDPC"] and doc["ml_bler"][0] is not None
    assert (tmp_path / "p" / "bler.png").stat().st_size > 0
    assert (tmp_path / "p" / "constellation.png").stat().st_size > 0
    text = capsys.readouterr().out
    assert "N0 = 1 / (Eb/N0 x code rate x k / n)" in text
    assert "baseline: 64-QAM Gray + APP + LDPC" in text  # the column says what it is (new-user trial)
    assert doc["ser"] == doc["uncoded_ser"]  # every eval document's keys (docs/contracts.md)
    assert ("9 dB (" in text) == (doc["errors"][0] < 3)  # a point --max-blocks cut short is named


def test_bitwise_training_learns_bit_llrs():
    cfg = LinkConfig.from_dict({
        "model": {"k": 2, "n": 1, "receiver": "bitwise", "noise_input": True, "hidden_width": 16},
        "training": {"steps": 150, "batch_size": 512, "learning_rate": 1e-2,
                     "ebn0_db_min": 6, "ebn0_db_max": 6},
    })
    from aeradio.learning.bitwise import BitwiseReceiver
    from aeradio.learning.training import train_autoencoder

    result = train_autoencoder(cfg, progress=False)
    rx = BitwiseReceiver.from_config(cfg.model)
    rx.load_state_dict(result.receiver_state)
    rng = np.random.default_rng(4)
    messages = rng.integers(0, 4, 20_000)
    nv = 1.0 / (2 * 2 * 10 ** 0.6)
    noise = rng.normal(size=(20_000, 1)) + 1j * rng.normal(size=(20_000, 1))
    y = result.lut[messages] + math.sqrt(nv) * noise
    with torch.no_grad():
        llrs = rx(torch.from_numpy(y.astype(np.complex64)), torch.full((20_000,), nv)).numpy()
    ber = np.mean((llrs > 0) != message_bits(4, 2)[messages].astype(bool))
    assert ber < 2 * 2.4e-3  # QPSK at Eb/N0 = 6 dB: Q(sqrt(2 Eb/N0)) = 2.4e-3


def test_bitwise_receiver_only_phase_freezes_the_constellation():
    """training.receiver_only_fraction (regression: the bit-wise trainer ignored it)."""
    from aeradio.learning.training import train_autoencoder

    frozen = train_autoencoder(coded_config(receiver_only_fraction=1.0), progress=False)
    np.testing.assert_allclose(frozen.lut, qam_gray_lut(6), rtol=0, atol=1e-6)  # never moved from its start
    assert frozen.steps == 20
    joint = train_autoencoder(coded_config(receiver_only_fraction=0.0), progress=False)
    half = train_autoencoder(coded_config(receiver_only_fraction=0.5), progress=False)
    moved = np.abs(joint.lut - frozen.lut).max()
    assert moved > 1e-4
    # Half the joint steps move the constellation, and less far than all of them.
    assert 0 < np.abs(half.lut - frozen.lut).max() < moved
    for res in (frozen, half):  # the demapper trained on in every phase
        assert not torch.equal(res.receiver_state["out.weight"], joint.receiver_state["out.weight"])


def test_bitwise_training_stops_on_a_plateau():
    """training.plateau_steps (regression: the bit-wise trainer ignored it)."""
    from aeradio.learning.training import train_autoencoder

    res = train_autoencoder(coded_config(steps=5000, plateau_steps=30, learning_rate=1e-7), progress=False)
    assert res.stopped == "plateau" and res.steps < 5000


def test_a_plateau_stop_that_would_skip_the_receiver_phase_is_refused():
    """Regression (new-user trial): plateau_steps ended the run before the receiver-only
    phase of receiver_only_fraction, silently."""
    with pytest.raises(ConfigError, match="would skip the receiver-only phase"):
        coded_config(plateau_steps=5, receiver_only_fraction=0.2)


@pytest.mark.parametrize("setting", [{"joint_receiver": "free"}, {"tied_scale_ratio": 1.0}])
def test_message_trainer_settings_are_refused_for_a_bitwise_model(setting):
    with pytest.raises(ConfigError, match=f"training.{next(iter(setting))} applies to message receivers"):
        coded_config(**setting)


def test_scale_by_noise_divides_the_llrs_by_the_noise_variance():
    from aeradio.learning.bitwise import BitwiseReceiver

    torch.manual_seed(0)
    plain = BitwiseReceiver(6, 1, 16, 2, noise_input=True)
    scaled = BitwiseReceiver(6, 1, 16, 2, noise_input=True, scale_by_noise=True)
    scaled.load_state_dict(plain.state_dict())  # same parameters: the scaling adds none
    y = torch.randn(50, 1, dtype=torch.complex64)
    nv = torch.linspace(0.01, 0.5, 50)
    torch.testing.assert_close(scaled(y, nv), plain(y, nv) / nv[:, None])
    cfg = coded_config()
    cfg = LinkConfig.from_dict({**cfg.to_dict(), "model": {**cfg.to_dict()["model"], "scale_by_noise": True}})
    assert BitwiseReceiver.from_config(cfg.model).scale_by_noise


@pytest.mark.parametrize("model", [
    {"k": 6, "n": 1, "receiver": "bitwise", "noise_input": False, "scale_by_noise": True},
    {"k": 4, "n": 2, "noise_input": True, "scale_by_noise": True},
])
def test_scale_by_noise_needs_a_bitwise_receiver_with_the_noise_input(model):
    with pytest.raises(ConfigError, match="model.scale_by_noise .* needs model.receiver = \"bitwise\" and "
                                          "model.noise_input = true"):
        LinkConfig.from_dict({"model": model})


def test_a_coded_model_given_to_the_gnuradio_receiver_is_one_line(coded_model):
    from aeradio.gnuradio.model import NumpyReceiver

    with pytest.raises(ModelFormatError, match="bit-wise receiver"):
        NumpyReceiver.load(coded_model)


def test_a_cleaner_channel_than_trained_gets_the_training_floor_noise_variance(coded_model):
    """A recording without noise measures SNR near 30 dB; fed that noise variance the network
    extrapolated log10(noise_var) far outside its training range (a 4000-step model of
    ae-n1-k6-ldpc lost every codeword of a clean recording, uncoded BER 0.3 at 26 dB)."""
    from aeradio.core.units import noise_var_per_real
    from aeradio.learning.bitwise import BitwiseRuntime

    runtime = BitwiseRuntime.load(coded_model)
    cfg = runtime.config
    floor = noise_var_per_real(cfg.training.ebn0_db_max, cfg.info_rate)
    assert runtime.min_noise_var == pytest.approx(floor)
    lut = np.load(coded_model / "tx_lut.npy")
    clean = runtime.llrs(lut, 1e-6)
    np.testing.assert_array_equal(clean, runtime.llrs(lut, floor))
    np.testing.assert_array_equal(clean, runtime.llrs(lut, np.full(len(lut), 1e-9, np.float32)))
    noisier = noise_var_per_real(cfg.training.ebn0_db_min, cfg.info_rate)
    assert not np.array_equal(runtime.llrs(lut, noisier), clean)  # inside the range: unchanged
