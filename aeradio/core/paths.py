"""Where the source checkout's data lives (configs/, benchmarks/) and the user cache."""

from __future__ import annotations

import os
from pathlib import Path

from aeradio.core.errors import AeradioError, ConfigError

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



def check_parents(path: str | os.PathLike[str], option: str) -> None:
    """ConfigError naming ``option PATH`` when the nearest existing parent of PATH is not a
    directory (PATH could never be created there)."""
    path = Path(path)
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"{option} {path}: {parent} is not a directory")
            return


def check_dir_output(path: str | os.PathLike[str], option: str) -> None:
    """Make the output directory ``option DIR`` (``--plots``, ...) before any work, or raise
    :class:`ConfigError` naming it: DIR empty, DIR or a parent an existing file, no permission."""
    if not str(path):
        raise ConfigError(f"{option} is an empty path; give a directory name")
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{option} {path}: {path} is not a directory")
    check_parents(path, option)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{option} {path}: {exc.strerror or exc}") from None


def check_file_output(
    path: str | os.PathLike[str], option: str, *, model_dir: str | os.PathLike[str] | None = None
) -> None:
    """Refuse an output file ``option FILE`` (``--json``, ...) before any work when FILE is
    empty, a directory, one of its parents an existing non-directory, or inside
    ``model_dir`` (the command's ``--model``: a report written over ``model.json`` destroyed
    the model): :class:`ConfigError` naming it, instead of a traceback from the write at the
    end of a run."""
    if not str(path):
        raise ConfigError(f"{option} is an empty path; give a file name")
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{option} {path} is a directory; give a file name")
    if model_dir is not None and path.resolve().is_relative_to(Path(model_dir).resolve()):
        raise ConfigError(f"{option} {path} is inside the --model directory {model_dir}; "
                          "a model directory holds only the model's files")
    check_parents(path, option)
