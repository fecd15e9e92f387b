"""Find calibration bursts in a capture: CFO-tolerant segmented correlation with the sync.

A plain cross-correlation with an ``Ls``-sample sequence dies once the CFO turns the
sequence by half a cycle over its length (``|cfo| > 1 / (2 Ls)``, 1 kHz at 1 MS/s for
512 samples). Here the sequence is cut into ``Q`` segments of :data:`SEGMENT_SAMPLES`; each
segment is correlated on its own (``c_q(d)``) and consecutive segments are combined
differentially, ``P(d) = sum_q c_q(d) conj(c_{q-1}(d))``: a CFO only rotates ``P`` by
``2 pi cfo Lq``, so detection works up to ``|cfo| ~ 1 / (2 Lq)`` cycles/sample (0.03 cps,
30 kHz at 1 MS/s). The metric
``|P(d)| / (K E_r(d) / E_s)`` is 1 for a noiseless match, ``snr / (1 + snr)`` with noise,
and about ``1 / sqrt(Q)`` on noise alone.

The sync's spectrum is a Zadoff-Chu sequence, so in time it sweeps the band like a chirp:
a CFO moves the detection peak by about ``-cfo Ls / (2 * 0.375)`` samples (8 samples at
0.012 cycles/sample). Detection is coarse timing only; the measurement re-times the sync
once the CFO is removed (:mod:`aeradio.calibration.measure`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aeradio.calibration.bursts import BurstLayout, sync_sequence
from aeradio.core.defaults import DEFAULT_DETECTION_THRESHOLD

#: Length of the correlation segments (sets the CFO tolerance, see the module docstring).
SEGMENT_SAMPLES = 16


@dataclass(frozen=True)
class SyncDetection:
    """One detected sync: integer index of its first sample (after the prefix) in the capture."""

    sync_index: int
    metric: float


def sync_metric(x: np.ndarray, layout: BurstLayout) -> tuple[np.ndarray, np.ndarray]:
    """Normalized detection metric and differential correlation for every sync start.

    Args:
        x: ``[num_samples]`` complex capture.
        layout: the burst layout (gives the sync sequence).

    Returns:
        ``(metric, p)``: ``[num_samples - sync_samples + 1]`` float64 metric in [0, ~1] and
        the complex differential correlation ``P(d)``.
    """
    seq = sync_sequence(layout).astype(np.complex128)
    ls, lq = seq.size, SEGMENT_SAMPLES
    q_count = ls // lq
    x = np.asarray(x, dtype=np.complex64)
    nd = x.size - ls + 1
    if nd <= 0:
        return np.zeros(0), np.zeros(0, dtype=np.complex128)
    segments = seq[: q_count * lq].reshape(q_count, lq)
    seg_energy = np.sum(np.abs(segments) ** 2, axis=1)
    p = np.zeros(nd, dtype=np.complex128)
    prev = None
    for q in range(q_count):
        # np.correlate(a, v)[k] = sum_n a[n + k] conj(v[n]); complex64 halves the time.
        c = np.correlate(x[q * lq : q * lq + nd + lq - 1], segments[q].astype(np.complex64), mode="valid")
        if prev is not None:
            p += c * np.conj(prev)
        prev = c
    x = x.astype(np.complex128)
    k = float(np.sum(seg_energy[1:] * seg_energy[:-1]))
    power = np.concatenate([[0.0], np.cumsum(np.abs(x) ** 2)])
    e_r = power[ls : ls + nd] - power[:nd]
    e_s = float(np.sum(np.abs(seq) ** 2))
    # The floor keeps exact digital silence (a file, a simulator) from dividing by ~0.
    floor = 1e-9 * max(float(np.mean(e_r)), 1e-30)
    metric = np.abs(p) / (k * (np.maximum(e_r, 0.0) + floor) / e_s)
    return metric, p


def detect_syncs(
    x: np.ndarray, layout: BurstLayout, threshold: float = DEFAULT_DETECTION_THRESHOLD
) -> list[SyncDetection]:
    """All sync sequences in ``x`` (``[num_samples]`` complex), in order of arrival.

    Peaks above ``threshold`` closer than one sync length are one detection (the highest).
    """
    metric, _ = sync_metric(x, layout)
    above = np.flatnonzero(metric > threshold)
    detections: list[SyncDetection] = []
    if above.size == 0:
        return detections
    breaks = np.flatnonzero(np.diff(above) > layout.sync_samples) + 1
    for cluster in np.split(above, breaks):
        d = int(cluster[np.argmax(metric[cluster])])
        detections.append(SyncDetection(d, float(metric[d])))
    return detections
