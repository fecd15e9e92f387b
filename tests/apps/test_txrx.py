"""``aeradio tx`` to a SigMF file, then ``aeradio rx`` from it (the offline chain)."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from aeradio.cli import main
from aeradio.core.config import LinkConfig
from aeradio.dsp.framing import MAX_RUN_FRAMES
from aeradio.flowgraphs.tx_chain import TxChain
from aeradio.radio.base import DeviceSettings
from aeradio.radio.sigmf_file import SigmfFileDevice
from tests.flowgraphs.conftest import random_lut
from tests.learning.test_dataset import matched_filter_model

FRAMES = 5


def _model(path: Path, blocks_per_frame: int) -> Path:
    """A small model whose receiver is ML detection of its LUT (noise-free: no block errors)."""
    cfg = LinkConfig.from_dict(
        {"model": {"k": 4, "n": 2, "hidden_width": 16, "hidden_layers": 1},
         "frame": {"blocks_per_frame": blocks_per_frame}}
    )
    return matched_filter_model(path, cfg, random_lut(cfg.model.M, cfg.model.n, np.random.default_rng(5)))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 blocks of 4 bits per frame: no room for data after the CRC-32."""
    return _model(tmp_path_factory.mktemp("model") / "m", 8)


@pytest.fixture(scope="module")
def data_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """32 blocks of 4 bits per frame: 12 data bytes."""
    return _model(tmp_path_factory.mktemp("model") / "d", 32)


def test_tx_file_then_rx_file_reports_json(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    rec = tmp_path / "rec.sigmf-meta"
    args = ["--model", str(model_dir), "--device", f"file:{rec}"]
    assert main(["tx", *args, "--frames", str(FRAMES), "--seed", "3"]) == 0
    # A second write to the same file is refused, then allowed with --overwrite.
    assert main(["tx", *args, "--frames", str(FRAMES), "--seed", "3"]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err
    assert main(["tx", *args, "--frames", str(FRAMES), "--seed", "3", "--overwrite"]) == 0
    report = tmp_path / "rx.json"
    # No --seed: the frames carry theirs (a receiver assuming seed 0 would see BLER ~1).
    assert main(["rx", *args, "--json", str(report)]) == 0
    got = json.loads(report.read_text())
    for key in ("frames_expected", "frames_detected", "frames_decoded", "blocks", "block_errors", "bler",
                "snr_db", "cfo_hz", "samples_dropped", "header_crc_failures"):
        assert key in got
    assert got["frames_detected"] == got["frames_decoded"] == got["frames_expected"] == FRAMES
    assert got["last_frame_seen"] is True and got["last_frame_seq"] == FRAMES - 1
    assert got["blocks"] == FRAMES * 8 and got["block_errors"] == 0
    assert got["header_crc_failures"] == 0 and got["samples_dropped"] == 0
    # Noise-free: the ISI of the pulse and the DC blocker, which takes part of these short
    # frames' own mean (16 random LUT symbols of payload; 25.0 dB since the coded header
    # shortened the frame, 34.5 dB without DC removal).
    assert abs(got["cfo_hz"]) < 20.0 and got["snr_db"] > 24
    assert 0 < got["processing_s"] < got["elapsed_s"]
    assert got["processing_msps"] == pytest.approx(got["samples"] / got["processing_s"] / 1e6)


def test_rx_on_a_bad_recording_is_one_error_line(model_dir: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture) -> None:
    rec = tmp_path / "bad.sigmf-meta"
    rec.write_text(json.dumps({"global": {"core:datatype": "ri8", "core:sample_rate": 1e6}}))
    assert main(["rx", "--model", str(model_dir), "--device", f"file:{rec}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "datatype" in err[0]


def test_tx_runs_without_torch(model_dir: Path, tmp_path: Path) -> None:
    """The TX side is a LUT lookup in numpy: ``aeradio tx`` works where torch cannot be imported."""
    rec = tmp_path / "notorch.sigmf-meta"
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from aeradio.cli import main\n"
        f"sys.exit(main(['tx', '--model', {str(model_dir)!r}, '--device', 'file:{rec}', '--frames', '2']))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert rec.exists() and rec.with_suffix(".sigmf-data").stat().st_size > 0


ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_tx_stopped_by_a_signal_leaves_no_recording(
    model_dir: Path, tmp_path: Path, sig: int, code: int
) -> None:
    """SIGTERM or Ctrl-C in the middle of a long ``tx --device file:``: nothing under the final
    names, no temporary file left, one line saying how far it got, and 128 + the signal."""
    out = tmp_path / "out"
    out.mkdir()
    rec = out / "big.sigmf-meta"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "aeradio.cli", "tx", "--model", str(model_dir), "--device", f"file:{rec}",
           "--frames", "1000000"]  # about 10 GB if it were not stopped
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 60
        while not any(p.stat().st_size > 1 << 20 for p in out.iterdir()):  # writing has begun
            assert proc.poll() is None and time.monotonic() < deadline, "tx did not start writing"
            time.sleep(0.05)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == code, err
    assert sorted(p.name for p in out.iterdir()) == []
    (line,) = err.strip().splitlines()
    m = re.fullmatch(rf"aeradio tx: interrupted by {signal.Signals(sig).name} after (\d+) of 1000000 frames; "
                     r"the recording was not written", line)
    assert m is not None, line
    assert 0 < int(m.group(1)) < 1_000_000


def test_calibrate_tx_stopped_by_sigterm_publishes_nothing(tmp_path: Path) -> None:
    """``calibrate tx --device file:`` cut short by SIGTERM: no recording, exit 143, one line."""
    out = tmp_path / "out"
    out.mkdir()
    rec = out / "cal.sigmf-meta"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "aeradio.cli", "calibrate", "tx", "--device", f"file:{rec}",
           "--bursts", "1000000"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 60
        while not any(p.stat().st_size > 1 << 20 for p in out.iterdir()):  # writing has begun
            assert proc.poll() is None and time.monotonic() < deadline, "calibrate tx did not start"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 143, err
    assert sorted(p.name for p in out.iterdir()) == []
    assert re.fullmatch(r"aeradio calibrate tx: interrupted by SIGTERM after \d+ of 1000000 bursts; "
                        r"not published", err.strip()), err


def test_tx_to_a_zmq_address_nobody_listens_on_fails(model_dir: Path, capsys: pytest.CaptureFixture) -> None:
    # It used to exit 0 after "5 frames sent": the frames vanished.
    import time

    from aeradio.radio.zmq_stream import free_endpoint

    for suffix in ("", "?bind=1"):
        uri = f"zmq:{free_endpoint()}{suffix}"
        t0 = time.monotonic()
        code = main(["tx", "--model", str(model_dir), "--device", uri, "--frames", "5",
                     "--connect-timeout-s", "0.5"])
        assert code == 2 and 0.4 < time.monotonic() - t0 < 5
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "no ZMQ peer" in err[0] and "within 0.5 s" in err[0], err
    assert main(["tx", "--model", str(model_dir), "--device", "zmq:tcp://127.0.0.1:1",
                 "--connect-timeout-s", "0"]) == 2
    assert "--connect-timeout-s must be in [0.01, 3600] s, got 0.0" in capsys.readouterr().err


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--seed", "4096", "--seed must be in [0, 4095], got 4096"),
    ("--seed", "-1", "--seed must be in [0, 4095], got -1"),
    ("--frames", "2147483649", "--frames must be in [1, 2147483648], got 2147483649"),
])
def test_tx_options_out_of_range_are_one_error_line(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture, option: str, value: str, message: str
) -> None:
    rec = tmp_path / "never.sigmf-meta"
    assert main(["tx", "--model", str(model_dir), "--device", f"file:{rec}", option, value]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not rec.exists()


def test_tx_file_beyond_the_run_limit_or_without_room_is_one_error_line(
    model_dir: Path, data_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    huge = tmp_path / "huge.bin"
    with huge.open("wb") as f:  # sparse: nothing is written, nothing is read
        f.truncate(MAX_RUN_FRAMES * 12 + 1)
    rec = tmp_path / "never.sigmf-meta"
    assert main(["tx", "--model", str(data_model_dir), "--device", f"file:{rec}", "--file", str(huge)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"--file must fit in {MAX_RUN_FRAMES} frames" in err[0]
    # A model whose frames hold no data bytes (8 blocks of 4 bits: the CRC-32 alone).
    assert main(["tx", "--model", str(model_dir), "--device", f"file:{rec}", "--file", str(huge)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "carry no data" in err[0]
    assert not rec.exists()


def test_file_transfer_cut_short_is_reported(data_model_dir: Path, tmp_path: Path,
                                             rng: np.random.Generator) -> None:
    sent = bytes(rng.integers(0, 256, 12 * 5 + 7, dtype=np.uint8))  # 6 frames, the last partial
    (tmp_path / "sent.bin").write_bytes(sent)
    full = tmp_path / "full.sigmf-meta"
    model = ["--model", str(data_model_dir)]
    assert main(["tx", *model, "--device", f"file:{full}", "--file", str(tmp_path / "sent.bin")]) == 0

    def receive(rec: Path, name: str, code: int) -> dict:
        out, report = tmp_path / f"{name}.bin", tmp_path / f"{name}.json"
        argv = ["rx", *model, "--device", f"file:{rec}", "--out", str(out), "--json", str(report)]
        assert main(argv) == code
        got = out if out.exists() else out.with_name(out.name + ".partial")
        return {**json.loads(report.read_text()), "received": got.read_bytes()}

    whole = receive(full, "whole", 0)
    assert whole["received"] == sent and whole["transfer"]["complete"]
    assert whole["transfer"]["missing_frames"] == [] and whole["transfer"]["expected_frames"] == 6
    assert whole["last_frame_seen"] and whole["frames_expected"] == 6
    # The same recording cut within the last frame: the tail is missing, and the report says so.
    from aeradio.core.model_dir import load_link_config

    cfg = load_link_config(data_model_dir)
    lay = TxChain(cfg, random_lut(cfg.model.M, cfg.model.n, rng), 0).layout
    frame_period = (lay.num_symbols + lay.gap_symbols) * lay.sps
    samples = np.fromfile(full.with_suffix(".sigmf-data"), np.complex64)
    cut = tmp_path / "cut.sigmf-meta"
    with SigmfFileDevice(cut, "tx", DeviceSettings(cfg.radio.sample_rate_hz)) as dev:
        dev.write(samples[: 5 * frame_period + frame_period // 2])
    short = receive(cut, "short", 1)  # exit 1: the transfer's end is unknown, FILE.partial only
    assert short["received"] == sent[: 12 * 5] and not short["transfer"]["complete"]
    assert short["transfer"]["expected_frames"] is None and not short["last_frame_seen"]
    assert short["frames_expected"] == 5
