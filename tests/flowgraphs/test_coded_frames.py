"""Frames of a coded model: whole LDPC codewords through the TX and RX chains.

The demapper here is exact APP demapping of the LUT (no trained network), so these tests
check the framing, the LLR plumbing (the RX chain's noise variance) and the decoding.
"""

from __future__ import annotations

import numpy as np
import pytest

from aeradio.core.config import LinkConfig
from aeradio.core.errors import ConfigError
from aeradio.dsp.framing import (
    CODED_FLAG,
    PAYLOAD_DATA,
    PAYLOAD_DATA_WHITENED,
    PAYLOAD_TEST_PATTERN,
    FrameLayout,
    Header,
    decode_header,
    encode_header,
    encode_payload,
    pack_data,
)
from aeradio.flowgraphs.channel_sim import ChannelModel, ChannelSettings, snr_db_from_ebn0_db
from aeradio.flowgraphs.rx_chain import RxChain
from aeradio.flowgraphs.tx_chain import TxChain

#: 60 information bits in 120 coded bits: 60 blocks of k = 2 per codeword.
SMALL_CODE = {"rate": 0.5, "codeword_bits": 120, "bp_iterations": 20}


def coded_config(blocks_per_frame: int = 200, k: int = 2) -> LinkConfig:
    return LinkConfig.from_dict({
        "model": {"k": k, "n": 1, "receiver": "bitwise", "hidden_width": 16, "hidden_layers": 1},
        "frame": {"blocks_per_frame": blocks_per_frame},
        "code": SMALL_CODE,
    })


@pytest.fixture(scope="module")
def link():
    from aeradio.learning.bitwise import app_llrs, qam_gray_lut
    from aeradio.learning.coded import outer_code

    cfg = coded_config()
    lut = qam_gray_lut(cfg.model.k)
    code = outer_code(cfg)
    tx = TxChain(cfg, lut, 0xC0DE, code=code)

    def rx() -> RxChain:
        return RxChain(cfg, lambda y, nv: app_llrs(y, lut, nv), model_hash=0xC0DE, code=code)

    return cfg, tx, rx


def _channel(cfg: LinkConfig, ebn0_db: float, seed: int, **impairments: float) -> ChannelModel:
    """AWGN at ``ebn0_db`` per information bit (the code rate counted) plus impairments."""
    sps = cfg.radio.samples_per_symbol
    snr_db = snr_db_from_ebn0_db(ebn0_db, cfg.info_rate, sps)
    settings = ChannelSettings(signal_power=1 / sps, noise_power=10 ** (-snr_db / 10) / sps, **impairments)
    return ChannelModel(settings, np.random.default_rng(seed))


def _receive(rx: RxChain, x: np.ndarray, channel: ChannelModel | None = None) -> list:
    pad = np.zeros(3000, np.complex64)
    y = np.concatenate([pad, x, pad, pad])
    if channel is not None:
        y = channel.process(y)
    results = rx.process(y)
    rx.flush()
    return results


def test_a_frame_carries_whole_codewords():
    cfg = coded_config(blocks_per_frame=200)  # 200 blocks: rounded up to 4 codewords of 60
    lay = FrameLayout(cfg)
    assert (cfg.codewords_per_frame, cfg.payload_blocks, lay.blocks) == (4, 240, 240)
    assert lay.coded and lay.codewords == 4 and lay.info_bits == 240
    assert lay.data_capacity == 240 // 8 - 4  # the information bits carry the bytes and the CRC-32
    exact = coded_config(blocks_per_frame=120)
    assert exact.payload_blocks == 120 and exact.codewords_per_frame == 2
    # Sionna's setting with the default frame (128 blocks): one codeword of 250 symbols.
    sionna = LinkConfig.from_dict({"model": {"k": 6, "n": 1, "receiver": "bitwise"}, "code": {}})
    assert (sionna.codewords_per_frame, sionna.payload_blocks) == (1, 250)
    plain = LinkConfig.from_dict({"model": {"k": 2, "n": 1}, "frame": {"blocks_per_frame": 200}})
    assert plain.codewords_per_frame == 0 and FrameLayout(plain).blocks == 200


def test_the_header_says_a_frame_is_coded():
    h = Header.data(7, 26, 0x1234, last=True, coded=True)
    assert h.coded and h.last and h.payload == PAYLOAD_DATA_WHITENED and h.is_data and h.kind & CODED_FLAG
    assert decode_header(_coded_llr(h)) == h
    plain = Header.test_pattern(7, 3, 0x1234)
    assert not plain.coded and plain.payload == PAYLOAD_TEST_PATTERN


def _coded_llr(h: Header) -> np.ndarray:
    """Noise-free soft bits of a header's coded bits (positive: bit 0)."""
    from aeradio.dsp import conv_code

    return 1.0 - 2.0 * conv_code.encode(encode_header(h)[None, :])[0].astype(np.float32)


def test_the_chains_need_the_code_of_a_coded_model_and_refuse_one_otherwise():
    from aeradio.learning.bitwise import qam_gray_lut
    from aeradio.learning.coded import outer_code

    cfg = coded_config()
    lut = qam_gray_lut(2)
    with pytest.raises(ConfigError, match="need its outer code"):
        TxChain(cfg, lut, 0)
    with pytest.raises(ConfigError, match="need its outer code"):
        RxChain(cfg, lambda y, nv: y, model_hash=0)
    plain = LinkConfig.from_dict({"model": {"k": 2, "n": 1}})
    with pytest.raises(ConfigError, match="uncoded link"):
        TxChain(plain, lut, 0, code=outer_code(cfg))
    other = LinkConfig.from_dict({**cfg.to_dict(), "code": {**SMALL_CODE, "codeword_bits": 240}})
    with pytest.raises(ConfigError, match="information bits"):
        TxChain(cfg, lut, 0, code=outer_code(other))


def test_coded_test_patterns_decode_where_the_blocks_have_errors(link):
    """At Eb/N0 6.5 dB per information bit (QPSK symbols at Es/N0 6.5 dB), about 4 % of the
    blocks are wrong before decoding, so nearly every 240-block frame has an error; the code
    corrects them all (60 codewords)."""
    cfg, tx, make_rx = link
    rx = make_rx()
    frames = 15
    results = _receive(rx, tx.test_pattern(np.arange(frames), seed=9, last=True),
                       _channel(cfg, 6.5, seed=3, cfo_cps=1e-3))
    report = rx.report(cfg.radio.sample_rate_hz)
    assert report["frames_decoded"] == frames and report["coded"]
    assert report["blocks"] == frames * 240 and report["bler"] > 0.02
    assert sum(r.block_errors > 0 for r in results) >= frames - 1
    assert report["codewords"] == frames * 4
    assert report["codeword_errors"] == 0 and report["coded_bler"] == 0.0
    assert report["decoder_failures"] == 0
    assert all(r.parity_ok.all() and r.codeword_errors == 0 for r in results)


def data_frames_with_a_bad_codeword(tx: TxChain, chunks: list[bytes], bad: int, rng: np.random.Generator
                                    ) -> np.ndarray:
    """``tx.data(chunks, 0, last=True)``, but frame ``bad``'s second codeword replaced by
    random blocks (its header, pilots and other codewords intact): samples [N] complex64."""
    lay = tx.layout
    headers = [Header.data(i, len(c), tx.model_hash16, last=i == len(chunks) - 1, coded=True)
               for i, c in enumerate(chunks)]
    bits = np.stack([pack_data(c, 1, lay.info_bits, h.seq) for c, h in zip(chunks, headers, strict=True)])
    messages = encode_payload(tx.code, bits, lay.k)
    per_word = lay.blocks // lay.codewords
    messages[bad, per_word : 2 * per_word] = rng.integers(0, lay.M, per_word)
    return tx.modulate(headers, messages)


def test_coded_data_frames_carry_bytes_and_a_failed_codeword_drops_the_frame(link, rng):
    cfg, tx, make_rx = link
    cap = tx.data_capacity
    chunks = [bytes(rng.integers(0, 256, cap, dtype=np.uint8)) for _ in range(3)] + [b"end"]
    rx = make_rx()
    results = _receive(rx, data_frames_with_a_bad_codeword(tx, chunks, 1, rng), _channel(cfg, 8.0, seed=4))
    by_seq = {r.seq: r for r in results}
    assert sorted(by_seq) == [0, 1, 2, 3]
    assert by_seq[0].data == chunks[0] and by_seq[2].data == chunks[2] and by_seq[3].data == b"end"
    assert by_seq[1].data is None and by_seq[1].parity_ok.tolist() == [True, False, True, True]
    stats = rx.report(cfg.radio.sample_rate_hz)
    assert stats["data_decode_failures"] == 1 and stats["decoder_failures"] == 1
    assert stats["data_crc_failures"] == 0 and stats["frames_decoded"] == 4


def test_frames_of_a_coded_model_at_an_uncoded_receiver_are_code_mismatches(link):
    cfg, tx, _ = link
    plain_cfg = LinkConfig.from_dict({"model": {"k": 2, "n": 1}, "frame": {"blocks_per_frame": 240}})
    # The same model hash on purpose: the CODED flag alone refuses the frames.
    rx = RxChain(plain_cfg, lambda y, nv: np.zeros(len(y), np.int64), model_hash=0xC0DE)
    _receive(rx, tx.test_pattern(np.arange(3), seed=1, last=True))
    report = rx.report(plain_cfg.radio.sample_rate_hz)
    assert report["frames_decoded"] == 0
    assert report["model_mismatches"] == report["code_mismatches"] == 3


def test_probe_frames_of_a_coded_model_are_received_without_decoding(link):
    """Probe frames carry known symbols, not codewords: no CODED flag, no decoding."""
    cfg, tx, make_rx = link
    rx = make_rx()
    results = _receive(rx, tx.probe(np.arange(3), seed=2, last=True))
    report = rx.report(cfg.radio.sample_rate_hz)
    assert report["frames_decoded"] == report["probe_frames"] == 3
    assert report["code_mismatches"] == report["decoder_failures"] == report["codewords"] == 0
    assert all(r.parity_ok is None and r.info_bits is None for r in results)



def test_a_burst_of_zero_byte_data_frames_keeps_its_measured_snr(link):
    """Regression: a file of zeros made every payload one repeated point, a DC the RX chain's
    DC removal (a running mean) took for the radio's and subtracted. On a clean channel the
    SNR measured on the known symbols fell with the burst's length (QPSK here: 17 dB for 3
    frames, 10.6 dB for 23; random bytes 31 and 35 dB); with ae-n1-k6-ldpc's 64 learned
    points, a 2000-byte file of zeros (23 frames) lost every frame of a noise-free recording
    (`aeradio tx --file` to file:, then `aeradio rx --out`). Data frames are now whitened."""
    cfg, tx, make_rx = link
    rx = make_rx()
    results = _receive(rx, tx.data([bytes(tx.data_capacity)] * 23, 0, last=True))
    assert len(results) == 23 and min(r.snr_db for r in results) > 20.0
    assert all(r.header.whitened and r.data == bytes(tx.data_capacity) for r in results)


def test_data_frames_of_earlier_versions_are_still_received(link, rng):
    """Frames of payload type 1 (data not whitened, what earlier versions sent) decode as before."""
    cfg, tx, make_rx = link
    lay = tx.layout
    chunks = [bytes(rng.integers(0, 256, tx.data_capacity, dtype=np.uint8)) for _ in range(2)]
    headers = [Header(i, PAYLOAD_DATA | CODED_FLAG, len(c), tx.model_hash16) for i, c in enumerate(chunks)]
    bits = np.stack([pack_data(c, 1, lay.info_bits) for c in chunks])
    results = _receive(make_rx(), tx.modulate(headers, encode_payload(tx.code, bits, lay.k)))
    assert [r.data for r in results] == chunks and not any(r.header.whitened for r in results)
