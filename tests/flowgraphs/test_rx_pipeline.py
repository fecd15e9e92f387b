"""The pipelined RX chain (``pipelined=True``: stages 1-6 on a worker thread beside 7-9)
returns what the single-threaded chain returns, one ``process`` call later: the same frames,
estimates, decisions and statistics, the same ``settled_sample`` bounds; an error on either
thread is raised in the caller."""

from __future__ import annotations

import dataclasses
import threading

import numpy as np
import pytest

from aeradio.dsp import impairments as imp
from aeradio.flowgraphs.rx_chain import FrameResult, RxChain
from aeradio.flowgraphs.tx_chain import TxChain
from tests.flowgraphs.conftest import MODEL_HASH, SEED, Link


def _stream(link: Link, rng: np.random.Generator) -> np.ndarray:
    """Every kind of event a receiver counts, in one stream: bursts of test-pattern frames at
    Eb/N0 3 dB between idle stretches, a frame whose header is inverted (header CRC failure),
    frames of another model, a preamble's STF alone (a false detection), data frames,
    non-finite samples, and a frame cut by the end."""
    lay = link.tx.layout
    other = TxChain(link.cfg, link.lut, 0x1111)
    chunks = [bytes(rng.integers(0, 256, link.tx.data_capacity, dtype=np.uint8)) for _ in range(3)]
    damaged = link.tx.test_pattern(np.arange(100, 103), SEED)
    start = (lay.num_symbols + lay.gap_symbols) * lay.sps + lay.header_start * lay.sps + 16
    damaged[start : start + (lay.header_len - 8) * lay.sps] *= -1
    bursts = [link.tx.test_pattern(np.arange(i, i + 4), SEED) for i in range(0, 24, 4)]
    lone_stf = link.tx.test_pattern(np.arange(300, 301), SEED)[: len(lay.stf) * lay.sps]  # no LTF after it
    bursts += [damaged, other.test_pattern(np.arange(2), SEED), lone_stf, link.tx.data(chunks, first_seq=50)]
    idle = [np.zeros(int(rng.integers(0, 30_000)), np.complex64) for _ in bursts]
    cut = link.tx.test_pattern(np.arange(200, 201), SEED)[: lay.num_symbols * lay.sps // 2]
    x = np.concatenate([p for pair in zip(idle, bursts, strict=True) for p in pair] + [cut])
    x = imp.apply_cfo(x, 0.01)
    es_n0 = 10 ** (3.0 / 10) * link.cfg.model.rate
    sigma = np.sqrt(np.mean(np.abs(bursts[0]) ** 2) / es_n0 / 2)
    x = (x + sigma * (rng.standard_normal(len(x)) + 1j * rng.standard_normal(len(x)))).astype(np.complex64)
    x[5000:5010] = np.nan
    return x


def _feed(rx: RxChain, x: np.ndarray, reads: list[int]) -> tuple[list[list[FrameResult]], list[int]]:
    """The frames and ``settled_sample`` after each call: the reads, then flush."""
    out, settled, pos = [], [], 0
    for n in reads:
        out.append(rx.process(x[pos : pos + n]))
        settled.append(rx.settled_sample)
        pos += n
    out.append(rx.flush())
    settled.append(rx.settled_sample)
    return out, settled


def _same_frame(a: FrameResult, b: FrameResult) -> None:
    for f in dataclasses.fields(FrameResult):
        va, vb = getattr(a, f.name), getattr(b, f.name)
        if isinstance(va, np.ndarray) or isinstance(vb, np.ndarray):
            np.testing.assert_array_equal(va, vb, err_msg=f.name)
        else:
            assert va == vb, f.name


@pytest.mark.parametrize("read_seed", [1, 2])
def test_pipelined_chain_returns_the_single_thread_results(link: Link, read_seed: int) -> None:
    x = _stream(link, np.random.default_rng(40))
    rng = np.random.default_rng(read_seed)
    reads = []
    while sum(reads) < len(x):  # small and large reads; frames straddle them
        reads.append(int(rng.choice([rng.integers(1, 5000), rng.integers(5000, 200_000)])))
    single, pipelined = link.rx(), link.rx(pipelined=True)
    try:
        out_s, settled_s = _feed(single, x, reads)
        out_p, settled_p = _feed(pipelined, x, reads)
    finally:
        pipelined.close()
    # One call later: the frames (and the settled bound) of call i come out of call i + 1.
    assert out_p[0] == []
    assert [len(r) for r in out_p[1:-1]] == [len(r) for r in out_s[:-2]]
    assert settled_p[1:-1] == settled_s[:-2]
    flat_s = [r for part in out_s for r in part]
    flat_p = [r for part in out_p for r in part]
    assert len(flat_p) == len(flat_s)
    for a, b in zip(flat_s, flat_p, strict=True):
        _same_frame(a, b)
    assert dataclasses.asdict(pipelined.stats) == dataclasses.asdict(single.stats)
    assert pipelined.report(1e6) == single.report(1e6)
    s = single.stats  # the stream exercised what it was built for
    assert s.false_detections > 0 and s.header_crc_failures >= 1 and s.model_mismatches == 2
    assert s.frames_truncated == 1 and s.nonfinite_samples == 10 and s.frames_decoded >= 25
    assert sum(r.data is not None for r in flat_s) == 3


def test_frames_detected_is_counted_by_the_call_that_detects_them(link: Link) -> None:
    # What `rx --frames N` stops on: the same count after each call as single-threaded.
    x = _stream(link, np.random.default_rng(41))
    single, pipelined = link.rx(), link.rx(pipelined=True)
    try:
        for i in range(0, len(x), 50_000):
            single.process(x[i : i + 50_000])
            pipelined.process(x[i : i + 50_000])
            assert pipelined.stats.frames_detected == single.stats.frames_detected
            assert pipelined.stats.samples == single.stats.samples
        assert single.stats.frames_detected > 20
    finally:
        pipelined.close()


def test_drain_returns_the_last_frames_without_ending_the_stream(link: Link) -> None:
    x = link.tx.test_pattern(np.arange(3), SEED)
    rx = link.rx(pipelined=True)
    try:
        lead, tail = np.zeros(1000, np.complex64), np.zeros(4000, np.complex64)
        assert rx.process(np.concatenate([lead, x, tail])) == []
        assert [r.seq for r in rx.drain()] == [0, 1, 2]
        assert rx.drain() == [] and rx.stats.frames_truncated == 0
        half = link.tx.test_pattern(np.arange(3, 4), SEED)[: len(x) // 6]
        assert rx.process(half) + rx.flush() == []
        assert rx.stats.frames_truncated == 1  # the stream ended inside frame 3
    finally:
        rx.close()


def test_dump_sink_runs_single_threaded(link: Link) -> None:
    rx = link.rx(pipelined=True, dump=lambda stage, arrays: None)
    assert not rx.pipelined
    x = np.concatenate([link.tx.test_pattern(np.arange(2), SEED), np.zeros(4000, np.complex64)])
    frames = rx.process(x)
    assert [r.seq for r in frames] == [0, 1]


def test_worker_exception_is_raised_in_the_caller(link: Link, monkeypatch: pytest.MonkeyPatch) -> None:
    rx = link.rx(pipelined=True)
    workers = set()

    def broken_detect() -> list[tuple[int, complex]]:
        workers.add(threading.current_thread().name)
        raise RuntimeError("detector broke")

    x = np.concatenate([link.tx.test_pattern(np.arange(2), SEED), np.zeros(4000, np.complex64)])
    assert rx.process(x) == []
    monkeypatch.setattr(rx, "detect", broken_detect)
    try:
        with pytest.raises(RuntimeError, match="detector broke"):
            rx.process(x)
        assert all(name.startswith("rx-front-end") for name in workers) and workers
    finally:
        rx.close()


def test_back_end_exception_is_raised_after_the_worker_finished(link: Link) -> None:
    calls = []

    def decoder(y: np.ndarray, noise_var: np.ndarray) -> np.ndarray:
        calls.append(len(y))
        raise ValueError("receiver broke")

    rx = RxChain(link.cfg, decoder, model_hash=MODEL_HASH, pipelined=True)
    x = np.concatenate([link.tx.test_pattern(np.arange(2), SEED), np.zeros(4000, np.complex64)])
    try:
        assert rx.process(x) == []  # its front end ran; the decoder runs on the next call
        with pytest.raises(ValueError, match="receiver broke"):
            rx.process(np.zeros(1000, np.complex64))
        assert calls and rx.stats.samples == len(x) + 1000  # the worker's block was processed
    finally:
        rx.close()


def _slow_recording_decoder(link: Link, threads: list[str], delay_s: float = 0.02):
    """ML detection that takes ``delay_s`` per call and records the calling thread."""
    import time

    from aeradio.dsp.detection import ml_detect

    def decoder(y: np.ndarray, noise_var: np.ndarray) -> np.ndarray:
        threads.append(threading.current_thread().name)
        time.sleep(delay_s)
        return ml_detect(y, link.lut)

    return decoder


def test_decoder_pieces_taken_by_two_threads_give_one_calls_output(link: Link) -> None:
    from aeradio.dsp.detection import ml_detect
    from aeradio.flowgraphs.rx_chain import _DecoderPieces

    rng = np.random.default_rng(7)
    y = (link.lut[rng.integers(0, 256, 1000)] + 0.3 * rng.standard_normal((1000, 7))).astype(np.complex64)
    nv = np.full(1000, 0.05, np.float32)
    threads: list[str] = []
    pieces = _DecoderPieces(_slow_recording_decoder(link, threads), y, nv, piece=96)
    helper = threading.Thread(target=pieces.work, name="helper")
    helper.start()
    got = pieces.result()
    helper.join()
    np.testing.assert_array_equal(got, ml_detect(y, link.lut))
    assert len(threads) == 11 and set(threads) == {"helper", threading.current_thread().name}
    # One piece: the decoder's own output.
    one = _DecoderPieces(lambda a, b: np.arange(len(a)), y[:5], nv[:5]).result()
    assert np.array_equal(one, np.arange(5))


def test_a_decoder_error_on_another_thread_is_raised_by_the_caller(link: Link) -> None:
    from aeradio.flowgraphs.rx_chain import _DecoderPieces

    started = threading.Event()

    def decoder(y: np.ndarray, noise_var: np.ndarray) -> np.ndarray:
        if threading.current_thread().name == "helper":
            started.set()
            raise ValueError("piece broke")
        started.wait(5)  # the helper has failed by the time this piece ends
        return np.zeros(len(y), np.int64)

    y = np.zeros((40, 7), np.complex64)
    pieces = _DecoderPieces(decoder, y, np.ones(40, np.float32), piece=10)
    helper = threading.Thread(target=pieces.work, name="helper")
    helper.start()
    with pytest.raises(ValueError, match="piece broke"):
        pieces.result()
    helper.join()


def test_the_worker_shares_the_block_decoder_and_changes_nothing(link: Link) -> None:
    # Pieces of one frame's blocks and a slow decoder: once its front end is done (at once in
    # drain(), where there is none), the worker decodes pieces beside the caller; frames,
    # decisions and statistics stay those of the single-threaded chain.
    x = np.concatenate([np.zeros(3000, np.complex64), link.tx.test_pattern(np.arange(6), SEED),
                        np.zeros(4000, np.complex64)])
    x = (x + 0.05 * (np.random.default_rng(8).standard_normal(len(x)))).astype(np.complex64)
    threads: list[str] = []
    single = link.rx()
    decoder = _slow_recording_decoder(link, threads)
    pipelined = RxChain(link.cfg, decoder, model_hash=MODEL_HASH, pipelined=True)
    pipelined.decode_piece_blocks = single.decode_piece_blocks = link.cfg.frame.blocks_per_frame
    try:
        expected = single.process(x) + single.flush()
        got = pipelined.process(x) + pipelined.drain()
    finally:
        pipelined.close()
    assert len(got) == len(expected) == 6
    for a, b in zip(expected, got, strict=True):
        _same_frame(a, b)
    assert dataclasses.asdict(pipelined.stats) == dataclasses.asdict(single.stats)
    assert len(threads) == 6 and any(t.startswith("rx-front-end") for t in threads)
    assert any(not t.startswith("rx-front-end") for t in threads)
