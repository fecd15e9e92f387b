"""Benchmarks of the calibration: precision against known impairments, and its effect.

``BENCHMARKS`` maps a name to ``fn(ctx) -> {"figures": [...], ...}`` (the harness is
``aeradio bench``, :mod:`aeradio.apps.bench`). The number of random draws comes from
``AERADIO_CALIBRATION_TRIALS`` (default 10).

- ``calibration.accuracy``: ``calibration_trials`` random draws of CFO (+-20 kHz), clock
  offset (+-50 ppm), IQ imbalance (+-1.5 dB, +-8 deg), DC (up to 10 % of RMS) and delay at
  20 dB SNR, 1 MS/s, 2 bursts each; RMS and worst error of every estimate, the issue's
  targets, and whether the worst error is inside them.
- ``calibration.correction``: a unit-power signal through the impairments of the first
  draw, corrected with the measured calibration (DC, IQ, CFO); the residual error power
  relative to the signal (EVM, dB) and the SNR it costs a link running at 20 dB SNR.
- ``calibration.speed``: wall time to measure one burst period of samples.
- ``calibration.bler``: QPSK frames (TX chain -> channel model -> RX chain, ML decoding)
  on a channel with the loopback impairments, calibration applied (TX CFO pre-correction,
  RX DC and IQ correction, measured on the same channel at 20 dB SNR), against the same
  channel without impairments: the Eb/N0 it costs (target < 0.2 dB), read on the clean
  channel's BLER curve around ``BLER_EBN0_DB``; and what the impairments cost uncorrected.
- ``calibration.loopback``: ``calibrate tx`` -> ``aeradio channel`` (20 dB SNR, 1 MS/s,
  CFO, clock offset, IQ imbalance, DC, delay) -> ``calibrate rx`` as real processes; the
  calibration file's errors against the channel's truth and the issue's targets.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from aeradio.apps.bench import figure
from aeradio.apps.calibration_loopback import run_loopback_calibration
from aeradio.calibration.bursts import BurstLayout, calibration_burst
from aeradio.calibration.calfile import calibration_from_measurement
from aeradio.calibration.corrections import RxCorrector
from aeradio.calibration.measure import measure_capture
from aeradio.calibration.simulate import Impairments, dc_relative, simulate_capture
from aeradio.core.config import LinkConfig
from aeradio.dsp import impairments as imp
from aeradio.dsp.detection import ml_detect
from aeradio.flowgraphs.channel_sim import ChannelModel, ChannelSettings, snr_db_from_ebn0_db
from aeradio.flowgraphs.rx_chain import RxChain
from aeradio.flowgraphs.tx_chain import TxChain

SAMPLE_RATE_HZ = 1e6
SNR_DB = 20.0
DEFAULT_TRIALS = 10
SEED = 2026
#: The issue's targets at 20 dB SNR, 1 MS/s: (label, unit, largest error allowed).
TARGETS = {
    "cfo_hz": ("CFO", "Hz", 10.0),
    "sco_ppm": ("clock offset", "ppm", 2.0),
    "iq_gain_db": ("IQ gain", "dB", 0.1),
    "iq_phase_deg": ("IQ phase", "deg", 1.0),
    "dc_percent_of_rms": ("DC", "% of RMS", 1.0),
    "snr_db": ("SNR", "dB", 0.5),
    "delay_samples": ("delay", "samples", None),
}


def _trials() -> int:
    return int(os.environ.get("AERADIO_CALIBRATION_TRIALS", DEFAULT_TRIALS))


def _draw(rng: np.random.Generator) -> Impairments:
    dc = 0.05 * rng.uniform(0.0, 1.0) * np.exp(2j * np.pi * rng.uniform())
    return Impairments(
        cfo_cps=rng.uniform(-20e3, 20e3) / SAMPLE_RATE_HZ,
        sco_ppm=rng.uniform(-50.0, 50.0),
        iq_gain_db=rng.uniform(-1.5, 1.5),
        iq_phase_deg=rng.uniform(-8.0, 8.0),
        dc=complex(dc),
        delay_samples=rng.uniform(0.0, 100.0),
        snr_db=SNR_DB,
        phase_rad=rng.uniform(0.0, 2 * np.pi),
    )


def calibration_accuracy(ctx: Any = None) -> dict[str, Any]:
    trials = _trials()
    rng = np.random.default_rng(SEED)
    layout = BurstLayout()
    errors: dict[str, list[float]] = {k: [] for k in TARGETS}
    for _ in range(trials):
        t = _draw(rng)
        m = measure_capture(simulate_capture(t, rng, layout=layout), layout)
        errors["cfo_hz"].append((m.cfo_cps - t.cfo_cps) * SAMPLE_RATE_HZ)
        errors["sco_ppm"].append(m.sco_ppm - t.sco_ppm)
        errors["iq_gain_db"].append(m.iq_gain_db - t.iq_gain_db)
        errors["iq_phase_deg"].append(m.iq_phase_deg - t.iq_phase_deg)
        errors["dc_percent_of_rms"].append(100.0 * abs(m.dc_relative - dc_relative(t, layout)))
        errors["snr_db"].append(m.snr_db - SNR_DB)
        errors["delay_samples"].append(m.delay_samples - t.delay_samples)
    figures = []
    for key, (label, unit, limit) in TARGETS.items():
        v = np.abs(np.asarray(errors[key]))
        worst = float(v.max())
        figures.append(figure(f"{label} error, worst of {trials} at {SNR_DB:g} dB SNR", worst, unit,
                              target=None if limit is None else f"< {limit:g}",
                              passed=None if limit is None else worst < limit))
        figures.append(figure(f"{label} error, RMS", float(np.sqrt(np.mean(v**2))), unit))
    return {"figures": figures, "errors": errors}


def calibration_correction(ctx: Any = None) -> dict[str, Any]:
    rng = np.random.default_rng(SEED)
    t = _draw(rng)
    m = measure_capture(simulate_capture(t, rng))
    x = ((rng.standard_normal(100_000) + 1j * rng.standard_normal(100_000)) * 0.5 / math.sqrt(2)).astype(
        np.complex64
    )
    y = imp.apply_iq_imbalance(imp.apply_cfo(x, t.cfo_cps, t.phase_rad), t.iq_gain_db, t.iq_phase_deg)
    y = imp.apply_dc_offset(y, t.dc)
    z = RxCorrector(m.dc, m.iq_gain_db, m.iq_phase_deg, m.cfo_cps).process(y).astype(np.complex128)
    # What is left once the common phase (the CFO's initial phase) is removed.
    rot = np.vdot(x, z) / abs(np.vdot(x, z))
    evm = float(np.mean(np.abs(z / rot - x) ** 2) / np.mean(np.abs(x) ** 2))
    uncorrected = y.astype(np.complex128)
    evm_before = float(np.mean(np.abs(uncorrected - x) ** 2) / np.mean(np.abs(x) ** 2))
    snr = 10.0 ** (SNR_DB / 10.0)
    # Residual distortion adds to the noise: SNR_eff = 1 / (1/snr + evm).
    penalty_db = 10.0 * math.log10(1.0 + evm * snr)
    return {
        "figures": [
            figure("EVM of the impairments, uncorrected", 10.0 * math.log10(evm_before), "dB"),
            figure("EVM left after the calibration's corrections", 10.0 * math.log10(evm), "dB"),
            # The issue asks BLER within 0.2 dB; an SNR loss below that bounds it.
            figure(f"SNR lost to what is left, at {SNR_DB:g} dB", penalty_db, "dB",
                   target="< 0.2", passed=penalty_db < 0.2),
        ]
    }


def calibration_speed(ctx: Any = None) -> dict[str, Any]:
    rng = np.random.default_rng(1)
    layout = BurstLayout()
    y = simulate_capture(_draw(rng), rng, bursts=3, layout=layout)
    t0 = time.perf_counter()
    m = measure_capture(y, layout)
    elapsed = time.perf_counter() - t0
    per_burst = elapsed * layout.length / y.size
    return {
        "figures": [
            figure("measurement time per burst period", per_burst, "s"),
            figure("measurement speed at 1 MS/s", (layout.length / SAMPLE_RATE_HZ) / per_burst,
                   "x real time"),
        ],
        "bursts": len(m.bursts),
    }


#: Impairments of the loopback benchmark (the channel's arguments and the truth).
LOOPBACK = {"cfo_hz": -7300.0, "sco_ppm": -22.0, "iq_gain_db": -0.7, "iq_phase_deg": 4.5,
            "dc": 0.015 - 0.03j, "delay_samples": 250.0}


def calibration_loopback(ctx: Any) -> dict[str, Any]:
    t = LOOPBACK
    data = run_loopback_calibration(
        ctx.work_dir,
        ["--snr-db", f"{SNR_DB:g}", "--cfo-hz", f"{t['cfo_hz']:g}", "--sco-ppm", f"{t['sco_ppm']:g}",
         "--iq-imbalance-db", f"{t['iq_gain_db']:g}", "--iq-imbalance-deg", f"{t['iq_phase_deg']:g}",
         "--dc-offset", f"{t['dc']}".strip("()"), "--delay-samples", f"{t['delay_samples']:g}",
         "--seed", "7"],
        sample_rate_hz=SAMPLE_RATE_HZ,
        bursts=4,
    )
    # The channel's signal power is the TX frame power 1/sps (0.25 at 4 samples per symbol,
    # the burst's own), times (1 + g^2) / 2 through the receiver IQ imbalance.
    rms = math.sqrt(0.25 * (1.0 + 10.0 ** (t["iq_gain_db"] / 10.0)) / 2.0)
    errors = {
        "cfo_hz": data["cfo_hz"] - t["cfo_hz"],
        "sco_ppm": data["sco_ppm"] - t["sco_ppm"],
        "iq_gain_db": data["iq_gain_db"] - t["iq_gain_db"],
        "iq_phase_deg": data["iq_phase_deg"] - t["iq_phase_deg"],
        "dc_percent_of_rms": 100.0 * abs(complex(*data["dc_offset"]) - t["dc"] / rms),
        "snr_db": data["snr_db"] - SNR_DB,
    }
    figures = [figure("bursts measured", data["bursts"], "bursts")]
    for key, error in errors.items():
        label, unit, limit = TARGETS[key]
        figures.append(figure(f"loopback {label} error", abs(error), unit, target=f"< {limit:g}",
                              passed=abs(error) < limit))
    return {"figures": figures, "calibration": {k: v for k, v in data.items() if k != "stdout"}}


#: Eb/N0 (dB) of the BLER comparison (QPSK BLER ~1e-2) and the clean curve around it.
BLER_EBN0_DB = 5.0
BLER_CURVE_DB = (-0.3, 0.0, 0.3)
BLER_FRAMES = 1500
BLER_BLOCKS_PER_FRAME = 256
BLER_MODEL_HASH = 0xCA1B
BLER_SEED = 11
CHUNK_SAMPLES = 1 << 16


def _loopback_settings(signal_power: float, noise_power: float, impaired: bool) -> ChannelSettings:
    t = LOOPBACK
    if not impaired:
        return ChannelSettings(signal_power=signal_power, noise_power=noise_power)
    return ChannelSettings(
        signal_power=signal_power, noise_power=noise_power, cfo_cps=t["cfo_hz"] / SAMPLE_RATE_HZ,
        sco_ppm=t["sco_ppm"], delay_samples=t["delay_samples"], iq_gain_db=t["iq_gain_db"],
        iq_phase_deg=t["iq_phase_deg"], dc_offset=t["dc"],
    )


def _run_channel(x: np.ndarray, settings: ChannelSettings, rng: np.random.Generator,
                 sink: Callable[[np.ndarray], Any]) -> None:
    model = ChannelModel(settings, rng)
    for i in range(0, x.size, CHUNK_SAMPLES):
        sink(model.process(x[i : i + CHUNK_SAMPLES]))


def calibration_bler(ctx: Any = None) -> dict[str, Any]:
    cfg = LinkConfig.from_dict({"model": {"k": 2, "n": 1},
                                "frame": {"blocks_per_frame": BLER_BLOCKS_PER_FRAME}})
    sps = cfg.radio.samples_per_symbol
    signal_power = 1.0 / sps
    lut = (np.array([[1 + 1j], [1 - 1j], [-1 + 1j], [-1 - 1j]]) / math.sqrt(2)).astype(np.complex64)
    tx_samples = TxChain(cfg, lut, BLER_MODEL_HASH).test_pattern(np.arange(BLER_FRAMES), BLER_SEED)
    rng = np.random.default_rng(SEED)

    # Calibrate on the impaired channel at 20 dB SNR, as `calibrate tx/rx` would.
    received: list[np.ndarray] = []
    _run_channel(np.tile(calibration_burst(), 3),
                 _loopback_settings(signal_power, signal_power / 10 ** (SNR_DB / 10), True),
                 rng, received.append)
    cal = calibration_from_measurement(measure_capture(np.concatenate(received)), SAMPLE_RATE_HZ, None)

    def bler(ebn0_db: float, impaired: bool, calibrated: bool) -> float:
        noise = signal_power / 10 ** (snr_db_from_ebn0_db(ebn0_db, cfg.model.rate, sps) / 10)
        rx = RxChain(cfg, lambda y, nv: ml_detect(y, lut), model_hash=BLER_MODEL_HASH)
        x = cal.tx_precorrector().process(tx_samples) if calibrated else tx_samples
        corrector = cal.rx_corrector() if calibrated else RxCorrector()
        _run_channel(x, _loopback_settings(signal_power, noise, impaired), rng,
                     lambda y: rx.process(corrector.process(y)))
        rx.flush()
        return rx.stats.block_errors / max(rx.stats.blocks, 1)

    curve_db = [BLER_EBN0_DB + d for d in BLER_CURVE_DB]
    clean = [bler(e, False, False) for e in curve_db]
    log_clean = np.log10(np.maximum(clean, 1e-9))
    slope = np.polyfit(curve_db, log_clean, 1)  # log10 BLER per dB, locally linear

    def loss_db(value: float) -> float:
        equivalent = (math.log10(max(value, 1e-9)) - slope[1]) / slope[0]
        return BLER_EBN0_DB - equivalent

    corrected = bler(BLER_EBN0_DB, True, True)
    uncorrected = bler(BLER_EBN0_DB, True, False)
    loss = loss_db(corrected)
    return {
        "figures": [
            figure(f"BLER, clean channel, Eb/N0 {BLER_EBN0_DB:g} dB", clean[1], ""),
            figure("BLER, impaired channel, calibration applied", corrected, ""),
            figure("BLER, impaired channel, no calibration", uncorrected, ""),
            figure("Eb/N0 lost to the impairments with the calibration", loss, "dB",
                   target="< 0.2", passed=abs(loss) < 0.2),
            figure("Eb/N0 lost to the impairments without it", loss_db(uncorrected), "dB"),
        ],
        "clean_curve": {"ebn0_db": curve_db, "bler": clean},
    }


BENCHMARKS: dict[str, Callable[[Any], dict[str, Any]]] = {
    "calibration.accuracy": calibration_accuracy,
    "calibration.correction": calibration_correction,
    "calibration.speed": calibration_speed,
    "calibration.bler": calibration_bler,
    "calibration.loopback": calibration_loopback,
}
