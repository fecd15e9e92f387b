"""Gain recommendation for a target SNR (linear dB model).

Model: the TX gain moves signal and SNR dB for dB (the noise is the receiver's); the RX
gain moves signal and noise alike, so it does not change the SNR but sets the level at the
ADC. Hence: change the TX gain by ``target_snr - snr`` (bounded by the TX range when
known), then the RX gain so the signal RMS lands at ``target_level_dbfs`` (headroom for
the peaks, bounded by the RX range when known). What the bounds prevent is reported.

>>> rec = recommend_gains(12.0, 20.0, -30.0, tx_gain_db=40.0, tx_gain_range_db=(0.0, 45.0))
>>> rec.tx_gain_db, rec.expected_snr_db, rec.rx_gain_change_db, rec.expected_level_dbfs
(45.0, 17.0, 10.0, -15.0)
"""

from __future__ import annotations

from dataclasses import dataclass

from aeradio.core.defaults import DEFAULT_TARGET_LEVEL_DBFS


@dataclass(frozen=True)
class GainRecommendation:
    """Gain changes (dB) and, when the current gains are known, the gains to set."""

    target_snr_db: float
    tx_gain_change_db: float
    rx_gain_change_db: float
    tx_gain_db: float | None
    rx_gain_db: float | None
    expected_snr_db: float
    expected_level_dbfs: float


def _bounded_change(change_db: float, current_db: float | None, span: tuple[float, float] | None) -> float:
    if current_db is None or span is None:
        return change_db
    return min(max(current_db + change_db, span[0]), span[1]) - current_db


def recommend_gains(
    snr_db: float,
    target_snr_db: float,
    signal_rms_dbfs: float,
    *,
    tx_gain_db: float | None = None,
    rx_gain_db: float | None = None,
    tx_gain_range_db: tuple[float, float] | None = None,
    rx_gain_range_db: tuple[float, float] | None = None,
    target_level_dbfs: float = DEFAULT_TARGET_LEVEL_DBFS,
) -> GainRecommendation:
    """Recommend TX/RX gains for ``target_snr_db`` from the SNR measured now (all in dB)."""
    tx_change = _bounded_change(target_snr_db - snr_db, tx_gain_db, tx_gain_range_db)
    level = signal_rms_dbfs + tx_change
    rx_change = _bounded_change(target_level_dbfs - level, rx_gain_db, rx_gain_range_db)
    return GainRecommendation(
        target_snr_db=target_snr_db,
        tx_gain_change_db=tx_change,
        rx_gain_change_db=rx_change,
        tx_gain_db=None if tx_gain_db is None else tx_gain_db + tx_change,
        rx_gain_db=None if rx_gain_db is None else rx_gain_db + rx_change,
        expected_snr_db=snr_db + tx_change,
        expected_level_dbfs=level + rx_change,
    )
