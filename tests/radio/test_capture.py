"""The capture recorder: SigMF validated by the sigmf library, rotation, crash recovery, rx --capture."""

import json
from pathlib import Path

import numpy as np
import pytest
import sigmf

from aeradio.cli import main
from aeradio.core.config import LinkConfig
from aeradio.core.errors import CaptureFormatError
from aeradio.radio.base import DeviceSettings
from aeradio.radio.capture import CaptureRecorder, _rename_no_replace, partial_recordings, recover_partial
from aeradio.radio.sigmf_file import SigmfFileDevice
from tests.flowgraphs.conftest import random_lut

RATE = 1e6
FREQ = 915e6


def _recorder(directory: Path, **kwargs: object) -> CaptureRecorder:
    return CaptureRecorder(directory, sample_rate_hz=RATE, center_freq_hz=FREQ, device="test:dev", **kwargs)


def _noise(rng: np.random.Generator, n: int) -> np.ndarray:
    return (rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(np.complex64)


def _read(meta_path: Path) -> tuple[np.ndarray, dict]:
    """Samples and metadata through the sigmf library (validates, checks the sha512)."""
    handle = sigmf.sigmffile.fromfile(str(meta_path))
    return handle.read_samples().astype(np.complex64), handle._metadata


def test_recording_is_valid_sigmf_with_frame_annotations(tmp_path: Path, rng: np.random.Generator) -> None:
    x = _noise(rng, 5000)
    with _recorder(tmp_path, keep_all=True, extra_global={"aeradio:seed": 4}) as rec:
        rec.write(x[:3000])
        rec.annotate_frame(1200.4, 700, seq=9, cfo_hz=-12.5, snr_db=17.0, header_ok=True, model_ok=True,
                           kind=0, blocks=8, block_errors=1)
        rec.write(x[3000:])
        rec.annotate_frame(100, 700, seq=None, cfo_hz=3.0, snr_db=2.0, header_ok=False)
    assert len(rec.finished) == 1 and not partial_recordings(tmp_path)
    samples, meta = _read(rec.finished[0])
    assert np.array_equal(samples, x)
    g, cap = meta["global"], meta["captures"][0]
    assert g["core:datatype"] == "cf32_le" and g["core:sample_rate"] == RATE and g["core:hw"] == "test:dev"
    assert g["aeradio:seed"] == 4 and cap["core:frequency"] == FREQ and cap["core:datetime"].endswith("Z")
    assert cap["core:global_index"] == 0 and len(meta["captures"]) == 1
    first, second = meta["annotations"]  # sorted by start
    assert first["core:sample_start"] == 100 and first["aeradio:header_ok"] is False
    assert "aeradio:seq" not in first
    assert second["core:sample_start"] == 1200 and second["core:sample_count"] == 700
    assert second["aeradio:seq"] == 9 and second["aeradio:block_errors"] == 1
    assert second["aeradio:cfo_hz"] == -12.5


def test_rotation_never_cuts_a_frame(tmp_path: Path, rng: np.random.Generator) -> None:
    """1000-sample recordings; a frame over [950, 1050): the first recording ends after it
    (plus the margin a receiver needs after a frame), the next one starts at 1050."""
    x = _noise(rng, 2500)
    with _recorder(tmp_path, keep_all=True, margin_samples=40, max_file_bytes=8 * 1000) as rec:
        rec.write(x[:1100])
        rec.annotate_frame(950, 100, seq=1, cfo_hz=0.0, snr_db=10.0, header_ok=True)
        rec.annotate_frame(1060, 100, seq=2, cfo_hz=0.0, snr_db=10.0, header_ok=True)
        rec.settle(1080)
        assert rec.finished == []  # the first recording still takes the samples after the cut
        rec.settle(1100)
        assert len(rec.finished) == 1
        rec.write(x[1100:2500])
        rec.settle(2500)
    assert len(rec.finished) == 3 and rec.late_frames == 0
    (s1, m1), (s2, m2), (s3, m3) = (_read(m) for m in rec.finished)
    assert len(s1) == 1050 + 40 and np.array_equal(s1, x[:1090])
    assert np.array_equal(s2, x[1050:2090]) and np.array_equal(s3, x[2050:])  # 2050: 1000 after 1050
    assert [c["core:global_index"] for c in (m1["captures"][0], m2["captures"][0], m3["captures"][0])] == [
        0, 1050, 2050]
    (first,) = m1["annotations"]
    assert first["core:sample_start"] == 950 and first["core:sample_count"] == 100
    assert "aeradio:truncated" not in first
    (second,) = m2["annotations"]  # annotated in the recording where it starts, only there
    assert second["core:sample_start"] == 10 and second["aeradio:seq"] == 2
    assert len({m.name for m in rec.finished}) == 3


def test_frames_with_margins_are_kept_idle_noise_is_not(tmp_path: Path, rng: np.random.Generator) -> None:
    """Two bursts in 100,000 samples of noise: one recording, one capture segment per burst."""
    x = _noise(rng, 100_000)
    with _recorder(tmp_path, margin_samples=500) as rec:
        for i in range(0, 100_000, 7000):  # annotations come a block late, as from RX
            rec.write(x[i : i + 7000])
            if i <= 20_000 < i + 7000:
                rec.annotate_frame(20_000, 1000, seq=1, cfo_hz=0.0, snr_db=9.0, header_ok=True)
                rec.annotate_frame(21_200, 1000, seq=2, cfo_hz=0.0, snr_db=9.0, header_ok=True)
            if i <= 60_000 < i + 7000:
                rec.annotate_frame(60_000.4, 1000, seq=3, cfo_hz=0.0, snr_db=9.0, header_ok=True)
            rec.settle(i + 7000 - 3000)
    (meta_path,) = rec.finished
    handle = sigmf.sigmffile.fromfile(str(meta_path))  # the library validates and checks the sha512
    handle.validate()
    assert handle.get_global_field("core:sample_rate") == RATE
    caps = handle.get_captures()
    assert [(c["core:sample_start"], c["core:global_index"]) for c in caps] == [(0, 19_500), (3200, 59_500)]
    assert np.array_equal(handle.read_samples_in_capture(0), x[19_500:22_700])
    assert np.array_equal(handle.read_samples_in_capture(1), x[59_500:61_500])
    assert caps[1]["core:datetime"] > caps[0]["core:datetime"]
    anns = handle.get_annotations()
    assert [(a["core:sample_start"], a["aeradio:seq"]) for a in anns] == [(500, 1), (1700, 2), (3700, 3)]
    report = rec.report()
    assert report["samples_received"] == 100_000 and report["samples_recorded"] == 5200
    assert report["bytes_recorded"] == 8 * 5200 and report["frames_not_recorded"] == 0


def test_samples_are_written_as_they_are_decided(tmp_path: Path, rng: np.random.Generator) -> None:
    """Settled samples go to disk at once; only the undecided ones are held, and a bounded
    number of them: past max_pending_samples they are decided as they are."""
    x = _noise(rng, 10_000)
    rec = _recorder(tmp_path, keep_all=True, max_pending_samples=3000)
    rec.write(x[:2000])
    assert not list(tmp_path.iterdir())  # nothing decided: nothing written
    rec.settle(1500)
    rec.checkpoint()
    (data,) = tmp_path.glob("*.sigmf-data.partial")
    assert data.stat().st_size == 8 * 1500
    rec.write(x[2000:10_000])  # nobody settles: all but the last 3000 are decided anyway
    rec.checkpoint()
    assert data.stat().st_size == 8 * 7000
    rec.annotate_frame(6000, 100, seq=1, cfo_hz=0.0, snr_db=1.0, header_ok=True)  # too late
    rec.annotate_frame(8000, 100, seq=2, cfo_hz=0.0, snr_db=1.0, header_ok=True)
    rec.close()
    assert rec.late_frames == 1 and rec.report()["frames_not_recorded"] == 1
    samples, meta = _read(rec.finished[0])
    assert np.array_equal(samples, x) and [a["aeradio:seq"] for a in meta["annotations"]] == [2]


def test_no_frames_no_recording(tmp_path: Path, rng: np.random.Generator) -> None:
    with _recorder(tmp_path, margin_samples=100) as rec:
        rec.write(_noise(rng, 50_000))
        rec.settle(50_000)
    assert rec.finished == [] and not list(tmp_path.iterdir())
    assert rec.report()["samples_recorded"] == 0


def test_a_crash_leaves_a_marked_partial_recording_that_recovers(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    x = _noise(rng, 4000)
    rec = _recorder(tmp_path, keep_all=True, meta_every_samples=1000)
    rec.write(x[:2500])
    rec.annotate_frame(500, 300, seq=2, cfo_hz=1.0, snr_db=20.0, header_ok=True)
    rec.annotate_frame(2300, 400, seq=3, cfo_hz=1.0, snr_db=20.0, header_ok=True)
    rec.write(x[2500:3500])
    rec.settle(3500)  # checkpoint: data flushed, metadata with both annotations
    rec._current.file.write(b"\x01\x02\x03")  # the crash cut a sample in half
    rec._current.file.flush()
    # The process dies here: nothing is finished, and what is there says so by its name.
    assert not list(tmp_path.glob("*.sigmf-meta")) and not list(tmp_path.glob("*.sigmf-data"))
    (partial,) = partial_recordings(tmp_path)
    with pytest.raises(Exception):  # noqa: B017 - whichever error, the library must not accept it
        sigmf.sigmffile.fromfile(str(partial))
    final = recover_partial(partial)
    samples, meta = _read(final)
    assert np.array_equal(samples, x[:3500]) and meta["global"]["aeradio:recovered"] is True
    assert [a["aeradio:seq"] for a in meta["annotations"]] == [2, 3]
    assert not partial_recordings(tmp_path)
    with pytest.raises(CaptureFormatError, match="not a partial recording"):
        recover_partial(final)


def test_recordings_are_never_overwritten(tmp_path: Path, rng: np.random.Generator) -> None:
    x = _noise(rng, 100)
    first, second = _recorder(tmp_path, keep_all=True), _recorder(tmp_path, keep_all=True)  # same time stamp
    for rec in (first, second):
        rec.write(x)
        rec.close()
    assert first.finished[0] != second.finished[0]
    for meta in (*first.finished, *second.finished):
        assert np.array_equal(_read(meta)[0], x)
    other = tmp_path / "other"
    other.write_text("keep")
    with pytest.raises(CaptureFormatError, match="refusing to overwrite"):
        _rename_no_replace(first.finished[0], other)
    assert other.read_text() == "keep"


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from aeradio.core.model_dir import save_model
    from aeradio.learning.receiver import NeuralReceiver

    cfg = LinkConfig.from_dict(
        {"model": {"k": 4, "n": 2, "hidden_width": 8, "hidden_layers": 1}, "frame": {"blocks_per_frame": 8}}
    )
    lut = random_lut(cfg.model.M, cfg.model.n, np.random.default_rng(5))
    weights = NeuralReceiver.from_config(cfg.model).state_dict()
    return save_model(tmp_path_factory.mktemp("m") / "m", cfg, lut, weights)


def test_rx_capture_records_what_it_decoded(tiny_model: Path, tmp_path: Path) -> None:
    src = tmp_path / "src.sigmf-meta"
    dev = ["--model", str(tiny_model), "--device", f"file:{src}"]
    assert main(["tx", *dev, "--frames", "4", "--seed", "6"]) == 0
    caps = tmp_path / "caps"
    assert main(["rx", *dev, "--capture", str(caps), "--json", str(tmp_path / "r.json")]) == 0
    (meta_path,) = caps.glob("*.sigmf-meta")
    samples, meta = _read(meta_path)
    source, _ = _read(src)
    assert np.array_equal(samples, source)  # back-to-back frames: their margins cover the rest
    # The seed is the frames' own (rx took no --seed), annotated per frame, not global.
    assert "aeradio:seed" not in meta["global"] and meta["global"]["aeradio:link"] == "link"
    anns = meta["annotations"]
    assert [a["aeradio:seq"] for a in anns] == [0, 1, 2, 3]
    assert [a["aeradio:seed"] for a in anns] == [6] * 4
    assert [a["aeradio:last"] for a in anns] == [False, False, False, True]
    assert all(a["aeradio:header_ok"] and a["aeradio:model_ok"] and a["aeradio:blocks"] == 8 for a in anns)
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["frames_decoded"] == 4 and report["capture"]["recordings"] == [meta_path.name]


def test_rx_capture_leaves_idle_noise_out_unless_asked(tiny_model: Path, tmp_path: Path,
                                                      rng: np.random.Generator) -> None:
    """4 frames in 400,000 samples of noise: ``--capture`` records the frames with a frame
    length either side; ``--capture-all`` records every sample."""
    frames = tmp_path / "frames.sigmf-meta"
    assert main(["tx", "--model", str(tiny_model), "--device", f"file:{frames}", "--frames", "4"]) == 0
    burst, _ = _read(frames)
    noise = 0.01 * _noise(rng, 400_000)
    stream = noise.copy()
    stream[200_000 : 200_000 + len(burst)] += burst
    src = tmp_path / "src.sigmf-meta"
    with SigmfFileDevice(src, "tx", DeviceSettings(RATE)) as dev:
        dev.write(stream)
    rx = ["rx", "--model", str(tiny_model), "--device", f"file:{src}"]
    assert main([*rx, "--capture", str(tmp_path / "frames"), "--json", str(tmp_path / "f.json")]) == 0
    everything = ["--capture", str(tmp_path / "all"), "--capture-all", "--json", str(tmp_path / "a.json")]
    assert main([*rx, *everything]) == 0
    (kept,) = (tmp_path / "frames").glob("*.sigmf-meta")
    samples, meta = _read(kept)
    (cap,) = meta["captures"]
    start = cap["core:global_index"]
    assert 200_000 - 2 * 1000 < start < 200_000 and len(samples) < len(burst) + 2 * 2000
    assert np.array_equal(samples, stream[start : start + len(samples)])
    assert [a["aeradio:seq"] for a in meta["annotations"]] == [0, 1, 2, 3]
    (all_path,) = (tmp_path / "all").glob("*.sigmf-meta")
    assert np.array_equal(_read(all_path)[0], stream)
    report = json.loads((tmp_path / "f.json").read_text())["capture"]
    assert report["keep"] == "frames" and report["bytes_recorded"] == 8 * len(samples)
    assert report["samples_received"] == len(stream)
    assert json.loads((tmp_path / "a.json").read_text())["capture"]["bytes_recorded"] == 8 * len(stream)
    assert main([*rx, "--capture-all"]) == 2  # --capture-all alone is a usage error


def test_rotation_by_frame_count_and_non_finite_estimates(tmp_path: Path, rng: np.random.Generator) -> None:
    """At most max_annotations frames a recording (the metadata stays small and quick to
    validate), cut between frames; a NaN estimate is left out (JSON has no NaN)."""
    x = _noise(rng, 20_000)
    with _recorder(tmp_path, keep_all=True, margin_samples=50, max_annotations=3) as rec:
        rec.write(x)
        for i in range(7):
            rec.annotate_frame(1000 + 2000 * i, 300, seq=i, cfo_hz=float("nan"), snr_db=5.0, header_ok=True)
    metas = [_read(m)[1] for m in rec.finished]
    assert [[a["aeradio:seq"] for a in m["annotations"]] for m in metas] == [[0, 1, 2], [3, 4, 5], [6]]
    assert [m["captures"][0]["core:global_index"] for m in metas] == [0, 7000, 13000]  # where frames start
    anns = [a for m in metas for a in m["annotations"]]
    assert all("aeradio:cfo_hz" not in a and a["aeradio:snr_db"] == 5.0 for a in anns)


def test_recovery_keeps_the_capture_segments_that_have_data(tmp_path: Path, rng: np.random.Generator) -> None:
    x = _noise(rng, 30_000)
    rec = _recorder(tmp_path, margin_samples=100)
    rec.write(x)
    rec.annotate_frame(5000, 500, seq=1, cfo_hz=0.0, snr_db=5.0, header_ok=True)
    rec.annotate_frame(20_000, 500, seq=2, cfo_hz=0.0, snr_db=5.0, header_ok=True)
    rec.settle(30_000)
    rec.checkpoint()  # then the process dies; the data file is cut inside the second stretch
    (partial,) = partial_recordings(tmp_path)
    data = tmp_path / partial.name.replace("meta", "data")
    data.write_bytes(data.read_bytes()[: 8 * 900])
    samples, meta = _read(recover_partial(partial))
    assert np.array_equal(samples, np.concatenate([x[4900:5600], x[19_900:20_100]]))
    caps = [(c["core:sample_start"], c["core:global_index"]) for c in meta["captures"]]
    assert caps == [(0, 4900), (700, 19_900)]
    anns = [(a["aeradio:seq"], a["core:sample_count"], a.get("aeradio:truncated"))
            for a in meta["annotations"]]
    assert anns == [(1, 500, None), (2, 100, True)]
