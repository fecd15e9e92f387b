"""Estimators and corrections for what the hardware does: CFO, clock, IQ, DC, SNR, gain.

- :mod:`.bursts`: the calibration burst (sync, silence, two tones);
- :mod:`.detection`, :mod:`.tone`, :mod:`.iq`, :mod:`.timing`: the estimators;
- :mod:`.measure`: all of them on a capture, in the receiver-model order;
- :mod:`.corrections`: DC removal, IQ compensation, CFO (pre-)correction, streaming;
- :mod:`.calfile`: the versioned JSON calibration file;
- :mod:`.gain`: gain recommendation for a target SNR;
- the commands ``aeradio calibrate tx|rx`` are :mod:`aeradio.apps.calibrate`.

Applying a calibration file in a receiver::

    cal = load_calibration(path, sample_rate_hz)       # CalibrationError if unusable
    corrector = cal.rx_corrector()      # DC, IQ (CFO: pre-corrected at TX)
    block = corrector.process(block)
"""

from aeradio.calibration.bursts import BurstLayout, calibration_burst
from aeradio.calibration.calfile import (
    CALIBRATION_FORMAT_VERSION,
    Calibration,
    calibration_from_measurement,
    load_calibration,
    save_calibration,
)
from aeradio.calibration.corrections import (
    RxCorrector,
    TxPrecorrector,
    correct_cfo,
    correct_iq_imbalance,
    remove_dc,
)
from aeradio.calibration.gain import GainRecommendation, recommend_gains
from aeradio.calibration.measure import CaptureMeasurement, measure_capture

__all__ = [
    "CALIBRATION_FORMAT_VERSION",
    "BurstLayout",
    "Calibration",
    "CaptureMeasurement",
    "GainRecommendation",
    "RxCorrector",
    "TxPrecorrector",
    "calibration_burst",
    "calibration_from_measurement",
    "correct_cfo",
    "correct_iq_imbalance",
    "load_calibration",
    "measure_capture",
    "recommend_gains",
    "remove_dc",
    "save_calibration",
]
