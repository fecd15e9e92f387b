"""``RxChain.settled_sample``: what a capture recorder relies on to drop idle samples.

No frame the chain returns may start (half a filter before symbol 0: the annotation's start)
before the ``settled_sample`` it had before the call, and the bound never goes back, also
with false detections in noise, CFO and reads that cut frames anywhere.
"""

from __future__ import annotations

import numpy as np
import pytest

from aeradio.dsp import impairments as imp
from tests.flowgraphs.conftest import SEED, Link


@pytest.mark.parametrize("ebn0_db", [3.0, 10.0])
def test_frames_start_after_the_previous_settled_sample(link: Link, ebn0_db: float) -> None:
    rng = np.random.default_rng(int(ebn0_db))
    lay = link.tx.layout
    bursts = [link.tx.test_pattern(np.arange(i, i + 3), SEED) for i in range(0, 30, 3)]
    idle = [np.zeros(int(rng.integers(0, 20_000)), np.complex64) for _ in bursts]
    tail = np.zeros(5000, np.complex64)
    x = np.concatenate([p for pair in zip(idle, bursts, strict=True) for p in pair] + [tail])
    x = imp.apply_cfo(x, 0.01)
    es_n0 = 10 ** (ebn0_db / 10) * link.cfg.model.rate
    sigma = np.sqrt(np.mean(np.abs(bursts[0]) ** 2) / es_n0 / 2)
    x = (x + sigma * (rng.standard_normal(len(x)) + 1j * rng.standard_normal(len(x)))).astype(np.complex64)
    rx = link.rx()
    settled, found = rx.settled_sample, 0
    pos = 0
    while pos < len(x):
        n = int(rng.integers(1, 30_000))
        for r in rx.process(x[pos : pos + n]):
            assert r.start_sample - lay.filter_delay >= settled
            found += 1
        assert rx.settled_sample >= settled
        settled = rx.settled_sample
        pos += n
    assert found >= 28  # the frames were found (a few may be lost at 3 dB)
    assert settled <= len(x)
