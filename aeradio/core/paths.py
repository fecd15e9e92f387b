"""Where the source checkout's data lives (configs/, benchmarks/) and the user cache."""

from __future__ import annotations

import os
from pathlib import Path

from aeradio.core.errors import AeradioError

#: Environment variable that overrides the cache directory (default ~/.cache/aeradio).
CACHE_ENV = "AERADIO_CACHE"


def checkout_path(name: str) -> Path:
    """``<checkout>/<name>`` (e.g. ``configs``), next to the ``aeradio`` package.

    Raises AeradioError when aeradio runs from an installed copy without the checkout.
    """
    path = Path(__file__).resolve().parents[2] / name
    if not path.is_dir():
        raise AeradioError(f"{path} not found: run aeradio from its source checkout (pip install -e .)")
    return path


def cache_dir() -> Path:
    """``$AERADIO_CACHE`` or ``~/.cache/aeradio`` (not created here)."""
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else Path.home() / ".cache" / "aeradio"
