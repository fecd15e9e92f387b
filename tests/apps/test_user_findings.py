"""Regressions of what a new user hit on a first try: each is one line and exit 2 before
any work, never a traceback and never a silent replacement."""

from pathlib import Path

import numpy as np
import pytest

from aeradio.apps.channel import settings_from_args
from aeradio.cli import build_parser, main
from aeradio.core.config import LinkConfig
from aeradio.core.errors import ConfigError
from tests.flowgraphs.conftest import random_lut


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from aeradio.core.model_dir import save_model
    from aeradio.learning.receiver import NeuralReceiver

    cfg = LinkConfig.from_dict(
        {"model": {"k": 4, "n": 2, "hidden_width": 16, "hidden_layers": 1}, "frame": {"blocks_per_frame": 8}}
    )
    out = tmp_path_factory.mktemp("model") / "m"
    save_model(out, cfg, random_lut(cfg.model.M, cfg.model.n, np.random.default_rng(5)),
               NeuralReceiver.from_config(cfg.model).state_dict())
    return out


def _one_line(capsys: pytest.CaptureFixture) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    return err[0]


def test_dump_dir_that_cannot_be_made(model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rec = tmp_path / "r.sigmf-meta"
    assert main(["tx", "--model", str(model_dir), "--device", f"file:{rec}", "--frames", "1"]) == 0
    capsys.readouterr()
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert main(["rx", "--model", str(model_dir), "--device", f"file:{rec}", "--dump-dir", str(blocker)]) == 2
    assert "--dump-dir" in _one_line(capsys)


def test_eval_plots_path_is_checked_before_simulating(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert main(["eval", "--model", str(model_dir), "--ebn0-db", "5", "--plots", str(blocker),
                 "--max-blocks", "10"]) == 2
    assert "--plots" in _one_line(capsys)


def test_eval_refuses_meaningless_ebn0(model_dir: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["eval", "--model", str(model_dir), "--ebn0-db", "3:300:1"]) == 2
    assert "must be in [-20, 30] dB" in _one_line(capsys)


def test_calibrate_rx_does_not_replace_a_calibration_file(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    cal = tmp_path / "cal.json"
    cal.write_text("{}")
    device = f"file:{tmp_path / 'none.sigmf-meta'}"
    assert main(["calibrate", "rx", "--device", device, "--json", str(cal)]) == 2
    assert "refusing to overwrite" in _one_line(capsys) and cal.read_text() == "{}"


def test_channel_rate_must_be_the_models(model_dir: Path) -> None:
    args = build_parser().parse_args(
        ["channel", "--tx", "zmq:tcp://127.0.0.1:1", "--rx", "zmq:tcp://127.0.0.1:2",
         "--sample-rate-hz", "2e6", "--model", str(model_dir), "--ebn0-db", "10"]
    )
    with pytest.raises(ConfigError, match=r"--sample-rate-hz 2e\+06 differs from the model's 1e\+06"):
        settings_from_args(args)


def test_tx_refuses_a_write_timeout_out_of_range(model_dir: Path, capsys: pytest.CaptureFixture) -> None:
    from aeradio.radio.zmq_stream import free_endpoint

    assert main(["tx", "--model", str(model_dir), "--device", f"zmq:{free_endpoint()}", "--frames", "1",
                 "--write-timeout-s", "0"]) == 2
    assert "--write-timeout-s must be in [0.01, 3600]" in _one_line(capsys)


def test_calibrate_tx_takes_the_connect_timeout(capsys: pytest.CaptureFixture) -> None:
    from aeradio.radio.zmq_stream import free_endpoint

    assert main(["calibrate", "tx", "--device", f"zmq:{free_endpoint()}", "--bursts", "1",
                 "--connect-timeout-s", "0.3"]) == 2
    line = _one_line(capsys)
    assert "no ZMQ peer" in line and "within 0.3 s (--connect-timeout-s)" in line


@pytest.mark.parametrize(
    "argv",
    [
        ["channel-model", "check", "--channel-model", "CM", "--model", "M", "--captures", "C",
         "--json", "DIR"],
        ["channel-model", "fit", "--model", "M", "--captures", "C", "--out", "OUT", "--json", "DIR"],
        ["finetune", "--model", "M", "--captures", "C", "--out", "OUT", "--json", "DIR"],
        ["finetune", "--model", "M", "--captures", "C", "--out", "OUT", "--end-to-end",
         "--channel-model", "CM", "--json", "DIR"],
        ["rx", "--model", "M", "--device", "file:C/x.sigmf-meta", "--json", "DIR"],
        ["channel-model", "fit", "--model", "M", "--captures", "C", "--out", "OUT",
         "--json", "FILE/x.json"],
    ],
)
def test_json_report_path_is_checked_before_any_work(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture, argv: list[str]
) -> None:
    """--json naming a directory (or under a file) was a traceback after the whole run."""
    (tmp_path / "DIR").mkdir()
    (tmp_path / "FILE").write_text("x")
    subst = {"M": str(model_dir), "DIR": str(tmp_path / "DIR"), "C": str(tmp_path / "no-captures"),
             "OUT": str(tmp_path / "out"), "CM": str(tmp_path / "no-cm"),
             "FILE/x.json": str(tmp_path / "FILE/x.json"),
             "file:C/x.sigmf-meta": f"file:{tmp_path / 'no-captures' / 'x.sigmf-meta'}"}
    assert main([subst.get(a, a) for a in argv]) == 2
    line = _one_line(capsys)
    assert "--json" in line and ("is a directory" in line or "is not a directory" in line), line
    assert not (tmp_path / "out").exists()


def test_channel_model_check_plots_under_a_file(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """--plots naming a file was a FileExistsError traceback after the fidelity run."""
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    for plots in (blocker, blocker / "sub"):
        assert main(["channel-model", "check", "--channel-model", str(tmp_path / "cm"),
                     "--model", str(model_dir), "--captures", str(tmp_path), "--plots", str(plots)]) == 2
        assert f"{blocker} is not a directory" in _one_line(capsys)
    assert blocker.read_text() == "x"


@pytest.mark.parametrize("seed", ["-1", str(2**64)])
@pytest.mark.parametrize(
    "argv",
    [
        ["channel-model", "check", "--channel-model", "CM", "--model", "M", "--captures", "C"],
        ["channel-model", "fit", "--model", "M", "--captures", "C", "--out", "OUT"],
        ["finetune", "--model", "M", "--captures", "C", "--out", "OUT"],
        ["finetune", "--model", "M", "--captures", "C", "--out", "OUT", "--end-to-end",
         "--channel-model", "CM"],
    ],
)
def test_a_negative_or_huge_seed_is_one_line(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture, argv: list[str], seed: str
) -> None:
    """--seed -1 was a numpy ValueError traceback once the captures were read."""
    subst = {"M": str(model_dir), "C": str(tmp_path / "no-captures"), "OUT": str(tmp_path / "out"),
             "CM": str(tmp_path / "no-cm")}
    assert main([*(subst.get(a, a) for a in argv), "--seed", seed]) == 2
    assert f"--seed must be in [0, {2**63 - 1}], got {seed}" in _one_line(capsys)


def test_tx_pattern_probe_with_a_file_is_refused(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """--pattern probe --file F sent the file and silently dropped the probe pattern."""
    data = tmp_path / "data.bin"
    data.write_bytes(b"x" * 100)
    rec = tmp_path / "r.sigmf-meta"
    assert main(["tx", "--model", str(model_dir), "--device", f"file:{rec}", "--file", str(data),
                 "--pattern", "probe"]) == 2
    assert "--pattern probe" in _one_line(capsys)
    assert not rec.exists()
    assert main(["tx", "--model", str(model_dir), "--device", f"file:{rec}", "--frames", "1",
                 "--pattern", "probe"]) == 0


@pytest.mark.parametrize("end_to_end", [[], ["--end-to-end", "--channel-model", "CM"]])
def test_finetune_never_replaces_its_source_model(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture, end_to_end: list[str]
) -> None:
    before = {p.name: p.read_bytes() for p in model_dir.iterdir()}
    argv = ["finetune", "--model", str(model_dir), "--captures", str(tmp_path), "--out", f"{model_dir}/",
            "--overwrite", *end_to_end]
    assert main([str(tmp_path / "cm") if a == "CM" else a for a in argv]) == 2
    assert "is the --model directory" in _one_line(capsys)
    assert {p.name: p.read_bytes() for p in model_dir.iterdir()} == before


@pytest.mark.parametrize(
    "argv",
    [
        ["channel-model", "fit", "--model", "M", "--captures", "C", "--out", "OUT"],
        ["finetune", "--model", "M", "--captures", "C", "--out", "OUT"],
        ["finetune", "--model", "M", "--captures", "C", "--out", "OUT", "--end-to-end",
         "--channel-model", "CM"],
        ["train-ota", "--model", "M", "--tx-device", "zmq:tcp://127.0.0.1:1", "--rx-device",
         "zmq:tcp://127.0.0.1:2", "--out", "OUT"],
    ],
)
def test_out_under_a_file_is_one_line(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture, argv: list[str]
) -> None:
    """--out a-file/x was a FileExistsError traceback (after the training, for fit)."""
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    subst = {"M": str(model_dir), "C": str(tmp_path), "OUT": str(blocker / "x"), "CM": str(tmp_path / "cm")}
    assert main([subst.get(a, a) for a in argv]) == 2
    assert f"--out {blocker / 'x'}: {blocker} is not a directory" in _one_line(capsys)
    assert blocker.read_text() == "x"


def test_check_output_dir_under_a_file(tmp_path: Path) -> None:
    from aeradio.core.model_dir import check_output_dir

    (tmp_path / "f").write_text("x")
    with pytest.raises(ConfigError, match="is not a directory"):
        check_output_dir(tmp_path / "f" / "deeper" / "m")
    assert check_output_dir(tmp_path / "new" / "m") == tmp_path / "new" / "m"


@pytest.mark.parametrize("rate", ["1", "1e15", "nan", "-1000"])
def test_device_sample_rate_outside_the_radio_range_is_one_line(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture, rate: str
) -> None:
    """--sample-rate-hz 1 (S/s typed for MS/s) or 1e15 ran train-ota and tx over zmq, where
    train-ota's waits for a lost frame scale with 1 / rate; the range is the config's."""
    argvs = [
        ["tx", "--model", str(model_dir), "--device", f"file:{tmp_path / 'r.sigmf-meta'}", "--frames", "1"],
        ["train-ota", "--model", str(model_dir), "--tx-device", "zmq:tcp://127.0.0.1:1",
         "--rx-device", "zmq:tcp://127.0.0.1:2", "--out", str(tmp_path / "o")],
    ]
    for argv in argvs:
        assert main([*argv, "--sample-rate-hz", rate]) == 2
        assert "sample rate must be in [1000, 1e+09] Hz" in _one_line(capsys)
    assert not (tmp_path / "o").exists() and not (tmp_path / "r.sigmf-meta").exists()
