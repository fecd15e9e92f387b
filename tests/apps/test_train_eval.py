"""``aeradio train`` / ``aeradio eval`` end to end, and their bad-input errors (exit 2, one line)."""

import json

import pytest

from aeradio.cli import main

TINY = """
[model]
k = 2
n = 1
hidden_width = 8
hidden_layers = 1

[training]
steps = 150
batch_size = 256
tx_lr_scale = 10.0
"""


def _write(tmp_path, text, name="cfg.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("model")
    cfg = _write(tmp, TINY)
    assert main(["train", "--config", str(cfg), "--out", str(tmp / "m"), "--quiet", "--plots"]) == 0
    return tmp / "m"


def _one_line_error(capsys, argv, expected):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    assert expected in err, err


def test_train_writes_a_model_directory(model_dir):
    names = {p.name for p in model_dir.iterdir()}
    assert {"model.json", "tx_lut.npy", "receiver.safetensors", "constellation.png", "training.png"} <= names
    meta = json.loads((model_dir / "model.json").read_text())
    assert meta["config"]["model"]["k"] == 2 and meta["meta"]["training"]["steps"] == 150


def test_a_model_directory_is_readable_as_any_new_file(model_dir):
    """New-user trial: the directory was 0700 (mkdtemp) and receiver.safetensors 0600
    (safetensors' writer) while model.json was 0644: another user could not load a shared
    model. Every entry now has an ordinary new file's mode (0777 / 0666 less the umask)."""
    import os

    mask = os.umask(0)
    os.umask(mask)
    assert model_dir.stat().st_mode & 0o777 == 0o777 & ~mask
    modes = {p.name: p.stat().st_mode & 0o777 for p in model_dir.iterdir()}
    assert set(modes.values()) == {0o666 & ~mask}, modes


def test_eval_json_per_design(model_dir, tmp_path, capsys):
    out = tmp_path / "eval.json"
    argv = [
        "eval",
        "--model",
        str(model_dir),
        "--ebn0-db",
        "4:6:2",
        "--json",
        str(out),
        "--target-errors",
        "20",
        "--max-blocks",
        "20000",
        "--plots",
        str(tmp_path / "plots"),
    ]
    assert main(argv) == 0
    doc = json.loads(out.read_text())
    assert doc["ebn0_db"] == [4.0, 6.0]
    for key in ("bler", "ml_bler", "blocks", "errors"):
        assert len(doc[key]) == 2
    assert all(e >= 20 or b == 20000 for e, b in zip(doc["errors"], doc["blocks"], strict=True))
    assert doc["bler"][1] < doc["bler"][0]
    assert "QPSK (analytic)" in doc["baselines"]
    assert (tmp_path / "plots" / "bler.png").stat().st_size > 1000
    out_text = capsys.readouterr().out
    assert "AE neural BLER" in out_text
    short = [e for e, n in zip(doc["ebn0_db"], doc["errors"], strict=True) if n < 20]
    assert ("short of --target-errors 20" in out_text) == bool(short)


@pytest.mark.parametrize("where", ["a directory", "inside the model", "empty", "under a file"])
def test_eval_refuses_an_unwritable_or_harmful_json_before_simulating(model_dir, tmp_path, capsys, where):
    """New-user trial: --json naming a directory was a traceback after the simulation (the
    results lost), and --json MODEL/model.json replaced the model's own metadata (the model
    destroyed, exit 0). Both are refused in one line before any simulation."""
    (tmp_path / "afile").write_text("x")
    target = {"a directory": str(tmp_path), "inside the model": str(model_dir / "model.json"),
              "empty": "", "under a file": str(tmp_path / "afile" / "x.json")}[where]
    before = (model_dir / "model.json").read_bytes()
    expected = {"a directory": "is a directory", "inside the model": "inside the --model directory",
                "empty": "empty path", "under a file": "is not a directory"}[where]
    _one_line_error(capsys, ["eval", "--model", str(model_dir), "--ebn0-db", "4", "--json", target,
                             "--max-blocks", "100"], expected)
    assert (model_dir / "model.json").read_bytes() == before


def test_a_file_given_as_the_model_is_named_a_file(tmp_path, capsys):
    """New-user trial: `--model k2.toml` said "model directory k2.toml does not exist"."""
    config = _write(tmp_path, TINY)
    _one_line_error(capsys, ["eval", "--model", str(config), "--ebn0-db", "4"],
                    "is a file, not a model directory")


def test_eval_says_which_points_stopped_before_the_target_errors(model_dir, capsys):
    """--max-blocks bounds the simulation; a point it stopped short of --target-errors is
    named with its error count, not presented as precise as the rest."""
    argv = ["eval", "--model", str(model_dir), "--ebn0-db", "2:10:8", "--target-errors", "50",
            "--max-blocks", "300", "--quiet"]
    assert main(argv) == 0
    note = [line for line in capsys.readouterr().out.splitlines() if line.startswith("note:")]
    assert len(note) == 1 and "--max-blocks 300 short of --target-errors 50" in note[0]
    assert "10 dB (" in note[0]


@pytest.mark.parametrize(
    "toml, expected",
    [
        (TINY.replace("k = 2", "k = 0"), "model.k must be in [1, 16], got 0"),
        (TINY.replace("n = 1", "n = 99"), "model.n must be in [1, 64], got 99"),
        (TINY + "ebn0_db_min = 9.0\nebn0_db_max = 3.0\n", "range is inverted"),
        (TINY + 'channel = "awgn+fog"\n', "unknown channel 'fog'"),
        (TINY + 'channel = "phase"\n', "must include 'awgn'"),
    ],
)
def test_train_bad_config(tmp_path, capsys, toml, expected):
    cfg = _write(tmp_path, toml)
    _one_line_error(
        capsys, ["train", "--config", str(cfg), "--out", str(tmp_path / "m"), "--quiet"], expected
    )
    assert not (tmp_path / "m").exists()


def test_train_refuses_a_foreign_directory(tmp_path, capsys):
    cfg = _write(tmp_path, TINY)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "x.txt").write_text("keep")
    _one_line_error(
        capsys,
        ["train", "--config", str(cfg), "--out", str(tmp_path / "data"), "--quiet"],
        "refusing to overwrite",
    )


@pytest.mark.parametrize("spec, expected", [("5:4:1", "inverted"), ("0:4:0", "STEP must be > 0")])
def test_eval_bad_range(model_dir, capsys, spec, expected):
    _one_line_error(capsys, ["eval", "--model", str(model_dir), "--ebn0-db", spec], expected)


def test_eval_unknown_channel(model_dir, capsys):
    _one_line_error(
        capsys,
        ["eval", "--model", str(model_dir), "--ebn0-db", "5", "--channel", "awgn+fog"],
        "unknown channel 'fog'",
    )


@pytest.mark.parametrize(
    "damage, expected",
    [
        ("alter", "was altered"),
        ("remove", "is missing"),
        ("pickle", "not a safetensors file"),
    ],
)
def test_eval_damaged_model(model_dir, tmp_path, capsys, damage, expected):
    import shutil

    from aeradio.core.model_dir import sha256_file

    copy = tmp_path / "copy"
    shutil.copytree(model_dir, copy)
    target = copy / "receiver.safetensors"
    if damage == "alter":
        target.write_bytes(target.read_bytes()[:-1] + b"\x00")
    elif damage == "remove":
        target.unlink()
    else:
        target.write_bytes(b"\x80\x04\x95 not safetensors")
        meta = json.loads((copy / "model.json").read_text())
        meta["files"]["receiver.safetensors"]["sha256"] = sha256_file(target)
        (copy / "model.json").write_text(json.dumps(meta))
    _one_line_error(capsys, ["eval", "--model", str(copy), "--ebn0-db", "5"], expected)


def test_simulate_bler_of_a_model_dir(model_dir):
    from aeradio.learning.evaluate import simulate_bler

    res = simulate_bler(model_dir, 6.0, target_errors=20, max_blocks=50_000, seed=3)
    assert res["neural"]["errors"] >= 20 and res["ml"]["blocks"] == res["neural"]["blocks"]
    # A random phase ruins a receiver trained without it; ML of the LUT is not run there.
    rotated = simulate_bler(model_dir, 6.0, "awgn+phase", target_errors=20, max_blocks=50_000)
    assert rotated["ml"] is None and rotated["neural"]["bler"] > 10 * res["neural"]["bler"]


def test_train_refuses_an_existing_model_unless_overwrite(model_dir, tmp_path, capsys):
    import shutil

    from aeradio.core.model_dir import sha256_file

    copy = tmp_path / "m"
    shutil.copytree(model_dir, copy)
    before = {p.name: sha256_file(p) for p in copy.iterdir()}
    cfg = _write(tmp_path, TINY)
    # Refused before any training (a fraction of a second, not the training's seconds).
    _one_line_error(
        capsys,
        ["train", "--config", str(cfg), "--out", str(copy), "--quiet"],
        "is an existing model directory; pass --overwrite to replace it",
    )
    assert {p.name: sha256_file(p) for p in copy.iterdir()} == before
    argv = ["train", "--config", str(cfg), "--out", str(copy), "--quiet", "--steps", "20", "--overwrite"]
    assert main(argv) == 0
    meta = json.loads((copy / "model.json").read_text())
    assert meta["meta"]["training"]["steps"] == 20
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cfg.toml", "m"]  # nothing left aside


def test_training_history_in_model_json_is_thinned(model_dir):
    from aeradio.apps.train import thin_history

    history = [{"step": s, "loss": 1.0 / s} for s in range(1, 100_001)]
    thinned = thin_history(history, 1000)
    assert len(thinned) == 1000 and thinned[0] == history[0] and thinned[-1] == history[-1]
    assert thin_history(history[:5], 1000) == history[:5]
    # 150 steps at one point per 10: all kept.
    assert len(json.loads((model_dir / "model.json").read_text())["meta"]["history"]) == 15
