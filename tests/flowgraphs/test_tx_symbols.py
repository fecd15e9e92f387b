"""Frames of payload symbols of the caller's choice (``TxChain.modulate_symbols``, what
``aeradio train-ota`` sends), and the RX chain handing them back by sequence number."""

from __future__ import annotations

import numpy as np
import pytest

from aeradio.core.errors import ConfigError
from aeradio.dsp.framing import Header, pattern_messages
from tests.flowgraphs.conftest import MODEL_HASH, SEED, Link


def test_lut_rows_as_symbols_are_the_same_frames(link: Link) -> None:
    seqs = np.arange(3)
    messages = pattern_messages(SEED, seqs, link.tx.layout.blocks, link.tx.layout.M)
    headers = [Header.test_pattern(int(s), SEED, MODEL_HASH) for s in seqs]
    assert np.array_equal(link.tx.modulate_symbols(headers, link.lut[messages]),
                          link.tx.modulate(headers, messages))


def test_arbitrary_symbols_come_back_synchronized_with_their_seq(link: Link) -> None:
    lay = link.tx.layout
    rng = np.random.default_rng(3)
    seqs = np.arange(5, 9)
    shape = (4, lay.blocks, lay.n)
    payload = ((rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) / 2**0.5).astype(np.complex64)
    headers = [Header.test_pattern(int(s), SEED, MODEL_HASH) for s in seqs]
    x = link.tx.modulate_symbols(headers, payload)
    delay = 37
    y = np.concatenate([np.zeros(delay, np.complex64), x, np.zeros(len(x), np.complex64)])
    y = (y * np.exp(2j * np.pi * 1e-4 * np.arange(len(y)))).astype(np.complex64)  # a CFO
    results = [r for r in link.rx().process(y) if r.seq is not None]
    assert [r.seq for r in results] == list(seqs)
    for r, sent in zip(results, payload, strict=True):
        assert r.payload.shape == sent.shape
        err = np.mean(np.abs(r.payload - sent) ** 2)
        assert err < 1e-2, err  # noise-free: pulse ISI and estimation error only


def test_payload_shape_is_checked(link: Link) -> None:
    headers = [Header.test_pattern(0, SEED, MODEL_HASH)]
    with pytest.raises(ConfigError, match="payload must have shape"):
        link.tx.modulate_symbols(headers, np.zeros((1, 2, 3), np.complex64))
