"""The RX chain on anything a source can deliver (hypothesis): it never raises (nor warns),
and its statistics stay consistent.

Streams are TX frames through random impairments (CFO, IQ imbalance, DC, noise, delay,
amplitude), cut at either end, with bursts of non-finite samples or all zeros, fed in
blocks of random sizes (empty ones included).
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from aeradio.core.units import noise_var_per_real
from aeradio.dsp import impairments as imp
from aeradio.dsp.framing import MAX_RUN_FRAMES, PAYLOAD_TEST_PATTERN, SEQ_MODULUS
from aeradio.flowgraphs.rx_chain import MAX_SAMPLE_MAGNITUDE, FrameResult, RxChain
from tests.flowgraphs.conftest import Link

#: Samples fed after the drawn blocks, per call.
TAIL_BLOCK = 8192


@dataclass(frozen=True)
class Stream:
    frames: int
    first_seq: int
    seed: int
    last: bool
    lead_samples: int
    cut_start: int
    cut_end: int
    cfo_cps: float
    delay_samples: float
    iq_gain_db: float
    iq_phase_deg: float
    dc: complex
    ebn0_db: float | None
    log10_scale: float
    bursts: tuple[tuple[float, int, float], ...]
    all_zero: bool
    blocks: tuple[int, ...]


streams = st.builds(
    Stream,
    frames=st.integers(0, 4),
    first_seq=st.one_of(
        st.integers(0, 10), st.integers(SEQ_MODULUS - 4, SEQ_MODULUS + 2), st.integers(0, MAX_RUN_FRAMES - 5)
    ),
    seed=st.integers(0, 4095),
    last=st.booleans(),
    lead_samples=st.integers(0, 3000),
    cut_start=st.integers(0, 2000),
    cut_end=st.integers(0, 2000),
    cfo_cps=st.floats(-0.04, 0.04),
    delay_samples=st.floats(0.0, 4.0),
    iq_gain_db=st.floats(-4.0, 4.0),
    iq_phase_deg=st.floats(-25.0, 25.0),
    dc=st.complex_numbers(max_magnitude=0.5),
    ebn0_db=st.one_of(st.none(), st.floats(-5.0, 30.0), st.floats(6.0, 30.0)),
    log10_scale=st.one_of(st.just(0.0), st.floats(-3.0, 3.0), st.floats(-30.0, 18.0)),
    bursts=st.lists(
        st.tuples(st.floats(0.0, 1.0), st.integers(1, 300), st.sampled_from([math.nan, math.inf, -math.inf])),
        max_size=3,
    ).map(tuple),
    all_zero=st.sampled_from([False] * 7 + [True]),
    blocks=st.lists(st.integers(0, 6000), max_size=12).map(tuple),
)


def _samples(link: Link, s: Stream, rng: np.random.Generator) -> np.ndarray:
    """The stream: [N] complex64."""
    if s.frames:
        x = link.tx.test_pattern(np.arange(s.first_seq, s.first_seq + s.frames), s.seed, last=s.last)
    else:
        x = np.zeros(0, np.complex64)
    x = np.concatenate([np.zeros(s.lead_samples, np.complex64), x])
    x = x[s.cut_start : max(s.cut_start, len(x) - s.cut_end)]
    if s.all_zero:
        x = np.zeros_like(x)
    else:
        x = imp.apply_delay(x, s.delay_samples) if len(x) else x
        x = imp.apply_cfo(x, s.cfo_cps)
        x = imp.apply_iq_imbalance(x, s.iq_gain_db, s.iq_phase_deg)
        x = imp.apply_dc_offset(x, s.dc * math.sqrt(1 / link.cfg.radio.samples_per_symbol))
        if s.ebn0_db is not None:
            x = imp.add_awgn(x, 2 * noise_var_per_real(s.ebn0_db, link.cfg.model.rate), rng)
        x = (x * np.float32(10.0**s.log10_scale)).astype(np.complex64)
    for where, length, value in s.bursts:
        i = int(where * len(x))
        x[i : i + length] = value
    return x


def _feed(rx: RxChain, x: np.ndarray, blocks: tuple[int, ...]) -> list[FrameResult]:
    out: list[FrameResult] = []
    pos = 0
    for size in blocks:
        out += rx.process(x[pos : pos + size])
        pos += size
    for i in range(pos, len(x), TAIL_BLOCK):
        out += rx.process(x[i : i + TAIL_BLOCK])
    out += rx.flush()
    return out


def check_consistent(rx: RxChain, results: list[FrameResult], sent_frames: int, fed: int) -> None:
    """What holds for any stream: counts add up, the report is finite JSON."""
    s = rx.stats
    assert s.samples == fed
    assert len(results) == s.frames_detected
    assert s.frames_decoded + s.header_crc_failures + s.model_mismatches == s.frames_detected
    decoded = [r for r in results if r.seq is not None]
    assert len(decoded) == s.frames_decoded <= sent_frames
    tp = [r for r in decoded if r.header is not None and r.header.payload == PAYLOAD_TEST_PATTERN]
    assert s.blocks == len(tp) * rx.layout.blocks and 0 <= s.block_errors <= s.blocks
    assert all(r.block_errors is not None and 0 <= r.block_errors <= rx.layout.blocks for r in tp)
    assert s.frames_truncated <= 1
    starts = [r.start_sample for r in results]
    assert all(math.isfinite(t) for t in starts) and starts == sorted(starts)
    report = rx.report(1e6)
    json.dumps(report, allow_nan=False)  # finite numbers only: a strict JSON report


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink])
@given(s=streams, noise_seed=st.integers(0, 2**32 - 1))
def test_rx_chain_never_raises_and_stays_consistent(
    link: Link, new_rx: Callable[[], RxChain], s: Stream, noise_seed: int
) -> None:
    x = _samples(link, s, np.random.default_rng(noise_seed))
    rx = new_rx()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow or invalid value on the way
        results = _feed(rx, x, s.blocks)
    check_consistent(rx, results, s.frames, len(x))
    finite = np.isfinite(x)
    assert rx.stats.nonfinite_samples == np.sum(~finite)
    assert rx.stats.overrange_samples == np.sum(np.abs(x[finite]) > MAX_SAMPLE_MAGNITUDE)
    if s.all_zero:
        assert results == [] and rx.stats.false_detections == 0
    # Decoded frames are frames that were sent, in order, numbered as sent.
    sent = {(q % SEQ_MODULUS): q for q in range(s.first_seq, s.first_seq + s.frames)}
    decoded = [r for r in results if r.seq is not None]
    for r in decoded:
        assert r.header is not None and r.header.seq in sent and r.header.seed == s.seed
        assert r.header.last == (s.last and sent[r.header.seq] == s.first_seq + s.frames - 1)
        assert r.seq % SEQ_MODULUS == r.header.seq
    assert np.array_equal(np.diff([r.seq for r in decoded]), np.diff([sent[r.header.seq] for r in decoded]))
