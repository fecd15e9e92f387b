"""aeradio tx -> a GNU Radio flowgraph (ZMQ PULL, channel model, ZMQ PUB) -> aeradio rx.

Three real processes over real sockets on 127.0.0.1: ``aeradio tx`` binds its PUSH socket
(``?bind=1``, since GNU Radio's PULL source connects), the flowgraph
``examples/gnuradio/zmq_channel.py`` runs under GNU Radio's Python and binds its PUB sink,
``aeradio rx`` connects to it. The gr-zeromq tag headers go through both ways.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from aeradio.apps.link import Process, aeradio_argv
from aeradio.learning.evaluate import simulate_bler, wilson_interval
from aeradio.radio.zmq_stream import free_endpoint
from tests.gnuradio.conftest import ROOT, gr_env

ZMQ_CHANNEL = ROOT / "examples" / "gnuradio" / "zmq_channel.py"
EBN0_DB = 6.0
CFO_HZ = 1000.0
FRAMES = 40
#: Synchronization (estimated CFO, phase, timing) may cost this much against the genie.
IMPLEMENTATION_LOSS_DB = 1.0


def test_aeradio_tx_through_gnuradio_channel_model_to_aeradio_rx(gr_python: str, gr_model: Path,
                                                                  tmp_path: Path) -> None:
    tx_ep, rx_ep = free_endpoint(), free_endpoint()
    rate = ["--sample-rate-hz", "1e6"]
    processes = []
    try:
        flowgraph = Process(
            "gnuradio",
            ["env", f"PYTHONPATH={ROOT}", gr_python, str(ZMQ_CHANNEL), "--tx", tx_ep, "--rx", rx_ep,
             "--model", str(gr_model), "--ebn0-db", f"{EBN0_DB}", "--cfo-hz", f"{CFO_HZ}", *rate],
            tmp_path / "gnuradio.log",
        )
        processes.append(flowgraph)
        flowgraph.wait_for(r"^zmq_channel: PULL", timeout_s=60)
        # A long transmission, stopped once rx has its frames: rx joins whenever it is ready.
        processes.append(Process(
            "tx", aeradio_argv("tx", "--model", str(gr_model), "--device", f"zmq:{tx_ep}?bind=1", *rate,
                               "--frames", "100000"),
            tmp_path / "tx.log",
        ))
        rx = Process(
            "rx", aeradio_argv("rx", "--model", str(gr_model), "--device", f"zmq:{rx_ep}", *rate, "--frames",
                               str(FRAMES), "--duration-s", "120", "--json", str(tmp_path / "rx.json")),
            tmp_path / "rx.log",
        )
        processes.append(rx)
        code = rx.wait(timeout_s=180)
        logs = {proc.name: proc.tail(4) for proc in processes}
        assert code == 0, logs
        assert flowgraph.popen.poll() is None, logs
    finally:
        for proc in reversed(processes):
            proc.stop()
    assert flowgraph.popen.returncode == 0  # SIGTERM: the flowgraph stops cleanly
    report = json.loads((tmp_path / "rx.json").read_text())
    assert report["frames_decoded"] >= FRAMES - 1
    assert report["frames_decoded"] >= 0.9 * report["frames_expected"], report
    assert report["header_crc_failures"] <= 1 and report["model_mismatches"] == 0
    # The channel model's frequency offset reached rx (GNU Radio is really in the path).
    assert abs(report["cfo_hz"] - CFO_HZ) < 50
    errors, blocks = report["block_errors"], report["blocks"]
    assert blocks >= (FRAMES - 1) * 32
    lo, hi = wilson_interval(errors, blocks)
    # Not better than genie-synchronized detection at this Eb/N0, not worse than it 1 dB lower:
    # the channel model's noise follows aeradio's energy convention.
    genie = simulate_bler(gr_model, EBN0_DB, target_errors=500, max_blocks=200_000, seed=5)["neural"]
    worse = simulate_bler(gr_model, EBN0_DB - IMPLEMENTATION_LOSS_DB, target_errors=500, max_blocks=200_000,
                          seed=6)["neural"]
    assert hi >= genie["bler_ci"][0], (errors, blocks, genie["bler"])
    assert lo <= worse["bler_ci"][1], (errors, blocks, worse["bler"])


def test_zmq_channel_refuses_bad_arguments_in_one_line(gr_python: str, gr_model: Path,
                                                       tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([gr_python, str(ZMQ_CHANNEL), "--tx", "tcp://127.0.0.1:1", *args], env=gr_env(),
                              capture_output=True, text=True, timeout=60)

    missing = run("--rx", "tcp://127.0.0.1:2", "--model", str(tmp_path / "nothing"))
    assert missing.returncode == 2
    assert missing.stderr.strip() == f"zmq_channel: model directory {tmp_path / 'nothing'} does not exist"
    address = run("--rx", "127.0.0.1:2", "--model", str(gr_model))
    assert address.returncode == 2
    assert address.stderr.strip().startswith("zmq_channel: ZMQ address must look like")
    cfo = run("--rx", "tcp://127.0.0.1:2", "--model", str(gr_model), "--cfo-hz", "100",
              "--sample-rate-hz", "0")
    assert cfo.returncode == 2 and "--cfo-hz needs --sample-rate-hz > 0" in cfo.stderr
