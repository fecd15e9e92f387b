"""``calibrate tx`` -> ``aeradio channel`` (known impairments) -> ``calibrate rx``, real processes."""

import math

import pytest

pytest.importorskip("zmq")

from aeradio.apps.calibration_loopback import run_loopback_calibration  # noqa: E402


@pytest.mark.slow
def test_loopback_measures_the_channel_truth(tmp_path):
    gain_db, phase_deg, dc = 0.5, 3.0, 0.02 + 0.01j
    data = run_loopback_calibration(
        tmp_path,
        ["--snr-db", "20", "--cfo-hz", "3000", "--sco-ppm", "10", "--iq-imbalance-db", str(gain_db),
         "--iq-imbalance-deg", str(phase_deg), "--dc-offset", "0.02+0.01j", "--seed", "3"],
    )
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
    assert "bursts: CFO +300" in data["stdout"]
