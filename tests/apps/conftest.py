"""Shared pieces of the command tests."""

from pathlib import Path

import pytest

#: A tiny link (QPSK-sized, 64 blocks per frame) that trains in seconds.
TINY = {
    "name": "tiny",
    "model": {"k": 2, "n": 1, "hidden_width": 16, "hidden_layers": 1},
    "training": {"steps": 300, "batch_size": 256, "ebn0_db_min": 6.0, "ebn0_db_max": 8.0},
    "frame": {"blocks_per_frame": 64},
}


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """:data:`TINY` trained (seconds; QPSK-like: decodes a noise-free recording exactly),
    once per test module."""
    from aeradio.apps.train import train_and_save
    from aeradio.core.config import LinkConfig

    out = tmp_path_factory.mktemp("model") / "tiny"
    train_and_save(LinkConfig.from_dict(TINY), out, progress=False)
    return out
