"""The RX chain's faster paths against straightforward references, on a stream with
impairments (CFO, AWGN at 3 dB, NaNs, a false detection, a header CRC failure, frames of
another model, data frames, a cut frame): the same frames, decisions and statistics."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from aeradio.flowgraphs.rx_chain import RxChain
from aeradio.learning.inference import ReceiverRuntime
from aeradio.learning.receiver import NeuralReceiver
from tests.flowgraphs.conftest import MODEL_HASH, SEED, Link
from tests.flowgraphs.test_rx_pipeline import _same_frame, _stream


def _runtime(link: Link) -> ReceiverRuntime:
    """A neural receiver of the link's model: its linear path the LUT's matched filter (so
    frames decode), a random MLP beside it (so the hidden layers count)."""
    torch.manual_seed(1)
    rx = NeuralReceiver.from_config(link.cfg.model)
    torch.nn.init.normal_(rx.out.weight, std=0.3)
    rx.untie(torch.from_numpy(link.lut))
    return ReceiverRuntime(link.cfg, rx)


def _run(rx: RxChain, x: np.ndarray, read: int = 70_000) -> list:
    out = []
    for i in range(0, len(x), read):
        out += rx.process(x[i : i + read])
    return out + rx.flush()


def test_chain_with_decide_returns_what_the_modules_argmax_gives(link: Link) -> None:
    runtime = _runtime(link)

    def reference(y: np.ndarray, nv: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return runtime.receiver(torch.from_numpy(np.ascontiguousarray(y))).numpy().argmax(axis=1)

    x = _stream(link, np.random.default_rng(40))
    fast = RxChain(link.cfg, runtime.decide, model_hash=MODEL_HASH)
    slow = RxChain(link.cfg, reference, model_hash=MODEL_HASH)
    got, expected = _run(fast, x), _run(slow, x)
    assert len(got) == len(expected)
    for a, b in zip(got, expected, strict=True):
        _same_frame(a, b)
    assert dataclasses.asdict(fast.stats) == dataclasses.asdict(slow.stats)
    assert fast.stats.frames_decoded >= 25 and fast.stats.block_errors < fast.stats.blocks / 10


def test_unit_gain_header_and_payload_are_numpys_scaled_frame(link: Link) -> None:
    # The level stage scales only the header's and the payload's symbols: they are the
    # columns of numpy's scaled frame, from the phase stage's symbols and the gain.
    stages: dict[str, list[dict[str, np.ndarray]]] = {}
    rx = link.rx(dump=lambda stage, arrays: stages.setdefault(stage, []).append(arrays))
    frames = _run(rx, _stream(link, np.random.default_rng(42)))
    lay = rx.layout
    scaled = []
    for phase, level in zip(stages["phase"], stages["level"], strict=True):
        u, inv_gain = phase["symbols"], np.float32(1.0) / level["gain"].astype(np.float32)
        y = (np.ascontiguousarray(u).view(np.float32) * inv_gain[:, None]).view(np.complex64)
        np.testing.assert_array_equal(level["symbols"].view(np.uint32), y.view(np.uint32))
        scaled.append(y)
    y = np.concatenate(scaled)
    assert len(y) == len(frames) >= 25
    payload = np.stack([f.payload for f in frames])
    np.testing.assert_array_equal(payload.view(np.uint32),
                                  np.ascontiguousarray(y[:, lay.payload_index]).reshape(payload.shape)
                                  .view(np.uint32))
    header = y[:, lay.header_start : lay.header_start + lay.header_len]
    llr = np.concatenate([h["llr"] for h in stages["header"]])
    np.testing.assert_array_equal(llr, lay.header_llr(header))
    assert sum(f.header is None for f in frames) >= 1 and sum(f.decisions is not None for f in frames) >= 25


class _WholeSegments(RxChain):
    """The chain with the LTF timing and the refiner on whole segments (as before the heads)."""

    def _segments(self, first_sample: np.ndarray, coarse_cfo: np.ndarray, length: int) -> np.ndarray:
        return super()._segments(first_sample, coarse_cfo, self.seg_len)


def test_segment_heads_give_what_whole_segments_give(link: Link) -> None:
    # Only each segment's head is cut out for the LTF timing and the refiner (the timing
    # track reads the buffer): the same frames and statistics, bit for bit, as on whole
    # segments, with a frame at the stream's first sample (its segment reaches before it).
    x = _stream(link, np.random.default_rng(43))
    first = link.tx.test_pattern(np.arange(400, 401), SEED)
    x = np.concatenate([(first + 0.05).astype(np.complex64), x])
    heads = RxChain(link.cfg, link.rx().decoder, model_hash=MODEL_HASH)
    whole = _WholeSegments(link.cfg, link.rx().decoder, model_hash=MODEL_HASH)
    assert heads.head_len < heads.seg_len / 2
    got, expected = _run(heads, x), _run(whole, x)
    assert len(got) == len(expected) and got[0].seq == 400
    for a, b in zip(got, expected, strict=True):
        _same_frame(a, b)
    assert dataclasses.asdict(heads.stats) == dataclasses.asdict(whole.stats)
    assert heads.stats.frames_decoded >= 25 and heads.stats.false_detections >= 1
