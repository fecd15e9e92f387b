"""Chunk functions for tests/apps/test_sweep.py that Ray runs in its worker processes
(shipped to them as this package; a test module's own functions would not import there)."""

import hashlib
import os
from pathlib import Path

from aeradio.learning.montecarlo import ChunkCounts, PointSimulator


def crash_once(marker: str, sim, ebn0_db, channel, plan, point, index):
    """The first chunk to run kills its worker process (as a crash or an OOM kill would),
    after writing its pid to ``marker``; every other run, the retry included, simulates."""
    try:
        with open(marker, "x") as f:
            f.write(str(os.getpid()))
    except FileExistsError:
        return PointSimulator.chunk(sim, ebn0_db, channel, plan, point, index)
    os._exit(1)


def fails_at(bad_ebn0_db: float, sim, ebn0_db, channel, plan, point, index):
    """Every chunk of the points at ``bad_ebn0_db`` raises (a bug, not a lost worker)."""
    if ebn0_db == bad_ebn0_db:
        raise RuntimeError(f"no chunk at {ebn0_db} dB")
    return PointSimulator.chunk(sim, ebn0_db, channel, plan, point, index)


def source_digest() -> tuple[str, str]:
    """Where the calling process imports aeradio from, and the sha256 of its sweep module."""
    import aeradio.apps.sweep as sweep

    return str(Path(sweep.__file__).resolve()), hashlib.sha256(Path(sweep.__file__).read_bytes()).hexdigest()


def reports_threads(sim, ebn0_db, channel, plan, point, index):
    """A chunk whose "errors" are the torch threads its worker runs (1 expected)."""
    import torch

    return ChunkCounts(plan.size(index), torch.get_num_threads())
