"""The compiled detector scan against its numpy model (the same peaks, positions and P), and
the RX chain on both paths decoding the same blocks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aeradio.core.units import noise_var_per_real
from aeradio.dsp import impairments as imp
from aeradio.dsp.detector import RESYNC_POSITIONS, metric_positions, scan, scan_reference
from tests.flowgraphs.conftest import SEED, Link


def scan_args(rx, x: np.ndarray) -> tuple:
    """The arguments the RX chain gives a scan of ``x`` from the stream's first sample."""
    hop = rx.hop
    return (x, hop, rx.lag // hop, rx.terms, rx.threshold, rx.peak_search // hop, rx.resume_after_peak // hop,
            (rx.peak_search // 2) // hop, 0, (len(x) + rx.seg_before - rx.seg_len) // hop)


def frames(link: Link, count: int, ebn0_db: float, cfo_cps: float, rng: np.random.Generator,
           gap_samples: int = 0) -> np.ndarray:
    x = link.tx.test_pattern(np.arange(count), SEED)
    if gap_samples:
        x = np.concatenate([np.zeros(gap_samples, np.complex64), x])
    x = imp.apply_cfo(np.concatenate([x, np.zeros(3000, np.complex64)]), cfo_cps, phase_rad=0.7)
    return imp.add_awgn(x, 2 * noise_var_per_real(ebn0_db, link.cfg.model.rate), rng)


def assert_same_scan(fast, ref) -> None:
    np.testing.assert_array_equal(fast.peaks, ref.peaks)
    assert (fast.next_position, fast.pending) == (ref.next_position, ref.pending)
    # P in float64 sliding sums against numpy's float32 cumulative sums.
    np.testing.assert_allclose(fast.p, ref.p, rtol=2e-3, atol=1e-3 * float(np.max(np.abs(ref.p), initial=1)))


@pytest.mark.parametrize(("ebn0_db", "cfo_cps", "gap"), [(4.0, 0.02, 0), (8.0, -0.03, 1234), (30.0, 0.0, 17)])
def test_scan_finds_the_reference_peaks_on_frames(link, ebn0_db, cfo_cps, gap):
    rx = link.rx()
    x = frames(link, 12, ebn0_db, cfo_cps, np.random.default_rng(1), gap)
    fast, (ref, metric) = scan(*scan_args(rx, x)), scan_reference(*scan_args(rx, x))
    assert len(ref.peaks) == 12
    assert len(metric) == metric_positions(len(x), rx.hop, rx.lag // rx.hop, rx.terms)
    assert_same_scan(fast, ref)


def test_scan_matches_the_reference_on_noise_with_many_hits(link):
    """A low threshold: hundreds of hits, peak searches and jumps, early peaks included."""
    rx = link.rx()
    x = imp.add_awgn(np.zeros(200_000, np.complex64), 1.0, np.random.default_rng(2))
    hop = rx.hop
    last = metric_positions(len(x), hop, 4, rx.terms)
    args = (x, hop, rx.lag // hop, rx.terms, 0.02, 40, 300, 25, 5000, last)
    fast, (ref, _) = scan(*args), scan_reference(*args)
    assert len(ref.peaks) > 100 and np.any(ref.peaks < 5000)
    assert_same_scan(fast, ref)


def test_scan_stops_pending_where_the_reference_does(link):
    rx = link.rx()
    x = frames(link, 3, 10.0, 0.01, np.random.default_rng(3))
    period = (len(x) - 3000) // 3
    cut = x[: 2 * period + period // 2]  # the third frame not all there
    fast, (ref, _) = scan(*scan_args(rx, cut)), scan_reference(*scan_args(rx, cut))
    assert ref.pending and len(ref.peaks) == 2
    assert_same_scan(fast, ref)


def test_a_strong_burst_leaves_no_error_behind(link):
    """Sliding sums through a burst 160 dB above the frames after it: the resync keeps the
    metric exact, so the frames are found where they are found without the burst (numpy's
    cumulative sums lose them)."""
    rx = link.rx()
    rng = np.random.default_rng(4)
    burst = imp.add_awgn(np.zeros(3 * RESYNC_POSITIONS, np.complex64), 1e12, rng)
    weak = frames(link, 4, 8.0, 0.0, rng, gap_samples=5000) * np.float32(1e-2)
    alone = scan(*scan_args(rx, weak))
    fast = scan(*scan_args(rx, np.concatenate([burst, weak])))
    assert len(alone.peaks) == 4
    np.testing.assert_array_equal(fast.peaks[-4:], alone.peaks + len(burst) // rx.hop)


def test_too_short_an_input_scans_nothing(link):
    rx = link.rx()
    x = np.ones(10, np.complex64)
    fast, (ref, metric) = scan(*scan_args(rx, x)), scan_reference(*scan_args(rx, x))
    assert len(fast.peaks) == len(ref.peaks) == len(metric) == 0
    assert (fast.next_position, fast.pending) == (ref.next_position, ref.pending) == (0, False)


def test_rx_chain_decodes_the_same_blocks_on_both_paths(link):
    """The chain with a dump sink runs the numpy model of the scan; without, the compiled one."""
    rng = np.random.default_rng(5)
    x = frames(link, 30, 5.0, 0.015, rng, gap_samples=777)
    x = imp.apply_sco(x, 40.0)
    results = []
    for dump in (None, lambda stage, arrays: None):
        rx = link.rx(dump=dump)
        out = []
        for i in range(0, len(x), 10_000):
            out += rx.process(x[i : i + 10_000])
        results.append((out, rx.stats))
    (fast, fast_stats), (ref, ref_stats) = results
    assert fast_stats.frames_decoded == ref_stats.frames_decoded == 30
    assert fast_stats.block_errors == ref_stats.block_errors
    assert [r.seq for r in fast] == [r.seq for r in ref]
    for a, b in zip(fast, ref, strict=True):
        np.testing.assert_array_equal(a.decisions, b.decisions)
        assert math.isclose(a.start_sample, b.start_sample, abs_tol=1e-6)
