"""``aeradio train-ota`` over the real loopback: the channel simulator as its own process,
train-ota driving both of its ZMQ ends through the real TX and RX chains."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from aeradio.apps.link import CHANNEL_READY, START_TIMEOUT_S, Process, aeradio_argv
from aeradio.cli import main
from aeradio.core.model_dir import load_lut, model_hash32, read_extra_meta, verify_model_dir
from aeradio.radio.base import Device
from aeradio.radio.zmq_stream import free_endpoint

#: Seconds train-ota may take to start (torch imports) while other tests load both cores.
STARTUP_S = 180.0
#: Eb/N0 of the loop: QPSK's SER there is 4.7e-3, a random 4-point LUT's far higher.
EBN0_DB = 6.0


@pytest.fixture()
def loop(tiny_model: Path, tmp_path: Path) -> Iterator[tuple[str, str, Process]]:
    """A running channel simulator: ``(tx endpoint, rx endpoint, the channel process)``."""
    tx_ep, rx_ep = free_endpoint(), free_endpoint()
    channel = Process("channel", aeradio_argv(
        "channel", "--tx", tx_ep, "--rx", rx_ep, "--sample-rate-hz", "1e6", "--ebn0-db", f"{EBN0_DB:g}",
        "--model", str(tiny_model), "--cfo-hz", "2000", "--sco-ppm", "20", "--delay-samples", "3.3",
        "--seed", "1",
    ), tmp_path / "channel.log")
    try:
        channel.wait_for(CHANNEL_READY, timeout_s=START_TIMEOUT_S)
        yield tx_ep, rx_ep, channel
    finally:
        channel.popen.send_signal(signal.SIGCONT)  # a test may have stopped it
        channel.stop()


def _args(model: Path, tx_ep: str, rx_ep: str, out: Path, *extra: str) -> list[str]:
    return ["train-ota", "--model", str(model), "--tx-device", f"zmq:{tx_ep}", "--rx-device", f"zmq:{rx_ep}",
            "--sample-rate-hz", "1e6", "--out", str(out), "--quiet", *extra]


def test_train_ota_from_scratch_learns_through_the_loop(
    tiny_model: Path, loop: tuple[str, str, Process], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    tx_ep, rx_ep, _ = loop
    out = tmp_path / "ota"
    code = main(_args(tiny_model, tx_ep, rx_ep, out, "--from-scratch", "--iterations", "60",
                      "--checkpoint-every", "10", "--seed", "5"))
    err = capsys.readouterr().err
    assert code == 0, err
    assert "aeradio train-ota: 60 iterations" in err
    meta = read_extra_meta(out)["train_ota"]
    history = meta["history"]
    # A loaded machine loses a few frames (a slow subscriber's samples are dropped): they are
    # left out of their steps, and counted.
    assert len(history) == 60 and meta["frames_sent"] == 60 * 2 * 8
    assert meta["frames_lost"] < meta["frames_sent"] // 4, meta["frames_lost"]
    assert meta["samples_sent"] == history[-1]["samples_sent"] > 0
    first = np.nanmean([h["bler"] for h in history[:3]])  # the random LUT
    # From a random 4-point LUT (about 0.1) towards QPSK's 4.7e-3 (512 blocks per batch:
    # pooled over 5). Not to it in a test's few iterations: after 40 the batches were still at
    # 0.014 to 0.05 (the transmitter's noisy steps) and the best window 0.0215 and 0.0234
    # in two runs under load, at the old bound 0.02 (flaky): 60 iterations and a bound of 0.03.
    assert first > 0.05, history[:3]
    assert meta["best_bler"] < min(0.3 * first, 0.03), (first, meta["best_bler"])
    # An ordinary model directory with a new hash, which tx and rx load.
    verify_model_dir(out)
    assert model_hash32(out) != model_hash32(tiny_model)
    lut = load_lut(out)
    assert np.mean(np.abs(lut) ** 2) == pytest.approx(1.0, abs=1e-5)
    rec = tmp_path / "check.sigmf-meta"
    assert main(["tx", "--model", str(out), "--device", f"file:{rec}", "--frames", "5"]) == 0
    report = tmp_path / "rx.json"
    assert main(["rx", "--model", str(out), "--device", f"file:{rec}", "--json", str(report)]) == 0
    got = json.loads(report.read_text())
    assert got["frames_decoded"] == 5 and got["block_errors"] == 0  # noise-free


def test_polish_and_the_last_model(
    tiny_model: Path, loop: tuple[str, str, Process], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """``--polish-iterations``: receiver batches after the transmitter stops (no transmitter
    frames); ``--final-model last`` writes the model as it stands; ``--antithetic`` runs
    through the loop."""
    tx_ep, rx_ep, _ = loop
    out = tmp_path / "ota"
    code = main(_args(tiny_model, tx_ep, rx_ep, out, "--iterations", "3", "--polish-iterations", "2",
                      "--final-model", "last", "--antithetic", "--checkpoint-every", "100", "--seed", "2"))
    err = capsys.readouterr().err
    assert code == 0, err
    assert "5 iterations" in err and "the last model" in err
    meta = read_extra_meta(out)["train_ota"]
    assert meta["frames_sent"] == (3 * 2 + 2) * 8  # no transmitter batch in the polish
    assert len(meta["history"]) == meta["iterations"] == 5
    assert meta["polish_iterations"] == 2 and meta["final_model"] == "last" and meta["antithetic"]
    assert 0 <= meta["last_window_bler"] < 0.1
    verify_model_dir(out)
    assert model_hash32(out) != model_hash32(tiny_model)  # the compander moved the LUT


def _start(model: Path, tx_ep: str, rx_ep: str, out: Path, tmp_path: Path, *extra: str) -> Process:
    return Process("train-ota", aeradio_argv(*_args(model, tx_ep, rx_ep, out, *extra)), tmp_path / "ota.log")


def test_sigterm_writes_the_best_model(
    tiny_model: Path, loop: tuple[str, str, Process], tmp_path: Path
) -> None:
    tx_ep, rx_ep, _ = loop
    out = tmp_path / "ota"
    proc = _start(tiny_model, tx_ep, rx_ep, out, tmp_path, "--iterations", "100000",
                  "--checkpoint-every", "1000")
    try:
        proc.wait_for(r"^aeradio train-ota: sending to", timeout_s=STARTUP_S)
        time.sleep(4.0)  # a few iterations
        # No checkpoint yet (every 1000 iterations): what SIGTERM writes is all there is.
        assert not out.exists()
        proc.popen.send_signal(signal.SIGTERM)
        code = proc.wait(timeout_s=120)  # writing the model on a loaded machine takes a while
    finally:
        proc.stop(signal.SIGKILL)
    assert code == 143, proc.tail()
    assert "interrupted by SIGTERM" in proc.tail(1)
    verify_model_dir(out)
    from aeradio.learning.inference import ReceiverRuntime

    assert ReceiverRuntime.load(out).decide(load_lut(out)).tolist() == [0, 1, 2, 3]
    meta = read_extra_meta(out)["train_ota"]
    assert meta["iterations"] >= 1
    # From a model, the transmitter steps train the compander and the points by default.
    assert meta["transmitter"] == "compander+lut" and meta["tx_lr_decay_iterations"] == 0


def test_a_stalled_stream_is_one_line_exit_2_and_the_checkpoint_kept(
    tiny_model: Path, loop: tuple[str, str, Process], tmp_path: Path
) -> None:
    tx_ep, rx_ep, channel = loop
    out = tmp_path / "ota"
    proc = _start(tiny_model, tx_ep, rx_ep, out, tmp_path, "--iterations", "100000",
                  "--checkpoint-every", "1", "--stall-timeout-s", "3")
    try:
        proc.wait_for(r"^aeradio train-ota: iteration 1,", timeout_s=STARTUP_S)
        channel.popen.send_signal(signal.SIGSTOP)  # the channel freezes: nothing comes back
        code = proc.wait(timeout_s=60)
    finally:
        proc.stop(signal.SIGKILL)
    assert code == 2, proc.tail()
    errors = [line for line in proc.lines if "error" in line]
    assert len(errors) == 1 and errors[0].startswith("aeradio train-ota: error: "), proc.tail()
    assert "no frame detected" in errors[0] or "did not accept samples" in errors[0]
    verify_model_dir(out)  # the last checkpoint, whole
    assert read_extra_meta(out)["train_ota"]["iterations"] >= 1


def test_a_model_of_another_format_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "model.json").write_text(json.dumps({"format_version": 999}))
    code = main(["train-ota", "--model", str(bad), "--tx-device", "zmq:tcp://127.0.0.1:1",
                 "--rx-device", "zmq:tcp://127.0.0.1:2", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("aeradio train-ota: error:"), err


@pytest.mark.parametrize("extra", [["--receiver-only"], ["--transmitter", "compander"],
                                   ["--transmitter", "compander+lut"]])
def test_what_keeps_the_models_lut_is_refused_from_scratch(
    extra: list[str], tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    code = main(["train-ota", "--model", str(tiny_model), "--tx-device", "zmq:tcp://127.0.0.1:1",
                 "--rx-device", "zmq:tcp://127.0.0.1:2", "--out", str(tmp_path / "o"), "--from-scratch",
                 *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and extra[0] in err[0], err
    assert not (tmp_path / "o").exists()


def test_antithetic_pairs_without_transmitter_steps_are_refused(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    code = main(["train-ota", "--model", str(tiny_model), "--tx-device", "zmq:tcp://127.0.0.1:1",
                 "--rx-device", "zmq:tcp://127.0.0.1:2", "--out", str(tmp_path / "o"), "--receiver-only",
                 "--antithetic"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--antithetic" in err[0] and "--receiver-only" in err[0], err
    assert not (tmp_path / "o").exists()


def test_a_receiving_device_at_another_sample_rate_is_one_line(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    rec = tmp_path / "rec.sigmf-meta"
    assert main(["tx", "--model", str(tiny_model), "--device", f"file:{rec}", "--sample-rate-hz", "2e6",
                 "--frames", "2"]) == 0
    capsys.readouterr()
    code = main(["train-ota", "--model", str(tiny_model), "--tx-device", f"zmq:{free_endpoint()}",
                 "--rx-device", f"file:{rec}", "--sample-rate-hz", "1e6", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "2e+06" in err[0] and "1e+06" in err[0], err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(("tx", "rx", "says"), [
    ("file:{tmp}/r.sigmf-meta", "zmq:tcp://127.0.0.1:2", "needs a live loop"),
    ("zmq:tcp://127.0.0.1:2", "zmq:tcp://127.0.0.1:2", "are both"),
])
def test_a_loop_that_cannot_return_frames_is_refused_at_once(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture, tx: str, rx: str, says: str
) -> None:
    """A recording as --tx-device, or one zmq endpoint for both, stalled for
    --stall-timeout-s (15 s) before saying anything."""
    start = time.monotonic()
    code = main(["train-ota", "--model", str(tiny_model), "--tx-device", tx.format(tmp=tmp_path),
                 "--rx-device", rx, "--out", str(tmp_path / "o"), "--connect-timeout-s", "5"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and says in err[0], err
    assert time.monotonic() - start < 3.0
    assert not (tmp_path / "o").exists() and not (tmp_path / "r.sigmf-meta").exists()


def test_out_is_never_the_model_it_starts_from(tiny_model: Path, capsys: pytest.CaptureFixture) -> None:
    """--out = --model with --overwrite replaced the source model (finetune refuses it)."""
    before = {p.name: p.read_bytes() for p in tiny_model.iterdir()}
    code = main(["train-ota", "--model", str(tiny_model), "--tx-device", "zmq:tcp://127.0.0.1:1",
                 "--rx-device", "zmq:tcp://127.0.0.1:2", "--out", str(tiny_model), "--overwrite"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "is the --model directory" in err[0], err
    assert {p.name: p.read_bytes() for p in tiny_model.iterdir()} == before


class _LoopbackWithDrop(Device):
    """What is written comes back (noise-free, a few hundred silent samples first), split in
    reads of ``chunk`` samples, with ``drop`` samples missing at stream position ``at`` (a
    slow reader's dropped messages: counted in ``stats.samples_dropped``, as the ZMQ RX
    device does)."""

    def __init__(self, *, at: int, drop: int, chunk: int) -> None:
        super().__init__()
        self.sample_rate_hz = 1e6
        self.at, self.drop, self.chunk = at, drop, chunk
        self.stream = np.zeros(300, np.complex64)
        self.pos = 0

    def write(self, samples: np.ndarray, *, end_burst: bool = False, timeout_s: float = 5.0) -> None:
        self.stream = np.concatenate([self.stream, samples, np.zeros(300, np.complex64)])

    def read(self, max_samples: int, timeout_s: float = 1.0) -> np.ndarray | None:
        if self.pos == self.at and self.drop:
            self.pos += self.drop
            self.stats.samples_dropped += self.drop
        end = min(len(self.stream), self.pos + self.chunk)
        if self.pos < self.at < end:
            end = self.at
        out, self.pos = self.stream[self.pos:end], end
        return out

    def close(self) -> None:
        pass


def test_frames_across_dropped_samples_are_left_out(tiny_model: Path) -> None:
    """A frame received across lost samples (its payload shifted from the drop on) is left
    out of its step and counted, not scored as the model's block errors; the frames away
    from the drop arrive."""
    from aeradio.apps.processes import StopOnSignal
    from aeradio.apps.train_ota import OtaLoop, _no_decisions
    from aeradio.core.model_dir import load_link_config
    from aeradio.flowgraphs.rx_chain import RxChain
    from aeradio.flowgraphs.tx_chain import TxChain

    cfg = load_link_config(tiny_model)
    lut = load_lut(tiny_model)
    tx = TxChain(cfg, lut, model_hash32(tiny_model))
    results = {}
    for drop in (0, 40):
        # The drop in the middle of the payload of the second of four frames.
        at = 300 + tx.frame_samples + tx.frame_samples // 2
        dev = _LoopbackWithDrop(at=at, drop=drop, chunk=700)
        with StopOnSignal() as stop:
            loop = OtaLoop(dev, dev, tx, RxChain(cfg, _no_decisions, model_hash=None), seed=1,
                           stall_timeout_s=5.0, rx_uri="fake", stop=stop)
            seqs = loop.new_seqs(4)
            got = loop.exchange(seqs, lut[loop.messages(seqs)])
        results[drop] = (sorted(got), loop.frames_corrupted, loop.frames_lost)
    assert results[0] == ([0, 1, 2, 3], 0, 0)
    got, corrupted, lost = results[40]
    # Frame 1 came out of the RX chain and was left out; the chain itself also lost frame 2
    # (decoding frame 1 took samples up to its nominal end: 40 samples into frame 2).
    assert 1 not in got and {0, 3} <= set(got) and corrupted == 1 and lost == 4 - len(got)
