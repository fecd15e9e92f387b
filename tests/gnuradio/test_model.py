"""The torch-free model of the GNU Radio blocks against aeradio's torch receiver (in the venv)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from safetensors.numpy import load_file

from aeradio.core import model_dir as model_io
from aeradio.core.errors import ConfigError, ModelFormatError
from aeradio.flowgraphs.channel_sim import snr_db_from_ebn0_db
from aeradio.gnuradio import model as grm
from aeradio.learning.inference import ReceiverRuntime
from tests.gnuradio.conftest import save_test_model


def _received(lut, rng, blocks=4000, noise_std=0.4):
    rows = rng.integers(0, lut.shape[0], blocks)
    shape = (blocks, lut.shape[1])
    noise = noise_std * (rng.standard_normal(shape) + 1j * rng.standard_normal(shape))
    return (lut[rows] + noise).astype(np.complex64), rows


@pytest.mark.parametrize("noise_input", [False, True])
@pytest.mark.parametrize("layers", [1, 3])
def test_numpy_forward_pass_matches_the_torch_runtime(tmp_path, rng, noise_input, layers):
    path = save_test_model(tmp_path / "m", layers=layers, noise_input=noise_input)
    runtime, numpy_rx = ReceiverRuntime.load(path), grm.NumpyReceiver.load(path)
    y, _ = _received(model_io.load_lut(path), rng)
    nv = rng.uniform(0.01, 0.3, len(y)).astype(np.float32) if noise_input else None
    expected, got = runtime.logits(y, nv), numpy_rx.logits(y, nv)
    assert got.dtype == np.float32 and got.shape == expected.shape == (len(y), 16)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())
    # Decisions agree except where two logits tie within float32 rounding.
    top2 = np.sort(expected, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 1e-4
    assert clear.mean() > 0.99
    np.testing.assert_array_equal(numpy_rx.decide(y, nv)[clear], runtime.decide(y, nv)[clear])


def test_decide_works_across_chunks(tmp_path, rng):
    path = save_test_model(tmp_path / "m")
    numpy_rx = grm.NumpyReceiver.load(path)
    y, _ = _received(model_io.load_lut(path), rng, blocks=2 * grm.CHUNK_BLOCKS + 17)
    np.testing.assert_array_equal(numpy_rx.decide(y), numpy_rx.logits(y).argmax(axis=1))


def test_noise_input_receiver_needs_noise(tmp_path):
    path = save_test_model(tmp_path / "m", noise_input=True)
    with pytest.raises(ValueError, match="needs noise_var"):
        grm.NumpyReceiver.load(path).logits(np.zeros((1, 2), np.complex64))
    with pytest.raises(ConfigError, match="trained with a noise input: give ebn0_db"):
        grm.GnuRadioModel(path).noise_var(None)
    assert grm.GnuRadioModel(path).noise_var(6.0) == pytest.approx(0.0627971, rel=1e-5)
    assert grm.GnuRadioModel(save_test_model(tmp_path / "plain")).noise_var(6.0) is None


def test_log_probs_and_bit_llrs_marginalize_the_posteriors(tmp_path, rng):
    path = save_test_model(tmp_path / "m", k=3, n=2)
    numpy_rx = grm.NumpyReceiver.load(path)
    y, _ = _received(model_io.load_lut(path), rng, blocks=50)
    logp = numpy_rx.log_probs(y)
    np.testing.assert_allclose(np.exp(logp.astype(np.float64)).sum(axis=1), 1.0, atol=1e-5)
    llrs = numpy_rx.bit_llrs(logp)
    assert llrs.shape == (50, 3) and llrs.dtype == np.float32
    p = np.exp(logp.astype(np.float64))
    for b, i in itertools.product(range(50), range(3)):  # by hand: bit i of m, MSB first
        zero = sum(p[b, m] for m in range(8) if not (m >> (2 - i)) & 1)
        one = sum(p[b, m] for m in range(8) if (m >> (2 - i)) & 1)
        assert llrs[b, i] == pytest.approx(math.log(zero / one), abs=1e-4)


def test_llr_signs_spell_the_message_msb_first(tmp_path):
    # A confident receiver (sharp posteriors): bitwise decisions are then the block's.
    path = save_test_model(tmp_path / "m", k=4, n=2, mlp_std=0.0, log_scale=3.0)
    numpy_rx = grm.NumpyReceiver.load(path)
    lut = model_io.load_lut(path)
    decided = numpy_rx.decide(lut)
    assert np.array_equal(decided, np.arange(16))  # the matched filter: noiseless rows decode
    hard = (numpy_rx.bit_llrs(numpy_rx.log_probs(lut)) < 0).astype(int)  # LLR < 0: a 1
    assert np.array_equal(hard @ (1 << np.arange(3, -1, -1)), np.arange(16))


def test_receiver_arrays_are_the_safetensors_tensors(tmp_path):
    path = save_test_model(tmp_path / "m", layers=2)
    config, arrays = model_io.load_receiver_arrays(path)
    stored = load_file(str(path / model_io.RECEIVER_FILE))
    assert config == model_io.load_link_config(path)
    assert set(arrays) == set(stored)
    for name, shape in config.model.receiver_parameter_shapes().items():
        assert arrays[name].shape == shape and arrays[name].dtype == np.float32
        np.testing.assert_array_equal(arrays[name].reshape(-1), stored[name].reshape(-1))


def test_altered_receiver_refused_without_torch(tmp_path):
    path = save_test_model(tmp_path / "m")
    weights = path / model_io.RECEIVER_FILE
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelFormatError, match="receiver.safetensors was altered"):
        grm.GnuRadioModel(path)


def test_receiver_changed_after_verification_refused(tmp_path, monkeypatch):
    # What is read must be what was verified: a file swapped between the check and the read.
    path = save_test_model(tmp_path / "m")
    save_test_model(tmp_path / "other", seed=1)
    verify = model_io.verify_model_dir

    def verify_then_swap(model_dir):
        meta = verify(model_dir)
        swapped = (tmp_path / "other" / model_io.RECEIVER_FILE).read_bytes()
        (path / model_io.RECEIVER_FILE).write_bytes(swapped)
        return meta

    monkeypatch.setattr(model_io, "verify_model_dir", verify_then_swap)
    with pytest.raises(ModelFormatError, match="changed while it was loaded"):
        model_io.load_receiver_arrays(path)


def test_missing_model_directory_is_one_line(tmp_path):
    with pytest.raises(ModelFormatError, match="does not exist") as info:
        grm.GnuRadioModel(tmp_path / "nothing")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("ebn0_db", [0.0, 6.0, 10.0])
@pytest.mark.parametrize(("k", "n", "sps"), [(2, 1, 4), (8, 7, 4), (4, 2, 8)])
def test_noise_voltage_is_what_aeradio_channel_adds(ebn0_db, k, n, sps):
    # aeradio channel --ebn0-db: noise power per sample (1/sps) 10^(-SNR/10), SNR from Eb/N0.
    noise_power = 10 ** (-snr_db_from_ebn0_db(ebn0_db, k / n, sps) / 10) / sps
    assert grm.noise_voltage(ebn0_db, k / n) ** 2 == pytest.approx(noise_power, rel=1e-12)


def test_unit_energy_taps():
    taps = grm.unit_energy_taps([1.0, 2.0, 2.0])
    assert taps == pytest.approx([1 / 3, 2 / 3, 2 / 3])
    with pytest.raises(ConfigError, match="positive energy"):
        grm.unit_energy_taps([0.0, 0.0])


def test_item_types_and_soft_lengths(tmp_path):
    path = save_test_model(tmp_path / "m", k=4, n=2)
    assert grm.check_item_type("int", 16) is np.int32
    assert grm.check_item_type("byte", 8) is np.uint8
    with pytest.raises(ConfigError, match="at most 8 bits; this model has k = 9"):
        grm.check_item_type("byte", 9)
    with pytest.raises(ConfigError, match="item_type must be one of int, byte, got 'float'"):
        grm.check_item_type("float", 4)
    assert grm.soft_vector_length(path, "llr") == 4
    assert grm.soft_vector_length(path, "logprob") == 16
    assert grm.soft_vector_length(tmp_path / "not-read", "none") == 1
