"""Benchmarks of the calibration: precision against known impairments, and its effect.

``BENCHMARKS`` maps a name to ``fn(ctx) -> dict`` (the harness is ``aeradio bench``).
Settings come from ``ctx`` (a mapping or an object with attributes), else the environment
(``AERADIO_<NAME>``), else the defaults below.

- ``calibration_accuracy``: ``calibration_trials`` random draws of CFO (+-20 kHz), clock
  offset (+-50 ppm), IQ imbalance (+-1.5 dB, +-8 deg), DC (up to 10 % of RMS) and delay at
  20 dB SNR, 1 MS/s, 2 bursts each; RMS and worst error of every estimate, the issue's
  targets, and whether the worst error is inside them.
- ``calibration_correction``: a unit-power signal through the impairments of the first
  draw, corrected with the measured calibration (DC, IQ, CFO); the residual error power
  relative to the signal (EVM, dB) and the SNR it costs a link running at 20 dB SNR.
- ``calibration_speed``: wall time to measure one burst period of samples.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from aeradio.calibration.bursts import BurstLayout
from aeradio.calibration.corrections import RxCorrector
from aeradio.calibration.measure import measure_capture
from aeradio.calibration.simulate import Impairments, dc_relative, simulate_capture
from aeradio.flowgraphs import impairments as imp

SAMPLE_RATE_HZ = 1e6
SNR_DB = 20.0
DEFAULT_TRIALS = 10
#: The issue's targets at 20 dB SNR, 1 MS/s.
TARGETS = {
    "cfo_hz": 10.0,
    "sco_ppm": 2.0,
    "iq_gain_db": 0.1,
    "iq_phase_deg": 1.0,
    "dc_percent_of_rms": 1.0,
    "snr_db": 0.5,
}


def _setting(ctx: Any, name: str, default: float) -> float:
    if isinstance(ctx, Mapping) and name in ctx:
        return float(ctx[name])
    if ctx is not None and hasattr(ctx, name):
        return float(getattr(ctx, name))
    return float(os.environ.get(f"AERADIO_{name.upper()}", default))


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
    trials = int(_setting(ctx, "calibration_trials", DEFAULT_TRIALS))
    rng = np.random.default_rng(int(_setting(ctx, "seed", 2026)))
    layout = BurstLayout()
    errors: dict[str, list[float]] = {k: [] for k in (*TARGETS, "delay_samples")}
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
    out: dict[str, Any] = {"trials": trials, "snr_db": SNR_DB, "sample_rate_hz": SAMPLE_RATE_HZ}
    for name, values in errors.items():
        v = np.asarray(values)
        out[f"{name}_rms_error"] = float(np.sqrt(np.mean(v**2)))
        out[f"{name}_max_error"] = float(np.max(np.abs(v)))
        if name in TARGETS:
            out[f"{name}_target"] = TARGETS[name]
    out["all_within_targets"] = all(out[f"{k}_max_error"] <= v for k, v in TARGETS.items())
    return out


def calibration_correction(ctx: Any = None) -> dict[str, Any]:
    rng = np.random.default_rng(int(_setting(ctx, "seed", 2026)))
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
    return {
        "residual_evm_db": 10.0 * math.log10(evm),
        "uncorrected_evm_db": 10.0 * math.log10(evm_before),
        # Residual distortion adds to the noise: SNR_eff = 1 / (1/snr + evm).
        "snr_penalty_db_at_20db": 10.0 * math.log10(1.0 + evm * snr),
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
        "bursts": len(m.bursts),
        "seconds_per_burst_period": per_burst,
        "realtime_factor_at_1msps": (layout.length / SAMPLE_RATE_HZ) / per_burst,
    }


BENCHMARKS: dict[str, Callable[[Any], dict[str, Any]]] = {
    "calibration_accuracy": calibration_accuracy,
    "calibration_correction": calibration_correction,
    "calibration_speed": calibration_speed,
}
