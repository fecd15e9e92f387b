"""``aeradio demo``: the default model, its BLER against the classical baselines, and the link.

Trains the default model, or reuses the cached one, prints its Monte Carlo BLER table next
to Hamming(7,4) on I and Q and writes plots, then runs the loopback link as three processes
(:func:`aeradio.apps.link.demo_link`: test-pattern frames against the genie-synchronized
BLER, then a file checked by sha256); exit 1 when the link did not deliver everything. The
cache is keyed by the hash of the default configuration, so editing
``configs/ae-n7-k8.toml`` retrains.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

from aeradio.core.config import LinkConfig
from aeradio.core.errors import ModelFormatError
from aeradio.core.paths import cache_dir, checkout_path

#: The default model's configuration (configs/<name>.toml).
DEFAULT_CONFIG = "ae-n7-k8"
#: Eb/N0 points of the demo's table (dB).
DEMO_EBN0_DB = (3.0, 4.0, 5.0, 6.0, 7.0)


def default_config() -> LinkConfig:
    """The default link configuration, read from the checkout's configs/."""
    return LinkConfig.from_toml(checkout_path("configs") / f"{DEFAULT_CONFIG}.toml")


def config_hash(config: LinkConfig) -> str:
    """12 hex digits of the sha256 of the canonical JSON of ``config``."""
    from aeradio.core.model_dir import FORMAT_VERSION

    text = json.dumps({"format": FORMAT_VERSION, "config": config.to_dict()}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def ensure_default_model(*, progress: bool = True) -> Path:
    """The cached default model directory, trained first if absent or damaged."""
    from aeradio.apps.train import train_and_save
    from aeradio.core.model_dir import verify_model_dir

    config = default_config()
    model_dir = cache_dir() / "models" / f"{config.name}-{config_hash(config)}"
    try:
        verify_model_dir(model_dir)
        return model_dir
    except ModelFormatError:
        pass
    if model_dir.exists() and not (model_dir / "model.json").exists() and any(model_dir.iterdir()):
        raise ModelFormatError(f"cache entry {model_dir} is not a model directory; remove it")
    print(f"training the default model {config.name} -> {model_dir}", flush=True)
    # overwrite: a damaged cache entry (a model directory that failed verification) is replaced.
    return train_and_save(config, model_dir, progress=progress, overwrite=True)


def cmd_demo(args: argparse.Namespace) -> int:
    import torch

    from aeradio.core.model_dir import load_lut
    from aeradio.learning.comparison import baseline_curves, comparison_curves, format_table
    from aeradio.learning.evaluate import sweep_model
    from aeradio.learning.plots import plot_bler, plot_constellation

    model_dir = ensure_default_model()
    print(f"model: {model_dir}")
    ebn0 = list(DEMO_EBN0_DB)
    doc = sweep_model(model_dir, ebn0, target_errors=100, max_blocks=500_000, seed=1, progress=True)
    baselines = baseline_curves(
        doc["k"],
        doc["n"],
        ebn0,
        target_errors=100,
        max_blocks=500_000,
        generator=torch.Generator().manual_seed(2),
        progress=True,
    )
    print(format_table(doc, baselines))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    plot_bler(comparison_curves(doc, baselines), out / "bler.png",
              title=f"{doc['model']} on AWGN: BLER, up to 100 block errors per point")
    plot_constellation(load_lut(model_dir), out / "constellation.png")
    print(f"plots: {out / 'bler.png'}, {out / 'constellation.png'}")
    from aeradio.apps.link import demo_link

    problems = demo_link(model_dir, out)
    if problems:
        print(f"aeradio demo: the loopback link did not deliver everything: {'; '.join(problems)} "
              f"(reports in {out}/link-*)", file=sys.stderr)
        return 1
    return 0
