"""Fixtures of the GNU Radio tests.

GNU Radio runs under its own Python (Debian's ``/usr/bin/python3``, or ``$GR_PYTHON``),
which has numpy and the gnuradio bindings but not torch: these tests run it as a
subprocess with the checkout on ``PYTHONPATH``. They are skipped, with the reason, only
when that Python cannot import GNU Radio (``scripts/install-gnuradio.sh`` installs it, and
the setup runs that script).
"""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path

import pytest
import torch

from aeradio.core import model_dir as model_io
from aeradio.core.config import LinkConfig
from aeradio.learning.receiver import NeuralReceiver
from aeradio.learning.transmitter import Transmitter

ROOT = Path(__file__).resolve().parents[2]
GR_PYTHON = os.environ.get("GR_PYTHON", "/usr/bin/python3")
GR_MODULES = "from gnuradio import gr, blocks, analog, channels, filter, zeromq; import numpy, zmq"

#: The model the GNU Radio tests train: 16 messages over 2 complex uses (rate 2), a small
#: MLP, a short frame; trained in a few seconds.
GR_TEST_CONFIG = {
    "name": "gr-tiny",
    "model": {"k": 4, "n": 2, "hidden_width": 16, "hidden_layers": 1},
    "training": {"steps": 300, "batch_size": 256, "ebn0_db_min": 4.0, "ebn0_db_max": 8.0},
    "frame": {"blocks_per_frame": 32},
}


def save_test_model(path, *, k=4, n=2, layers=2, noise_input=False, seed=0, mlp_std=0.3, log_scale=0.7):
    """A model whose receiver has non-zero MLP weights everywhere (so every path counts), its
    linear path the matched filter of the LUT at scale ``exp(log_scale)``."""
    cfg = LinkConfig.from_dict(
        {"model": {"k": k, "n": n, "hidden_width": 16, "hidden_layers": layers, "noise_input": noise_input}},
        name="t",
    )
    torch.manual_seed(seed)
    tx = Transmitter(cfg.model.M, n, generator=torch.Generator().manual_seed(seed))
    rx = NeuralReceiver.from_config(cfg.model)
    torch.nn.init.normal_(rx.out.weight, std=mlp_std)
    torch.nn.init.normal_(rx.out.bias, std=mlp_std)
    with torch.no_grad():
        rx.log_scale.fill_(log_scale)
    rx.untie(tx.lut().detach())
    model_io.save_model(path, cfg, tx.export_lut(), rx.state_dict())
    return path


@functools.cache
def gnuradio_missing() -> str | None:
    """Why GNU Radio cannot be used here, or None when it can."""
    try:
        done = subprocess.run([GR_PYTHON, "-c", GR_MODULES], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{GR_PYTHON} cannot run: {exc}"
    if done.returncode:
        last = (done.stderr.strip().splitlines() or ["?"])[-1]
        return f"GNU Radio is not importable by {GR_PYTHON} ({last}): bash scripts/install-gnuradio.sh"
    return None


def gr_env() -> dict[str, str]:
    """The environment of a GNU Radio subprocess: the checkout first on PYTHONPATH."""
    return dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")


@pytest.fixture
def gr_python() -> str:
    """GNU Radio's Python; skips the test, saying why, when it cannot import GNU Radio."""
    reason = gnuradio_missing()
    if reason:
        pytest.skip(reason)
    return GR_PYTHON


@pytest.fixture(scope="session")
def gr_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trained model directory (:data:`GR_TEST_CONFIG`)."""
    from aeradio.apps.train import train_and_save

    out = tmp_path_factory.mktemp("gr-model") / "gr-tiny"
    return train_and_save(LinkConfig.from_dict(GR_TEST_CONFIG), out, progress=False)
