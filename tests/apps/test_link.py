"""The link as users run it: channel, RX and TX as real processes over real ZMQ sockets."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from aeradio.apps.link import RX_READY, LoopbackSettings, Process, aeradio_argv, run_loopback
from aeradio.core.config import LinkConfig
from aeradio.radio.zmq_stream import free_endpoint

#: Eb/N0 (dB) at which the tiny QPSK-like model decodes essentially without errors.
CLEAN_EBN0_DB = 12.0


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """AE(n=1, k=2) trained briefly: becomes QPSK-like, enough to check the plumbing."""
    from aeradio.apps.train import train_and_save

    config = LinkConfig.from_dict(
        {
            "name": "tiny",
            "model": {"k": 2, "n": 1, "hidden_width": 16, "hidden_layers": 1},
            "training": {"steps": 300, "batch_size": 256, "ebn0_db_min": 6.0, "ebn0_db_max": 8.0},
            "frame": {"blocks_per_frame": 32},
        }
    )
    out = tmp_path_factory.mktemp("model") / "tiny"
    train_and_save(config, out, progress=False)
    return out


def test_loopback_link_with_file_transfer(tiny_model: Path, tmp_path: Path) -> None:
    # Channel at 4x real time: this tiny model's 32-symbol frames make the RX chain's per-frame
    # work (header Viterbi, timing track) dominate, about 6 MS/s on one core (was 8x before
    # the coded header and the timing track; see docs/throughput.md).
    settings = LoopbackSettings(
        ebn0_db=CLEAN_EBN0_DB, frames=30, file_bytes=1500, pace="4", cfo_hz=2000, sco_ppm=30
    )
    report = run_loopback(tiny_model, tmp_path, settings)
    assert report["frames_decoded"] >= 30
    assert report["samples_dropped"] == 0
    assert report["bler"] is not None and report["bler"] < 0.01
    assert abs(report["cfo_hz"] - 2000) < 50
    assert report["transfer"]["identical"], report["transfer"]
    assert report["rx_exit_code"] == 0 and report["transfer"]["rx_exit_code"] == 0
    assert (tmp_path / "constellation.npy").stat().st_size > 0


def test_loopback_script_runs_the_link(tiny_model: Path, tmp_path: Path) -> None:
    """scripts/loopback.sh with the real commands (a wrapper runs this interpreter)."""
    import os
    import subprocess
    import sys

    from aeradio.core.paths import checkout_path

    wrapper = tmp_path / "aeradio"
    wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} -m aeradio.cli "$@"\n')
    wrapper.chmod(0o755)
    ports = [free_endpoint().rsplit(":", 1)[1] for _ in range(2)]
    env = dict(os.environ, AERADIO=str(wrapper), OUT=str(tmp_path / "out"), FRAMES="20",
               TX_PORT=ports[0], RX_PORT=ports[1], RX_TIMEOUT_S="60")
    done = subprocess.run(["bash", str(checkout_path("scripts") / "loopback.sh"), str(tiny_model),
                           f"{CLEAN_EBN0_DB}"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "out" / "rx.json").read_text())
    assert report["frames_decoded"] == 20 and report["stopped_by"] == "frames"


def _channel(tx_ep: str, rx_ep: str, model: Path, log: Path) -> Process:
    proc = Process(
        "channel",
        aeradio_argv("channel", "--tx", tx_ep, "--rx", rx_ep, "--sample-rate-hz", "1e6",
                     "--ebn0-db", f"{CLEAN_EBN0_DB}", "--model", str(model), "--speed", "8",
                     "--cfo-hz", "1000"),
        log,
    )
    proc.wait_for(r"^channel: PULL", timeout_s=60)
    return proc


def _tx(tx_ep: str, model: Path, frames: int, log: Path) -> Process:
    return Process(
        "tx",
        aeradio_argv("tx", "--model", str(model), "--device", f"zmq:{tx_ep}", "--frames", str(frames)),
        log,
    )


def test_rx_survives_tx_kill_and_channel_restart(tiny_model: Path, tmp_path: Path) -> None:
    tx_ep, rx_ep = free_endpoint(), free_endpoint()
    channel = _channel(tx_ep, rx_ep, tiny_model, tmp_path / "channel1.log")
    rx = Process(
        "rx",
        aeradio_argv("rx", "--model", str(tiny_model), "--device", f"zmq:{rx_ep}",
                     "--json", str(tmp_path / "rx.json")),
        tmp_path / "rx.log",
    )
    try:
        rx.wait_for(RX_READY, timeout_s=60)
        # A TX killed in the middle of a long transmission...
        doomed = _tx(tx_ep, tiny_model, 100_000, tmp_path / "tx-killed.log")
        rx.wait_for(r"frames \d*[1-9]", timeout_s=60)
        doomed.stop(signal.SIGKILL)
        # ...and a new TX after it.
        assert _tx(tx_ep, tiny_model, 20, tmp_path / "tx2.log").wait(120) == 0
        # The channel dies and comes back on the same ports; RX reconnects by itself.
        channel.stop(signal.SIGKILL)
        channel = _channel(tx_ep, rx_ep, tiny_model, tmp_path / "channel2.log")
        assert _tx(tx_ep, tiny_model, 20, tmp_path / "tx3.log").wait(120) == 0
        assert rx.popen.poll() is None, "rx must keep running through the restarts"
        deadline_lines = rx.wait_for(r"frames (4\d|[5-9]\d|\d{3,})", timeout_s=60)
        assert deadline_lines
    finally:
        code = rx.stop(signal.SIGTERM)
        channel.stop()
    assert code == 0
    report = json.loads((tmp_path / "rx.json").read_text())
    assert report["frames_decoded"] >= 40
    assert report["bler"] < 0.01
    # The restarted channel's stream starts again at offset 0: reported, not hidden.
    assert report["events"]["by_kind"].get("restart", 0) >= 1, report["events"]


def test_tx_exits_only_after_its_queued_samples_left(tiny_model: Path, tmp_path: Path) -> None:
    # A slow receiver (1 MS/s) behind a full PUSH queue: TX finishes writing long before the
    # samples are taken; all of them must still arrive after TX exits.
    import time

    import zmq

    from aeradio.radio.zmq_stream import PUSH_PULL_HWM, open_socket, unpack_message

    ep = free_endpoint()
    pull = open_socket("PULL", ep, bind=True, hwm=PUSH_PULL_HWM, role="test")
    try:
        tx = Process("tx", aeradio_argv("tx", "--model", str(tiny_model), "--device", f"zmq:{ep}",
                                        "--frames", "1000", "--sample-rate-hz", "1e6"), tmp_path / "tx.log")
        received = 0
        while pull.poll(2000 if received else 60_000, zmq.POLLIN):  # TX takes a while to start
            _, samples = unpack_message(pull.recv(copy=False).buffer)
            received += len(samples)
            time.sleep(len(samples) / 1e6)
        assert tx.wait(timeout_s=30) == 0
        sent = int(tx.wait_for(r"aeradio tx: \d+ frames, (\d+) samples", timeout_s=5).split()[4])
        assert received == sent
    finally:
        pull.close(linger=0)
