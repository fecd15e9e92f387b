import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from aeradio.core import model_dir as model_io
from aeradio.core.config import LinkConfig
from aeradio.core.errors import ModelFormatError
from aeradio.learning.inference import ReceiverRuntime
from aeradio.learning.receiver import NeuralReceiver
from aeradio.learning.transmitter import Transmitter

CFG = LinkConfig.from_dict({"model": {"k": 3, "n": 2, "hidden_width": 8, "hidden_layers": 1}}, name="tiny")


def _save(path, seed=0, overwrite=False):
    torch.manual_seed(seed)
    tx = Transmitter(8, 2, generator=torch.Generator().manual_seed(seed))
    rx = NeuralReceiver.from_config(CFG.model)
    torch.nn.init.normal_(rx.out.weight)  # non-zero MLP output, so it matters in the round trip
    model_io.save_model(path, CFG, tx.export_lut(), rx.state_dict(), extra_meta={"note": "x"},
                        overwrite=overwrite)
    return tx, rx


def test_round_trip(tmp_path):
    tx, rx = _save(tmp_path / "m")
    assert model_io.load_link_config(tmp_path / "m") == CFG
    lut = model_io.load_lut(tmp_path / "m")
    assert lut.dtype == np.complex64 and lut.shape == (8, 2)
    assert np.array_equal(lut, tx.export_lut())
    y = (lut[[1, 5, 7]] + 0.01).astype(np.complex64)
    runtime = ReceiverRuntime.load(tmp_path / "m")
    with torch.no_grad():
        expected = rx(torch.from_numpy(y)).numpy()
    logits = runtime.logits(y)
    assert logits.dtype == np.float32 and logits.shape == (3, 8)
    assert np.allclose(logits, expected, atol=1e-6)
    assert runtime.decide(y).dtype == np.int64
    assert model_io.read_extra_meta(tmp_path / "m") == {"note": "x"}
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    assert meta["format_version"] == model_io.FORMAT_VERSION and meta["M"] == 8
    assert not list(tmp_path.glob(".m.*"))  # no temporary left behind


def test_format_1_models_load_without_their_header_repetition(tmp_path):
    # Format 1 stored [frame] header_repetition (the header was repeated, not coded): such a
    # model still loads, with the key dropped and its other frame settings kept.
    _save(tmp_path / "m")
    meta_path = tmp_path / "m" / "model.json"
    meta = json.loads(meta_path.read_text())
    meta["format_version"] = 1
    meta["config"]["frame"].update(header_repetition=3, blocks_per_frame=64, pilot_spacing_symbols=16)
    meta_path.write_text(json.dumps(meta))
    cfg = model_io.load_link_config(tmp_path / "m")
    assert (cfg.frame.blocks_per_frame, cfg.frame.pilot_spacing_symbols) == (64, 16)
    assert isinstance(model_io.model_hash32(tmp_path / "m"), int)
    # A format 2 model.json with the old key is refused: unknown key, one line.
    meta["format_version"] = 2
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ModelFormatError, match="header_repetition"):
        model_io.load_link_config(tmp_path / "m")


def test_hash32_identifies_the_weights(tmp_path):
    _save(tmp_path / "a", seed=0)
    _save(tmp_path / "b", seed=1)
    ha, hb = model_io.model_hash32(tmp_path / "a"), model_io.model_hash32(tmp_path / "b")
    assert 0 <= ha < 2**32 and ha != hb
    assert model_io.model_hash32(tmp_path / "a") == ha


@pytest.mark.parametrize("victim", ["tx_lut.npy", "receiver.safetensors"])
def test_altered_or_missing_files_are_refused(tmp_path, victim):
    _save(tmp_path / "m")
    path = tmp_path / "m" / victim
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFormatError, match=f"{victim} was altered"):
        model_io.load_link_config(tmp_path / "m")
    path.unlink()
    with pytest.raises(ModelFormatError, match=f"{victim} is missing"):
        model_io.load_lut(tmp_path / "m")


def test_receiver_that_is_not_safetensors_is_refused(tmp_path):
    _save(tmp_path / "m")
    path = tmp_path / "m" / "receiver.safetensors"
    path.write_bytes(b"\x80\x04this is a pickle, not safetensors")
    meta_path = tmp_path / "m" / "model.json"
    meta = json.loads(meta_path.read_text())
    meta["files"]["receiver.safetensors"]["sha256"] = model_io.sha256_file(path)  # a consistent forgery
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ModelFormatError, match="not a safetensors file"):
        ReceiverRuntime.load(tmp_path / "m")


def test_missing_model_json_and_bad_version(tmp_path):
    with pytest.raises(ModelFormatError, match="does not exist"):
        model_io.load_link_config(tmp_path / "nope")
    _save(tmp_path / "m")
    meta_path = tmp_path / "m" / "model.json"
    meta = json.loads(meta_path.read_text())
    meta["format_version"] = 99
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ModelFormatError, match="format_version must be one of 1, 2, got 99"):
        model_io.load_link_config(tmp_path / "m")
    meta_path.unlink()
    with pytest.raises(ModelFormatError, match="model.json is missing"):
        model_io.load_link_config(tmp_path / "m")


def test_output_dir_rules(tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "precious.txt").write_text("keep me")
    with pytest.raises(ModelFormatError, match="refusing to overwrite"):
        _save(other)
    assert (other / "precious.txt").read_text() == "keep me"
    with pytest.raises(ModelFormatError, match="refusing to overwrite"):
        _save(other, overwrite=True)  # not even when asked: it is not a model directory
    _save(tmp_path / "m", seed=0)
    first = model_io.model_hash32(tmp_path / "m")
    with pytest.raises(ModelFormatError, match="existing model directory; pass --overwrite"):
        _save(tmp_path / "m", seed=1)  # never silently
    assert model_io.model_hash32(tmp_path / "m") == first
    _save(tmp_path / "m", seed=1, overwrite=True)  # an existing model directory is replaced when asked
    assert model_io.model_hash32(tmp_path / "m") != first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m", "other"]


def test_lut_energy_is_checked_on_save(tmp_path):
    rx = NeuralReceiver.from_config(CFG.model)
    with pytest.raises(ModelFormatError, match="mean energy"):
        model_io.save_model(tmp_path / "m", CFG, np.full((8, 2), 2.0, np.complex64), rx.state_dict())


def test_tx_side_needs_no_torch(tmp_path):
    _save(tmp_path / "m")
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from aeradio.core.model_dir import load_lut, model_hash32, load_link_config\n"
        f"print(load_lut({str(tmp_path / 'm')!r}).shape, model_hash32({str(tmp_path / 'm')!r}) >= 0)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "(8, 2) True"


def test_runtime_with_noise_input(tmp_path):
    cfg = LinkConfig.from_dict(
        {"model": {"k": 2, "n": 1, "hidden_width": 4, "hidden_layers": 1, "noise_input": True}}, name="nv"
    )
    rx = NeuralReceiver.from_config(cfg.model)
    torch.nn.init.normal_(rx.out.weight)
    lut = np.array([[1], [1j], [-1], [-1j]], dtype=np.complex64)
    model_io.save_model(tmp_path / "m", cfg, lut, rx.state_dict())
    runtime = ReceiverRuntime.load(tmp_path / "m")
    y = lut[[0, 2]]
    with pytest.raises(ValueError, match="needs noise_var"):
        runtime.logits(y)
    a, b = runtime.logits(y, 0.1), runtime.logits(y, np.array([0.1, 1.0], np.float32))
    assert np.allclose(a[0], b[0]) and not np.allclose(a[1], b[1])


def test_model_files_travel_as_bytes_and_are_verified_on_arrival(tmp_path):
    _save(tmp_path / "m")
    sent = model_io.read_model_files(tmp_path / "m")
    assert set(sent) == {"model.json", "tx_lut.npy", "receiver.safetensors"}
    model_io.write_model_files(tmp_path / "copy", sent)
    assert model_io.read_model_files(tmp_path / "copy") == sent
    with pytest.raises(ModelFormatError, match="existing model directory"):
        model_io.write_model_files(tmp_path / "copy", sent)  # never replaced
    altered = {**sent, "tx_lut.npy": sent["tx_lut.npy"][:-8] + b"\0" * 8}
    with pytest.raises(ModelFormatError, match="altered"):
        model_io.write_model_files(tmp_path / "bad", altered)
    with pytest.raises(ModelFormatError, match="as bytes"):
        model_io.write_model_files(tmp_path / "bad", {**sent, "extra.bin": b""})
    assert not (tmp_path / "bad").exists() and not list(tmp_path.glob(".bad.*"))
