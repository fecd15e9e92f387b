"""Measure every calibration burst of a capture and combine the estimates.

Per burst, in this order (each step uses the previous ones; the estimators assume the
project's impairment order, docs/impairments.md, with the models of
:mod:`aeradio.dsp.impairments`: TX -> delay -> (multipath) -> sample-clock offset -> CFO
-> thermal noise -> receiver IQ imbalance -> DC):

1. silence: DC = mean; noise power and noise IQ moments after removing it (the noise went
   through the receiver's IQ imbalance, so its moments are not circular);
2. tones (DC removed): IQ imbalance from their second moments minus the noise's
   (:mod:`aeradio.calibration.iq`); signal power = tone power - noise power, both after
   the IQ imbalance, which scales them alike: their ratio is the SNR at the receiver input;
3. tones (IQ corrected): frequencies ``r+ = f (1 + sco) + cfo`` and ``r- = -f (1 + sco) +
   cfo`` (:mod:`aeradio.calibration.tone`), so ``cfo = (r+ + r-) / 2`` and
   ``sco = (r+ - r-) / (2 f) - 1``;
4. sync (DC, IQ and CFO corrected): integer arrival by cross-correlation (the detection
   peak moves with the CFO), fractional arrival from the cross-spectrum
   (:mod:`aeradio.calibration.timing`).

Bursts are combined by the median of each quantity (robust to one bad burst).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from aeradio.calibration.bursts import BurstLayout, sync_sequence
from aeradio.calibration.corrections import correct_cfo, correct_iq_imbalance
from aeradio.calibration.detection import detect_syncs, sync_metric
from aeradio.calibration.iq import estimate_iq_imbalance, iq_moments
from aeradio.calibration.timing import estimate_circular_delay
from aeradio.calibration.tone import estimate_tone_cps
from aeradio.core.defaults import DEFAULT_DETECTION_THRESHOLD
from aeradio.core.errors import CalibrationError

#: Largest sample-clock offset the segment guards allow for (ppm).
MAX_SCO_PPM = 200.0
#: Samples skipped at each segment edge on top of the clock drift (interpolator tails).
EDGE_GUARD_SAMPLES = 32
#: Half-width of the tone search window around its nominal frequency (cycles/sample); wider
#: than the CFO detection tolerates (0.03), narrower than the tone frequency (no image, DC).
TONE_SEARCH_CPS = 0.1
#: Floor of the noise power (an ideal file recording has none), full scale = 1.
NOISE_POWER_FLOOR = 1e-15


@dataclass(frozen=True)
class Estimate:
    """What the bursts say. Frequencies in cycles/sample, powers with full scale = 1."""

    cfo_cps: float
    sco_ppm: float
    iq_gain_db: float
    iq_phase_deg: float
    dc: complex
    signal_power: float
    noise_power: float

    @property
    def snr_db(self) -> float:
        return 10.0 * math.log10(self.signal_power / self.noise_power)

    @property
    def dc_relative(self) -> complex:
        """DC offset relative to the signal RMS."""
        return self.dc / math.sqrt(self.signal_power)


@dataclass(frozen=True)
class BurstEstimate(Estimate):
    """One burst's estimate and where it arrived."""

    #: Fractional index in the capture where the burst (its first CP sample) arrived.
    arrival_index: float


@dataclass(frozen=True)
class CaptureMeasurement(Estimate):
    """Median over the bursts of a capture, plus the per-burst estimates."""

    bursts: tuple[BurstEstimate, ...]
    #: Arrival of the first burst modulo the burst period, clock offset removed (samples,
    #: in [-cp_samples, period - cp_samples)).
    delay_samples: float


def _median(bursts: tuple[BurstEstimate, ...]) -> dict[str, float | complex]:
    """Field-wise median of the :class:`Estimate` fields (real and imaginary parts apart)."""
    out: dict[str, float | complex] = {}
    for f in dataclasses.fields(Estimate):
        values = np.array([getattr(b, f.name) for b in bursts])
        if np.iscomplexobj(values):
            out[f.name] = complex(np.median(values.real), np.median(values.imag))
        else:
            out[f.name] = float(np.median(values))
    return out


def _reach(layout: BurstLayout) -> int:
    """How far (samples) the sync is searched again around its detection."""
    return layout.cp_samples // 2


def is_whole(sync_index: int, layout: BurstLayout, size: int) -> bool:
    """Whether the burst detected at ``sync_index`` lies inside a capture of ``size`` samples.

    The detection may be off by up to the re-timing reach (CFO: the sync is chirp-like);
    the tail silence is not used, so a recording may end right after the last tone.
    """
    reach = _reach(layout)
    used_end = sync_index - layout.sync_start + layout.tone_starts[1] + layout.tone_samples + reach
    return sync_index - reach >= 0 and used_end <= size


def _segment(x: np.ndarray, start: int, stop: int) -> np.ndarray:
    return np.asarray(x[start:stop], dtype=np.complex128)


def measure_burst(x: np.ndarray, sync_index: int, layout: BurstLayout) -> BurstEstimate:
    """Estimate everything from the burst whose sync starts at ``sync_index`` of ``x``.

    Args:
        x: ``[num_samples]`` complex capture holding the whole burst.
        sync_index: integer index of the sync period's first sample (from detection).
        layout: the burst layout that was sent.
    """
    base = sync_index - layout.sync_start
    if not is_whole(sync_index, layout, len(x)):
        raise CalibrationError(f"burst at sample {base} is not entirely inside the capture")
    guard = EDGE_GUARD_SAMPLES + int(math.ceil(MAX_SCO_PPM * 1e-6 * layout.length))
    s0 = base + layout.silence_start + guard
    silence = _segment(x, s0, s0 + layout.silence_samples - 2 * guard)
    dc = complex(np.mean(silence))
    noise = silence - dc
    noise_power = max(float(np.mean(np.abs(noise) ** 2)), NOISE_POWER_FLOOR)

    tones = []
    for start in layout.tone_starts:
        t0 = base + start + layout.ramp_samples + guard
        tones.append(_segment(x, t0, t0 + layout.tone_samples - 2 * (layout.ramp_samples + guard)) - dc)
    both = np.concatenate(tones)
    gain_db, phase_deg = estimate_iq_imbalance(both, iq_moments(noise))
    signal_power = float(np.mean(np.abs(both) ** 2)) - noise_power
    if signal_power <= 0:
        raise CalibrationError(
            f"burst at sample {base}: tone power is not above the noise floor "
            f"({10 * math.log10(noise_power):.1f} dBFS)"
        )

    freqs = []
    for tone, sign in zip(tones, (1.0, -1.0), strict=True):
        expected = sign * layout.tone_cps
        corrected = correct_iq_imbalance(tone, gain_db, phase_deg)
        window = (expected - TONE_SEARCH_CPS, expected + TONE_SEARCH_CPS)
        freqs.append(estimate_tone_cps(corrected, window))
    cfo_cps = (freqs[0] + freqs[1]) / 2.0
    sco_ppm = ((freqs[0] - freqs[1]) / (2.0 * layout.tone_cps) - 1.0) * 1e6

    # The sync is chirp-like: a CFO moved the detection peak by about cfo Ls / (2 band)
    # samples. With the CFO removed, the integer peak is found again, then the fraction.
    reach = _reach(layout)
    seq = sync_sequence(layout)
    around = _segment(x, sync_index - reach, sync_index + layout.sync_samples + reach) - dc
    around = correct_cfo(correct_iq_imbalance(around, gain_db, phase_deg), cfo_cps)
    lag = int(np.argmax(np.abs(np.correlate(around, seq, mode="valid"))))
    sync_index += lag - reach
    shift = estimate_circular_delay(around[lag : lag + layout.sync_samples], seq, initial=0.0)
    # The phase slope is the delay at the window's centre; the clock offset stretches the
    # window, so the sync's first sample arrived eps (L - 1) / 2 later than that.
    eps = sco_ppm * 1e-6
    arrival = sync_index + shift + eps * (layout.sync_samples - 1) / 2.0 - layout.sync_start * (1.0 - eps)
    return BurstEstimate(
        cfo_cps=cfo_cps,
        sco_ppm=sco_ppm,
        iq_gain_db=gain_db,
        iq_phase_deg=phase_deg,
        dc=dc,
        signal_power=signal_power,
        noise_power=noise_power,
        arrival_index=arrival,
    )


def measure_capture(
    x: np.ndarray,
    layout: BurstLayout | None = None,
    *,
    threshold: float = DEFAULT_DETECTION_THRESHOLD,
    stream_start_index: int = 0,
) -> CaptureMeasurement:
    """Detect the calibration bursts of ``x`` and combine their estimates.

    Args:
        x: ``[num_samples]`` complex64 capture.
        layout: the layout that was sent (default :class:`BurstLayout`).
        threshold: detection threshold on the normalized sync metric.
        stream_start_index: index of ``x[0]`` in the transmitted stream (bursts sent back to
            back from index 0); the delay is then the path delay modulo the burst period.

    Raises:
        CalibrationError: no complete burst found.
    """
    layout = layout or BurstLayout()
    x = np.asarray(x)
    found = [d for d in detect_syncs(x, layout, threshold) if is_whole(d.sync_index, layout, x.size)]
    if not found:
        metric, _ = sync_metric(x, layout)
        best = float(metric.max()) if metric.size else 0.0
        raise CalibrationError(
            f"no calibration bursts found in {x.size} samples (a whole burst is "
            f"{layout.length} samples; best sync metric {best:.2f}, threshold {threshold:.2f}): "
            "is the transmitter running `aeradio calibrate tx` at the same sample rate?"
        )
    bursts = tuple(measure_burst(x, d.sync_index, layout) for d in found)

    combined = _median(bursts)
    # Receiver index m sees transmit time m (1 + sco): undo the drift, then fold into
    # [-cp, period - cp) so a delay of ~0 stays ~0 whatever the noise.
    first_tx_time = (bursts[0].arrival_index + stream_start_index) * (1.0 + combined["sco_ppm"] * 1e-6)
    delay = float(np.mod(first_tx_time + layout.cp_samples, layout.length) - layout.cp_samples)
    return CaptureMeasurement(**combined, bursts=bursts, delay_samples=delay)
