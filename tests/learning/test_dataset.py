"""Dataset builder: captured frames -> labelled blocks; split by frame; bad recordings reported."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from aeradio.apps.capture import record_loopback_capture
from aeradio.core.config import LinkConfig
from aeradio.core.errors import CaptureFormatError
from aeradio.core.model_dir import load_lut, model_hash32, save_model
from aeradio.dsp import impairments as imp
from aeradio.dsp.framing import pattern_messages
from aeradio.flowgraphs.channel_sim import ChannelSettings, snr_db_from_ebn0_db
from aeradio.flowgraphs.tx_chain import TxChain
from aeradio.learning.dataset import FrameDataset, build_dataset
from aeradio.learning.receiver import NeuralReceiver
from aeradio.radio.base import DeviceSettings
from aeradio.radio.sigmf_file import SigmfFileDevice
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


def test_each_frame_is_labelled_from_its_own_seed(
    model: Path, tmp_path: Path, rng: np.random.Generator
) -> None:
    # Two transmitter runs of different seeds in one recording (no global seed anywhere).
    tx = TxChain(CFG, load_lut(model), model_hash32(model))
    seqs = np.arange(4)
    x = np.concatenate([tx.test_pattern(seqs, 3, last=True), tx.test_pattern(seqs, 9, last=True)])
    (tmp_path / "caps").mkdir()
    rec = tmp_path / "caps" / "two.sigmf-meta"
    with SigmfFileDevice(rec, "tx", DeviceSettings(CFG.radio.sample_rate_hz)) as dev:
        dev.write(imp.add_awgn(x, 1e-3, rng))
    ds = build_dataset(tmp_path / "caps", model, rng=np.random.default_rng(0))
    assert ds.seq.tolist() == [0, 1, 2, 3, 0, 1, 2, 3]
    sent = np.concatenate([pattern_messages(3, seqs, 16, 16), pattern_messages(9, seqs, 16, 16)])
    assert np.array_equal(ds.labels, sent)
    # The labels are what was sent: the symbols sit on their LUT rows.
    assert np.max(np.abs(ds.y - load_lut(model)[ds.labels])) < 0.2
