"""Dataset builder: captured frames -> labelled blocks; split by frame; bad recordings reported."""

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import sigmf
import torch

from aeradio.apps.capture import record_loopback_capture
from aeradio.core.config import LinkConfig
from aeradio.core.errors import CaptureFormatError
from aeradio.core.model_dir import load_link_config, load_lut, model_hash32, save_model
from aeradio.dsp.framing import FrameLayout, pattern_messages
from aeradio.flowgraphs.channel_sim import ChannelSettings, snr_db_from_ebn0_db
from aeradio.learning.dataset import FrameDataset, build_dataset, check_labels, scan_recording
from aeradio.learning.receiver import NeuralReceiver
from tests.flowgraphs.conftest import random_lut

CFG = LinkConfig.from_dict(
    {"model": {"k": 4, "n": 2, "hidden_width": 16, "hidden_layers": 1}, "frame": {"blocks_per_frame": 16}},
    name="tiny",
)
SEED = 3
FRAMES = 24


def matched_filter_model(path: Path, cfg: LinkConfig, lut: np.ndarray) -> Path:
    """A model whose receiver is ML detection of ``lut`` on AWGN (linear path = matched filter)."""
    torch.manual_seed(0)
    rx = NeuralReceiver.from_config(cfg.model)
    rx.untie(torch.from_numpy(lut))
    return save_model(path, cfg, lut, rx.state_dict())


def channel(cfg: LinkConfig, ebn0_db: float, **impairments: object) -> ChannelSettings:
    """Loopback channel settings at ``ebn0_db`` (noise over the whole band) plus impairments."""
    sps = cfg.radio.samples_per_symbol
    snr_db = snr_db_from_ebn0_db(ebn0_db, cfg.model.rate, sps)
    return ChannelSettings(signal_power=1 / sps, noise_power=10 ** (-snr_db / 10) / sps, **impairments)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    lut = random_lut(CFG.model.M, CFG.model.n, np.random.default_rng(11))
    return matched_filter_model(tmp_path_factory.mktemp("model") / "m", CFG, lut)


@pytest.fixture(scope="module")
def good(model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A capture dir: one recording of FRAMES frames at Eb/N0 12 dB with a CFO."""
    out = tmp_path_factory.mktemp("good")
    report = record_loopback_capture(
        model, out, channel(CFG, 12.0, cfo_cps=2e-4), frames=FRAMES, seed=SEED, rng=np.random.default_rng(1)
    )
    assert report["frames_decoded"] == FRAMES
    return out


def test_frames_labels_and_estimates(model: Path, good: Path, tmp_path: Path) -> None:
    ds = build_dataset(good, model, rng=np.random.default_rng(0), validation_fraction=0.25)
    assert ds.frames == FRAMES and ds.y.shape == (FRAMES, 16, 2) and ds.y.dtype == np.complex64
    assert sorted(ds.seq.tolist()) == list(range(FRAMES))
    assert np.array_equal(ds.labels, pattern_messages(SEED, ds.seq, 16, 16))
    # Synchronized unit-gain symbols: the sent LUT rows plus noise of the estimated variance.
    err = ds.y - load_lut(model)[ds.labels]
    assert np.mean(np.abs(err) ** 2) / 2 == pytest.approx(np.mean(ds.noise_var), rel=0.25)
    # 2e-4 cycles/sample at 1 MS/s; short frames: about 15 Hz rms per frame.
    assert abs(np.mean(ds.cfo_hz) - 200.0) < 10.0 and np.all(np.abs(ds.cfo_hz - 200.0) < 75.0)
    assert np.all(ds.snr_db > 5.0) and ds.info["skipped"] == []
    # Split by frame: 6 validation frames, disjoint from the 18 training frames.
    val, train = ds.validation_set(), ds.training_set()
    assert (val.frames, train.frames) == (6, 18)
    assert not set(val.seq.tolist()) & set(train.seq.tolist())
    y, labels, nv = train.flat()
    assert y.shape == (18 * 16, 2) and labels.shape == (18 * 16,) and nv.shape == (18 * 16,)
    # Round trip through the npz (no pickle).
    back = FrameDataset.load(ds.save(tmp_path / "frames.npz"))
    for name in ("y", "labels", "noise_var", "snr_db", "cfo_hz", "seq", "recording", "validation"):
        assert np.array_equal(getattr(back, name), getattr(ds, name)), name
    assert back.info == ds.info


def _copy(good: Path, dest: Path, stem: str) -> tuple[Path, Path]:
    (meta,) = good.glob("*.sigmf-meta")
    m, d = dest / f"{stem}.sigmf-meta", dest / f"{stem}.sigmf-data"
    shutil.copy(meta, m)
    shutil.copy(meta.with_suffix(".sigmf-data"), d)
    return m, d


def _edit_global(meta: Path, **values: object) -> None:
    doc = json.loads(meta.read_text())
    doc["global"].update(values)
    meta.write_text(json.dumps(doc))


BAD = {
    "missing meta": (lambda m, d: m.unlink(), None),  # the data file alone is not a recording
    "corrupt meta": (lambda m, d: m.write_text(m.read_text()[:50]), "not readable SigMF metadata"),
    "missing data": (lambda m, d: d.unlink(), "cannot open the data file"),
    "corrupt data": (lambda m, d: d.write_bytes(d.read_bytes()[:800] + b"\x7f" * 80 + d.read_bytes()[880:]),
                     "does not match core:sha512"),
    "cut data": (lambda m, d: d.write_bytes(d.read_bytes()[:-3]), "ends mid-sample"),
    "wrong datatype": (lambda m, d: _edit_global(m, **{"core:datatype": "ci16_le"}),
                       "datatype must be 'cf32_le'"),
    "wrong rate": (lambda m, d: _edit_global(m, **{"core:sample_rate": 2e6}), "link runs at 1e+06 S/s"),
    "seed too large": (lambda m, d: _edit_global(m, **{"aeradio:seed": 2**80}),
                       "aeradio:seed must be an integer"),
    "meta is a fifo": (lambda m, d: (m.unlink(), os.mkfifo(m)), "not a regular file"),
    "meta too large": (lambda m, d: os.truncate(m, 17 << 20), "metadata file must be at most"),
    # Recorded before frames carried their seed (then a global said it): labels unknown.
    "old global seed": (lambda m, d: _edit_global(m, **{"aeradio:seed": 5}), "but aeradio:seed is 5"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_recording_among_good_ones_is_reported_and_skipped(
    case: str, model: Path, good: Path, tmp_path: Path
) -> None:
    damage, reason = BAD[case]
    _copy(good, tmp_path, "a-good")
    damage(*_copy(good, tmp_path, "b-bad"))
    ds = build_dataset(tmp_path, model, rng=np.random.default_rng(0))
    assert ds.frames == FRAMES and ds.info["recordings"] == ["a-good.sigmf-meta"]
    if reason is None:
        assert ds.info["skipped"] == []
    else:
        (skipped,) = ds.info["skipped"]
        assert skipped["recording"] == "b-bad.sigmf-meta" and reason in skipped["reason"]
        # Alone, the same recording is a clear error naming the file and the reason.
        (tmp_path / "a-good.sigmf-meta").unlink()
        with pytest.raises(CaptureFormatError, match=f"b-bad.*{reason.split()[0]}"):
            build_dataset(tmp_path, model, rng=np.random.default_rng(0))


def test_an_unfinished_recording_is_reported(model: Path, good: Path, tmp_path: Path) -> None:
    _copy(good, tmp_path, "a-good")
    meta, data = _copy(good, tmp_path, "b-crashed")
    meta.rename(tmp_path / "b-crashed.sigmf-meta.partial")
    data.rename(tmp_path / "b-crashed.sigmf-data.partial")
    ds = build_dataset(tmp_path, model, rng=np.random.default_rng(0))
    assert ds.frames == FRAMES
    (skipped,) = ds.info["skipped"]
    assert skipped["recording"] == "b-crashed.sigmf-meta.partial" and "recover_partial" in skipped["reason"]


def test_no_recordings_or_no_frames_are_clear_errors(model: Path, tmp_path: Path) -> None:
    with pytest.raises(CaptureFormatError, match="does not exist"):
        build_dataset(tmp_path / "nope", model, rng=np.random.default_rng(0))
    with pytest.raises(CaptureFormatError, match="no SigMF recordings"):
        build_dataset(tmp_path, model, rng=np.random.default_rng(0))
    # Frames of another seed's pattern are fine, but frames of another transmitter are not ours.
    other = matched_filter_model(tmp_path / "other", CFG, random_lut(16, 2, np.random.default_rng(99)))
    record_loopback_capture(other, tmp_path / "caps", channel(CFG, 12.0), frames=3, seed=0,
                            rng=np.random.default_rng(2))
    with pytest.raises(CaptureFormatError, match="no usable frames.*no test-pattern frames of this model"):
        build_dataset(tmp_path / "caps", model, rng=np.random.default_rng(0))


def test_labels_of_another_seed_are_refused_with_the_numbers(model: Path, good: Path) -> None:
    # Labels regenerated from the wrong test-pattern seed: the frames decode to SEED's pattern.
    # (Frames carry their seed, so only a dataset edited or built by other means can hold
    # such labels; check_labels is what build_dataset and finetune run.)
    ds = build_dataset(good, model, rng=np.random.default_rng(0))
    right = ds.labels.copy()
    ds.labels = pattern_messages(SEED + 1, ds.seq, 16, CFG.model.M)
    with pytest.raises(CaptureFormatError) as err:
        check_labels(ds, model)
    message = str(err.value)
    assert "the labels do not match the frames" in message and "the labels are wrong" in message
    found = re.search(r"on (\d+) of (\d+) blocks \(BLER ([\d.]+), chance 0\.938\) in (\d+) frames "
                      r"with SNR >= 7\.0 dB", message)
    assert found, message
    errors, blocks, bler, frames = (float(g) for g in found.groups())
    assert blocks == FRAMES * 16 and frames == FRAMES and bler >= 0.85
    # The right seed passes the same check (12 dB Eb/N0: detection errs on few blocks).
    ds.labels = right
    check_labels(ds, model)
    assert ds.frames == FRAMES


def test_the_label_check_needs_frames_above_the_operating_point(model: Path, good: Path) -> None:
    from aeradio.learning.dataset import LABEL_CHECK_MIN_BLOCKS

    ds = build_dataset(good, model, rng=np.random.default_rng(0))
    ds.labels = (ds.labels + 1) % CFG.model.M  # every label wrong
    with pytest.raises(CaptureFormatError, match="labels do not match"):
        check_labels(ds, model)
    # Frames below the operating point (or too few blocks) cannot tell: not judged.
    ds.snr_db[:] = 0.0
    check_labels(ds, model)
    ds.snr_db[:] = 30.0
    few = ds.subset(np.arange(ds.frames) < LABEL_CHECK_MIN_BLOCKS // 16 - 1)
    check_labels(few, model)
    # Labels out of range or blocks of another n are refused outright.
    ds.labels[0, 0] = CFG.model.M
    with pytest.raises(CaptureFormatError, match=r"labels in \[0, 16\] do not fit the model \(n 2, M 16\)"):
        check_labels(ds, model)


def test_bursts_in_idle_noise_keep_frames_only_and_rebuild_every_frame(model: Path, tmp_path: Path) -> None:
    """Bursts of 3 frames, 30,000 samples of noise between them, recordings rotated every
    ~3 frames (between frames): the noise is not recorded, the annotations sit on the frames
    a receiver finds in the recordings, and the dataset holds every frame exactly once."""
    report = record_loopback_capture(
        model, tmp_path, channel(CFG, 12.0, cfo_cps=2e-4), frames=FRAMES, seed=SEED,
        rng=np.random.default_rng(4), frames_per_burst=3, idle_samples=30_000, max_file_bytes=8 * 4000,
    )
    assert report["frames_decoded"] == FRAMES
    cap = report["capture"]
    assert cap["samples_recorded"] < 0.25 * cap["samples_received"] and cap["frames_not_recorded"] == 0
    metas = sorted(tmp_path.glob("*.sigmf-meta"))
    assert len(metas) >= 8 and not list(tmp_path.glob("*.partial"))
    config, model_hash = load_link_config(model), model_hash32(model)
    filter_delay = FrameLayout(config).filter_delay
    annotated: list[int] = []
    for meta in metas:
        handle = sigmf.sigmffile.fromfile(str(meta))  # validates, checks the sha512
        handle.validate()
        caps = handle.get_captures()
        index = [c["core:global_index"] for c in caps]
        assert index == sorted(index) and caps[0]["core:sample_start"] == 0
        found = {r.seq: r.start_sample for r in scan_recording(meta, config, model_hash)}
        for ann in handle.get_annotations():
            seq = ann["aeradio:seq"]
            annotated.append(seq)
            assert abs(found[seq] - filter_delay - ann["core:sample_start"]) <= 2
    assert sorted(annotated) == list(range(FRAMES))  # each frame annotated once, in one recording
    ds = build_dataset(tmp_path, model, rng=np.random.default_rng(0))
    assert sorted(ds.seq.tolist()) == list(range(FRAMES)) and ds.info["skipped"] == []
    assert np.array_equal(ds.labels, pattern_messages(SEED, ds.seq, 16, 16))


def test_forged_dataset_headers_are_refused_before_loading(tmp_path: Path) -> None:
    """A .npz whose headers claim a huge array, or the wrong shapes, is refused from its
    headers alone (nothing is allocated from them)."""
    import io
    import zipfile

    def npy(array_header: dict, payload: bytes = b"") -> bytes:
        buf = io.BytesIO()
        np.lib.format.write_array_header_1_0(buf, array_header)
        return buf.getvalue() + payload

    ok = {
        "y": np.zeros((2, 3, 2), np.complex64), "labels": np.zeros((2, 3), np.uint16),
        "noise_var": np.zeros(2, np.float32), "snr_db": np.zeros(2, np.float32),
        "cfo_hz": np.zeros(2, np.float32), "seq": np.arange(2), "recording": np.zeros(2, np.int32),
        "validation": np.zeros(2, bool), "info": np.array("{}"),
    }
    FrameDataset.load(_npz(tmp_path / "ok.npz", ok))  # the honest file loads
    huge = {"descr": "<c8", "fortran_order": False, "shape": (1 << 20, 1 << 16, 7)}
    path = tmp_path / "huge.npz"
    with zipfile.ZipFile(path, "w") as zf:
        for name, array in ok.items():
            if name != "y":
                buf = io.BytesIO()
                np.save(buf, array)
                zf.writestr(f"{name}.npy", buf.getvalue())
        zf.writestr("y.npy", npy(huge))  # 3.5e13 complex64 claimed, no data
    with pytest.raises(CaptureFormatError, match="GiB|shape"):
        FrameDataset.load(path)
    bad = dict(ok, labels=np.zeros((3, 3), np.uint16))  # another frame count
    with pytest.raises(CaptureFormatError, match="'labels'"):
        FrameDataset.load(_npz(tmp_path / "bad.npz", bad))
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(CaptureFormatError, match="not a readable frame dataset"):
        FrameDataset.load(tmp_path / "junk.npz")


def _npz(path: Path, arrays: dict) -> Path:
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return path
