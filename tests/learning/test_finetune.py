"""Receiver fine-tuning on captured frames: learns what training did not model, LUT fixed."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from aeradio.apps.capture import record_loopback_capture
from aeradio.cli import main
from aeradio.core.model_dir import load_link_config, load_lut, model_hash32, read_extra_meta, sha256_file
from aeradio.learning.dataset import build_dataset
from aeradio.learning.finetune import FinetuneSettings, finetune_model, finetune_receiver, load_receiver
from tests.flowgraphs.conftest import random_lut
from tests.learning.test_dataset import CFG, channel, matched_filter_model

#: A receiver IQ imbalance the matched-filter receiver does not know; Eb/N0 where it costs
#: a BLER of about 5 % (ML on AWGN would be far below 1e-3 there).
MISMATCH = {"iq_gain_db": 3.0, "iq_phase_deg": 25.0}
EBN0_DB = 14.0
SETTINGS = FinetuneSettings(learning_rate=3e-3, max_epochs=6, patience=3)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("ft")
    model = matched_filter_model(root / "m", CFG, random_lut(16, 2, np.random.default_rng(11)))
    ch = channel(CFG, EBN0_DB, **MISMATCH)
    record_loopback_capture(model, root / "caps", ch, frames=120, seed=1, rng=np.random.default_rng(1))
    record_loopback_capture(model, root / "fresh", ch, frames=80, seed=2, rng=np.random.default_rng(2))
    before = {p.name: sha256_file(p) for p in model.iterdir()}
    report = finetune_model(model, root / "caps", root / "out", eval_captures=root / "fresh",
                            settings=SETTINGS, progress=False)
    return {"root": root, "model": model, "out": root / "out", "report": report, "files_before": before}


def test_finetuned_receiver_halves_the_bler_on_fresh_frames(setup: dict) -> None:
    report = setup["report"]
    fresh = report["fresh"]
    assert fresh["before"]["frames"] == fresh["after"]["frames"] == 80
    assert fresh["before"]["blocks"] == 80 * 16
    assert fresh["before"]["block_errors"] >= 30  # enough errors for the comparison to mean something
    assert fresh["after"]["bler"] <= 0.5 * fresh["before"]["bler"]
    val = report["validation"]
    assert val["before"]["frames"] == 24 and report["train_frames"] == 96
    assert val["after"]["block_errors"] <= val["before"]["block_errors"]


def test_output_is_a_model_dir_with_the_same_transmitter_and_the_original_untouched(setup: dict) -> None:
    model, out = setup["model"], setup["out"]
    assert {p.name: sha256_file(p) for p in model.iterdir()} == setup["files_before"]
    assert np.array_equal(load_lut(out), load_lut(model))
    assert load_link_config(out) == load_link_config(model)
    # The header hash identifies the transmitter, so RX with the new receiver accepts old TX frames.
    assert model_hash32(out) == model_hash32(model)
    assert sha256_file(out / "receiver.safetensors") != sha256_file(model / "receiver.safetensors")
    prov = read_extra_meta(out)["finetune"]
    assert prov["base_model_hash32"] == f"{model_hash32(model):08x}" and prov["train_frames"] == 96


def test_rx_with_the_finetuned_model_decodes_the_original_transmitter(setup: dict, tmp_path: Path) -> None:
    (rec,) = (setup["root"] / "fresh").glob("*.sigmf-meta")
    reports = {}
    for name in ("model", "out"):
        path = tmp_path / f"{name}.json"
        assert main(["rx", "--model", str(setup[name]), "--device", f"file:{rec}",
                     "--json", str(path)]) == 0
        reports[name] = json.loads(path.read_text())
    assert reports["out"]["frames_decoded"] == reports["model"]["frames_decoded"] == 80
    assert reports["out"]["model_mismatches"] == 0
    assert reports["out"]["block_errors"] <= 0.5 * reports["model"]["block_errors"]


def test_early_stopping_keeps_the_best_epoch(setup: dict) -> None:
    ds = build_dataset(setup["root"] / "caps", setup["model"], rng=np.random.default_rng(0))
    settings = FinetuneSettings(learning_rate=3e-2, epoch_steps=20, max_epochs=200, patience=2)
    result = finetune_receiver(load_receiver(setup["model"]), ds.training_set(), ds.validation_set(),
                               settings, torch.Generator().manual_seed(0), progress=False)
    assert result.stopped == "patience" and result.epochs < 200
    assert result.epochs - result.best_epoch == 2
    val = [h["val_bler"] for h in result.history]
    assert result.after.bler == min(val) == val[result.best_epoch]


def test_cli_writes_json_and_refuses_to_replace_the_model(setup: dict, tmp_path: Path, capsys) -> None:
    root, model = setup["root"], str(setup["model"])
    report = tmp_path / "ft.json"
    frames = tmp_path / "frames.npz"
    assert main(["finetune", "--model", model, "--captures", str(root / "caps"), "--out", str(tmp_path / "o"),
                 "--max-epochs", "1", "--json", str(report), "--save-dataset", str(frames)]) == 0
    got = json.loads(report.read_text())
    assert got["epochs"] == 1 and got["validation"]["before"]["frames"] == 24
    assert "validation: BLER" in capsys.readouterr().out
    # The saved dataset stands in for the captures, with the same split.
    assert main(["finetune", "--model", model, "--captures", str(frames), "--out", str(tmp_path / "o"),
                 "--max-epochs", "1", "--json", str(report)]) == 0
    assert json.loads(report.read_text())["validation"] == got["validation"]
    assert main(["finetune", "--model", model, "--captures", str(root / "caps"), "--out", model]) == 2
    assert "never replaced" in capsys.readouterr().err
    assert main(["finetune", "--model", model, "--captures", str(tmp_path / "none"), "--out",
                 str(tmp_path / "o2")]) == 2
    assert "does not exist" in capsys.readouterr().err
