"""``calibrate tx`` -> ``aeradio channel`` (known impairments) -> ``calibrate rx``, real processes."""

import json
import math
import subprocess
import sys
import time

import pytest

from aeradio import cli

pytest.importorskip("zmq")

from aeradio.radio.zmq_stream import free_endpoint  # noqa: E402


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.mark.slow
def test_loopback_measures_the_channel_truth(tmp_path):
    tx, rx = free_endpoint(), free_endpoint()
    gain_db, phase_deg, dc = 0.5, 3.0, 0.02 + 0.01j
    log = (tmp_path / "channel.log").open("w")
    channel = subprocess.Popen(
        [sys.executable, "-m", "aeradio.cli", "channel", "--tx", f"zmq:{tx}", "--rx", f"zmq:{rx}",
         "--sample-rate-hz", "1e6", "--snr-db", "20", "--cfo-hz", "3000", "--sco-ppm", "10",
         "--iq-imbalance-db", str(gain_db), "--iq-imbalance-deg", str(phase_deg),
         "--dc-offset", "0.02+0.01j", "--seed", "3"],
        stdout=subprocess.DEVNULL, stderr=log,
    )
    out = tmp_path / "cal.json"
    receiver = subprocess.Popen(
        [sys.executable, "-m", "aeradio.cli", "calibrate", "rx", "--device", f"zmq:{rx}",
         "--sample-rate-hz", "1e6", "--freq-hz", "915e6", "--json", str(out), "--bursts", "2",
         "--timeout-s", "20"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        time.sleep(1.5)  # the channel binds, the receiver subscribes (ZMQ slow joiner)
        assert channel.poll() is None and receiver.poll() is None
        assert cli.main(["calibrate", "tx", "--device", f"zmq:{tx}", "--sample-rate-hz", "1e6",
                         "--bursts", "4"]) == 0
        stdout, stderr = receiver.communicate(timeout=40)
        assert receiver.returncode == 0, stderr
    finally:
        _stop(receiver)
        _stop(channel)
        log.close()
    data = json.loads(out.read_text())
    assert data["bursts"] >= 2
    assert data["cfo_hz"] == pytest.approx(3000.0, abs=5.0)
    assert data["cfo_ppm"] == pytest.approx(3000.0 / 915e6 * 1e6, abs=0.01)
    assert data["sco_ppm"] == pytest.approx(10.0, abs=1.0)
    assert data["iq_gain_db"] == pytest.approx(gain_db, abs=0.05)
    assert data["iq_phase_deg"] == pytest.approx(phase_deg, abs=0.5)
    # Signal power: 1/sps = 0.25 at the TX, times (1 + g^2) / 2 through the IQ imbalance.
    rms = math.sqrt(0.25 * (1 + 10 ** (gain_db / 10)) / 2)
    assert data["dc_offset"][0] == pytest.approx(dc.real / rms, abs=0.005)
    assert data["dc_offset"][1] == pytest.approx(dc.imag / rms, abs=0.005)
    assert data["snr_db"] == pytest.approx(20.0, abs=0.25)
    assert "bursts: CFO +300" in stdout
