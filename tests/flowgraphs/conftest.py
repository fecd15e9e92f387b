"""Shared pieces of the radio DSP tests: a small link, its random LUT, TX and RX."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

from aeradio.core.config import LinkConfig
from aeradio.dsp.detection import ml_detect
from aeradio.flowgraphs.rx_chain import RxChain
from aeradio.flowgraphs.tx_chain import TxChain

MODEL_HASH = 0xA5C3
SEED = 7


def random_lut(M: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """A random LUT normalized to mean energy 1 per complex use, [M, n] complex64."""
    lut = rng.standard_normal((M, n)) + 1j * rng.standard_normal((M, n))
    return (lut / np.sqrt(np.mean(np.abs(lut) ** 2))).astype(np.complex64)


@dataclass
class Link:
    cfg: LinkConfig
    lut: np.ndarray
    tx: TxChain

    def rx(self, **kwargs: object) -> RxChain:
        decoder = lambda y, nv: ml_detect(y, self.lut)  # noqa: E731
        return RxChain(self.cfg, decoder, model_hash=MODEL_HASH, **kwargs)


@pytest.fixture(scope="module")
def link() -> Link:
    """AE(n=7, k=8) framing with a random LUT; 16 blocks per frame keeps tests fast."""
    # A pilot every 16 payload symbols (7 per frame), as the tests were written for.
    frame = {"blocks_per_frame": 16, "pilot_spacing_symbols": 16}
    cfg = LinkConfig.from_dict({"model": {"k": 8, "n": 7}, "frame": frame})
    lut = random_lut(cfg.model.M, cfg.model.n, np.random.default_rng(2024))
    return Link(cfg, lut, TxChain(cfg, lut, MODEL_HASH))


@pytest.fixture(scope="module")
def new_rx(link: Link) -> Callable[[], RxChain]:
    """New RX chains of the link, cheaply: copies of one (building a chain calibrates its
    estimators, which takes longer than a short stream)."""
    template = link.rx()
    return lambda: copy.deepcopy(template)
