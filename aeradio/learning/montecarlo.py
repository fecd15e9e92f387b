"""Monte Carlo BLER points split into independent chunks, merged exactly.

A point (one model, one Eb/N0) is simulated as a sequence of chunks that any number of
workers may run in any order; the merged count does not depend on which ran where or when:

- **Chunk plan.** Chunk ``i`` has a fixed size (:class:`ChunkPlan`): the first has
  :data:`FIRST_CHUNK_BLOCKS` blocks, each next one twice as many, up to
  :data:`MAX_CHUNK_BLOCKS`; the chunks together hold ``max_blocks`` blocks. Small chunks
  first, so an easy point (high BLER) ends after a few thousand blocks; large ones later,
  so a hard point (BLER 1e-6, ~1e8 blocks) costs a few hundred tasks, not a million.
- **Independent streams.** Chunk ``i`` of a point draws from its own stream: child ``i``
  of the point's :class:`numpy.random.SeedSequence` (:func:`point_seed_sequence`: the
  run's seed and a hash of the point's name and Eb/N0), which seeds the chunk's
  ``torch.Generator`` (:func:`chunk_generator`). Same seed, same point, same chunk: the
  same blocks, on any worker.
- **Exact merge.** The point's count is the first ``K`` chunks, in chunk-index order, whose
  block errors reach ``target_errors`` (all chunks if they never do): summed errors and
  blocks (:func:`merge_chunks`). Chunks run past ``K`` are discarded, so a serial run
  (:func:`run_point`) and a parallel one give the same counts.
- **Rounds.** :class:`PointProgress` tells a scheduler how many more chunks a point is
  worth: none once the errors of the finished chunks reach the target (it then only
  waits for the gaps below ``K``), otherwise as many as the observed error rate says are
  still needed.

>>> plan = ChunkPlan(max_blocks=100_000, first_blocks=10_000, max_chunk_blocks=40_000)
>>> [plan.size(i) for i in range(plan.n_chunks)]
[10000, 20000, 40000, 30000]
>>> counts = {0: ChunkCounts(10_000, 3), 1: ChunkCounts(20_000, 5), 2: ChunkCounts(40_000, 9)}
>>> merge_chunks(counts, plan, target_errors=8)
PointResult(blocks=30000, errors=8, chunks=2, reached_target=True)
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from aeradio.core.config import TrainingConfig
from aeradio.core.errors import ConfigError
from aeradio.learning.evaluate import Decoder, ml_decoder, neural_decoder, simulate_lut, wilson_interval

#: Blocks of a point's first chunk; each next chunk doubles ...
FIRST_CHUNK_BLOCKS = 1 << 14
#: ... up to this many blocks (about one second of one worker for AE(7,8)).
MAX_CHUNK_BLOCKS = 1 << 20
#: Blocks per point at most (a bound on the chunk arithmetic, far above any useful run).
MAX_POINT_BLOCKS = 10**13


@dataclass(frozen=True)
class ChunkPlan:
    """The fixed chunk sizes of a point: ``size(i) = min(first << i, max_chunk)``, the
    chunks together holding exactly ``max_blocks`` blocks (the last one cut short)."""

    max_blocks: int
    first_blocks: int = FIRST_CHUNK_BLOCKS
    max_chunk_blocks: int = MAX_CHUNK_BLOCKS

    def __post_init__(self) -> None:
        for name in ("max_blocks", "first_blocks", "max_chunk_blocks"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_POINT_BLOCKS:
                raise ConfigError(f"{name} must be an integer in [1, {MAX_POINT_BLOCKS:g}], got {value!r}")
        if self.first_blocks > self.max_chunk_blocks:
            raise ConfigError(
                f"first_blocks ({self.first_blocks}) must be <= max_chunk_blocks ({self.max_chunk_blocks})"
            )

    @property
    def _doublings(self) -> int:
        """Index of the first chunk of full size ``max_chunk_blocks``."""
        g = 0
        while self.first_blocks << g < self.max_chunk_blocks:
            g += 1
        return g

    def _nominal_start(self, index: int) -> int:
        g = self._doublings
        if index <= g:
            return self.first_blocks * ((1 << index) - 1)
        return self.first_blocks * ((1 << g) - 1) + (index - g) * self.max_chunk_blocks

    def start(self, index: int) -> int:
        """Blocks in the chunks before chunk ``index``."""
        return min(self._nominal_start(index), self.max_blocks)

    def size(self, index: int) -> int:
        """Blocks of chunk ``index`` (0 at and past :attr:`n_chunks`)."""
        return self.start(index + 1) - self.start(index)

    @property
    def n_chunks(self) -> int:
        """Number of chunks (the last one may be shorter than its nominal size)."""
        g = self._doublings
        if self._nominal_start(g) >= self.max_blocks:
            return next(i for i in range(g + 1) if self._nominal_start(i) >= self.max_blocks)
        return g + math.ceil((self.max_blocks - self._nominal_start(g)) / self.max_chunk_blocks)

    def as_dict(self) -> dict[str, int]:
        return {
            "max_blocks": self.max_blocks,
            "first_blocks": self.first_blocks,
            "max_chunk_blocks": self.max_chunk_blocks,
        }


@dataclass(frozen=True)
class ChunkCounts:
    """What one chunk measured."""

    blocks: int
    errors: int


@dataclass(frozen=True)
class PointResult:
    """A point's merged count: the first ``chunks`` chunks of its plan."""

    blocks: int
    errors: int
    chunks: int
    #: True when the errors reached the target; False when the plan's blocks ran out first.
    reached_target: bool

    @property
    def bler(self) -> float:
        return self.errors / self.blocks

    @property
    def interval(self) -> tuple[float, float]:
        """95 % Wilson interval of the BLER (:func:`~aeradio.learning.evaluate.wilson_interval`)."""
        return wilson_interval(self.errors, self.blocks)


def merge_chunks(
    counts: Mapping[int, ChunkCounts], plan: ChunkPlan, target_errors: int
) -> PointResult | None:
    """The point's count from the chunks finished so far, or None while it is not decided.

    Walks the chunks in index order: the count is the shortest prefix whose errors reach
    ``target_errors``, or all :attr:`ChunkPlan.n_chunks` chunks; None when a chunk of that
    prefix has not finished. Chunks past the prefix are ignored, whatever they hold.
    """
    blocks = errors = 0
    for index in range(plan.n_chunks):
        if index not in counts:
            return None
        blocks += counts[index].blocks
        errors += counts[index].errors
        if errors >= target_errors:
            return PointResult(blocks, errors, index + 1, True)
    return PointResult(blocks, errors, plan.n_chunks, False)


@dataclass
class PointProgress:
    """A point's chunks: issued, finished, and how many more are worth issuing."""

    plan: ChunkPlan
    target_errors: int
    #: Finished chunks by index.
    counts: dict[int, ChunkCounts] = field(default_factory=dict)
    #: Chunks 0 .. issued - 1 have been handed out.
    issued: int = 0

    def record(self, index: int, counts: ChunkCounts) -> None:
        if not 0 <= index < self.issued:
            raise ValueError(f"chunk {index} was never issued (issued: {self.issued})")
        if counts.blocks != self.plan.size(index) or not 0 <= counts.errors <= counts.blocks:
            size = self.plan.size(index)
            raise ValueError(f"chunk {index}: {counts} does not fit the plan ({size} blocks)")
        self.counts[index] = counts

    def result(self) -> PointResult | None:
        return merge_chunks(self.counts, self.plan, self.target_errors)

    def wanted(self) -> int:
        """Chunks worth issuing now (before a scheduler's own limit on tasks in flight).

        One before the first result comes back (the first chunks are small), none once
        the finished chunks hold ``target_errors`` errors or every chunk was issued;
        otherwise enough that the blocks in flight cover the blocks still needed at the
        error rate seen so far.
        """
        if self.result() is not None or self.issued >= self.plan.n_chunks:
            return 0
        errors = sum(c.errors for c in self.counts.values())
        blocks = sum(c.blocks for c in self.counts.values())
        if errors >= self.target_errors:
            return 0
        in_flight = [i for i in range(self.issued) if i not in self.counts]
        if blocks == 0:
            return 0 if in_flight else 1
        needed = (self.target_errors - errors) * blocks / max(errors, 1)
        covered = sum(self.plan.size(i) for i in in_flight)
        wanted = 0
        while covered < needed and self.issued + wanted < self.plan.n_chunks:
            covered += self.plan.size(self.issued + wanted)
            wanted += 1
        return wanted

    def issue(self) -> int:
        """The index of the next chunk, now handed out."""
        if self.issued >= self.plan.n_chunks:
            raise ValueError("every chunk of the plan was issued")
        self.issued += 1
        return self.issued - 1


def point_seed_sequence(seed: int, key: str, ebn0_db: float) -> np.random.SeedSequence:
    """The root of a point's streams: the run's ``seed`` and a hash of its ``key`` (e.g.
    ``"model:ae-n7-k8:seed0"``) and Eb/N0. Chunk ``i`` uses child ``i`` (``spawn_key (i,)``).

    >>> a = point_seed_sequence(1, "model:x", 4.0).generate_state(2)
    >>> b = point_seed_sequence(1, "model:x", 4.5).generate_state(2)
    >>> bool((a != b).any())
    True
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"--seed must be an integer >= 0, got {seed!r}")
    digest = hashlib.sha256(f"{key}|{float(ebn0_db)!r}".encode()).digest()[:16]
    return np.random.SeedSequence([seed, *np.frombuffer(digest, dtype="<u4").tolist()])


def chunk_generator(point: np.random.SeedSequence, index: int) -> torch.Generator:
    """The ``torch.Generator`` of chunk ``index``: seeded from child ``index`` of ``point``."""
    child = np.random.SeedSequence(point.entropy, spawn_key=(*point.spawn_key, index))
    return torch.Generator().manual_seed(int(child.generate_state(1, dtype=np.uint64)[0]))


@dataclass(frozen=True)
class PointSimulator:
    """What a chunk needs besides its Eb/N0: the LUT ``[M, n]`` complex64 sent, the decoder
    scored, the rate (bits per complex use, for the noise) and the channel's parameters."""

    lut: np.ndarray
    decoder: Decoder
    rate: float
    channel_params: TrainingConfig = field(default_factory=TrainingConfig)

    def chunk(
        self, ebn0_db: float, channel: str, plan: ChunkPlan, point: np.random.SeedSequence, index: int
    ) -> ChunkCounts:
        """Simulate chunk ``index`` of ``plan``: ``plan.size(index)`` blocks from its own stream."""
        blocks = plan.size(index)
        res = simulate_lut(
            self.lut,
            {"d": self.decoder},
            ebn0_db,
            self.rate,
            channel=channel,
            channel_params=self.channel_params,
            target_errors=blocks + 1,  # a chunk never stops early: its size is fixed
            max_blocks=blocks,
            generator=chunk_generator(point, index),
        )["d"]
        return ChunkCounts(int(res["blocks"]), int(res["errors"]))


def model_simulator(model_dir: str | Path) -> PointSimulator:
    """A model directory's LUT sent, its neural receiver scored (loaded and verified)."""
    from aeradio.core.model_dir import load_lut
    from aeradio.learning.inference import ReceiverRuntime

    runtime = ReceiverRuntime.load(model_dir)
    cfg = runtime.config
    return PointSimulator(load_lut(model_dir), neural_decoder(runtime), cfg.model.rate, cfg.training)


def baseline_simulator(name: str, k: int, n: int) -> PointSimulator:
    """A classical scheme of :func:`~aeradio.learning.baselines.reference_luts` under ML detection."""
    from aeradio.learning.baselines import reference_luts

    luts = reference_luts(k, n)
    if name not in luts:
        raise ConfigError(f"no baseline {name!r} for k={k}, n={n}; known: {', '.join(luts) or 'none'}")
    return PointSimulator(luts[name], ml_decoder(luts[name]), k / n)


def run_point(chunk: Callable[[int], ChunkCounts], plan: ChunkPlan, target_errors: int) -> PointResult:
    """A point run serially, chunk after chunk, with the merge rule of a parallel run."""
    progress = PointProgress(plan, target_errors)
    while (result := progress.result()) is None:
        index = progress.issue()
        progress.record(index, chunk(index))
    return result
