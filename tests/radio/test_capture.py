"""The capture recorder: SigMF validated by the sigmf library, rotation, crash recovery, rx --capture."""

import json
from pathlib import Path

import numpy as np
import pytest
import sigmf

from aeradio.cli import main
from aeradio.core.config import LinkConfig
from aeradio.core.errors import CaptureFormatError
from aeradio.radio.capture import CaptureRecorder, _rename_no_replace, partial_recordings, recover_partial
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
    with _recorder(tmp_path, extra_global={"aeradio:seed": 4}) as rec:
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
    first, second = meta["annotations"]  # sorted by start
    assert first["core:sample_start"] == 100 and first["aeradio:header_ok"] is False
    assert "aeradio:seq" not in first
    assert second["core:sample_start"] == 1200 and second["core:sample_count"] == 700
    assert second["aeradio:seq"] == 9 and second["aeradio:block_errors"] == 1
    assert second["aeradio:cfo_hz"] == -12.5


def test_rotation_splits_the_stream_without_loss(tmp_path: Path, rng: np.random.Generator) -> None:
    x = _noise(rng, 2500)
    with _recorder(tmp_path, max_file_bytes=8 * 1000, grace_samples=300) as rec:
        rec.write(x[:1100])  # rotates at 1000; the first recording waits for late annotations
        rec.annotate_frame(950, 100, seq=1, cfo_hz=0.0, snr_db=10.0, header_ok=True)
        assert rec.finished == []
        rec.write(x[1100:2500])
    assert len(rec.finished) == 3
    parts = [_read(m) for m in rec.finished]
    assert np.array_equal(np.concatenate([p[0] for p in parts]), x)
    assert [len(p[0]) for p in parts] == [1000, 1000, 500]
    (late,) = parts[0][1]["annotations"]
    assert late["core:sample_start"] == 950 and late["core:sample_count"] == 50 and late["aeradio:truncated"]
    assert len({m.name for m in rec.finished}) == 3


def test_a_crash_leaves_a_marked_partial_recording_that_recovers(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    x = _noise(rng, 4000)
    rec = _recorder(tmp_path, meta_every_samples=1000)
    rec.write(x[:2500])
    rec.annotate_frame(500, 300, seq=2, cfo_hz=1.0, snr_db=20.0, header_ok=True)
    rec.annotate_frame(2300, 400, seq=3, cfo_hz=1.0, snr_db=20.0, header_ok=True)
    rec.write(x[2500:3500])  # checkpoint: data flushed, metadata with both annotations
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
    first, second = _recorder(tmp_path), _recorder(tmp_path)  # same second: same time stamp
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


def test_rx_capture_records_what_it_decoded(tmp_path: Path) -> None:
    from aeradio.core.model_dir import save_model
    from aeradio.learning.receiver import NeuralReceiver

    cfg = LinkConfig.from_dict(
        {"model": {"k": 4, "n": 2, "hidden_width": 8, "hidden_layers": 1}, "frame": {"blocks_per_frame": 8}}
    )
    lut = random_lut(cfg.model.M, cfg.model.n, np.random.default_rng(5))
    model = save_model(tmp_path / "m", cfg, lut, NeuralReceiver.from_config(cfg.model).state_dict())
    src = tmp_path / "src.sigmf-meta"
    dev = ["--model", str(model), "--device", f"file:{src}"]
    assert main(["tx", *dev, "--frames", "4", "--seed", "6"]) == 0
    caps = tmp_path / "caps"
    assert main(["rx", *dev, "--capture", str(caps), "--json", str(tmp_path / "r.json")]) == 0
    (meta_path,) = caps.glob("*.sigmf-meta")
    samples, meta = _read(meta_path)
    source, _ = _read(src)
    assert np.array_equal(samples, source)
    # The seed is the frames' own (rx took no --seed), annotated per frame, not global.
    assert "aeradio:seed" not in meta["global"] and meta["global"]["aeradio:link"] == cfg.name
    anns = meta["annotations"]
    assert [a["aeradio:seq"] for a in anns] == [0, 1, 2, 3]
    assert [a["aeradio:seed"] for a in anns] == [6] * 4
    assert [a["aeradio:last"] for a in anns] == [False, False, False, True]
    assert all(a["aeradio:header_ok"] and a["aeradio:model_ok"] and a["aeradio:blocks"] == 8 for a in anns)
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["frames_decoded"] == 4
