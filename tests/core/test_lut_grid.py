"""The DAC grid of a quantized LUT (``[model] dac_bits``): config, model directory, tx."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from aeradio.cli import main
from aeradio.core import model_dir as model_io
from aeradio.core.config import LinkConfig
from aeradio.core.errors import ConfigError, ModelFormatError
from aeradio.core.paths import checkout_path
from aeradio.learning.receiver import NeuralReceiver
from aeradio.learning.transmitter import Transmitter

MODEL = {"k": 4, "n": 2, "hidden_width": 8, "hidden_layers": 1, "dac_bits": 4, "dac_full_scale": 2.0}
CFG = LinkConfig.from_dict({"model": MODEL, "frame": {"blocks_per_frame": 8}}, name="dac4")


def _save(path: Path) -> Transmitter:
    tx = Transmitter(16, 2, dac_bits=4, dac_full_scale=2.0, generator=torch.Generator().manual_seed(0))
    rx = NeuralReceiver.from_config(CFG.model)
    model_io.save_model(path, CFG, tx.export_lut(), rx.state_dict(), lut_grid=tx.lut_grid())
    return tx


def _forge_lut(model: Path, lut: np.ndarray) -> None:
    """Replace tx_lut.npy and its sha256 in model.json: a consistent forgery, caught by the grid only."""
    np.save(model / model_io.LUT_FILE, lut, allow_pickle=False)
    meta = json.loads((model / model_io.MODEL_JSON).read_text())
    meta["files"][model_io.LUT_FILE]["sha256"] = model_io.sha256_file(model / model_io.LUT_FILE)
    (model / model_io.MODEL_JSON).write_text(json.dumps(meta))


def test_quantized_lut_is_bit_exact_through_save_and_load(tmp_path):
    tx = _save(tmp_path / "m")
    lut = model_io.load_lut(tmp_path / "m")
    assert lut.tobytes() == tx.export_lut().tobytes()
    grid = model_io.read_lut_grid(tmp_path / "m")
    assert grid == tx.lut_grid() and grid["dac_bits"] == 4
    values = np.stack([lut.real, lut.imag])
    codes = np.rint(values.astype(np.float64) / grid["step"])
    assert np.array_equal((codes * grid["step"]).astype(np.float32), values) and np.abs(codes).max() <= 7


def test_an_off_grid_lut_is_refused_by_load_and_by_tx(tmp_path, capsys):
    _save(tmp_path / "m")
    lut = model_io.load_lut(tmp_path / "m")
    step = model_io.read_lut_grid(tmp_path / "m")["step"]
    tampered = lut.copy()
    tampered[3, 1] += np.float32(step / 3)  # energy still 1 to 1e-2: only the grid tells
    _forge_lut(tmp_path / "m", tampered)
    with pytest.raises(ModelFormatError, match=r"off its 4-bit DAC grid: 1 of 64 values"):
        model_io.load_lut(tmp_path / "m")
    rec = tmp_path / "rec.sigmf-meta"
    assert main(["tx", "--model", str(tmp_path / "m"), "--device", f"file:{rec}", "--frames", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err and "off its 4-bit DAC grid" in err, err
    assert not rec.exists()


def test_codes_beyond_full_scale_are_refused(tmp_path):
    _save(tmp_path / "m")
    step = model_io.read_lut_grid(tmp_path / "m")["step"]
    lut = model_io.load_lut(tmp_path / "m")
    lut[0, 0] = np.float32(8 * step)  # on the grid's spacing, but |q| = 8 > 7
    _forge_lut(tmp_path / "m", lut)
    with pytest.raises(ModelFormatError, match=r"\|q\| <= 7"):
        model_io.load_lut(tmp_path / "m")


def test_a_missing_or_bad_step_is_refused(tmp_path):
    _save(tmp_path / "m")
    path = tmp_path / "m" / model_io.MODEL_JSON
    for bad in (None, "0.1", -0.1, float("inf"), True):
        meta = json.loads(path.read_text())
        meta[model_io.LUT_GRID_KEY]["step"] = bad
        path.write_text(json.dumps(meta))
        with pytest.raises(ModelFormatError, match="no valid DAC grid step"):
            model_io.load_lut(tmp_path / "m")


def test_save_refuses_a_float_lut_for_a_dac_model_and_a_grid_without_one(tmp_path):
    rx = NeuralReceiver.from_config(CFG.model).state_dict()
    float_tx = Transmitter(16, 2, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ModelFormatError, match="DAC grid goes with model.dac_bits"):
        model_io.save_model(tmp_path / "a", CFG, float_tx.export_lut(), rx)
    with pytest.raises(ModelFormatError, match="off its 4-bit DAC grid"):
        model_io.save_model(tmp_path / "b", CFG, float_tx.export_lut(), rx, lut_grid={"step": 0.25})
    float_cfg = CFG.replace(model=LinkConfig.from_dict({"model": {"k": 4, "n": 2}}).model)
    with pytest.raises(ModelFormatError, match="DAC grid goes with model.dac_bits"):
        model_io.save_model(tmp_path / "c", float_cfg, float_tx.export_lut(), rx, lut_grid={"step": 0.25})
    assert not any(tmp_path.iterdir())


def test_a_copy_with_the_stored_grid_loads_as_finetune_writes_it(tmp_path):
    tx = _save(tmp_path / "m")
    model_io.save_model(
        tmp_path / "copy", CFG, model_io.load_lut(tmp_path / "m"),
        NeuralReceiver.from_config(CFG.model).state_dict(), lut_grid=model_io.read_lut_grid(tmp_path / "m"),
    )
    assert model_io.load_lut(tmp_path / "copy").tobytes() == tx.export_lut().tobytes()


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, 3e38])
def test_non_finite_or_huge_values_are_off_the_grid(bad):
    lut = np.array([[0.25 + 0.5j], [-0.25 + 0j]], dtype=np.complex64)
    model_io.check_lut_grid(lut, 4, 0.25, "lut")
    lut[1, 0] = np.complex64(complex(bad, 0.0))
    with pytest.raises(ModelFormatError, match="1 of 4 values"):
        model_io.check_lut_grid(lut, 4, 0.25, "lut")


@settings(max_examples=200, deadline=None)
@given(
    bits=st.integers(2, 16),
    step=st.floats(1e-6, 10.0, allow_nan=False),
    seed=st.integers(0, 2**32 - 1),
    flip=st.integers(0, 15),
)
def test_grid_check_accepts_grid_values_and_refuses_any_other(bits, step, seed, flip):
    max_code = 2 ** (bits - 1) - 1
    codes = np.random.default_rng(seed).integers(-max_code, max_code + 1, size=(2, 4, 2))
    re, im = (codes * step).astype(np.float32)
    lut = (re + 1j * im).astype(np.complex64)
    model_io.check_lut_grid(lut, bits, step, "lut")
    parts = np.stack([lut.real, lut.imag])
    i = np.unravel_index(flip, parts.shape)
    parts[i] = np.nextafter(parts[i], np.float32(np.inf))  # one ulp off
    with pytest.raises(ModelFormatError, match="off its"):
        model_io.check_lut_grid((parts[0] + 1j * parts[1]).astype(np.complex64), bits, step, "lut")


@pytest.mark.parametrize(
    "model, message",
    [
        ({"normalization": "unit"}, "model.normalization must be one of average, energy, peak, got 'unit'"),
        ({"dac_bits": 1}, "model.dac_bits must be 0 (a float LUT) or in [2, 16], got 1"),
        ({"dac_bits": 17}, "model.dac_bits must be 0 (a float LUT) or in [2, 16], got 17"),
        ({"dac_bits": -8}, "model.dac_bits must be 0 (a float LUT) or in [2, 16], got -8"),
        ({"dac_bits": 8.0}, "model.dac_bits must be an integer, got 8.0"),
        ({"dac_full_scale": 0.0}, "model.dac_full_scale must be in [0.1, 16], got 0.0"),
        ({"dac_bits": 2, "dac_full_scale": 2.0}, "dac_full_scale must be < sqrt(2) * (2^(dac_bits-1) - 1)"),
    ],
)
def test_bad_constraint_values_are_one_config_error(model, message):
    with pytest.raises(ConfigError) as err:
        LinkConfig.from_dict({"model": {"k": 4, "n": 2, **model}})
    assert message in str(err.value)


@pytest.mark.parametrize(
    "line, message",
    [
        ('normalization = "unit"', "model.normalization must be one of average, energy, peak, got 'unit'"),
        ("dac_bits = 1", "model.dac_bits must be 0 (a float LUT) or in [2, 16], got 1"),
        ("dac_bits = 20", "model.dac_bits must be 0 (a float LUT) or in [2, 16], got 20"),
    ],
)
def test_train_with_a_bad_constraint_is_one_line_exit_2(tmp_path, capsys, line, message):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(f"[model]\nk = 2\nn = 1\n{line}\n")
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "m"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err and message in err, err
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize(
    "name, normalization, dac_bits",
    [
        ("ae-n2-k4", "energy", 0),
        ("ae-n7-k4-energy", "energy", 0),
        ("ae-n7-k8-dac8", "average", 8),
        ("ae-n7-k8-dac4", "average", 4),
        ("ae-n7-k8-dac3", "average", 3),
        ("ae-n7-k8-dac2", "average", 2),
    ],
)
def test_transmitter_configs_load(name, normalization, dac_bits):
    cfg = LinkConfig.from_toml(checkout_path("configs") / f"{name}.toml")
    assert (cfg.model.normalization, cfg.model.dac_bits) == (normalization, dac_bits)
    if dac_bits:  # the quantized variants train as the default model does (3 and 2 bits longer)
        default = LinkConfig.from_toml(checkout_path("configs") / "ae-n7-k8.toml")
        steps = default.training.steps * (2 if dac_bits <= 3 else 1)
        assert cfg.training == dataclasses.replace(default.training, steps=steps)
        assert (cfg.model.k, cfg.model.n) == (8, 7)
