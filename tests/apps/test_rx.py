"""``aeradio rx`` tells the truth: summary line, exit code, report and ``--out``.

Recordings are written by ``aeradio tx --device file:...`` and damaged on purpose (a frame's
samples overwritten with noise), then received in-process with :func:`aeradio.cli.main`.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aeradio.apps import rx as rx_app
from aeradio.apps.processes import StopOnSignal
from aeradio.apps.rx_out import FileTransfer, check_out_path, compact_ranges, format_ranges
from aeradio.cli import main
from aeradio.core.config import LinkConfig
from aeradio.core.errors import ConfigError
from aeradio.core.model_dir import load_link_config, model_hash32
from aeradio.dsp.framing import FrameLayout, Header, data_capacity_bytes
from aeradio.flowgraphs.rx_chain import FrameResult
from aeradio.radio.base import DeviceSettings
from aeradio.radio.sigmf_file import SigmfFileDevice
from aeradio.radio.zmq_stream import free_endpoint
from tests.apps.conftest import TINY
from tests.flowgraphs.conftest import random_lut

RATE_HZ = 1e6
TEST_FRAMES = 20
SEED = 3


@pytest.fixture(scope="module")
def model(tiny_model: Path) -> Path:
    """AE(n=1, k=2) trained briefly (QPSK-like): decodes a noise-free recording exactly."""
    return tiny_model


@pytest.fixture(scope="module")
def other_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same frame layout with another LUT: another model hash."""
    from aeradio.core.model_dir import save_model
    from aeradio.learning.receiver import NeuralReceiver

    cfg = LinkConfig.from_dict(TINY)
    out = tmp_path_factory.mktemp("model") / "other"
    lut = random_lut(cfg.model.M, cfg.model.n, np.random.default_rng(5))
    save_model(out, cfg, lut, NeuralReceiver.from_config(cfg.model).state_dict())
    return out


@pytest.fixture(scope="module")
def test_recording(model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    rec = tmp_path_factory.mktemp("rec") / "tp.sigmf-meta"
    assert _tx(model, rec, "--frames", str(TEST_FRAMES), "--seed", str(SEED)) == 0
    return rec


@pytest.fixture(scope="module")
def capacity(model: Path) -> int:
    cfg = load_link_config(model)
    return data_capacity_bytes(cfg.model.k, cfg.frame.blocks_per_frame)


def _tx(model: Path, rec: Path, *args: str) -> int:
    return main(["tx", "--model", str(model), "--device", f"file:{rec}", *args])


def _rx(model: Path, rec: Path, *args: str) -> int:
    return main(["rx", "--model", str(model), "--device", f"file:{rec}", *args])


def _read(rec: Path) -> np.ndarray:
    with SigmfFileDevice(rec, "rx", DeviceSettings(RATE_HZ)) as dev:
        parts = []
        while (x := dev.read(1 << 20)) is not None:
            parts.append(x)
    return np.concatenate(parts)


def _write(rec: Path, samples: np.ndarray) -> Path:
    """A new recording (written by the device, so its metadata is consistent)."""
    with SigmfFileDevice(rec, "tx", DeviceSettings(RATE_HZ)) as dev:
        dev.write(samples.astype(np.complex64))
    return rec


def _frame_slot(model: Path, frame: int) -> slice:
    """Samples of one frame of a ``tx`` recording (fewer than 64 frames: one batch)."""
    lay = FrameLayout(load_link_config(model))
    spacing = (lay.num_symbols + lay.gap_symbols) * lay.sps
    return slice(frame * spacing, (frame + 1) * spacing)


def _header_samples(model: Path, frame: int) -> slice:
    """The header's pulses (symbol ``j`` peaks at sample ``j * sps + filter_delay``)."""
    lay = FrameLayout(load_link_config(model))
    start = _frame_slot(model, frame).start + lay.header_start * lay.sps + lay.filter_delay
    return slice(start, start + lay.header_len * lay.sps)


def _payload_samples(model: Path, frame: int) -> slice:
    """The pulses after the header: payload blocks and pilots."""
    lay = FrameLayout(load_link_config(model))
    start = _frame_slot(model, frame).start + lay.filter_delay
    return slice(start + (lay.header_start + lay.header_len) * lay.sps, start + lay.num_symbols * lay.sps)


def _damage(
    model: Path, rec: Path, out: Path, *, frames: list[int] = (), headers: list[int] = (),
    payloads: list[int] = (),
) -> Path:
    """Copy ``rec`` with samples overwritten by noise: whole frames by weak noise (not
    detected), headers by strong noise (header CRC fails), payloads by strong noise (the
    header decodes, the data CRC-32 fails)."""
    x = _read(rec).copy()
    rms = float(np.sqrt(np.mean(np.abs(x[_frame_slot(model, 0)]) ** 2)))
    rng = np.random.default_rng(11)

    def noise(s: slice, level: float) -> np.ndarray:
        n = s.stop - s.start
        return level * rms * (rng.standard_normal(n) + 1j * rng.standard_normal(n)) / np.sqrt(2)

    for f in frames:
        x[_frame_slot(model, f)] = noise(_frame_slot(model, f), 0.02)
    for f in headers:
        x[_header_samples(model, f)] = noise(_header_samples(model, f), 2.0)
    for f in payloads:
        x[_payload_samples(model, f)] = noise(_payload_samples(model, f), 2.0)
    return _write(out, x)


def _lines(capsys: pytest.CaptureFixture) -> list[str]:
    return capsys.readouterr().err.strip().splitlines()


def _summary(lines: list[str]) -> str:
    return next(line for line in lines if " frames decoded (" in line)


# ---- file transfer ---------------------------------------------------------------------

@pytest.fixture
def sent(tmp_path: Path, capacity: int) -> bytes:
    """8 full frames and a short last one."""
    data = np.random.default_rng(7).bytes(8 * capacity + 4)
    (tmp_path / "sent.bin").write_bytes(data)
    return data


def test_complete_transfer_is_bit_exact_and_clears_an_old_partial(
    model: Path, tmp_path: Path, sent: bytes, capsys: pytest.CaptureFixture
) -> None:
    rec = tmp_path / "file.sigmf-meta"
    assert _tx(model, rec, "--file", str(tmp_path / "sent.bin")) == 0
    out = tmp_path / "got.bin"
    (tmp_path / "got.bin.partial").write_bytes(b"old")
    (tmp_path / "got.bin.partial.json").write_text("{}")
    capsys.readouterr()
    # The earlier attempt's partial data is not thrown away unasked...
    assert _rx(model, rec, "--out", str(out)) == 2
    assert "got.bin.partial exists (an earlier incomplete transfer)" in _lines(capsys)[-1]
    assert (tmp_path / "got.bin.partial").read_bytes() == b"old" and not out.exists()
    # ... with --overwrite the complete file replaces it.
    assert _rx(model, rec, "--out", str(out), "--overwrite", "--json", str(tmp_path / "r.json")) == 0
    assert out.read_bytes() == sent
    assert not (tmp_path / "got.bin.partial").exists() and not (tmp_path / "got.bin.partial.json").exists()
    t = json.loads((tmp_path / "r.json").read_text())["transfer"]
    assert t["complete"] and t["expected_frames"] == 9 and t["bytes"] == len(sent)
    assert t["missing_frames"] == [] and t["path"] == str(out)
    lines = _lines(capsys)
    assert f"file complete, {len(sent)} bytes" in _summary(lines)
    assert not any("FAILED" in line or "warning" in line for line in lines)


@pytest.mark.parametrize("damage", ["frames", "payloads"])
def test_missing_middle_frame_gives_a_zero_filled_partial(
    model: Path, tmp_path: Path, sent: bytes, capacity: int, capsys: pytest.CaptureFixture, damage: str
) -> None:
    # Frame 3 not detected at all, or detected with its data CRC-32 failing (the run that
    # once printed "834/834 frames decoded" and wrote a short file).
    rec = tmp_path / "file.sigmf-meta"
    assert _tx(model, rec, "--file", str(tmp_path / "sent.bin")) == 0
    damaged = _damage(model, rec, tmp_path / "lost3.sigmf-meta", **{damage: [3]})
    out = tmp_path / "got.bin"
    capsys.readouterr()
    assert _rx(model, damaged, "--out", str(out), "--json", str(tmp_path / "r.json")) == 1
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["data_crc_failures"] == (damage == "payloads")
    assert not out.exists()
    partial = (tmp_path / "got.bin.partial").read_bytes()
    hole = slice(3 * capacity, 4 * capacity)
    assert len(partial) == len(sent)
    assert partial[hole] == bytes(capacity)
    assert partial[: hole.start] == sent[: hole.start] and partial[hole.stop :] == sent[hole.stop :]
    side = json.loads((tmp_path / "got.bin.partial.json").read_text())
    assert side["file"] == str(out) and not side["complete"]
    assert side["missing_frames"] == [[3, 3]] and side["missing_bytes"] == [[hole.start, hole.stop]]
    lines = _lines(capsys)
    assert "missing frame 3 (1 of 9)" in _summary(lines)
    assert lines[-1].startswith("aeradio rx: FAILED: ") and "got.bin.partial" in lines[-1]


def test_missing_tail_frame_is_known_from_frames(
    model: Path, tmp_path: Path, capacity: int, capsys: pytest.CaptureFixture
) -> None:
    # A file of exactly 9 full frames: the LAST flag of frame 8 says where it ends.
    sent = np.random.default_rng(8).bytes(9 * capacity)
    (tmp_path / "sent.bin").write_bytes(sent)
    rec = tmp_path / "file.sigmf-meta"
    assert _tx(model, rec, "--file", str(tmp_path / "sent.bin")) == 0
    assert _rx(model, rec, "--out", str(tmp_path / "a.bin")) == 0
    assert (tmp_path / "a.bin").read_bytes() == sent
    assert _rx(model, rec, "--out", str(tmp_path / "b.bin"), "--frames", "9") == 0
    assert (tmp_path / "b.bin").read_bytes() == sent
    # The last frame lost: without --frames the end is unknown (said, exit 1), with it the
    # missing frame is named.
    damaged = _damage(model, rec, tmp_path / "lost8.sigmf-meta", frames=[8])
    capsys.readouterr()
    assert _rx(model, damaged, "--out", str(tmp_path / "u.bin")) == 1
    assert "its end is unknown" in _lines(capsys)[-1] and not (tmp_path / "u.bin").exists()
    capsys.readouterr()
    assert _rx(model, damaged, "--out", str(tmp_path / "c.bin"), "--frames", "9") == 1
    assert not (tmp_path / "c.bin").exists()
    assert (tmp_path / "c.bin.partial").read_bytes() == sent[: 8 * capacity]
    side = json.loads((tmp_path / "c.bin.partial.json").read_text())
    assert side["expected_frames"] == 9 and side["missing_frames"] == [[8, 8]]
    assert side["missing_bytes"] == [[8 * capacity, 9 * capacity]]
    lines = _lines(capsys)
    assert "8 of 9 expected frames decoded" in _summary(lines) and "missing frame 8 (1 of 9)" in lines[-1]


def test_existing_out_is_refused_before_receiving(
    model: Path, tmp_path: Path, sent: bytes, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    rec = tmp_path / "file.sigmf-meta"
    assert _tx(model, rec, "--file", str(tmp_path / "sent.bin")) == 0
    out = tmp_path / "got.bin"
    out.write_bytes(b"precious")

    def must_not_open(*args: object, **kwargs: object) -> None:
        raise AssertionError("the device was opened before --out was checked")

    with monkeypatch.context() as m:
        m.setattr(rx_app, "open_args_device", must_not_open)
        capsys.readouterr()
        assert _rx(model, rec, "--out", str(out)) == 2
    err = _lines(capsys)
    assert len(err) == 1 and "--overwrite" in err[0] and str(out) in err[0]
    assert out.read_bytes() == b"precious"
    assert _rx(model, rec, "--out", str(out), "--overwrite") == 0
    assert out.read_bytes() == sent


# ---- frames, models, samples ------------------------------------------------------------

def test_header_crc_failures_are_counted_and_warned(
    model: Path, test_recording: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    damaged = _damage(model, test_recording, tmp_path / "crc.sigmf-meta", headers=[5, 12])
    capsys.readouterr()
    assert _rx(model, damaged, "--json", str(tmp_path / "r.json")) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["frames_detected"] == TEST_FRAMES and report["header_crc_failures"] == 2
    assert report["frames_decoded"] == TEST_FRAMES - 2 and report["frames_expected"] == TEST_FRAMES
    assert report["usable"] and report["losses"] == ["2 of 20 expected frames not decoded"]
    lines = _lines(capsys)
    assert "18 of 20 expected frames decoded (20 detected, 2 header CRC failures)" in _summary(lines)
    assert lines[-1] == "aeradio rx: warning: 2 of 20 expected frames not decoded"


def test_frames_expected_is_what_was_sent_not_what_was_detected(
    model: Path, test_recording: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    # Two frames never detected: the denominator stays at the 25 asked for.
    damaged = _damage(model, test_recording, tmp_path / "lost.sigmf-meta", frames=[4, 9])
    capsys.readouterr()
    assert _rx(model, damaged, "--frames", "25", "--json", str(tmp_path / "r.json")) == 0
    lines = _lines(capsys)
    assert "18 of 25 expected frames decoded (18 detected, 0 header CRC failures)" in _summary(lines)
    assert lines[-1] == "aeradio rx: warning: 7 of 25 expected frames not decoded"
    assert json.loads((tmp_path / "r.json").read_text())["stopped_by"] == "end of source"


def test_all_nan_recording_fails(model: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rec = _write(tmp_path / "nan.sigmf-meta", np.full(50_000, np.nan + 1j * np.nan))
    assert _rx(model, rec, "--json", str(tmp_path / "r.json")) == 1
    lines = _lines(capsys)
    assert "50000 samples, 0 dropped, 50000 non-finite" in _summary(lines)
    assert lines[-1] == "aeradio rx: FAILED: all 50000 samples were non-finite (NaN or infinite)"
    assert json.loads((tmp_path / "r.json").read_text())["exit_code"] == 1


def test_out_of_range_samples_are_reported(
    model: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    # Samples beyond 1e6 (a corrupt recording) are zeroed by the RX chain: said, not silent.
    rec = _write(tmp_path / "huge.sigmf-meta", np.full(50_000, 1e9 + 0j))
    assert _rx(model, rec, "--json", str(tmp_path / "r.json")) == 1
    lines = _lines(capsys)
    assert "50000 samples, 0 dropped, 50000 out of range" in _summary(lines)
    assert lines[-1] == ("aeradio rx: FAILED: all 50000 samples were non-finite or out of range "
                         "(|x| > 1e6), zeroed")


def test_wrong_model_says_so(
    model: Path, other_model: Path, test_recording: Path, capsys: pytest.CaptureFixture
) -> None:
    assert model_hash32(model) != model_hash32(other_model)
    capsys.readouterr()
    assert _rx(other_model, test_recording) == 1
    lines = _lines(capsys)
    assert f"0 of {TEST_FRAMES} detected frames decoded" in _summary(lines)
    assert f"{TEST_FRAMES} model mismatches" in _summary(lines)
    assert lines[-1].startswith(f"aeradio rx: FAILED: {TEST_FRAMES} of {TEST_FRAMES} frames were sent with "
                                "another model (model hash mismatch")
    assert "is --model the transmitter's model?" in lines[-1]


def _device_hook(monkeypatch: pytest.MonkeyPatch, hook: object) -> None:
    """Call ``hook(dev)`` on the device rx opens."""
    real = rx_app.open_args_device

    def opened(*args: object, **kwargs: object) -> object:
        dev = real(*args, **kwargs)
        hook(dev)  # type: ignore[operator]
        return dev

    monkeypatch.setattr(rx_app, "open_args_device", opened)


def test_device_faults_fail_the_run(
    model: Path, test_recording: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    _device_hook(monkeypatch, lambda dev: dev.stats.faults.append("data file ends mid-sample", kind="cut"))
    capsys.readouterr()
    assert _rx(model, test_recording) == 1
    lines = _lines(capsys)
    assert "1 device faults" in _summary(lines)
    assert lines[-1] == ("aeradio rx: FAILED: the device reported 1 fault(s) "
                         "(latest: data file ends mid-sample)")


def test_malformed_messages_are_a_loss(
    model: Path, test_recording: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    _device_hook(monkeypatch, lambda dev: setattr(dev.stats, "malformed", 3))
    capsys.readouterr()
    assert _rx(model, test_recording) == 0
    lines = _lines(capsys)
    assert "; 3 malformed messages;" in _summary(lines)
    assert lines[-1] == "aeradio rx: warning: 3 malformed messages skipped"


# ---- stopping, the ready line, silence ------------------------------------------------

def test_duration_is_wall_clock_and_silence_is_reported(
    model: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setattr(rx_app, "NO_SAMPLES_WARN_S", 0.4)
    monkeypatch.setattr(rx_app, "RX_STATUS_INTERVAL_S", 0.2)
    uri = f"zmq:{free_endpoint()}"  # nothing publishes there
    t0 = time.monotonic()
    assert main(["rx", "--model", str(model), "--device", uri, "--duration-s", "1.2"]) == 1
    assert time.monotonic() - t0 < 30  # generous: model loading under load
    lines = _lines(capsys)
    warnings = [line for line in lines if "no samples from" in line]
    assert warnings[0] == f"aeradio rx: warning: no samples from {uri} for 0.4 s: is the channel running?"
    assert 1 <= len(warnings) <= 3  # one per 0.4 s of silence, not one per read
    status = [line for line in lines if line.startswith("aeradio rx: frames 0 detected")]
    assert any("| no samples for" in line for line in status)
    assert not any("ready" in line for line in lines)
    assert "stopped by duration" in _summary(lines)
    assert lines[-1] == "aeradio rx: FAILED: no samples received"


def test_sigterm_stops_rx_with_a_report(
    model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    class TermSoon(StopOnSignal):
        """SIGTERM to this process 0.3 s after the handlers are installed."""

        def __enter__(self) -> StopOnSignal:
            entered = super().__enter__()
            self.timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGTERM))
            self.timer.start()
            return entered

        def __exit__(self, *exc: object) -> None:
            self.timer.cancel()
            self.timer.join()
            super().__exit__(*exc)

    monkeypatch.setattr(rx_app, "StopOnSignal", TermSoon)
    report = tmp_path / "r.json"
    main(["rx", "--model", str(model), "--device", f"zmq:{free_endpoint()}", "--json", str(report)])
    assert json.loads(report.read_text())["stopped_by"] == "SIGTERM"


def test_report_is_enough_to_reproduce_the_run(
    model: Path, test_recording: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from aeradio.calibration.calfile import Calibration, save_calibration
    from aeradio.core.version import __version__

    cal = tmp_path / "cal.json"
    save_calibration(Calibration(
        sample_rate_hz=RATE_HZ, center_freq_hz=915e6, cfo_hz=0.0, cfo_ppm=0.0, sco_ppm=0.0, iq_gain_db=0.0,
        iq_phase_deg=0.0, dc_offset=(0.0, 0.0), snr_db=30.0, noise_floor_dbfs=-60.0, delay_samples=0.0,
        signal_rms_dbfs=-10.0,
    ), cal)
    before = datetime.now(UTC)
    argv = ["rx", "--model", str(model), "--device", f"file:{test_recording}",
            "--frames", "5", "--calibration", str(cal), "--json", str(tmp_path / "r.json")]
    assert main(argv) == 0
    r = json.loads((tmp_path / "r.json").read_text())
    # The recording is read in one block: rx stops after it, with every frame it held.
    assert r["stopped_by"] == "frames" and r["frames_decoded"] == r["frames_expected"] == TEST_FRAMES
    assert r["block_errors"] == 0
    assert r["model_dir"] == str(model) and r["model_hash32"] == f"{model_hash32(model):08x}"
    assert r["test_pattern_seeds"] == [SEED]  # from the frames: rx took no --seed
    assert r["calibration"] == {"path": str(cal), "sha256": hashlib.sha256(cal.read_bytes()).hexdigest()}
    assert r["device_uri"] == f"file:{test_recording}" and r["device"]["path"] == str(test_recording)
    assert r["device_settings"]["sample_rate_hz"] == RATE_HZ
    assert r["aeradio_version"] == __version__
    assert r["command_line"] == "aeradio " + " ".join(argv)
    started = datetime.strptime(r["started_utc"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert 0 <= (started - before).total_seconds() < 60
    ready = [line for line in _lines(capsys) if "ready" in line]
    assert ready == [f"aeradio rx: ready, receiving from file:{test_recording} at 1 MS/s"]


# ---- the transfer's bookkeeping ----------------------------------------------------------

def _data_frame(seq: int, data: bytes, frame_bytes: int = 4) -> FrameResult:
    """A decoded data frame as tx sends them: a frame shorter than full is the last one."""
    r = FrameResult(0.0, 0.0, 30.0, 1e-3, Header.data(seq, len(data), 0, last=len(data) < frame_bytes))
    r.data, r.seq = data, seq
    return r


def test_two_transfers_mixed_are_not_one_file(tmp_path: Path) -> None:
    t = FileTransfer(frame_bytes=4)
    for seq, data in [(0, b"aaaa"), (1, b"bb"), (0, b"cccc"), (2, b"dddd")]:
        t.add(_data_frame(seq, data))
    result = t.finish(tmp_path / "f", None, overwrite=False)
    assert not result.complete and not (tmp_path / "f").exists()
    text = "; ".join(result.problems)
    assert "frame 2 lies beyond the end (2 frames)" in text
    assert "frame 0 arrived twice with different bytes" in text
    # The first copy of a frame is kept, each at its offset.
    assert (tmp_path / "f.partial").read_bytes() == b"aaaabb\0\0dddd"


def test_an_empty_file_is_one_empty_frame(tmp_path: Path) -> None:
    t = FileTransfer(frame_bytes=4)
    t.add(_data_frame(0, b""))
    result = t.finish(tmp_path / "f", None, overwrite=False)
    assert result.complete and (tmp_path / "f").read_bytes() == b""


def test_no_data_frames_is_incomplete_and_writes_nothing(tmp_path: Path) -> None:
    result = FileTransfer(frame_bytes=4).finish(tmp_path / "f", None, overwrite=False)
    assert result.problems == ["no data frames received", "nothing written"]
    assert result.path is None and result.sidecar is None and not list(tmp_path.iterdir())


@pytest.mark.parametrize("where", ["directory", "under a file", "no such directory", "exists"])
def test_an_out_path_that_cannot_be_written_is_refused_before_receiving(tmp_path: Path, where: str) -> None:
    (tmp_path / "file").write_bytes(b"x")
    out = {"directory": tmp_path, "under a file": tmp_path / "file" / "f",
           "no such directory": tmp_path / "nodir" / "f", "exists": tmp_path / "file"}[where]
    with pytest.raises(ConfigError, match="--out"):
        check_out_path(out, overwrite=False)


def test_a_run_that_receives_nothing_keeps_an_earlier_partial_file(tmp_path: Path) -> None:
    # Regression: with --overwrite, a rerun that heard no data frame replaced the earlier
    # attempt's FILE.partial (the bytes it had received) with an empty one.
    t = FileTransfer(frame_bytes=4)
    t.add(_data_frame(0, b"aaaa"))
    t.finish(tmp_path / "f", None, overwrite=False)
    kept = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert kept["f.partial"] == b"aaaa"
    FileTransfer(frame_bytes=4).finish(tmp_path / "f", None, overwrite=True)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == kept


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 300), max_size=60))
def test_compact_ranges_cover_exactly_the_values(values: list[int]) -> None:
    runs = compact_ranges(values)
    assert [v for a, b in runs for v in range(a, b + 1)] == sorted(set(values))
    assert all(a2 > b1 + 1 for (_, b1), (a2, _) in zip(runs, runs[1:], strict=False))
    text = format_ranges(runs, limit=3)
    assert text.count(",") <= 3 and (len(runs) <= 3 or f"({len(runs)} ranges)" in text)


def test_last_frame_with_a_failed_data_crc_still_ends_the_transfer(
    model: Path, tmp_path: Path, sent: bytes, capacity: int, capsys: pytest.CaptureFixture
) -> None:
    """A user found on a noisy link: the LAST frame's data CRC failed, so the transfer's end
    was taken as unknown and the missing frames after the last good one went unlisted. Its
    header alone (sequence number, LAST flag, byte count) says where the file ends."""
    rec = tmp_path / "file.sigmf-meta"
    assert _tx(model, rec, "--file", str(tmp_path / "sent.bin")) == 0
    damaged = _damage(model, rec, tmp_path / "bad-tail.sigmf-meta", payloads=[6, 8])
    out = tmp_path / "got.bin"
    capsys.readouterr()
    assert _rx(model, damaged, "--out", str(out), "--json", str(tmp_path / "r.json")) == 1
    side = json.loads((tmp_path / "got.bin.partial.json").read_text())
    assert side["expected_frames"] == 9 and side["missing_frames"] == [[6, 6], [8, 8]]
    partial = (tmp_path / "got.bin.partial").read_bytes()
    assert len(partial) == len(sent)  # the missing tail zero-filled up to the file's true size
    assert partial[8 * capacity :] == bytes(len(sent) - 8 * capacity)
    assert "missing frames 6, 8 (2 of 9)" in _lines(capsys)[-1]


# ---- the pipeline ------------------------------------------------------------------------

@pytest.mark.parametrize("stop", [[], ["--frames", "7"]])
def test_pipeline_gives_the_single_thread_report_and_capture(
    model: Path, test_recording: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture, stop: list[str],
) -> None:
    monkeypatch.setattr(rx_app, "RX_READ_SAMPLES", 5000)  # many reads: frames straddle them
    damaged = _damage(model, test_recording, tmp_path / "d.sigmf-meta", frames=[4], headers=[9])
    reports, captures = {}, {}
    for mode in ("off", "on"):
        out = tmp_path / mode
        assert _rx(model, damaged, "--pipeline", mode, "--json", str(out / "r.json"), "--capture",
                   str(out / "cap"), "--constellation", str(out / "c.npy"), *stop) == 0
        r = json.loads((out / "r.json").read_text())
        for key in ("elapsed_s", "processing_s", "processing_msps", "command_line", "started_utc", "capture"):
            r.pop(key)
        assert r.pop("pipelined") is (mode == "on")  # the report says which ran
        reports[mode] = r
        metas = sorted((out / "cap").glob("*.sigmf-meta"))  # named by the time: compared in order
        captures[mode] = [json.loads(p.read_text())["annotations"] for p in metas]
        captures[mode].append(np.load(out / "c.npy").tolist())
    assert reports["on"] == reports["off"]
    assert captures["on"] == captures["off"] and captures["on"][0]
    if stop:  # stopped after the same read: the frames of its first reads only
        assert reports["on"]["stopped_by"] == "frames" and 7 <= reports["on"]["frames_detected"] < 15
    else:
        assert reports["on"]["header_crc_failures"] == 1
        assert reports["on"]["frames_detected"] == TEST_FRAMES - 1


def test_an_error_in_the_pipeline_worker_stops_rx(
    model: Path, test_recording: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aeradio.flowgraphs.rx_chain import RxChain

    def broken(self: RxChain) -> list[tuple[int, complex]]:
        raise RuntimeError("detector broke")

    monkeypatch.setattr(RxChain, "detect", broken)
    with pytest.raises(RuntimeError, match="detector broke"):
        _rx(model, test_recording, "--pipeline", "on")
    assert not [t for t in threading.enumerate() if t.name.startswith("rx-front-end")]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_the_run_finishes_waits_for_its_files_and_report(
    model: Path, tmp_path: Path, sent: bytes, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch,
    signum: int,
) -> None:
    """Regression (new-user trial): Ctrl-C after the recording's end but before --out and
    --json were written killed rx (exit 130, no file, no report) though it had decoded all."""
    rec = tmp_path / "file.sigmf-meta"
    assert _tx(model, rec, "--file", str(tmp_path / "sent.bin")) == 0
    finish = rx_app._FrameSink.finish

    def late_signal(self: object, report: dict) -> None:
        os.kill(os.getpid(), signum)  # the loop is over: only the files are left to write
        finish(self, report)

    monkeypatch.setattr(rx_app._FrameSink, "finish", late_signal)
    before = signal.getsignal(signum)
    capsys.readouterr()
    out, report = tmp_path / "got.bin", tmp_path / "r.json"
    assert _rx(model, rec, "--out", str(out), "--json", str(report)) == 0
    assert out.read_bytes() == sent
    r = json.loads(report.read_text())
    assert r["exit_code"] == 0 and r["stopped_by"] == "end of source" and r["transfer"]["complete"]
    name = signal.Signals(signum).name
    assert f"aeradio rx: {name} arrived while the run was finishing" in _lines(capsys)[-1]
    assert signal.getsignal(signum) is before  # the handler before rx is back
