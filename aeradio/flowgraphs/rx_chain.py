"""Streaming RX chain: samples in, decoded frames and BLER statistics out.

The chain is the sequence of its stages, one method each, named as its debug dump
(``dump(stage_name, arrays)``, e.g. :class:`StageDumper`); :meth:`RxChain.process` runs
1-2 on every block, :meth:`RxChain.demodulate` runs 3-5 on each batch of detected frames,
vectorized over frames, and 6-9 follow on each batch (the front end, stages 1-5, and the
back end, 6-9, may run side by side: see the pipeline below):

1. ``condition``  non-finite and out-of-range samples zeroed and counted, DC removed
                  (running mean).
2. ``detect``     STF periodicity metric (sums of half a symbol, then correlation at one STF
                  period, strided by a symbol) against a threshold set by the false-alarm
                  target; peak -> coarse start and coarse CFO.
3. ``timing``     segment derotated by the coarse CFO, cross-correlated with the shaped
                  LTF, refined early-late on the preamble: fractional start time. A weak
                  LTF peak rejects the detection and scanning resumes right after it.
4. ``sample``     matched filter evaluated at the symbol instants (fractional delay),
                  timing tracked across the frame: each group of symbols is sampled where
                  a line through the earlier groups' Gardner estimates (and the preamble's)
                  puts it, so a sample-clock offset does not drift long frames off.
5. ``phase``      fine CFO from the preamble, then a line fitted through the phases of
                  preamble chunks and pilot pairs: phase and residual CFO across the frame.
6. ``level``      gain and noise from the known symbols: the header's and the payload's
                  symbols at unit energy, noise variance per real component, SNR.
7. ``header``     soft QPSK, Viterbi decoding of the convolutional code, CRC-16.
8. ``decode``     the block decoder (the neural receiver) on the payload blocks of the
                  frames whose header names this model; for a coded model, the bit
                  demapper's LLRs (their hard decisions are the blocks' decisions), then
                  the outer code's decoder on each codeword.
9. ``score``      full sequence numbers, test-pattern BLER (the seed from each header;
                  for a coded model also codeword errors, the coded BLER), data CRC-32
                  (a coded data frame's data only when every codeword decoded, parity
                  satisfied), probe frames counted apart (no BLER: their payload is
                  not LUT rows, :mod:`aeradio.dsp.probe`), statistics.

A coded model (``[code]``) is received by giving the chain a bit demapper as its decoder
(``(y [B, n], noise_var [B]) -> [B, k]`` LLRs, ``log P(1)/P(0)``) and the outer code
(``code``, an :class:`~aeradio.dsp.framing.OuterCode`): this layer imports neither torch
nor the code's library; the command that builds the chain does.

Frames straddling ``process`` calls are handled by buffering; detection waits until a
whole frame is in the buffer. All estimates are per frame, so each frame is independent
(a burst receiver); samples between frames only cost the detector. Everything the
receiver needs travels in the frames (the test-pattern seed included): no side channel.

The pipeline (``pipelined=True``; ``aeradio rx`` turns it on when it has two cores): a
worker thread runs the front end (stages 1-5: conditioning, detection, timing, sampling,
phase) of block i+1 while the calling thread runs the back end (stages 6-9: level, headers,
the neural receiver, scoring and statistics) of block i (an even split of the work: with
the neural receiver's buffers, ``level`` moved from the front end to the back end). The
compiled kernels release the GIL (``nogil``), as do scipy's FFT, numpy's array operations
and torch's operators, so the two stages share two cores. :meth:`RxChain.process` then
returns the frames of the *previous* call's block; :meth:`RxChain.drain` (a stream
stopped) and :meth:`RxChain.flush` (its end) return the rest. The frames, their estimates, decisions
and the statistics are those of the single-threaded chain (the same stages on the same
batches, in the same order); only when they come out differs. Between two calls the worker
is idle (each call waits for its block's front end, and for the decoder pieces below), so
the caller reads a consistent chain; memory: one block's batches waiting beside the block
being processed. An exception in the worker is raised by the call that waits for it. The
block decoder, most of the back end, runs on a batch's blocks in pieces
(:data:`DECODE_PIECE_BLOCKS`, single-threaded too): once its front end is done, the worker
takes pieces beside the caller, so the two threads share the decoder as their loads allow;
the pieces' outputs are those of one call. A dump sink runs the chain
single-threaded (its files numbered in stage order).

Sequence numbers: headers carry them modulo 2**16; the chain extends them
(:func:`~aeradio.dsp.framing.extend_seq`) into :attr:`FrameResult.seq`. A transmitter's run
numbers its frames from 0 and flags its last one (LAST), so :class:`RxStats` counts the
frames each run sent, a missing tail included.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from aeradio.core.config import LinkConfig
from aeradio.core.constants import SAMPLE_DTYPE
from aeradio.core.errors import ConfigError
from aeradio.dsp.conditioning import power_and_sum
from aeradio.dsp.detector import metric_reference, scan, scan_reference
from aeradio.dsp.framing import (
    HEADER_CODED_BITS,
    PAYLOAD_PROBE,
    PAYLOAD_TEST_PATTERN,
    FrameLayout,
    Header,
    OuterCode,
    bits_to_messages,
    check_outer_code,
    decode_headers,
    encode_payload,
    extend_seq,
    pattern_bits,
    pattern_messages,
    unpack_data,
)
from aeradio.dsp.segments import derotated_segments
from aeradio.dsp.sync import (
    GardnerTiming,
    TimingEstimator,
    TimingRefiner,
    amplitude_noise,
    detection_threshold,
    phase_line,
    rotate_linear,
    sample_tracked,
    scaled_columns,
)

#: Decoded frames whose estimates the live status averages.
RECENT_FRAMES = 50
#: Runs of missing sequence numbers the report lists (the latest; all are counted).
MISSING_RANGES_KEPT = 20
#: (y [B, n] complex64 unit-energy symbols, noise variance per real component [B]) -> [B] int64.
#: It reads its inputs and never writes them (``y`` may be a view of the frames' payload).
BlockDecoder = Callable[[np.ndarray, np.ndarray], np.ndarray]
#: A coded model's decoder: the same inputs -> [B, k] float32 bit LLRs, log P(1)/P(0).
BitDemapper = Callable[[np.ndarray, np.ndarray], np.ndarray]
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
#: Slack (samples) of the LTF search beyond the |P| plateau (two STF periods and the edge
#: symbols) for noise moving the peak further: a margin, not derived (with the default
#: frame, the search spans a quarter of the STF, which is more).
_LTF_SEARCH_MARGIN_SAMPLES = 8
#: How far (samples) sampling may reach beyond the matched-filter windows of the LTF search
#: range: the timing refiner moves symbol 0 by up to 1 sample, its early/late probes reach
#: 1 sample further, and flooring the fractional time 1 more.
_SEGMENT_SLACK_SAMPLES = 3
#: Symbols per group of the timing track (stage 4): at 200 ppm the instants drift 0.2
#: sample over a group of 256 at 4 samples per symbol (+-0.025 symbol about its centre).
_TIMING_GROUP_SYMBOLS = 256
#: Sample-clock offset (ppm) the timing track is built for: the prior of its slope, and the
#: room left at the end of each frame's segment.
MAX_CLOCK_OFFSET_PPM = 200.0
#: Standard deviation (samples) of a full group's Gardner estimate, weighing the measured
#: slope against its prior (measured: 0.07 to 0.1 at Eb/N0 6 dB, sps 4, roll-off 0.35).
_GROUP_TIMING_STD_SAMPLES = 0.1
#: Weight of the preamble's timing (data-aided, ``t0``) in the line, in full groups.
_PREAMBLE_TIMING_WEIGHT = 2.0
#: Time constant (samples) of the DC estimate.
_DC_TIME_CONSTANT = 1 << 15
#: DC power (relative to the block's power) below which DC is left alone (-30 dB).
_DC_RELEVANT = 1e-3
#: Largest sample magnitude taken (120 dB above a radio's full scale of 1): beyond about
#: 1e7 the detector's float32 products overflow. Larger samples are zeroed and counted.
MAX_SAMPLE_MAGNITUDE = 1e6
#: Blocks per piece of a batch's block-decoder work (:class:`_DecoderPieces`): the message
#: runtimes' own chunk (1024 blocks: ``ReceiverRuntime.decide``, ``MarginalRuntime.llrs``),
#: so that their pieces' outputs are those of one call on every block (a bit-wise
#: receiver's ``llrs``, which does not chunk, gave the same bits on 5000 blocks; pipelined
#: and single-threaded chains cut the same pieces either way), and small (under a
#: millisecond for the default model) so that a thread waits little for the other's last
#: piece (pieces of 4096 gave the pipeline nothing: docs/throughput.md).
DECODE_PIECE_BLOCKS = 1024


class _DecoderPieces:
    """A batch's blocks for the block decoder, in pieces that any thread takes in turn.

    :meth:`result` (the calling thread) decodes pieces until none is left, waits for pieces
    another thread took, and returns every piece's output in order; :meth:`work` is what
    the pipeline's worker runs after its front end, taking pieces while any is left (none
    once the caller has taken the last: it returns at once). The first exception of a
    piece is raised by :meth:`result`. The decoder is called on views of ``blocks`` and
    ``noise_var``, from either thread (it reads its inputs only, keeping no state between
    calls: the runtimes' ``decide`` and ``llrs``).
    """

    def __init__(self, decoder: Callable[[np.ndarray, np.ndarray], np.ndarray], blocks: np.ndarray,
                 noise_var: np.ndarray, piece: int = DECODE_PIECE_BLOCKS) -> None:
        self._decoder, self._blocks, self._noise_var, self._piece = decoder, blocks, noise_var, piece
        self._outputs: list[np.ndarray | None] = [None] * -(-len(blocks) // piece)
        self._next = 0
        self._busy = 0
        self._error: BaseException | None = None
        self._lock = threading.Condition()

    def work(self) -> None:
        """Decode pieces until none is left (or one failed)."""
        while True:
            with self._lock:
                i = self._next
                if i >= len(self._outputs) or self._error is not None:
                    return
                self._next, self._busy = i + 1, self._busy + 1
            a = i * self._piece
            try:
                self._outputs[i] = np.asarray(self._decoder(self._blocks[a : a + self._piece],
                                                            self._noise_var[a : a + self._piece]))
            except BaseException as exc:  # raised again by result(), in the calling thread
                with self._lock:
                    self._error = self._error or exc
            finally:
                with self._lock:
                    self._busy -= 1
                    self._lock.notify_all()

    def result(self) -> np.ndarray:
        """Every block's output, pieces in order (this thread decodes what is left)."""
        self.work()
        with self._lock:
            while self._busy:
                self._lock.wait()
        if self._error is not None:
            raise self._error
        outputs = [o for o in self._outputs if o is not None]
        return outputs[0] if len(outputs) == 1 else np.concatenate(outputs)


class StageDumper:
    """A debug sink writing each stage's output and estimates to ``DIR/NNNNNN_stage.npz``.

    Files are numbered in call order; read them with ``np.load(path)`` (no pickle).
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"--dump-dir {self.directory}: {exc.strerror or exc}") from None
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
    #: The full sequence number in its run (the header's 16 bits extended) of a decoded
    #: frame (header CRC good, this model); None for the others.
    seq: int | None = None
    #: Coded model, decoded frame: the codewords' decoded information bits [C K] uint8 and
    #: whether each codeword ended with every parity check satisfied [C] bool.
    info_bits: np.ndarray | None = None
    parity_ok: np.ndarray | None = None
    #: Coded test-pattern frame: codewords whose information bits are not all right.
    codeword_errors: int | None = None


@dataclass
class _Demodulated:
    """Stages 3 to 5 of a batch of F frames: what stages 6 to 9 take."""

    start_sample: np.ndarray  # [F] float64, absolute time of symbol 0
    cfo_cps: np.ndarray  # [F]
    symbols: np.ndarray  # [F, frame symbols] complex64, phase corrected (stage 5's output)


@dataclass
class _FrontOutput:
    """The front end (stages 1 to 5) of one block: its batches, in stream order, and the
    chain's settled sample after it."""

    batches: list[_Demodulated]
    settled_sample: int


@dataclass
class RxStats:
    """Counters of the RX chain (``rx --json`` keys are derived from them)."""

    samples: int = 0
    nonfinite_samples: int = 0
    #: Finite samples above MAX_SAMPLE_MAGNITUDE (zeroed, as non-finite ones).
    overrange_samples: int = 0
    #: Frames past the LTF check, counted by the front end (stage 3): with the pipeline,
    #: before their decoding (the other frame counters follow with it).
    frames_detected: int = 0
    frames_decoded: int = 0
    frames_truncated: int = 0
    header_crc_failures: int = 0
    model_mismatches: int = 0
    #: Of the model mismatches, frames whose CODED flag differs from this model's (the frames
    #: of a coded model at an uncoded receiver, or the reverse).
    code_mismatches: int = 0
    false_detections: int = 0
    blocks: int = 0
    block_errors: int = 0
    #: Coded models: codewords of test-pattern frames, those decoded wrong (coded BLER), and
    #: codewords of any frame whose decoding ended with parity unsatisfied.
    codewords: int = 0
    codeword_errors: int = 0
    decoder_failures: int = 0
    data_crc_failures: int = 0
    #: Coded data frames not passed on because a codeword did not decode (listed missing).
    data_decode_failures: int = 0
    #: Decoded probe frames (``tx --pattern probe``): kept for channel models, no BLER.
    probe_frames: int = 0
    # Per-frame estimates as running sums and a short recent window, never a growing list:
    # a receiver runs for days (the 10-minute soak alone decodes ~190k frames).
    snr_db_sum: float = 0.0
    cfo_cps_sum: float = 0.0
    #: The last RECENT_FRAMES decoded frames' (snr_db, cfo_cps), for live status.
    recent: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=RECENT_FRAMES))
    # Transmitter runs: each numbers its frames from 0 and flags its last one (LAST).
    #: Full sequence number of the open run's latest decoded frame (None: no run open).
    run_seq: int | None = None
    #: Full sequence number of the latest LAST frame decoded (None: none yet).
    last_frame_seq: int | None = None
    #: Frames sent by the runs that ended (each counted from sequence number 0).
    frames_in_ended_runs: int = 0
    #: Frames of the first run seen that were on the air before the receiver listened
    #: (joined a transmission under way): not expected, so not counted as lost.
    frames_before_listening: int = 0
    #: Frames missing between two decoded frames of a run (or before a run's first decoded
    #: frame, when they could have arrived), and the latest MISSING_RANGES_KEPT runs of them:
    #: what the frames around each run tell of why (:meth:`missing_range`).
    frames_missing: int = 0
    missing_ranges: deque[dict[str, object]] = field(
        default_factory=lambda: deque(maxlen=MISSING_RANGES_KEPT))
    #: Stream position of the latest decoded frame, and the undecoded detections
    #: (header CRC failures, model mismatches) counted when it was decoded.
    last_decoded_sample: float | None = None
    undecoded_at_last_decoded: int = 0

    def missing_range(self, first_seq: int, last_seq: int, start_sample: float) -> None:
        """Record sequence numbers ``first_seq..last_seq`` missing before the frame decoded at
        ``start_sample``: with the stream positions between which they were due, and the
        detections there that did not decode (header CRC failures, model mismatches). None
        such: the frames were not detected (or their samples dropped)."""
        undecoded = self.header_crc_failures + self.model_mismatches
        self.frames_missing += last_seq - first_seq + 1
        self.missing_ranges.append({
            "first_seq": first_seq, "last_seq": last_seq,
            "after_sample": self.last_decoded_sample, "before_sample": start_sample,
            "undecoded_detections": undecoded - self.undecoded_at_last_decoded,
        })

    def add_decoded(
        self, snr_db: float, cfo_cps: float, header: Header, start_sample: float = 0.0, frame_samples: int = 1
    ) -> int:
        """Account for one decoded frame (after frames_decoded was counted); returns its
        full sequence number.

        ``start_sample`` (the frame's position in the stream) and ``frame_samples`` (its
        length) tell, for the very first frame, how many earlier frames of its run could
        have arrived since the stream began: at most ``start_sample // frame_samples`` (back
        to back). The rest were sent before the receiver listened and are not expected; the
        ones that could have arrived and did not are counted as lost.
        """
        first = self.run_seq is None and self.last_frame_seq is None and self.frames_in_ended_runs == 0
        self.snr_db_sum += snr_db
        self.cfo_cps_sum += cfo_cps
        self.recent.append((snr_db, cfo_cps))
        seq = extend_seq(header.seq, self.run_seq)
        if first:
            could_have_arrived = int(max(start_sample, 0.0) // max(frame_samples, 1))
            self.frames_before_listening = max(0, seq - could_have_arrived)
            if seq > self.frames_before_listening:
                self.missing_range(self.frames_before_listening, seq - 1, start_sample)
        if self.run_seq is not None and seq <= self.run_seq:
            # Numbers only grow within a run: a step back is the start of another run (the
            # open one ended, its LAST frame lost or never sent).
            self.frames_in_ended_runs += self.run_seq + 1
            seq = header.seq
            if seq > 0:
                self.missing_range(0, seq - 1, start_sample)
        elif self.run_seq is not None and seq > self.run_seq + 1:
            self.missing_range(self.run_seq + 1, seq - 1, start_sample)
        elif self.run_seq is None and self.last_frame_seq is not None and seq > 0:
            self.missing_range(0, seq - 1, start_sample)  # a run after a LAST frame
        self.last_decoded_sample = start_sample
        self.undecoded_at_last_decoded = self.header_crc_failures + self.model_mismatches
        if header.last:
            self.frames_in_ended_runs += seq + 1
            self.last_frame_seq, self.run_seq = seq, None
        else:
            self.run_seq = seq
        return seq

    @property
    def frames_expected(self) -> int | None:
        """Frames the transmitter runs sent, as far as the decoded frames tell: each run
        from 0 to its LAST frame, or to its highest number while it goes on, less the frames
        sent before the receiver listened (:attr:`frames_before_listening`; None before the
        first decoded frame)."""
        if self.run_seq is None and self.last_frame_seq is None:
            return None
        open_run = 0 if self.run_seq is None else self.run_seq + 1
        return self.frames_in_ended_runs + open_run - self.frames_before_listening

    @property
    def last_frame_seen(self) -> bool:
        """The latest run ended: its LAST frame was decoded, and no frame after it."""
        return self.run_seq is None and self.last_frame_seq is not None

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
            detection :func:`aeradio.dsp.detection.ml_detect` of the LUT); for a coded
            model, a :data:`BitDemapper` (the bit-wise receiver's LLRs, or the message
            receiver's posteriors marginalized per bit).
        model_hash: the model's hash; frames of another model are counted, not decoded.
        dump: optional debug sink called after every stage.
        code: a coded model's outer code (required then, refused otherwise).
        pipelined: run stages 1-5 on a worker thread beside stages 6-9 (the module
            docstring); :meth:`process` then returns the previous block's frames. Ignored
            with ``dump``. Call :meth:`close` when done with a pipelined chain.

    The test-pattern seed comes from each frame's header.
    """

    #: Blocks per piece of the block decoder's work (:data:`DECODE_PIECE_BLOCKS`).
    decode_piece_blocks: int = DECODE_PIECE_BLOCKS

    def __init__(
        self,
        cfg: LinkConfig,
        decoder: BlockDecoder,
        *,
        model_hash: int | None = None,
        dump: DumpSink | None = None,
        code: OuterCode | None = None,
        pipelined: bool = False,
    ) -> None:
        check_outer_code(cfg, code)
        lay = FrameLayout(cfg)
        self.layout, self.decoder, self.dump, self.code = lay, decoder, dump, code
        self.model_hash16 = None if model_hash is None else int(model_hash) & 0xFFFF
        sps = lay.sps
        self.lag = lay.stf_period * sps
        # The detector runs on a grid of hop samples (half a symbol when sps is even).
        self.hop = sps // 2 if sps % 2 == 0 else 1
        # One product per hop (sums of hop samples are disjoint, so independent on noise).
        self.terms = (len(lay.stf) - lay.stf_period - 2 * _STF_EDGE_SYMBOLS) * (sps // self.hop)
        self.threshold = detection_threshold(self.terms, cfg.frame.detection_false_alarm_prob)
        self.ltf_timing = TimingEstimator(lay.ltf, lay.taps, lay.rolloff, sps)
        self.refiner = TimingRefiner(lay.preamble, _PREAMBLE_GROUP_SYMBOLS, lay.rolloff, sps, lay.span)
        self.gardner = GardnerTiming(lay.rolloff, sps, lay.span)
        # Groups of the timing track: [first, end) symbols; a short remainder joins the last.
        starts = list(range(0, lay.num_symbols - _TIMING_GROUP_SYMBOLS // 2, _TIMING_GROUP_SYMBOLS)) or [0]
        self._timing_groups = list(zip(starts, [*starts[1:], lay.num_symbols], strict=True))
        # Noise samples are white: the template length in samples counts the terms.
        self.ltf_threshold = detection_threshold(self.ltf_timing.length, _LTF_FALSE_ALARM_PROB)
        stf_samples = len(lay.stf) * sps
        self.peak_search = stf_samples
        # Where the LTF template starts relative to the detection peak, measured noise-free.
        clean = lay.shape(lay.preamble[None, :], gap_symbols=0)
        lead = stf_samples
        padded = np.concatenate([np.zeros(lead, SAMPLE_DTYPE), clean, np.zeros(lead, SAMPLE_DTYPE)])
        p, _, _ = metric_reference(padded, self.hop, self.lag // self.hop, self.terms)
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
        self.ltf_search = max(
            2 * self.lag + 2 * _STF_EDGE_SYMBOLS * sps + _LTF_SEARCH_MARGIN_SAMPLES, stf_samples // 4
        )
        # Segment per frame, relative to the peak: from the first sample of symbol 0's
        # matched filter at the earliest LTF position to the last sample of the last
        # symbol's at the latest one (symbol 0 lies len(stf) symbols before the LTF, whose
        # template starts filter_delay samples before its first symbol).
        filter_span = 2 * lay.filter_delay + 1
        # The timing track may move the last symbols this far (and samples half a symbol on).
        drift_samples = math.ceil(lay.num_symbols * sps * MAX_CLOCK_OFFSET_PPM * 1e-6)
        drift_samples += max(self.gardner.shifts)
        self.seg_before = stf_samples - self.ltf_offset + self.ltf_search + _SEGMENT_SLACK_SAMPLES
        self.seg_len = (
            self.seg_before + self.ltf_offset + self.ltf_search - stf_samples
            + (lay.num_symbols - 1) * sps + filter_span + _SEGMENT_SLACK_SAMPLES + drift_samples
        )
        self._ltf_first = self.seg_before + self.ltf_offset - self.ltf_search  # search start in a segment
        # The head of a segment: what the LTF timing (its search) and the refiner (at the
        # latest t0 the search gives: lag < first + count) read. Only the head is cut out;
        # the timing track reads the whole segment from the buffer (sample_tracked).
        ltf_count = 2 * self.ltf_search + 1
        t0_max = self._ltf_first + ltf_count + lay.filter_delay - len(lay.stf) * sps
        self.head_len = min(self.seg_len, max(self._ltf_first + ltf_count - 1 + self.ltf_timing.length,
                                              self.refiner.window_end(t0_max)))
        self.frame_samples = lay.num_symbols * sps
        self.stats = RxStats()
        # Zeros before the stream's first sample give a frame at sample 0 its history. The
        # buffer (_buf) is the head of a storage array the conditioned samples are written to
        # (no concatenation per block); it grows to the largest block fed plus the samples
        # kept across blocks, and keeps that size.
        self._store = np.zeros(self.seg_before, SAMPLE_DTYPE)
        self._buf = self._store[:]
        self._buf_start = -self.seg_before  # absolute index of _buf[0]
        self._scan = -self.seg_before  # absolute index of the next detector position
        self._dc = 0j
        self._dc_init = False
        self._pending = False
        self._rejected = False
        self._groups = self._phase_groups()
        self._header_index = np.arange(lay.header_start, lay.header_start + lay.header_len)
        # The pipeline (pipelined and no dump sink): one worker thread for stages 1-5, the
        # front end of one block at a time, started by the first process call (a chain not
        # yet fed can be deep-copied); its output waits in _ready for stages 6-9.
        self.pipelined = pipelined and dump is None
        self._front_end: ThreadPoolExecutor | None = None
        self._ready: _FrontOutput | None = None
        self._settled = self._scan_settled()  # settled_sample of the frames returned (pipelined)
        # Compile (or load from numba's cache) the kernels now, not in the first block of a
        # stream (the matched filter's compiled above, by the refiner).
        scan(padded, self.hop, self.lag // self.hop, self.terms, self.threshold, 1, 1, 1, 0, 0)
        derotated_segments(padded, np.zeros(1, np.int64), np.zeros(1), 1)
        decode_headers(np.zeros((1, HEADER_CODED_BITS), np.float32))
        power_and_sum(padded)
        sample_tracked(np.zeros(self.seg_len, SAMPLE_DTYPE), np.zeros(1, np.int64), np.zeros(1), self.seg_len,
                       np.full(1, float(self.seg_before)), self._timing_groups, lay.num_symbols, 0.0, 1.0, 1,
                       1.0, 1.0, self.gardner)
        rotate_linear(np.zeros((1, 1), SAMPLE_DTYPE), np.zeros(1), np.zeros(1))
        zero_segment = np.zeros((1, self.head_len), SAMPLE_DTYPE)
        self.ltf_timing.estimate(zero_segment, self._ltf_first, 2 * self.ltf_search + 1)
        phase_line(np.ones((1, lay.num_symbols), SAMPLE_DTYPE), lay.known_index, lay.known_symbols,
                   len(lay.preamble), _FINE_CFO_LAG_SYMBOLS, lay.sps, *self._groups)
        scaled_columns(np.ones((1, lay.num_symbols), SAMPLE_DTYPE), lay.payload_index, np.ones(1, np.float32))
        pattern_messages(0, 0, lay.blocks, lay.M)

    # ---- streaming -------------------------------------------------------------------
    @property
    def settled_sample(self) -> int:
        """Stream index before which every frame has been returned: a frame :meth:`process`
        returns later has its whole segment at or after it (the chain keeps only the samples
        from here on). Never decreases from one :meth:`process` call to the next."""
        return self._settled if self.pipelined else self._scan_settled()

    def _scan_settled(self) -> int:
        """Stream index before which the front end has found every frame."""
        return self._scan - self.seg_before - self.layout.sps

    def process(self, block: np.ndarray) -> list[FrameResult]:
        """Feed samples [N] complex64; returns the frames completed by them (pipelined: the
        frames completed by the previous call's samples, see the class docstring)."""
        if not self.pipelined:
            return self._back(self._front(block))
        if self._front_end is None:
            self._front_end = ThreadPoolExecutor(1, thread_name_prefix="rx-front-end")
        future = self._front_end.submit(self._front, block)
        try:
            return self._drain_ready()  # the back end here, the front end of `block` beside it
        finally:
            self._ready = future.result()  # the worker's exception, if any, raised here

    def drain(self) -> list[FrameResult]:
        """The frames whose samples were fed but not returned yet: pipelined, those of the
        last :meth:`process` call; none otherwise. Call it when a stream stops (before
        :meth:`report`): the statistics then count every frame of the samples fed."""
        return self._drain_ready()

    def flush(self) -> list[FrameResult]:
        """End of stream: the frames not returned yet (:meth:`drain`); a frame still waiting
        for samples is counted as truncated."""
        results = self.drain()
        if self._pending:
            self.stats.frames_truncated += 1
            self._pending = False
        return results

    def close(self) -> None:
        """Stop the pipeline's worker thread (idle between calls; a later :meth:`process`
        starts another). Single-threaded: nothing to do."""
        if self._front_end is not None:
            self._front_end.shutdown(wait=True)
            self._front_end = None

    def _front(self, block: np.ndarray) -> _FrontOutput:
        """Stages 1 to 5 on a block: the detected frames' batches, synchronized."""
        x = self.condition(block)
        self.stats.samples += len(x)
        batches: list[_Demodulated] = []
        while True:
            found = self.detect()
            if not found:
                break
            batch = self.demodulate(found)
            if batch is not None:
                batches.append(batch)
            if not self._rejected:
                break  # no false detection: everything buffered was scanned
        drop = min(max(0, self._scan_settled() - self._buf_start), len(self._buf))
        if drop:
            kept = len(self._buf) - drop
            self._store[:kept] = self._buf[drop:]  # numpy copies overlapping ranges correctly
            self._buf = self._store[:kept]
            self._buf_start += drop
        return _FrontOutput(batches, self._scan_settled())

    def _back(self, front: _FrontOutput) -> list[FrameResult]:
        """Stages 6 to 9 on a front end's batches, in order."""
        results: list[FrameResult] = []
        for b in front.batches:
            header, payload, noise_var, snr_db = self.level(b.symbols)
            headers = self.header(header)
            decisions, decoded, coded = self.decode(payload, noise_var, headers)
            results += self.score(b.start_sample, b.cfo_cps, snr_db, noise_var, payload, headers,
                                  decisions, decoded, coded)
        self._settled = front.settled_sample
        return results

    def _drain_ready(self) -> list[FrameResult]:
        ready, self._ready = self._ready, None
        return [] if ready is None else self._back(ready)

    def demodulate(self, found: list[tuple[int, complex]]) -> _Demodulated | None:
        """Stages 3 to 5 on detected frames [(absolute peak index, P at the peak)]: their
        phase-corrected symbols and estimates (None: every detection was false)."""
        first_sample, coarse_cfo, t0 = self.timing(found)
        if not len(t0):
            return None
        self.stats.frames_detected += len(t0)
        z = self.sample(first_sample, coarse_cfo, t0)
        u, cfo = self.phase(z, coarse_cfo)
        return _Demodulated(first_sample + t0, cfo, u)

    # ---- helpers ---------------------------------------------------------------------
    def _emit(self, stage: str, **arrays: np.ndarray) -> None:
        if self.dump is not None:
            self.dump(stage, {k: np.asarray(v) for k, v in arrays.items()})

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

    def _extend(self, count: int) -> np.ndarray:
        """Lengthen the buffer by ``count`` samples; returns them (a view of the storage) to
        be written."""
        kept, end = len(self._buf), len(self._buf) + count
        if end > len(self._store):
            store = np.empty(max(end, 2 * len(self._store)), SAMPLE_DTYPE)
            store[:kept] = self._buf
            self._store = store
        self._buf = self._store[:end]
        return self._buf[kept:]

    def _segments(self, first_sample: np.ndarray, coarse_cfo: np.ndarray, length: int) -> np.ndarray:
        """[F, length] complex64: the buffer from absolute ``first_sample`` [F] on, derotated
        by ``coarse_cfo`` [F] cycles/sample. Samples before the stream's first are zeros (a
        detection in the zero history reaches further back than the history)."""
        return derotated_segments(self._buf, first_sample - self._buf_start, coarse_cfo, length)

    # ---- stage 1 -------------------------------------------------------------------
    def condition(self, block: np.ndarray) -> np.ndarray:
        """Zero non-finite and out-of-range samples (counted); remove the running DC estimate.
        The samples are written at the end of the buffer; returns them (a view of it)."""
        x = np.ascontiguousarray(block, SAMPLE_DTYPE)
        out = self._extend(len(x))
        if len(x):
            # One compiled pass gives the power and the sum; the power tells whether any
            # sample may be bad: not finite, or beyond MAX_SAMPLE_MAGNITUDE (not BLAS:
            # OpenBLAS would start threads that spin on the cores TX and the channel need).
            energy, total = power_and_sum(x)
            if not energy < MAX_SAMPLE_MAGNITUDE**2:
                nonfinite = ~np.isfinite(x)
                overrange = np.abs(np.where(nonfinite, 0, x)) > MAX_SAMPLE_MAGNITUDE
                bad = nonfinite | overrange
                if bad.any():
                    self.stats.nonfinite_samples += int(nonfinite.sum())
                    self.stats.overrange_samples += int(overrange.sum())
                    x = np.where(bad, 0, x).astype(SAMPLE_DTYPE)
                    energy, total = power_and_sum(x)
            m = total / len(x)  # finite: every |sample| <= MAX_SAMPLE_MAGNITUDE
            if not self._dc_init:
                self._dc, self._dc_init = m, True
            else:
                alpha = 1.0 - math.exp(-len(x) / _DC_TIME_CONSTANT)
                self._dc += alpha * (m - self._dc)
            # A DC far below the signal is harmless, while subtracting it would turn
            # silent stretches (zeros) into a constant: a periodic signal the detector sees.
            if abs(self._dc) ** 2 > _DC_RELEVANT * energy / len(x):
                np.subtract(x, np.complex64(self._dc), out=out)
            else:
                out[:] = x
        self._emit("condition", samples=out, dc=np.array(self._dc))
        return out

    # ---- stage 2 -------------------------------------------------------------------
    def detect(self) -> list[tuple[int, complex]]:
        """Frames whose whole segment is buffered: [(absolute peak index, P at the peak)].

        The compiled scan (:func:`aeradio.dsp.detector.scan`) evaluates the metric only where
        a frame can start; with a dump sink, the numpy model of it runs instead and the
        whole metric is dumped.
        """
        hop = self.hop
        a = self._scan - self._buf_start
        # The normalized metric decides; its plateau is wide, so |P| (which grows with the
        # overlap of window and STF) places the peak, among the positions above threshold
        # (|P| of the LTF and header after a cut STF can be as large). A peak before the
        # stream's first sample (the window reached into the zero history) is a frame that
        # began before the stream, its STF cut and its peak misplaced: resume right after
        # it, not a frame later, lest the next frame's STF be skipped.
        args = (
            self._buf[a:], hop, self.lag // hop, self.terms, self.threshold, self.peak_search // hop,
            self.resume_after_peak // hop, (self.peak_search // 2) // hop, -(self._scan // hop),
            (len(self._buf) - a + self.seg_before - self.seg_len) // hop,
        )
        if self.dump is None:
            res = scan(*args)
        else:
            res, metric = scan_reference(*args)
        found = [(self._scan + int(d) * hop, complex(pd)) for d, pd in zip(res.peaks, res.p, strict=True)]
        self._pending = res.pending
        self._scan += res.next_position * hop
        if self.dump is not None:
            self._emit("detect", metric=metric, peaks=np.array([f[0] for f in found], np.int64),
                       threshold=np.array(self.threshold))
        return found

    # ---- stage 3 -------------------------------------------------------------------
    def timing(
        self, found: list[tuple[int, complex]]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The heads of the detected frames' segments (:attr:`head_len` samples; a dump sink
        gets whole segments), derotated by the coarse CFO; LTF timing, refined.

        A detection whose LTF peak is weak is a false detection: the frames found after it
        are dropped (scanning resumes just after it).

        Returns:
            (the segments' first samples [F] int64 (absolute), coarse CFO [F] cycles/sample,
            t0 [F] float64: time of symbol 0 in the segment) of the frames before the first
            false detection.
        """
        lay = self.layout
        peaks = np.array([f[0] for f in found], np.int64)
        coarse_cfo = np.angle(np.array([f[1] for f in found])) / (2 * math.pi * self.lag)
        first_sample = peaks - self.seg_before
        seg = self._segments(first_sample, coarse_cfo, self.head_len if self.dump is None else self.seg_len)
        lag, quality = self.ltf_timing.estimate(seg, self._ltf_first, 2 * self.ltf_search + 1)
        t0 = lag + lay.filter_delay - len(lay.stf) * lay.sps
        rejected = quality <= self.ltf_threshold
        self._emit("timing", segments=seg, coarse_cfo_cps=coarse_cfo, t0=t0, quality=quality,
                   rejected=rejected)
        bad = np.flatnonzero(rejected)
        self._rejected = len(bad) > 0
        if self._rejected:
            # Frames after a false detection were skipped over: scan again from just
            # after it, and keep only the frames before it.
            self.stats.false_detections += 1
            j = int(bad[0])
            self._scan = int(peaks[j]) + self.peak_search // 2
            seg, first_sample, coarse_cfo, t0 = seg[:j], first_sample[:j], coarse_cfo[:j], t0[:j]
        if len(t0):
            t0 = self.refiner.refine(seg, t0)
        return first_sample, coarse_cfo, t0

    # ---- stage 4 -------------------------------------------------------------------
    def sample(self, first_sample: np.ndarray, coarse_cfo: np.ndarray, t0: np.ndarray) -> np.ndarray:
        """Matched-filter outputs at the symbol instants, timing tracked: [F, num_symbols] complex64.

        The frames' segments (absolute ``first_sample`` [F], derotated by ``coarse_cfo`` [F]
        cycles/sample, ``t0`` [F] within them) are read from the buffer: each group's window
        is derotated into a scratch row the matched filter's planes are filled from; no
        segment is stored.

        Group by group (:data:`_TIMING_GROUP_SYMBOLS`), the symbols are sampled at
        ``t0 + k sps`` plus the offset that a line through the earlier groups' estimates
        predicts (the preamble's, ``t0``, counting as 0); the group's own Gardner error then
        adds its estimate. A line, because a sample-clock offset drifts the instants
        linearly; its slope is held back (:func:`~aeradio.dsp.sync.timing_line`) while the
        groups span little time. Compiled, frame by frame
        (:func:`~aeradio.dsp.sync.sample_tracked`; its model:
        :func:`~aeradio.dsp.sync.sample_tracked_reference`).
        """
        lay, sps = self.layout, self.layout.sps
        z, offsets = sample_tracked(
            self._buf, first_sample - self._buf_start, coarse_cfo, self.seg_len, t0, self._timing_groups,
            lay.num_symbols, (len(lay.preamble) - 1) / 2, _PREAMBLE_TIMING_WEIGHT, _TIMING_GROUP_SYMBOLS,
            MAX_CLOCK_OFFSET_PPM * 1e-6 * sps, _GROUP_TIMING_STD_SAMPLES, self.gardner,
        )
        self._emit("sample", symbols=z, t0=t0, timing_offsets_samples=offsets)
        return z

    # ---- stage 5 -------------------------------------------------------------------
    def phase(self, z: np.ndarray, coarse_cfo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Fine CFO on the preamble, then a phase line through preamble and pilots.

        Returns:
            (symbols [F, num_symbols] complex64 with phase and CFO removed,
            CFO [F] cycles/sample: coarse plus residual).
        """
        lay, sps = self.layout, self.layout.sps
        # Two lags: the short one is unambiguous over the coarse error, the long one (half
        # the preamble) is precise enough to unwrap phases across the header to the pilots
        # (compiled, :func:`~aeradio.dsp.sync.phase_line`; its model: ``phase_line_reference``).
        starts, centres = self._groups
        fine, phase0, slope = phase_line(z, lay.known_index, lay.known_symbols, len(lay.preamble),
                                         _FINE_CFO_LAG_SYMBOLS, sps, starts, centres)
        cfo_residual = fine + slope / (2 * math.pi * sps)  # cycles/sample
        u = rotate_linear(z, -cfo_residual * sps, -phase0)
        cfo = coarse_cfo + cfo_residual
        self._emit("phase", symbols=u, fine_cfo_cps=fine, phase0_rad=phase0, cfo_cps=cfo)
        return u, cfo

    # ---- stage 6 -------------------------------------------------------------------
    def level(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Gain and noise from the known symbols; the header's and the payload's symbols at
        unit gain (the rest of the frame is not scaled, but in the dump).

        Returns:
            (unit-gain header symbols [F, header_len] complex64, unit-gain payload symbols
            [F, blocks, n] complex64, noise variance per real component [F] float32, SNR [F] dB).
        """
        lay = self.layout
        gain, noise = amplitude_noise(u[:, lay.known_index], lay.known_symbols)
        # Real and imaginary parts times the float32 reciprocal: the values of numpy's complex
        # division by gain + 0j (Smith's algorithm), a quarter of its time; gathered in the
        # same compiled pass (the payload's blocks contiguous, as the decoder takes them).
        inv_gain = np.float32(1.0) / gain.astype(np.float32)
        header = scaled_columns(u, self._header_index, inv_gain)
        payload = scaled_columns(u, lay.payload_index, inv_gain).reshape(len(u), lay.blocks, lay.n)
        noise_var = (noise / (2 * gain**2)).astype(np.float32)
        snr_db = 10 * np.log10(gain**2 / noise)
        if self.dump is not None:
            self._emit("level", symbols=scaled_columns(u, np.arange(u.shape[1]), inv_gain), gain=gain,
                       noise_var=noise_var, snr_db=snr_db)
        return header, payload, noise_var, snr_db

    # ---- stage 7 -------------------------------------------------------------------
    def header(self, symbols: np.ndarray) -> list[Header | None]:
        """Soft coded header bits of the unit-gain header symbols [F, header_len], Viterbi
        decoding, CRC-16: each frame's header, or None."""
        llr = self.layout.header_llr(symbols)
        headers = decode_headers(llr)
        self._emit("header", llr=llr, crc_ok=np.array([h is not None for h in headers]))
        return headers

    # ---- stage 8 -------------------------------------------------------------------
    def decode(
        self, payload: np.ndarray, noise_var: np.ndarray, headers: list[Header | None]
    ) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
        """The block decoder on the payload (``payload`` [F, blocks, n] complex64, unit gain)
        of the frames with a header of this model (and of its kind: coded or not); for a
        coded model, the outer code's decoder after it.

        Returns:
            (decisions [F, blocks] int64 (zeros for frames not decoded), decoded [F] bool,
            None for an uncoded model, else (information bits [F, C K] uint8, parity
            satisfied [F, C] bool), zeros for frames not decoded).
        """
        lay = self.layout
        ours = self.model_hash16
        # Probe frames carry symbols, not codewords: no CODED flag, whatever the model.
        decoded = np.array(
            [h is not None and (ours is None or h.model_hash == ours)
             and (h.coded == lay.coded or h.payload == PAYLOAD_PROBE) for h in headers],
            bool,
        )
        decisions = np.zeros((len(headers), lay.blocks), np.int64)
        coded = None
        if self.code is not None:
            coded = (np.zeros((len(headers), lay.info_bits), np.uint8),
                     np.zeros((len(headers), lay.codewords), bool))
        if decoded.any():
            # The decoded frames' blocks: no copy when every frame is decoded.
            blocks = (payload if decoded.all() else payload[decoded]).reshape(-1, lay.n)
            nv = np.repeat(noise_var[decoded], lay.blocks)
            if coded is None:
                decided = np.asarray(self._decode_blocks(blocks, nv), np.int64)
                decisions[decoded] = decided.reshape(-1, lay.blocks)
            else:
                index = np.flatnonzero(decoded)
                llrs = np.asarray(self._decode_blocks(blocks, nv), np.float32).reshape(len(index), -1)
                decisions[decoded] = bits_to_messages(llrs > 0, lay.k)
                words = np.array([headers[i].payload != PAYLOAD_PROBE for i in index], bool)  # type: ignore[union-attr]
                if words.any():
                    bits, ok = self.code.decode(llrs[words].reshape(-1, self.code.codeword_bits))
                    coded[0][index[words]] = np.asarray(bits, np.uint8).reshape(-1, lay.info_bits)
                    coded[1][index[words]] = np.asarray(ok, bool).reshape(-1, lay.codewords)
        extra = {} if coded is None else {"info_bits": coded[0], "parity_ok": coded[1]}
        self._emit("decode", decisions=decisions, decoded=decoded, **extra)
        return decisions, decoded, coded

    def _decode_blocks(self, blocks: np.ndarray, noise_var: np.ndarray) -> np.ndarray:
        """The block decoder on ``blocks`` [B, n] in pieces of :attr:`decode_piece_blocks`;
        pipelined, the worker takes pieces too once its front end is done (the decoder is
        most of the back end: the two threads then share it as their loads allow)."""
        pieces = _DecoderPieces(self.decoder, blocks, noise_var, self.decode_piece_blocks)
        if self._front_end is not None and len(blocks) > self.decode_piece_blocks:
            self._front_end.submit(pieces.work)  # runs after the front end queued before it
        return pieces.result()

    # ---- stage 9 -------------------------------------------------------------------
    def score(
        self,
        start_sample: np.ndarray,
        cfo_cps: np.ndarray,
        snr_db: np.ndarray,
        noise_var: np.ndarray,
        payload: np.ndarray,
        headers: list[Header | None],
        decisions: np.ndarray,
        decoded: np.ndarray,
        coded: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> list[FrameResult]:
        """Full sequence numbers, test-pattern block (and codeword) errors, data CRC-32 and
        statistics.

        Args:
            start_sample: [F] float, absolute time of symbol 0; cfo_cps, snr_db, noise_var:
                [F] estimates; payload: [F, blocks, n] unit-gain payload symbols; headers, decisions,
                decoded, coded: the outputs of the header and decode stages.
        Returns:
            One :class:`FrameResult` per frame, in stream order.
        """
        errors, word_errors = self._block_errors(headers, decisions, decoded, coded)
        results = []
        # Python floats and ints of the whole batch at once (a numpy scalar per field and
        # frame costs more than the frame's accounting).
        floats = (np.asarray(v, np.float64).tolist() for v in (start_sample, cfo_cps, snr_db, noise_var))
        columns = zip(headers, *floats, decoded.tolist(), errors.tolist(), word_errors.tolist(), strict=True)
        for i, (h, start, cfo, snr, nv, ok, err, word_err) in enumerate(columns):
            r = FrameResult(start, cfo, snr, nv, h, payload[i])
            if coded is not None and ok and h is not None and h.payload != PAYLOAD_PROBE:
                r.info_bits, r.parity_ok = coded[0][i], coded[1][i]
            self._account(r, decisions[i] if ok else None, err, word_err)
            results.append(r)
        self._emit("score", block_errors=errors, codeword_errors=word_errors,
                   seq=np.array([-1 if r.seq is None else r.seq for r in results], np.int64))
        return results

    def _block_errors(
        self, headers: list[Header | None], decisions: np.ndarray, decoded: np.ndarray,
        coded: tuple[np.ndarray, np.ndarray] | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Block errors and codeword errors (coded model) of each decoded test-pattern frame
        (-1 for the others), all frames at once; each frame's pattern from its own header
        (seed and sequence number). A coded frame's blocks are compared with the codewords'
        bits (the demapper's hard decisions, before decoding), its codewords by their
        information bits (after decoding)."""
        lay = self.layout
        errors = np.full(len(headers), -1, np.int64)
        word_errors = np.full(len(headers), -1, np.int64)
        tp = [i for i, h in enumerate(headers) if decoded[i] and h and h.payload == PAYLOAD_TEST_PATTERN]
        if tp:
            seeds = np.array([headers[i].seed for i in tp])  # type: ignore[union-attr]
            seqs = np.array([headers[i].seq for i in tp])  # type: ignore[union-attr]
            if coded is None or self.code is None:
                expected = pattern_messages(seeds, seqs, lay.blocks, lay.M)
            else:
                bits = pattern_bits(seeds, seqs, lay.info_bits)
                expected = encode_payload(self.code, bits, lay.k)
                wrong = (coded[0][tp] != bits).reshape(len(tp), lay.codewords, -1)
                word_errors[tp] = np.sum(wrong.any(axis=2), axis=1)
            errors[tp] = np.sum(decisions[tp] != expected, axis=1)
        return errors, word_errors

    def _account(
        self, r: FrameResult, decisions: np.ndarray | None, block_errors: int, codeword_errors: int
    ) -> None:
        """Fill in one frame's result and count it in the statistics."""
        s, lay = self.stats, self.layout
        if r.header is None:
            s.header_crc_failures += 1
            return
        if decisions is None:
            s.model_mismatches += 1
            s.code_mismatches += int(r.header.coded != lay.coded and r.header.payload != PAYLOAD_PROBE)
            return
        s.frames_decoded += 1
        r.seq = s.add_decoded(r.snr_db, r.cfo_cps, r.header, r.start_sample, self.frame_samples)
        r.decisions = decisions
        parity_ok = True
        if r.parity_ok is not None:
            s.decoder_failures += int(np.count_nonzero(~r.parity_ok))
            parity_ok = bool(r.parity_ok.all())
        if r.header.payload == PAYLOAD_TEST_PATTERN:
            r.block_errors = block_errors
            s.blocks += lay.blocks
            s.block_errors += r.block_errors
            if r.info_bits is not None:
                r.codeword_errors = codeword_errors
                s.codewords += lay.codewords
                s.codeword_errors += codeword_errors
        elif r.header.is_data:
            if not parity_ok:  # a codeword did not decode: the frame is missing, as a CRC failure
                s.data_decode_failures += 1
                return
            seq = r.header.seq if r.header.whitened else None
            if r.info_bits is not None:
                r.data = unpack_data(r.info_bits, 1, r.header.length, seq)
            else:
                r.data = unpack_data(decisions, lay.k, r.header.length, seq)
            r.data_crc_ok = r.data is not None
            s.data_crc_failures += int(r.data is None)
        elif r.header.payload == PAYLOAD_PROBE:
            s.probe_frames += 1

    # ---- report ----------------------------------------------------------------------
    def report(self, sample_rate_hz: float, frames_expected: int | None = None) -> dict[str, object]:
        """The ``rx --json`` report (its keys: docs/contracts.md).

        ``frames_expected`` None: what the frames tell (:attr:`RxStats.frames_expected`:
        from each run's LAST frame when it was seen).
        """
        s = self.stats
        return {
            "frames_expected": s.frames_expected if frames_expected is None else frames_expected,
            "frames_detected": s.frames_detected,
            "frames_decoded": s.frames_decoded,
            "frames_truncated": s.frames_truncated,
            "false_detections": s.false_detections,
            "header_crc_failures": s.header_crc_failures,
            "model_mismatches": s.model_mismatches,
            "code_mismatches": s.code_mismatches,
            "last_frame_seen": s.last_frame_seen,
            "last_frame_seq": s.last_frame_seq,
            "frames_before_listening": s.frames_before_listening,
            "frames_missing": s.frames_missing,
            "missing_ranges": list(s.missing_ranges),
            "last_decoded_seq": s.run_seq if s.run_seq is not None else s.last_frame_seq,
            "blocks": s.blocks,
            "block_errors": s.block_errors,
            "bler": s.block_errors / s.blocks if s.blocks else None,
            "coded": self.layout.coded,
            "codewords": s.codewords,
            "codeword_errors": s.codeword_errors,
            "coded_bler": s.codeword_errors / s.codewords if s.codewords else None,
            "decoder_failures": s.decoder_failures,
            "data_crc_failures": s.data_crc_failures,
            "data_decode_failures": s.data_decode_failures,
            "probe_frames": s.probe_frames,
            "snr_db": s.mean_snr_db,
            "cfo_hz": s.mean_cfo_cps * sample_rate_hz if s.mean_cfo_cps is not None else None,
            "nonfinite_samples": s.nonfinite_samples,
            "overrange_samples": s.overrange_samples,
            "samples": s.samples,
        }
