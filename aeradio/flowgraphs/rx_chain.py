"""Streaming RX chain: samples in, decoded frames and BLER statistics out.

The chain is the sequence of its stages, each a method whose output (and estimates) can
be dumped for debugging (``dump(stage_name, arrays)``):

1. ``condition``  non-finite samples zeroed and counted, DC removed (running mean).
2. ``detect``     STF periodicity metric (sums of half a symbol, then correlation at one STF
                  period, strided by a symbol) against a threshold set by the false-alarm
                  target; peak -> coarse start and coarse CFO.
3. ``timing``     segment derotated by the coarse CFO, cross-correlated with the shaped
                  LTF, refined early-late on the preamble: fractional start time. A weak
                  LTF peak rejects the detection and scanning resumes right after it.
4. ``sample``     matched filter evaluated at the symbol instants (fractional delay).
5. ``phase``      fine CFO from the preamble, then a line fitted through the phases of
                  preamble chunks and pilot pairs: phase and residual CFO across the frame.
6. ``level``      gain and noise from the known symbols: unit-energy symbols, noise
                  variance per real component, SNR.
7. ``header``     soft BPSK, Chase decoding, CRC-16, model hash check.
8. ``decode``     the block decoder (the neural receiver) on the payload blocks.
9. ``score``      test-pattern BLER, data CRC-32.

Frames straddling ``process`` calls are handled by buffering; detection waits until a
whole frame is in the buffer. All estimates are per frame, so each frame is independent
(a burst receiver); samples between frames only cost the detector.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from aeradio.core.config import LinkConfig
from aeradio.core.constants import SAMPLE_DTYPE
from aeradio.dsp.framing import (
    PAYLOAD_DATA,
    PAYLOAD_TEST_PATTERN,
    FrameLayout,
    Header,
    decode_headers,
    pattern_messages,
    unpack_data,
)
from aeradio.dsp.pulse import sample_matched
from aeradio.dsp.sync import (
    TimingEstimator,
    TimingRefiner,
    amplitude_noise,
    detection_threshold,
    fit_phase,
    lag_cfo,
    linear_phasor,
    periodic_correlation,
)

#: Decoded frames whose estimates the live status averages.
RECENT_FRAMES = 50
#: (y [B, n] complex64 unit-energy symbols, noise variance per real component [B]) -> [B] int64.
BlockDecoder = Callable[[np.ndarray, np.ndarray], np.ndarray]
#: Debug sink: (stage name, arrays and estimates of that stage).
DumpSink = Callable[[str, dict[str, np.ndarray]], None]

#: STF products left out at each end of the STF (pulse transients).
_STF_EDGE_SYMBOLS = 2
#: Lag (symbols) of the fine CFO estimate on the preamble.
_FINE_CFO_LAG_SYMBOLS = 8
#: Preamble symbols per phasor group of the phase fit; pilots per group.
_PREAMBLE_GROUP_SYMBOLS = 16
_PILOTS_PER_GROUP = 2
#: False-alarm probability of the LTF check after the STF detector fired.
_LTF_FALSE_ALARM_PROB = 1e-6
#: Time constant (samples) of the DC estimate.
_DC_TIME_CONSTANT = 1 << 15
#: DC power (relative to the block's power) below which DC is left alone (-30 dB).
_DC_RELEVANT = 1e-3


class StageDumper:
    """A debug sink writing each stage's output and estimates to ``DIR/NNNNNN_stage.npz``.

    Files are numbered in call order; read them with ``np.load(path)`` (no pickle).
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.count = 0

    def __call__(self, stage: str, arrays: dict[str, np.ndarray]) -> None:
        np.savez(self.directory / f"{self.count:06d}_{stage}.npz", **arrays)
        self.count += 1


@dataclass
class FrameResult:
    """One detected frame. Times are absolute sample indices of the stream."""

    start_sample: float
    cfo_cps: float
    snr_db: float
    noise_var: float
    header: Header | None
    #: Synchronized unit-gain payload symbols [blocks, n] complex64 (receiver input).
    payload: np.ndarray | None = None
    decisions: np.ndarray | None = None
    block_errors: int | None = None
    data: bytes | None = None
    data_crc_ok: bool | None = None


@dataclass
class RxStats:
    """Counters of the RX chain (``rx --json`` keys are derived from them)."""

    samples: int = 0
    nonfinite_samples: int = 0
    frames_detected: int = 0
    frames_decoded: int = 0
    frames_truncated: int = 0
    header_crc_failures: int = 0
    model_mismatches: int = 0
    false_detections: int = 0
    blocks: int = 0
    block_errors: int = 0
    data_crc_failures: int = 0
    # Per-frame estimates as running sums and a short recent window, never a growing list:
    # a receiver runs for days (the 10-minute soak alone decodes ~190k frames).
    snr_db_sum: float = 0.0
    cfo_cps_sum: float = 0.0
    #: The last RECENT_FRAMES decoded frames' (snr_db, cfo_cps), for live status.
    recent: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=RECENT_FRAMES))
    seq_min: int | None = None
    seq_max: int | None = None

    def add_decoded(self, snr_db: float, cfo_cps: float, seq: int) -> None:
        """Account for one decoded frame's estimates (after frames_decoded was counted)."""
        self.snr_db_sum += snr_db
        self.cfo_cps_sum += cfo_cps
        self.recent.append((snr_db, cfo_cps))
        self.seq_min = seq if self.seq_min is None else min(self.seq_min, seq)
        self.seq_max = seq if self.seq_max is None else max(self.seq_max, seq)

    @property
    def mean_snr_db(self) -> float | None:
        return self.snr_db_sum / self.frames_decoded if self.frames_decoded else None

    @property
    def mean_cfo_cps(self) -> float | None:
        return self.cfo_cps_sum / self.frames_decoded if self.frames_decoded else None


class RxChain:
    """Streaming receiver for one link config.

    Args:
        cfg: the link config stored with the model.
        decoder: the block decoder (the neural receiver's ``decide``, or minimum-distance
            detection :func:`aeradio.dsp.detection.ml_detect` of the LUT).
        seed: test-pattern seed of the transmitter.
        model_hash: the model's hash; frames of another model are counted, not decoded.
        dump: optional debug sink called after every stage.
    """

    def __init__(
        self,
        cfg: LinkConfig,
        decoder: BlockDecoder,
        *,
        seed: int = 0,
        model_hash: int | None = None,
        dump: DumpSink | None = None,
    ) -> None:
        lay = FrameLayout(cfg)
        self.layout, self.decoder, self.seed, self.dump = lay, decoder, seed, dump
        self.model_hash16 = None if model_hash is None else int(model_hash) & 0xFFFF
        sps = lay.sps
        self.lag = lay.stf_period * sps
        # The detector runs on a grid of hop samples (half a symbol when sps is even).
        self.hop = sps // 2 if sps % 2 == 0 else 1
        # One product per hop (sums of hop samples are disjoint, so independent on noise).
        self.terms = (len(lay.stf) - lay.stf_period - 2 * _STF_EDGE_SYMBOLS) * (sps // self.hop)
        self.threshold = detection_threshold(self.terms, cfg.frame.detection_false_alarm_prob)
        self.timing = TimingEstimator(lay.ltf, lay.taps, lay.rolloff, sps)
        self.refiner = TimingRefiner(lay.preamble, _PREAMBLE_GROUP_SYMBOLS, lay.rolloff, sps, lay.span)
        # Noise samples are white: the template length in samples counts the terms.
        self.ltf_threshold = detection_threshold(self.timing.length, _LTF_FALSE_ALARM_PROB)
        stf_samples = len(lay.stf) * sps
        self.peak_search = stf_samples
        self._need = self.lag + self.terms * self.hop  # samples beyond a metric position
        # Where the LTF template starts relative to the detection peak, measured noise-free.
        clean = lay.shape(lay.preamble[None, :], gap_symbols=0)
        lead = stf_samples
        padded = np.concatenate([np.zeros(lead, SAMPLE_DTYPE), clean, np.zeros(lead, SAMPLE_DTYPE)])
        p, e1, e2 = self._metric(padded)
        peak = int(np.argmax(np.abs(p))) * self.hop
        self.ltf_offset = lead + stf_samples - peak
        # After a frame, scanning resumes just before where the next frame's peak would be if
        # it followed back to back (less a margin for a late peak). Resuming earlier puts a
        # detector window over the frame's last samples and the noise after them: few strong
        # terms, whose metric crosses the threshold now and then (the LTF check rejects
        # those, but the rescan after a rejection costs time).
        self.resume_after_peak = lay.num_symbols * sps - 2 * _STF_EDGE_SYMBOLS * sps
        # The |P| peak wanders over the STF plateau at low SNR (std ~10 samples): search
        # the LTF over a quarter of the STF either side.
        self.ltf_search = max(2 * self.lag + 2 * _STF_EDGE_SYMBOLS * sps + 8, stf_samples // 4)
        half = lay.span * sps // 2
        # Segment per frame, relative to the peak: room for the LTF search and the filter.
        self.seg_before = self.ltf_search + stf_samples - self.ltf_offset + half + 4
        self.seg_len = self.seg_before + self.ltf_offset + self.ltf_search + (
            lay.num_symbols - len(lay.stf)) * sps + half + 8
        self.frame_samples = lay.num_symbols * sps
        self.stats = RxStats()
        # Zeros before the stream's first sample give a frame at sample 0 its history.
        self._buf = np.zeros(self.seg_before, SAMPLE_DTYPE)
        self._buf_start = -self.seg_before  # absolute index of _buf[0]
        self._scan = -self.seg_before  # absolute index of the next detector position
        self._dc = 0j
        self._dc_init = False
        self._pending = False
        self._rejected = False
        self._groups = self._phase_groups()

    # ---- stage helpers -------------------------------------------------------------
    def _emit(self, stage: str, **arrays: np.ndarray) -> None:
        if self.dump is not None:
            self.dump(stage, {k: np.asarray(v) for k, v in arrays.items()})

    def _metric(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Detector metric terms at positions ``0, hop, 2 hop, ...`` of ``x``."""
        hop = self.hop
        usable = (len(x) // hop) * hop
        if usable < self._need + hop:
            z = np.zeros(0, np.float32)
            return z.astype(SAMPLE_DTYPE), z, z
        # Sums of hop samples: a low-pass filter that keeps the STF tone (half the symbol
        # rate) and leaves disjoint sums independent under white noise.
        sums = x[0:usable:hop].copy()
        for i in range(1, hop):  # strided adds: much faster than a short-axis sum
            sums += x[i:usable:hop]
        return periodic_correlation(sums, self.lag // hop, self.terms, 1)

    def _phase_groups(self) -> tuple[np.ndarray, np.ndarray]:
        """Start of each phasor group in the known symbols, and the groups' centres (symbols).

        Groups are runs of the known symbols: preamble chunks, then pairs of pilots.
        """
        lay = self.layout
        npre = len(lay.preamble)
        starts = np.concatenate([
            np.arange(0, npre, _PREAMBLE_GROUP_SYMBOLS),
            npre + np.arange(0, len(lay.pilot_index), _PILOTS_PER_GROUP),
        ])
        sizes = np.diff(np.append(starts, len(lay.known_index)))
        centres = np.add.reduceat(lay.known_index.astype(np.float64), starts) / sizes
        return starts, centres

    # ---- stage 1 -------------------------------------------------------------------
    def condition(self, block: np.ndarray) -> np.ndarray:
        """Zero non-finite samples (counted) and remove the running DC estimate."""
        x = np.ascontiguousarray(block, SAMPLE_DTYPE)
        if len(x):
            # One pass gives the power, and tells whether any sample is not finite (einsum,
            # not BLAS: OpenBLAS would start threads that spin on the cores TX and the
            # channel need in the loopback).
            v = x.view(np.float32)
            energy = float(np.einsum("i,i->", v, v))
            if not math.isfinite(energy):
                bad = ~np.isfinite(x)
                if bad.any():
                    self.stats.nonfinite_samples += int(bad.sum())
                    x = np.where(bad, 0, x).astype(SAMPLE_DTYPE)
                    v = x.view(np.float32)
                    energy = float(np.einsum("i,i->", v, v))
            m = complex(x.sum()) / len(x)
            if not math.isfinite(abs(m)):  # finite samples near float32's limit: no DC estimate
                m = self._dc
            if not self._dc_init:
                self._dc, self._dc_init = m, True
            else:
                alpha = 1.0 - math.exp(-len(x) / _DC_TIME_CONSTANT)
                self._dc += alpha * (m - self._dc)
            # A DC far below the signal is harmless, while subtracting it would turn
            # silent stretches (zeros) into a constant: a periodic signal the detector sees.
            if abs(self._dc) ** 2 > _DC_RELEVANT * energy / len(x):
                x = x - np.complex64(self._dc)
        self._emit("condition", samples=x, dc=np.array(self._dc))
        return x

    # ---- stage 2 -------------------------------------------------------------------
    def detect(self) -> list[tuple[int, complex]]:
        """Frames whose whole segment is buffered: [(absolute peak index, P at the peak)]."""
        hop = self.hop
        a = self._scan - self._buf_start
        p, e1, e2 = self._metric(self._buf[a:])
        power = p.real * p.real
        power += p.imag * p.imag
        norm = e1 * e2
        hits = np.flatnonzero(power > norm * np.float32(self.threshold))
        search = self.peak_search // hop
        found: list[tuple[int, complex]] = []
        pos = 0  # in detector positions (hop samples) from the scan start
        self._pending = False
        i = 0
        while i < len(hits):  # the metric stays above threshold for ~150 positions per frame
            c = int(hits[i])
            if c + search > len(p):
                pos, self._pending = c, True
                break
            # The normalized metric decides; its plateau is wide, so |P| (which grows
            # with the overlap of window and STF) places the peak.
            d = c + int(np.argmax(power[c : c + search]))
            if a + d * hop - self.seg_before + self.seg_len > len(self._buf):
                pos, self._pending = c, True
                break
            found.append((self._scan + d * hop, complex(p[d])))
            pos = d + self.resume_after_peak // hop
            i = int(np.searchsorted(hits, pos))  # the first hit at or after pos
        else:
            pos = max(len(p), pos)
        self._scan += pos * hop
        if self.dump is not None:
            self._emit("detect", metric=power / np.maximum(norm, 1e-30),
                       peaks=np.array([f[0] for f in found], np.int64), threshold=np.array(self.threshold))
        return found

    # ---- stages 3 to 9 on a batch of frames ------------------------------------------
    def demodulate(self, found: list[tuple[int, complex]]) -> list[FrameResult]:
        """Synchronize, decode and score detected frames (vectorized over frames)."""
        lay, sps = self.layout, self.layout.sps
        peaks = np.array([f[0] for f in found], np.int64)
        coarse_cfo = np.angle(np.array([f[1] for f in found])) / (2 * math.pi * self.lag)
        first = peaks - self.seg_before - self._buf_start
        seg = linear_phasor(-coarse_cfo, np.zeros(len(found)), self.seg_len)
        for i, s in enumerate(first):
            seg[i] *= self._buf[s : s + self.seg_len]
        # Stage 3: timing from the LTF.
        ltf_first = self.seg_before + self.ltf_offset - self.ltf_search
        lag, quality = self.timing.estimate(seg, ltf_first, 2 * self.ltf_search + 1)
        half = (len(lay.taps) - 1) // 2
        t0 = lag + half - len(lay.stf) * sps  # time of symbol 0 in the segment
        self._emit("timing", segments=seg, coarse_cfo_cps=coarse_cfo, t0=t0, quality=quality)
        bad = np.flatnonzero(quality <= self.ltf_threshold)
        self._rejected = len(bad) > 0
        if self._rejected:
            # A false detection: frames after it were skipped over, so scan again from
            # just after it and keep only the frames before it.
            self.stats.false_detections += 1
            j = int(bad[0])
            self._scan = int(peaks[j]) + self.peak_search // 2
            if j == 0:
                return []
            seg, t0, coarse_cfo, first = seg[:j], t0[:j], coarse_cfo[:j], first[:j]
        t0 = self.refiner.refine(seg, t0)
        # Stage 4: matched filter at the symbol instants.
        z = sample_matched(seg, t0, lay.num_symbols, lay.rolloff, sps, lay.span)
        self._emit("sample", symbols=z)
        # Stage 5: fine CFO on the preamble, then a phase line through preamble and pilots.
        npre = len(lay.preamble)
        c = z[:, lay.known_index] * np.conj(lay.known_symbols)
        # Two lags: the short one is unambiguous over the coarse error, the long one (half
        # the preamble) is precise enough to unwrap phases across the header to the pilots.
        fine = lag_cfo(c[:, :npre], _FINE_CFO_LAG_SYMBOLS, sps)
        c = c * np.exp(-2j * np.pi * sps * fine[:, None] * lay.known_index[None, :])
        finer = lag_cfo(c[:, :npre], npre // 2, sps)
        c = c * np.exp(-2j * np.pi * sps * finer[:, None] * lay.known_index[None, :])
        fine = fine + finer
        starts, centres = self._groups
        phase0, slope = fit_phase(np.add.reduceat(c, starts, axis=1), centres)
        cfo_residual = fine + slope / (2 * math.pi * sps)  # cycles/sample
        u = z * linear_phasor(-cfo_residual * sps, -phase0, lay.num_symbols)
        cfo = coarse_cfo + cfo_residual
        self._emit("phase", symbols=u, fine_cfo_cps=fine, phase0_rad=phase0, cfo_cps=cfo)
        # Stage 6: level.
        gain, noise = amplitude_noise(u[:, lay.known_index], lay.known_symbols)
        y = u / gain[:, None].astype(np.float32)
        noise_var = (noise / (2 * gain**2)).astype(np.float32)
        snr_db = 10 * np.log10(gain**2 / noise)
        self._emit("level", symbols=y, gain=gain, noise_var=noise_var, snr_db=snr_db)
        # Stage 7: header.
        llr = lay.header_llr(y[:, lay.header_start : lay.header_start + lay.header_len])
        headers = decode_headers(llr)
        self._emit("header", llr=llr)
        # Stage 8: decode payload blocks of frames with a valid header of this model.
        good = [
            i for i, h in enumerate(headers)
            if h is not None and (self.model_hash16 is None or h.model_hash == self.model_hash16)
        ]
        decisions = np.zeros((len(headers), lay.blocks), np.int64)
        if good:
            blocks = y[good][:, lay.payload_index].reshape(-1, lay.n)
            nv = np.repeat(noise_var[good], lay.blocks)
            decisions[good] = np.asarray(self.decoder(blocks, nv), np.int64).reshape(len(good), lay.blocks)
        self._emit("decode", decisions=decisions)
        # Stage 9: score.
        start = first + t0 + self._buf_start
        payload = y[:, lay.payload_index].reshape(len(headers), lay.blocks, lay.n)
        errors = self._block_errors(headers, good, decisions)
        results, decoded = [], set(good)
        for i, h in enumerate(headers):
            r = FrameResult(
                float(start[i]), float(cfo[i]), float(snr_db[i]), float(noise_var[i]), h, payload[i]
            )
            self._score(r, decisions[i] if i in decoded else None, errors[i])
            results.append(r)
        return results

    def _block_errors(
        self, headers: list[Header | None], good: list[int], decisions: np.ndarray
    ) -> np.ndarray:
        """Block errors of each test-pattern frame (-1 for the others), all frames at once."""
        lay = self.layout
        errors = np.full(len(headers), -1, np.int64)
        tp = [i for i in good if headers[i].kind == PAYLOAD_TEST_PATTERN]  # type: ignore[union-attr]
        if tp:
            seqs = np.array([headers[i].seq for i in tp])  # type: ignore[union-attr]
            expected = pattern_messages(self.seed, seqs, lay.blocks, lay.M)
            errors[tp] = np.sum(decisions[tp] != expected, axis=1)
        return errors

    def _score(self, r: FrameResult, decisions: np.ndarray | None, block_errors: int) -> None:
        s, lay = self.stats, self.layout
        s.frames_detected += 1
        if r.header is None:
            s.header_crc_failures += 1
            return
        if decisions is None:
            s.model_mismatches += 1
            return
        s.frames_decoded += 1
        s.add_decoded(r.snr_db, r.cfo_cps, r.header.seq)
        r.decisions = decisions
        if r.header.kind == PAYLOAD_TEST_PATTERN:
            r.block_errors = int(block_errors)
            s.blocks += lay.blocks
            s.block_errors += r.block_errors
        elif r.header.kind == PAYLOAD_DATA:
            r.data = unpack_data(decisions, lay.k, r.header.length)
            r.data_crc_ok = r.data is not None
            s.data_crc_failures += int(r.data is None)

    # ---- streaming -------------------------------------------------------------------
    @property
    def settled_sample(self) -> int:
        """Stream index before which every frame has been returned: a frame :meth:`process`
        returns later has its whole segment at or after it (the chain keeps only the samples
        from here on). Never decreases from one :meth:`process` call to the next."""
        return self._scan - self.seg_before - self.layout.sps

    def process(self, block: np.ndarray) -> list[FrameResult]:
        """Feed samples [N] complex64; returns the frames completed by them."""
        x = self.condition(block)
        self.stats.samples += len(x)
        self._buf = np.concatenate([self._buf, x])
        results: list[FrameResult] = []
        while True:
            found = self.detect()
            if not found:
                break
            results += self.demodulate(found)
            if not self._rejected:
                break  # no false detection: everything buffered was scanned
        drop = min(max(0, self.settled_sample - self._buf_start), len(self._buf))
        if drop:
            self._buf = self._buf[drop:]
            self._buf_start += drop
        return results

    def flush(self) -> list[FrameResult]:
        """End of stream: a frame still waiting for samples is counted as truncated."""
        if self._pending:
            self.stats.frames_truncated += 1
            self._pending = False
        return []

    def report(self, sample_rate_hz: float, frames_expected: int | None = None) -> dict[str, object]:
        """The ``rx --json`` report (its keys: docs/contracts.md)."""
        s = self.stats
        if frames_expected is None and s.seq_min is not None and s.seq_max is not None:
            frames_expected = s.seq_max - s.seq_min + 1
        return {
            "frames_expected": frames_expected,
            "frames_detected": s.frames_detected,
            "frames_decoded": s.frames_decoded,
            "frames_truncated": s.frames_truncated,
            "false_detections": s.false_detections,
            "header_crc_failures": s.header_crc_failures,
            "model_mismatches": s.model_mismatches,
            "blocks": s.blocks,
            "block_errors": s.block_errors,
            "bler": s.block_errors / s.blocks if s.blocks else None,
            "data_crc_failures": s.data_crc_failures,
            "snr_db": s.mean_snr_db,
            "cfo_hz": s.mean_cfo_cps * sample_rate_hz if s.mean_cfo_cps is not None else None,
            "nonfinite_samples": s.nonfinite_samples,
            "samples": s.samples,
        }
