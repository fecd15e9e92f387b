"""Receiver fine-tuning on captured frames: learns what training did not model, LUT fixed."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from aeradio.apps.capture import record_loopback_capture
from aeradio.cli import main
from aeradio.core.model_dir import load_link_config, load_lut, model_hash32, read_extra_meta, sha256_file
from aeradio.dsp.framing import pattern_messages
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
    # An existing model directory is replaced only when asked.
    argv = ["finetune", "--model", model, "--captures", str(frames), "--out", str(tmp_path / "o"),
            "--max-epochs", "1", "--json", str(report)]
    assert main(argv) == 2
    assert "existing model directory; pass --overwrite" in capsys.readouterr().err
    # The saved dataset stands in for the captures, with the same split.
    assert main([*argv, "--overwrite"]) == 0
    assert json.loads(report.read_text())["validation"] == got["validation"]
    assert main(["finetune", "--model", model, "--captures", str(root / "caps"), "--out", model]) == 2
    assert "never replaced" in capsys.readouterr().err
    assert main(["finetune", "--model", model, "--captures", str(tmp_path / "none"), "--out",
                 str(tmp_path / "o2")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_no_block_errors_means_nothing_to_learn_and_nothing_written(
    setup: dict, tmp_path: Path, capsys
) -> None:
    model = setup["model"]
    clean = tmp_path / "clean"
    record_loopback_capture(model, clean, channel(CFG, 25.0), frames=40, seed=4, rng=np.random.default_rng(4))
    report = finetune_model(model, clean, tmp_path / "o", settings=SETTINGS, progress=False)
    assert report["captures_original"]["block_errors"] == 0 and report["captures_original"]["frames"] == 40
    assert not report["learned"] and not report["written"] and report["epochs"] == 0
    assert report["unimproved"].startswith("no block errors in the captures (0 in 640 blocks of 40 frames)")
    assert "capture at a lower SNR" in report["unimproved"]
    assert not (tmp_path / "o").exists()
    # The command: the reason, no model, exit 1; --keep-unimproved writes it and says so.
    argv = ["finetune", "--model", str(model), "--captures", str(clean), "--out", str(tmp_path / "o")]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "learned nothing: no block errors in the captures" in err and "not written" in err
    assert not (tmp_path / "o").exists()
    assert main([*argv, "--keep-unimproved"]) == 0
    assert "written anyway (--keep-unimproved)" in capsys.readouterr().err
    assert read_extra_meta(tmp_path / "o")["finetune"]["learned"] is False


def test_best_epoch_zero_is_reported_and_nothing_written(setup: dict, tmp_path: Path) -> None:
    # A learning rate too small to move anything: epoch 0 stays the best.
    still = FinetuneSettings(learning_rate=1e-7, max_epochs=2, patience=1)
    report = finetune_model(setup["model"], setup["root"] / "caps", tmp_path / "o", settings=still,
                            progress=False)
    assert report["captures_original"]["block_errors"] >= 30
    assert report["best_epoch"] == 0 and not report["learned"] and not report["written"]
    before = report["validation"]["before"]
    assert report["unimproved"].startswith(
        "best epoch 0: validation BLER did not improve "
        f"({before['bler']:.3e}, {before['block_errors']} errors"
    )
    assert not (tmp_path / "o").exists()


def test_a_dataset_with_wrong_labels_is_refused(setup: dict, tmp_path: Path, capsys) -> None:
    ds = build_dataset(setup["root"] / "caps", setup["model"], rng=np.random.default_rng(0))
    ds.labels = pattern_messages(12345, ds.seq, CFG.frame.blocks_per_frame, CFG.model.M)  # another seed's
    frames = ds.save(tmp_path / "wrong.npz")
    argv = ["finetune", "--model", str(setup["model"]), "--captures", str(frames),
            "--out", str(tmp_path / "o")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "the labels do not match the frames" in err and "the labels are wrong" in err
    assert re.search(r"on \d+ of 1920 blocks \(BLER 0\.9\d\d, chance 0\.938\) in 120 frames", err), err
    assert not (tmp_path / "o").exists()
