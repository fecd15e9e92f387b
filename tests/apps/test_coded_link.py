"""A coded model (bit-wise receiver + 5G NR LDPC, or a message receiver whose posteriors are
marginalized to bit LLRs) over a SigMF recording: ``aeradio tx``, an impaired copy of the
recording, ``aeradio rx``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from aeradio.cli import main
from aeradio.core.config import LinkConfig
from aeradio.core.model_dir import load_link_config, load_lut, model_hash32
from aeradio.flowgraphs.channel_sim import ChannelModel, ChannelSettings, snr_db_from_ebn0_db
from aeradio.flowgraphs.tx_chain import TxChain
from aeradio.radio.base import DeviceSettings
from aeradio.radio.sigmf_file import SigmfFileDevice
from tests.flowgraphs.conftest import random_lut
from tests.flowgraphs.test_coded_frames import SMALL_CODE, data_frames_with_a_bad_codeword
from tests.learning.test_dataset import matched_filter_model

#: Eb/N0 per information bit where about 4 % of the blocks are wrong before decoding (so
#: nearly every frame of 240 blocks has one) and the code decodes them all (measured with
#: exact APP demapping: 0 codeword errors of 800 at 6.5 dB, 1 at 5.5 dB).
EBN0_DB = 6.5


@pytest.fixture(scope="module")
def coded_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """AE(n=1, k=2) bit-wise, started from QPSK and trained briefly, with a 120-bit code:
    4 codewords per frame (26 data bytes)."""
    from aeradio.apps.train import train_and_save

    config = LinkConfig.from_dict({
        "name": "tiny-coded",
        "model": {"k": 2, "n": 1, "receiver": "bitwise", "noise_input": True, "hidden_width": 16,
                  "hidden_layers": 1},
        "training": {"tx_init": "qam", "steps": 300, "batch_size": 512, "learning_rate": 1e-2,
                     "ebn0_db_min": 1.0, "ebn0_db_max": 6.0},
        "frame": {"blocks_per_frame": 240},
        "code": SMALL_CODE,
    })
    return train_and_save(config, tmp_path_factory.mktemp("coded") / "model", progress=False)


@pytest.fixture(scope="module")
def marginal_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """AE(n=2, k=4) message-wise, trained briefly, its 16 posteriors marginalized to 4 bit
    LLRs for the 120-bit code (``bit_llrs = "marginal"``): 8 codewords per frame."""
    from aeradio.apps.train import train_and_save

    config = LinkConfig.from_dict({
        "name": "tiny-marginal",
        "model": {"k": 4, "n": 2, "hidden_width": 16, "hidden_layers": 1, "bit_llrs": "marginal"},
        "training": {"steps": 300, "batch_size": 512, "learning_rate": 1e-2,
                     "ebn0_db_min": 3.0, "ebn0_db_max": 7.0},
        "frame": {"blocks_per_frame": 240},
        "code": SMALL_CODE,
    })
    return train_and_save(config, tmp_path_factory.mktemp("marginal") / "model", progress=False)


#: Eb/N0 per information bit of the marginal model's tests: its uncoded BER is about 2 % (so
#: about 8 % of the 4-bit blocks and every frame have errors) and the code decodes every
#: codeword (measured with ``aeradio eval``, genie-synchronized: 0 codeword errors of 1000
#: at 7 dB, 2 at 6 dB).
MARGINAL_EBN0_DB = 7.5


@pytest.fixture(scope="module")
def plain_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cfg = LinkConfig.from_dict({"model": {"k": 4, "n": 2, "hidden_width": 16, "hidden_layers": 1},
                                "frame": {"blocks_per_frame": 32}})
    lut = random_lut(cfg.model.M, cfg.model.n, np.random.default_rng(5))
    return matched_filter_model(tmp_path_factory.mktemp("plain") / "m", cfg, lut)


def write_recording(path: Path, samples: np.ndarray, sample_rate_hz: float) -> Path:
    with SigmfFileDevice(path, "tx", DeviceSettings(sample_rate_hz)) as dev:
        dev.write(samples)
    return path


def impaired(clean: Path, out: Path, model: Path, ebn0_db: float, seed: int, **impairments: float) -> Path:
    """``clean`` through the loopback channel's stages: AWGN at ``ebn0_db`` per information
    bit of ``model`` (its code rate counted, as ``aeradio channel --ebn0-db``), impairments."""
    cfg = load_link_config(model)
    sps = cfg.radio.samples_per_symbol
    snr_db = snr_db_from_ebn0_db(ebn0_db, cfg.info_rate, sps)
    settings = ChannelSettings(signal_power=1 / sps, noise_power=10 ** (-snr_db / 10) / sps, **impairments)
    x = np.fromfile(clean.with_suffix(".sigmf-data"), np.complex64)
    pad = np.zeros(4000, np.complex64)
    y = ChannelModel(settings, np.random.default_rng(seed)).process(np.concatenate([pad, x, pad]))
    return write_recording(out, y, cfg.radio.sample_rate_hz)


def rx_json(model: Path, rec: Path, report: Path, *extra: str) -> tuple[int, dict]:
    code = main(["rx", "--model", str(model), "--device", f"file:{rec}", "--json", str(report), *extra])
    return code, json.loads(report.read_text())


def _test_patterns_through(model: Path, tmp_path: Path, frames: int, seed: int, ebn0_db: float,
                           channel_seed: int) -> tuple[int, dict]:
    """``frames`` test-pattern frames of ``model`` to a recording, through CFO 2e-3
    cycles/sample, 30 ppm and AWGN at ``ebn0_db``, then ``rx --json``: (exit code, report)."""
    clean = tmp_path / "tp.sigmf-meta"
    assert main(["tx", "--model", str(model), "--device", f"file:{clean}", "--frames", str(frames),
                 "--seed", str(seed)]) == 0
    rec = impaired(clean, tmp_path / "tp-noisy.sigmf-meta", model, ebn0_db, seed=channel_seed,
                   cfo_cps=2e-3, sco_ppm=30.0)
    return rx_json(model, rec, tmp_path / "tp.json")


def test_coded_test_patterns_report_the_coded_bler(coded_model: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture) -> None:
    code, got = _test_patterns_through(coded_model, tmp_path, frames=20, seed=5, ebn0_db=EBN0_DB,
                                       channel_seed=1)
    assert code == 0
    assert got["coded"] and got["frames_decoded"] == got["frames_expected"] == 20
    # Before decoding: about 4 % of the blocks wrong, so nearly every frame had an error.
    assert got["blocks"] == 20 * 240 and got["bler"] > 0.02
    assert got["codewords"] == 20 * 4 and got["codeword_errors"] == 0 and got["coded_bler"] == 0.0
    assert got["decoder_failures"] == 0
    summary = capsys.readouterr().err.strip().splitlines()[-1]
    assert "0/80 codeword errors (coded BLER 0.00e+00)" in summary


def test_a_file_crosses_a_noisy_recording_bit_exact(coded_model: Path, tmp_path: Path,
                                                    rng: np.random.Generator) -> None:
    sent = bytes(rng.integers(0, 256, 26 * 11 + 9, dtype=np.uint8))  # 12 frames, the last partial
    _file_crosses_bit_exact(coded_model, tmp_path, sent, EBN0_DB, seed=2, frames=12)


def _file_crosses_bit_exact(model: Path, tmp_path: Path, sent: bytes, ebn0_db: float, seed: int,
                            frames: int) -> None:
    """``tx --file`` of ``sent`` to a recording, impaired (CFO -1e-3 cycles/sample), and
    ``rx --out``: bit-exact, ``frames`` frames decoded, no decoding or CRC failure."""
    (tmp_path / "sent.bin").write_bytes(sent)
    clean = tmp_path / "file.sigmf-meta"
    assert main(["tx", "--model", str(model), "--device", f"file:{clean}",
                 "--file", str(tmp_path / "sent.bin")]) == 0
    rec = impaired(clean, tmp_path / "file-noisy.sigmf-meta", model, ebn0_db, seed=seed, cfo_cps=-1e-3)
    out = tmp_path / "received.bin"
    code, got = rx_json(model, rec, tmp_path / "file.json", "--out", str(out))
    assert code == 0 and out.read_bytes() == sent
    assert got["transfer"]["complete"] and got["frames_decoded"] == frames
    assert got["data_decode_failures"] == got["decoder_failures"] == got["data_crc_failures"] == 0


def test_a_frame_whose_codeword_does_not_decode_is_listed_missing(
    coded_model: Path, tmp_path: Path, rng: np.random.Generator, capsys: pytest.CaptureFixture
) -> None:
    from aeradio.learning.coded import outer_code

    cfg = load_link_config(coded_model)
    tx = TxChain(cfg, load_lut(coded_model), model_hash32(coded_model), code=outer_code(cfg))
    chunks = [bytes(rng.integers(0, 256, tx.data_capacity, dtype=np.uint8)) for _ in range(4)] + [b"tail"]
    rec = write_recording(tmp_path / "bad.sigmf-meta", data_frames_with_a_bad_codeword(tx, chunks, 2, rng),
                          cfg.radio.sample_rate_hz)
    out = tmp_path / "received.bin"
    code, got = rx_json(coded_model, rec, tmp_path / "rx.json", "--out", str(out))
    assert code == 1 and not out.exists()
    assert got["data_decode_failures"] == 1 and got["decoder_failures"] == 1
    assert got["transfer"]["missing_frames"] == [[2, 2]]
    partial = out.with_name(out.name + ".partial").read_bytes()
    cap = tx.data_capacity
    assert partial[: 2 * cap] == b"".join(chunks[:2]) and partial[2 * cap : 3 * cap] == bytes(cap)
    assert partial[3 * cap :] == chunks[3] + b"tail"
    err = capsys.readouterr().err
    assert "1 data frames not decoded" in err and "missing frame 2" in err


def test_coded_and_uncoded_models_do_not_mix(coded_model: Path, plain_model: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture) -> None:
    coded_rec, plain_rec = tmp_path / "coded.sigmf-meta", tmp_path / "plain.sigmf-meta"
    assert main(["tx", "--model", str(coded_model), "--device", f"file:{coded_rec}", "--frames", "3"]) == 0
    assert main(["tx", "--model", str(plain_model), "--device", f"file:{plain_rec}", "--frames", "3"]) == 0
    capsys.readouterr()
    code, got = rx_json(plain_model, coded_rec, tmp_path / "a.json")
    assert code == 1 and got["code_mismatches"] == 3
    failed = [line for line in capsys.readouterr().err.splitlines() if "FAILED" in line]
    assert len(failed) == 1 and "sent with a coded model (LDPC codewords)" in failed[0]
    # The coded receiver's frames are longer than these three: it takes them for fewer.
    code, got = rx_json(coded_model, plain_rec, tmp_path / "b.json")
    assert code == 1 and got["code_mismatches"] == got["model_mismatches"] >= 1
    failed = [line for line in capsys.readouterr().err.splitlines() if "FAILED" in line]
    assert len(failed) == 1 and "sent with an uncoded model, and --model is coded" in failed[0]


def test_commands_that_need_a_message_receiver_refuse_a_coded_model(
    coded_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Captures of a coded model are recorded, but fine-tuning, channel models and OTA
    training work with message receivers only: one line each, exit 2."""
    commands = _capture_commands(coded_model, tmp_path, frames=3)
    capsys.readouterr()
    for argv in (*commands, ["train-ota", "--model", str(coded_model), "--tx-device", "zmq:tcp://127.0.0.1:1",
                             "--rx-device", "zmq:tcp://127.0.0.1:2", "--out", str(tmp_path / "ota")]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "bit-wise receiver (LLR outputs) and an outer code" in err[0], err
        assert "needs a message receiver" in err[0]


def _capture_commands(model: Path, tmp_path: Path, frames: int) -> list[list[str]]:
    """``finetune`` and ``channel-model fit`` argv on captures of ``frames`` frames that
    ``rx --capture`` recorded of ``model`` (a coded model's captures are recorded)."""
    clean = tmp_path / "clean.sigmf-meta"
    assert main(["tx", "--model", str(model), "--device", f"file:{clean}", "--frames", str(frames)]) == 0
    assert main(["rx", "--model", str(model), "--device", f"file:{clean}",
                 "--capture", str(tmp_path / "caps")]) == 0
    caps = str(tmp_path / "caps")
    return [["finetune", "--model", str(model), "--captures", caps, "--out", str(tmp_path / "ft")],
            ["channel-model", "fit", "--model", str(model), "--captures", caps,
             "--out", str(tmp_path / "cm")]]


def test_a_bitwise_model_without_a_code_sends_and_receives_blocks(coded_model: Path, tmp_path: Path) -> None:
    """The same points and bit-wise receiver re-saved without [code]: uncoded frames, the
    LLRs' hard decisions as the block decisions."""
    import dataclasses

    from aeradio.core.model_dir import save_model
    from aeradio.learning.inference import load_receiver_state

    cfg = load_link_config(coded_model)
    plain = cfg.replace(code=None, frame=dataclasses.replace(cfg.frame, blocks_per_frame=cfg.payload_blocks))
    model = save_model(tmp_path / "uncoded", plain, load_lut(coded_model), load_receiver_state(coded_model))
    rec = tmp_path / "u.sigmf-meta"
    assert main(["tx", "--model", str(model), "--device", f"file:{rec}", "--frames", "4"]) == 0
    code, got = rx_json(model, rec, tmp_path / "rx.json")
    assert code == 0 and not got["coded"] and got["frames_decoded"] == 4
    assert got["blocks"] == 4 * 240 and got["block_errors"] == 0 and got["codewords"] == 0
    # eval scores its blocks too (it refused bit-wise models without a code: "needs a message
    # receiver"): QPSK-like points, so the LLRs' hard decisions are about as good as ML.
    assert main(["eval", "--model", str(model), "--ebn0-db", "4:4:1", "--target-errors", "100",
                 "--json", str(tmp_path / "eval.json"), "--quiet"]) == 0
    doc = json.loads((tmp_path / "eval.json").read_text())
    assert doc["errors"][0] >= 100 and 0.01 < doc["bler"][0] < 0.2, doc
    assert doc["bler"][0] < 1.5 * doc["ml_bler"][0], doc


def test_a_marginal_model_decodes_test_patterns_and_a_file_bit_exact(
    marginal_model: Path, tmp_path: Path, rng: np.random.Generator
) -> None:
    """The block model under the code: tx encodes, rx marginalizes its message posteriors
    into LLRs and decodes; through CFO and clock offset, blocks in error before decoding and
    none after, and a file comes back bit-exact."""
    assert json.loads((marginal_model / "model.json").read_text())["bit_llrs"] == "marginal"
    code, got = _test_patterns_through(marginal_model, tmp_path, frames=12, seed=3, ebn0_db=MARGINAL_EBN0_DB,
                                       channel_seed=4)
    assert code == 0 and got["coded"] and got["frames_decoded"] == got["frames_expected"] == 12
    assert got["blocks"] == 12 * 240 and got["bler"] > 0.03  # before decoding
    assert got["codewords"] == 12 * 8 and got["codeword_errors"] == 0 and got["decoder_failures"] == 0

    cfg = load_link_config(marginal_model)
    from aeradio.learning.coded import outer_code

    capacity = TxChain(cfg, load_lut(marginal_model), model_hash32(marginal_model),
                       code=outer_code(cfg)).data_capacity
    sent = bytes(rng.integers(0, 256, capacity * 9 + 5, dtype=np.uint8))  # 10 frames, the last partial
    _file_crosses_bit_exact(marginal_model, tmp_path, sent, MARGINAL_EBN0_DB, seed=5, frames=10)


def test_uncoded_paths_refuse_a_marginal_model_in_one_line(
    marginal_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """A coded message model is a message receiver, but its frames carry codewords: sweep-like
    block evaluation, captures for fine-tuning and OTA training refuse it (exit 2)."""
    commands = _capture_commands(marginal_model, tmp_path, frames=2)
    capsys.readouterr()
    for argv in commands:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "is a coded model" in err[0], err
        assert "needs an uncoded message model" in err[0], err
