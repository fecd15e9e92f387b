"""Gain recommendation: linear dB model, bounded by the device ranges."""

import pytest

from aeradio.calibration.gain import recommend_gains


def test_unbounded_recommendation_reaches_target():
    rec = recommend_gains(14.0, 20.0, -25.0)
    assert rec.tx_gain_change_db == pytest.approx(6.0)
    assert rec.expected_snr_db == pytest.approx(20.0)
    assert rec.rx_gain_change_db == pytest.approx(-15.0 - (-25.0 + 6.0))
    assert rec.tx_gain_db is None and rec.rx_gain_db is None


def test_ranges_bound_both_gains():
    rec = recommend_gains(10.0, 30.0, -40.0, tx_gain_db=50.0, rx_gain_db=60.0,
                          tx_gain_range_db=(0.0, 60.0), rx_gain_range_db=(0.0, 70.0))
    assert rec.tx_gain_db == 60.0 and rec.expected_snr_db == pytest.approx(20.0)
    assert rec.rx_gain_db == 70.0 and rec.expected_level_dbfs == pytest.approx(-20.0)


def test_too_much_snr_lowers_tx_gain():
    rec = recommend_gains(35.0, 20.0, -5.0, tx_gain_db=10.0, tx_gain_range_db=(0.0, 40.0))
    assert rec.tx_gain_change_db == pytest.approx(-10.0)  # bounded at 0 dB
    assert rec.expected_snr_db == pytest.approx(25.0)
