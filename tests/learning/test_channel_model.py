"""Learned channel model: probe frames, the symbol dataset, the CVAE, its directory, end-to-end
fine-tuning through it (tiny link, seeded, a channel with PA compression and IQ imbalance)."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import sigmf
import torch

from aeradio.apps.capture import record_loopback_capture
from aeradio.cli import main
from aeradio.core.channel_model_dir import CHANNEL_JSON, CHANNEL_WEIGHTS, cvae_parameter_shapes
from aeradio.core.model_dir import load_link_config, load_lut, model_hash32, sha256_file
from aeradio.dsp.framing import PAYLOAD_PROBE
from aeradio.dsp.probe import probe_radius, probe_symbols
from aeradio.learning.channel_model import (
    AwgnBaseline,
    ConditionalVAE,
    FitSettings,
    fit_cvae,
    load_channel_model,
    sliced_wasserstein,
)
from aeradio.learning.dataset import build_symbol_dataset
from aeradio.learning.end_to_end import EndToEndSettings, finetune_end_to_end
from aeradio.learning.finetune import FinetuneSettings, finetune_model
from tests.flowgraphs.conftest import random_lut
from tests.learning.test_dataset import CFG, channel, matched_filter_model

#: PA compression and IQ imbalance the AWGN-trained matched filter does not know.
MISMATCH = {"iq_gain_db": 3.0, "iq_phase_deg": 25.0, "pa_rapp_p": 3.0, "pa_backoff_db": 1.0}
EBN0_DB = 10.0
FRAMES = 100


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict:
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("cm")
    model = matched_filter_model(root / "m", CFG, random_lut(16, 2, np.random.default_rng(11)))
    ch = channel(CFG, EBN0_DB, **MISMATCH)
    probe = record_loopback_capture(model, root / "caps", ch, frames=FRAMES, seed=7, pattern="probe",
                                    rng=np.random.default_rng(1))
    record_loopback_capture(model, root / "caps", ch, frames=FRAMES, seed=2, rng=np.random.default_rng(2))
    record_loopback_capture(model, root / "held", ch, frames=80, seed=3, rng=np.random.default_rng(3))
    record_loopback_capture(model, root / "test-only", ch, frames=40, seed=4, rng=np.random.default_rng(4))
    assert main(["channel-model", "fit", "--model", str(model), "--captures", str(root / "caps"), "--out",
                 str(root / "cm"), "--steps", "400", "--quiet", "--json", str(root / "fit.json")]) == 0
    return {"root": root, "model": model, "channel": ch, "probe_report": probe, "cm": root / "cm"}


def test_probe_frames_are_counted_apart_and_annotated(setup: dict) -> None:
    report = setup["probe_report"]
    assert report["frames_decoded"] == report["probe_frames"] == FRAMES
    assert report["blocks"] == 0 and report["bler"] is None  # no BLER for probe frames
    metas = sorted((setup["root"] / "caps").glob("*.sigmf-meta"))
    annotations = sigmf.sigmffile.fromfile(str(metas[0])).get_annotations()
    kinds = {a["aeradio:kind"] & 0x7 for a in annotations}
    assert kinds == {PAYLOAD_PROBE} and {a["aeradio:seed"] for a in annotations} == {7}


def test_symbol_dataset_rebuilds_what_was_sent(setup: dict) -> None:
    model = setup["model"]
    data = build_symbol_dataset(setup["root"] / "caps", model, rng=np.random.default_rng(0))
    assert data.frames == 2 * FRAMES and int(data.probe.sum()) == FRAMES
    lut, cfg = load_lut(model), load_link_config(model)
    radius = probe_radius(cfg, lut)
    probes = data.subset(data.probe)
    assert sorted(probes.seq.tolist()) == list(range(FRAMES))
    for i in (0, FRAMES - 1):
        expected = probe_symbols(7, int(probes.seq[i]), data.y.shape[1], radius)
        assert np.array_equal(probes.centre()[i], expected)
    test = data.subset(~data.probe)
    assert np.array_equal(test.centre(), lut[test.labels].reshape(test.frames, -1))
    assert np.all(data.labels[data.probe] == -1)
    # Received = sent through a mildly nonlinear channel: the error is far below the signal.
    assert np.mean(np.abs(data.y - data.centre()) ** 2) < 0.3
    win = data.windows(2)
    assert win.shape == (data.frames, data.y.shape[1], 5)
    assert np.array_equal(win[:, :, 2], data.centre())
    idx = data.payload_index
    assert np.array_equal(win[:, 0, 0], data.sent[:, idx[0] - 2])


def test_cvae_shapes_match_the_torch_free_list() -> None:
    cvae = ConditionalVAE(3, 2, 8, 2)
    assert {k: tuple(v.shape) for k, v in cvae.state_dict().items()} == cvae_parameter_shapes(3, 2, 8, 2)


def test_cvae_learns_an_awgn_channel_and_sampling_is_differentiable() -> None:
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    n = 8000
    x = torch.exp(2j * torch.pi * torch.rand(n, generator=gen)).to(torch.complex64)
    # True channel: gain 0.8, AWGN at 3 dB above the SNR's nominal noise (the CVAE starts at nominal).
    var = 2.0 * 10 ** (-1.0) / 2
    y = 0.8 * x + torch.view_as_complex((torch.randn(n, 2, generator=gen) * var**0.5).contiguous())
    data = _symbols(x.numpy(), y.numpy(), 10.0)
    settings = FitSettings(half_window=0, steps=400, hidden_width=16, batch_size=512)
    cvae, history = fit_cvae(data, settings, gen, progress=False)
    assert history[-1]["loss"] < history[0]["loss"]
    xs = torch.ones(5000, 1, dtype=torch.complex64)
    ys = cvae.sample(xs, torch.full((5000,), 10.0), gen).detach()
    assert abs(ys.mean() - 0.8) < 0.05
    assert float(ys.real.var()) == pytest.approx(var, rel=0.2)
    xg = torch.ones(4, 1, dtype=torch.complex64, requires_grad=True)
    cvae.sample(xg, torch.full((4,), 10.0), gen).real.sum().backward()
    assert xg.grad is not None and float(xg.grad.abs().sum()) > 0


def _symbols(x: np.ndarray, y: np.ndarray, snr_db: float):
    """A SymbolDataset of one-symbol frames (no neighbours)."""
    from aeradio.learning.dataset import SymbolDataset

    f = len(x)
    return SymbolDataset(sent=x[:, None], y=y[:, None], payload_index=np.zeros(1, np.int64),
                         snr_db=np.full(f, snr_db, np.float32), noise_var=np.full(f, 0.05, np.float32),
                         probe=np.ones(f, bool), seq=np.arange(f), labels=np.zeros((f, 1), np.int64),
                         validation=np.zeros(f, bool))


def test_awgn_baseline_fits_the_noise_variance() -> None:
    rng = np.random.default_rng(0)
    x = np.ones(100_000, np.complex64)
    y = x + 0.1 * (rng.standard_normal(x.size) + 1j * rng.standard_normal(x.size))
    base = AwgnBaseline.fit(x, y, np.full(x.size, 20.0), 0)
    assert base.noise_scale == pytest.approx(0.02 / 0.01, rel=0.02)  # 2 x 0.1^2 over 10^-2


def test_sliced_wasserstein() -> None:
    rng = np.random.default_rng(0)
    a = rng.standard_normal(2000) + 1j * rng.standard_normal(2000)
    assert sliced_wasserstein(a, a) == 0.0
    assert sliced_wasserstein(a, a + 0.5) == pytest.approx(0.5 * 2 / np.pi, rel=0.05)


def test_fit_reports_held_out_fidelity_and_beats_awgn(setup: dict) -> None:
    doc = json.loads((setup["root"] / "fit.json").read_text())
    fid = doc["fidelity"]
    assert fid["frames"] > 0 and fid["swd_cvae"] < 0.7 * fid["swd_awgn"]
    meta = json.loads((setup["cm"] / CHANNEL_JSON).read_text())
    assert meta["model_hash32"] == f"{model_hash32(setup['model']):08x}" and meta["kind"] == "cvae"
    assert meta["files"][CHANNEL_WEIGHTS]["sha256"] == sha256_file(setup["cm"] / CHANNEL_WEIGHTS)


def test_check_on_other_captures(setup: dict, tmp_path: Path, capsys) -> None:
    out = tmp_path / "check.json"
    assert main(["channel-model", "check", "--channel-model", str(setup["cm"]), "--model",
                 str(setup["model"]), "--captures", str(setup["root"] / "held"), "--json", str(out),
                 "--plots", str(tmp_path)]) == 0
    doc = json.loads(out.read_text())
    assert doc["frames"] == 80 and sum(b["blocks"] for b in doc["bins"]) == 80 * 16
    assert sum(b["measured_errors"] for b in doc["bins"]) > 50
    # The CVAE predicts the measured BLER far better than chance and its clouds are closer than AWGN's.
    assert 0.5 * doc["bler_measured"] <= doc["bler_cvae"] <= 2.0 * doc["bler_measured"]
    assert doc["swd_cvae"] < 0.7 * doc["swd_awgn"]
    assert (tmp_path / "clouds.png").stat().st_size > 10_000
    assert "sliced Wasserstein" in capsys.readouterr().out


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert "Traceback" not in "\n".join(err)
    return err[-1]


def test_bad_channel_model_directories_are_refused(setup: dict, tmp_path: Path, capsys) -> None:
    model, held = str(setup["model"]), str(setup["root"] / "held")

    def check(cm: Path) -> str:
        assert main(["channel-model", "check", "--channel-model", str(cm), "--model", model, "--captures",
                     held]) == 2
        return _one_error_line(capsys)

    tampered = tmp_path / "tampered"
    shutil.copytree(setup["cm"], tampered)
    data = bytearray((tampered / CHANNEL_WEIGHTS).read_bytes())
    data[-3] ^= 0x40
    (tampered / CHANNEL_WEIGHTS).write_bytes(bytes(data))
    assert "was altered" in check(tampered)
    truncated = tmp_path / "truncated"
    shutil.copytree(setup["cm"], truncated)
    (truncated / CHANNEL_WEIGHTS).write_bytes((setup["cm"] / CHANNEL_WEIGHTS).read_bytes()[:-8])
    assert "bytes, its header describes" in check(truncated)
    for key, value, message in (
        ("sample_rate_hz", 2e6, "fitted at sample rate 2e+06 S/s"),
        ("model_hash32", "deadbeef", "fitted for the transmitter deadbeef"),
        ("architecture", {"half_window": 3, "latent": 2, "hidden_width": 32, "hidden_layers": 2},
         "encoder.0.weight must be F32 of shape [32, 17]"),
    ):
        other = tmp_path / key
        shutil.copytree(setup["cm"], other)
        meta = json.loads((other / CHANNEL_JSON).read_text())
        meta[key] = value
        (other / CHANNEL_JSON).write_text(json.dumps(meta))
        assert message in check(other)
    assert "is not a channel-model directory" in check(tmp_path)


def test_fit_refuses_captures_without_probe_frames(setup: dict, tmp_path: Path, capsys) -> None:
    out = tmp_path / "cm"
    assert main(["channel-model", "fit", "--model", str(setup["model"]), "--captures",
                 str(setup["root"] / "test-only"), "--out", str(out), "--steps", "10", "--quiet"]) == 2
    line = _one_error_line(capsys)
    assert "0 probe frames" in line and "tx --pattern probe" in line
    assert not out.exists()


def test_finetune_flags_go_together(setup: dict, tmp_path: Path, capsys) -> None:
    base = ["finetune", "--model", str(setup["model"]), "--captures", str(setup["root"] / "caps"),
            "--out", str(tmp_path / "o")]
    assert main([*base, "--channel-model", str(setup["cm"])]) == 2
    assert "--end-to-end is missing" in _one_error_line(capsys)
    assert main([*base, "--end-to-end"]) == 2
    assert "--channel-model CM is missing" in _one_error_line(capsys)
    assert not (tmp_path / "o").exists()


def test_end_to_end_pair_beats_receiver_only_over_the_real_channel(setup: dict) -> None:
    root, model, ch = setup["root"], setup["model"], setup["channel"]
    report = finetune_end_to_end(model, root / "caps", setup["cm"], root / "e2e",
                                 settings=EndToEndSettings(steps=400, eval_every=50), progress=False)
    through = report["bler_channel_model"]
    assert report["written"] and through["after"] < through["before"]
    new_lut = load_lut(root / "e2e")
    # A new LUT (a new model hash), with the power constraint: mean energy 1, within the probe radius.
    assert model_hash32(root / "e2e") != model_hash32(model) and report["lut_rms_move"] > 0.01
    assert np.mean(np.abs(new_lut) ** 2) == pytest.approx(1.0, abs=1e-4)
    assert np.abs(new_lut).max() <= load_channel_model(setup["cm"]).meta["probe_radius"] * (1 + 1e-5)
    finetune_model(model, root / "caps", root / "rx-only", progress=False, keep_unimproved=True,
                   settings=FinetuneSettings(learning_rate=3e-3, max_epochs=10))
    fresh = {name: record_loopback_capture(root / name, root / f"fresh-{name}", ch, frames=120, seed=9,
                                           rng=np.random.default_rng(9))
             for name in ("e2e", "rx-only")}
    # The new pair works with tx/rx like any model: every frame decoded, none refused.
    assert fresh["e2e"]["frames_decoded"] == 120 and fresh["e2e"]["model_mismatches"] == 0
    assert fresh["rx-only"]["block_errors"] >= 30
    assert fresh["e2e"]["bler"] <= 0.7 * fresh["rx-only"]["bler"]


def test_tx_pattern_probe_through_a_recording(setup: dict, tmp_path: Path) -> None:
    rec = tmp_path / "probe.sigmf-meta"
    model = str(setup["model"])
    assert main(["tx", "--model", model, "--device", f"file:{rec}", "--frames", "5", "--pattern", "probe",
                 "--seed", "9"]) == 0
    out = tmp_path / "rx.json"
    assert main(["rx", "--model", model, "--device", f"file:{rec}", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["probe_frames"] == report["frames_decoded"] == 5
    assert report["blocks"] == 0 and report["bler"] is None and report["test_pattern_seeds"] == []


def test_check_needs_test_pattern_frames(setup: dict, tmp_path: Path, capsys) -> None:
    metas = sorted((setup["root"] / "caps").glob("*.sigmf-meta"))
    probe_only = tmp_path / "probe-only"
    probe_only.mkdir()
    for suffix in (".sigmf-meta", ".sigmf-data"):  # the first recording holds the probe frames
        shutil.copy(metas[0].with_suffix(suffix), probe_only)
    assert main(["channel-model", "check", "--channel-model", str(setup["cm"]), "--model",
                 str(setup["model"]), "--captures", str(probe_only)]) == 2
    assert "no test-pattern frames" in _one_error_line(capsys)
