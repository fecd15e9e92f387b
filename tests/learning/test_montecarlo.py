"""Chunked Monte Carlo (aeradio.learning.montecarlo), without Ray: the chunk plan, the exact
merge, independence from the order chunks finish in, and the streams."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aeradio.core.errors import ConfigError
from aeradio.learning.baselines import qpsk_ser
from aeradio.learning.montecarlo import (
    ChunkCounts,
    ChunkPlan,
    PointProgress,
    baseline_simulator,
    merge_chunks,
    point_seed_sequence,
    run_point,
)
from aeradio.learning.training import torch_threads


@settings(max_examples=200, deadline=None)
@given(
    max_blocks=st.integers(1, 10**12),
    first_log2=st.integers(0, 20),
    extra_log2=st.integers(0, 20),
)
def test_chunk_plan_covers_max_blocks_exactly(max_blocks, first_log2, extra_log2):
    first, largest = 1 << first_log2, 1 << (first_log2 + extra_log2)
    plan = ChunkPlan(max_blocks, first_blocks=first, max_chunk_blocks=largest)
    n = plan.n_chunks
    if n > 10_000:  # the closed form, not a walk over millions of chunks
        assert plan.start(n) == max_blocks and plan.start(n - 1) < max_blocks
        return
    sizes = [plan.size(i) for i in range(n)]
    assert sum(sizes) == max_blocks and all(s > 0 for s in sizes) and plan.size(n) == 0
    assert all(s <= plan.max_chunk_blocks for s in sizes)
    assert all(a <= b for a, b in zip(sizes[:-2], sizes[1:-1], strict=True))  # the last may be cut short
    assert sizes[0] == min(plan.first_blocks, max_blocks)


def test_chunk_plan_of_a_low_bler_point():
    plan = ChunkPlan(100_000_000)
    # 16 k, 32 k, ... 1 M blocks, then 1 M blocks per chunk: ~100 tasks for 1e8 blocks.
    assert [plan.size(i) for i in range(8)] == [16384 << i for i in range(7)] + [1 << 20]
    assert plan.n_chunks == 7 + -(-(100_000_000 - plan.start(7)) // (1 << 20))
    with pytest.raises(ConfigError, match="max_blocks"):
        ChunkPlan(0)
    with pytest.raises(ConfigError, match="first_blocks"):
        ChunkPlan(10, first_blocks=8, max_chunk_blocks=4)


def test_merge_takes_the_shortest_prefix_that_reaches_the_target():
    plan = ChunkPlan(100, first_blocks=10, max_chunk_blocks=40)  # sizes 10, 20, 40, 30
    c = {0: ChunkCounts(10, 2), 1: ChunkCounts(20, 3), 2: ChunkCounts(40, 9), 3: ChunkCounts(30, 30)}
    assert merge_chunks(c, plan, 5).blocks == 30 and merge_chunks(c, plan, 5).errors == 5
    # Chunk 3 is past the count: whatever it holds does not change the result.
    assert merge_chunks({**c, 3: ChunkCounts(30, 0)}, plan, 5) == merge_chunks(c, plan, 5)
    # A gap below the count: not decided, even though later chunks hold enough errors.
    assert merge_chunks({1: c[1], 2: c[2]}, plan, 5) is None
    res = merge_chunks(c, plan, 1000)
    assert (res.blocks, res.errors, res.chunks, res.reached_target) == (100, 44, 4, False)
    assert res.interval[0] < res.bler < res.interval[1]


def _fake_chunk(plan, seed):
    """Deterministic per chunk index (as a real chunk is per stream), BLER ~ 1e-3."""

    def chunk(index):
        rng = np.random.default_rng([seed, index])
        blocks = plan.size(index)
        return ChunkCounts(blocks, int(rng.binomial(blocks, 1e-3)))

    return chunk


@pytest.mark.parametrize("seed", range(20))
def test_any_completion_order_gives_the_serial_counts(seed):
    plan = ChunkPlan(3_000_000, first_blocks=1000, max_chunk_blocks=64_000)
    target = int(np.random.default_rng(seed).integers(1, 4000))  # some points stop at max_blocks
    chunk = _fake_chunk(plan, seed)
    serial = run_point(chunk, plan, target)
    # A scheduler with a random window, finishing the chunks in flight in a random order.
    rng = np.random.default_rng(1000 + seed)
    window = int(rng.integers(1, 9))
    progress, in_flight = PointProgress(plan, target), []
    while progress.result() is None:
        for _ in range(min(progress.wanted(), window - len(in_flight))):
            in_flight.append(progress.issue())
        assert in_flight, "a point neither done nor running: the scheduler would stall"
        done = in_flight.pop(int(rng.integers(len(in_flight))))
        progress.record(done, chunk(done))
    assert progress.result() == serial
    assert serial.reached_target == (serial.errors >= target)


def test_progress_stops_issuing_at_the_target_and_waits_for_gaps():
    plan = ChunkPlan(10_000, first_blocks=100, max_chunk_blocks=100)
    progress = PointProgress(plan, target_errors=10)
    assert progress.wanted() == 1  # nothing known yet: one (small) chunk
    i0 = progress.issue()
    assert progress.wanted() == 0
    progress.record(i0, ChunkCounts(100, 2))
    assert progress.wanted() == 4  # 8 errors to go at 2 per 100 blocks
    i1, i2 = progress.issue(), progress.issue()
    progress.record(i2, ChunkCounts(100, 9))  # the target is reached, with chunk 1 missing
    assert progress.wanted() == 0 and progress.result() is None
    progress.record(i1, ChunkCounts(100, 0))
    assert progress.result().errors == 11 and progress.result().chunks == 3
    with pytest.raises(ValueError, match="never issued"):
        progress.record(50, ChunkCounts(100, 0))


def test_chunks_are_reproducible_and_independent_of_order():
    sim = baseline_simulator("QPSK", 2, 1)
    plan = ChunkPlan(200_000, first_blocks=10_000, max_chunk_blocks=40_000)
    point = point_seed_sequence(1, "baseline:QPSK", 4.0)
    with torch_threads(1):
        later_first = sim.chunk(4.0, "awgn", plan, point, 3)
        in_order = [sim.chunk(4.0, "awgn", plan, point, i) for i in range(4)]
        other_point = sim.chunk(4.0, "awgn", plan, point_seed_sequence(1, "baseline:QPSK", 4.5), 3)
    assert in_order[3] == later_first and later_first.blocks == 40_000
    assert len({c.errors for c in in_order}) > 1  # chunks draw from different streams
    assert other_point != later_first


def test_merged_bler_of_qpsk_matches_the_formula():
    sim = baseline_simulator("QPSK", 2, 1)
    plan = ChunkPlan(2_000_000, first_blocks=4096, max_chunk_blocks=65536)
    point = point_seed_sequence(3, "baseline:QPSK", 4.0)
    with torch_threads(1):
        res = run_point(lambda i: sim.chunk(4.0, "awgn", plan, point, i), plan, target_errors=2000)
    assert res.reached_target and res.errors >= 2000
    lo, hi = res.interval
    assert lo <= float(qpsk_ser(4.0)) <= hi


def test_streams_need_a_valid_seed_and_baselines_a_known_name():
    with pytest.raises(ConfigError, match="--seed"):
        point_seed_sequence(-1, "model:x", 4.0)
    a = point_seed_sequence(1, "model:a:seed0", 4.0).generate_state(4)
    b = point_seed_sequence(1, "model:a:seed1", 4.0).generate_state(4)
    assert not np.array_equal(a, b)
    with pytest.raises(ConfigError, match="no baseline"):
        baseline_simulator("Hamming(7,4) soft-MLD", 2, 1)
