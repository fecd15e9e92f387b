"""The commands on damaged or oversized model files: one error line, bounded memory."""

import io
import json
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from aeradio.cli import main
from aeradio.core.config import LinkConfig
from aeradio.core.model_dir import load_link_config, load_lut, save_model, sha256_file
from aeradio.flowgraphs.tx_chain import MAX_WRITE_SAMPLES, TxChain
from aeradio.learning.receiver import NeuralReceiver
from aeradio.radio.sigmf_file import SigmfFileDevice

#: A frame of about 560 k samples (4.3 MiB): two of them exceed MAX_WRITE_SAMPLES.
LONG_FRAME = {
    "model": {"k": 1, "n": 16, "hidden_width": 4, "hidden_layers": 1},
    "frame": {"blocks_per_frame": 4096},
    "radio": {"samples_per_symbol": 8},
}
SHORT_FRAME = {
    "model": {"k": 2, "n": 1, "hidden_width": 4, "hidden_layers": 1},
    "frame": {"blocks_per_frame": 8},
}


def _model(path: Path, data: dict) -> Path:
    cfg = LinkConfig.from_dict(data)
    lut = np.exp(2j * np.pi * np.arange(cfg.model.M * cfg.model.n) / 7).astype(np.complex64)
    lut = lut.reshape(cfg.model.M, cfg.model.n)
    return save_model(path, cfg, lut, NeuralReceiver.from_config(cfg.model).state_dict())


def _one_line_error(capsys: pytest.CaptureFixture, argv: list[str], expected: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    assert expected in err, err


@pytest.mark.parametrize("frame, frames", [(LONG_FRAME, 12), (SHORT_FRAME, 300)])
def test_tx_writes_batches_bounded_by_samples(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, frame: dict, frames: int
) -> None:
    model = _model(tmp_path / "m", frame)
    tx = TxChain(load_link_config(model), load_lut(model), 0)
    tail = len(tx.layout.taps) - 1
    writes: list[int] = []
    original = SigmfFileDevice.write

    def record(self: SigmfFileDevice, samples: np.ndarray, **kwargs: object) -> None:
        writes.append(len(samples))
        original(self, samples, **kwargs)

    monkeypatch.setattr(SigmfFileDevice, "write", record)
    rec = tmp_path / "rec.sigmf-meta"
    tracemalloc.start()
    try:
        assert main(["tx", "--model", str(model), "--device", f"file:{rec}", "--frames", str(frames)]) == 0
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    per_write = max(1, MAX_WRITE_SAMPLES // tx.frame_samples)
    assert len(writes) == -(-frames // per_write)
    assert sum(writes) == frames * tx.frame_samples + len(writes) * tail
    assert max(writes) <= max(MAX_WRITE_SAMPLES, tx.frame_samples) + tail
    # Memory follows the batch, not the number of frames (64 frames at once took 31.5 GiB
    # with the largest frame): a few times the largest write.
    assert peak < 8 * 8 * max(writes), (peak, max(writes))


def _forge(model: Path, name: str, data: bytes) -> None:
    (model / name).write_bytes(data)
    meta = json.loads((model / "model.json").read_text())
    meta["files"][name]["sha256"] = sha256_file(model / name)
    (model / "model.json").write_text(json.dumps(meta))


def test_tx_refuses_a_lut_with_nan_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    model = _model(tmp_path / "m", SHORT_FRAME)
    buf = io.BytesIO()
    np.save(buf, np.array([[np.nan], [1], [-1], [1j]], np.complex64))
    _forge(model, "tx_lut.npy", buf.getvalue())
    rec = tmp_path / "rec.sigmf-meta"
    _one_line_error(
        capsys,
        ["tx", "--model", str(model), "--device", f"file:{rec}", "--frames", "2"],
        "the LUT must be finite",
    )
    assert not rec.exists()


@pytest.mark.parametrize(
    "text, expected",
    [
        ("[" * 100_000 + "]" * 100_000, "is not JSON: nested too deeply"),
        (None, "parameters"),  # a config within every field's range whose receiver is 604 M parameters
    ],
)
def test_rx_and_eval_on_a_bad_model_json_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture, text: str | None, expected: str
) -> None:
    model = _model(tmp_path / "m", SHORT_FRAME)
    path = model / "model.json"
    if text is None:
        meta = json.loads(path.read_text())
        meta["config"]["model"].update(k=16, hidden_width=8192)
        text = json.dumps(meta)
    path.write_text(text)
    _one_line_error(
        capsys, ["rx", "--model", str(model), "--device", f"file:{tmp_path / 'x.sigmf-meta'}"], expected
    )
    _one_line_error(capsys, ["eval", "--model", str(model), "--ebn0-db", "5"], expected)


def test_tx_with_a_nested_calibration_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    model = _model(tmp_path / "m", SHORT_FRAME)
    cal = tmp_path / "cal.json"
    cal.write_text('{"a": ' * 50_000 + "1" + "}" * 50_000)
    _one_line_error(
        capsys,
        [
            "tx",
            "--model",
            str(model),
            "--device",
            f"file:{tmp_path / 'r.sigmf-meta'}",
            "--calibration",
            str(cal),
        ],
        "is not JSON: nested too deeply",
    )
