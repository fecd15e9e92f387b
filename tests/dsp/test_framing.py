"""Frame layout, header coding (CRC-16, Chase decoding) and payload packing."""

import numpy as np
import pytest

from aeradio.core.config import LinkConfig
from aeradio.core.errors import ConfigError
from aeradio.dsp.crc import crc16, crc32
from aeradio.dsp.framing import (
    HEADER_BITS,
    PAYLOAD_DATA,
    FrameLayout,
    Header,
    data_capacity_bytes,
    decode_header,
    decode_headers,
    encode_header,
    pack_data,
    pattern_messages,
    qpsk_sequence,
    unpack_data,
)


def test_crc_check_values() -> None:
    # The catalogue check values of CRC-16/CCITT-FALSE and CRC-32.
    assert crc16(b"123456789") == 0x29B1
    assert crc32(b"123456789") == 0xCBF43926
    assert crc16(b"") == 0xFFFF


def test_layout_partitions_the_frame() -> None:
    cfg = LinkConfig.from_dict({"model": {"k": 8, "n": 7}, "frame": {"blocks_per_frame": 10}})
    lay = FrameLayout(cfg)
    header = np.arange(lay.header_start, lay.header_start + lay.header_len)
    parts = np.concatenate([np.arange(len(lay.preamble)), header, lay.payload_index, lay.pilot_index])
    np.testing.assert_array_equal(np.sort(parts), np.arange(lay.num_symbols))
    # 70 payload symbols, one pilot after every 16 and after the last partial group.
    assert len(lay.pilot_index) == 5
    assert lay.pilot_index[-1] == lay.num_symbols - 1
    assert sum(lay.overhead.values()) == pytest.approx(1.0)


def test_frame_symbols_have_unit_energy(rng: np.random.Generator) -> None:
    cfg = LinkConfig.from_dict({"model": {"k": 2, "n": 1}, "frame": {"blocks_per_frame": 64}})
    lay = FrameLayout(cfg)
    qpsk = (np.array([1 + 1j, 1 - 1j, -1 + 1j, -1 - 1j]) / np.sqrt(2)).astype(np.complex64)
    bits = rng.integers(0, 2, (3, HEADER_BITS)).astype(np.uint8)
    frames = lay.frame_symbols(bits, qpsk[rng.integers(0, 4, (3, 64))][..., None])
    np.testing.assert_allclose(np.abs(frames), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(frames[:, lay.pilot_index], np.broadcast_to(lay.pilot_symbols, (3, 4)))


def test_ltf_has_a_thumbtack_correlation() -> None:
    # The LTF's aperiodic autocorrelation sidelobes stay well below its peak, also with a
    # residual CFO (no chirp-like ridge that would move the timing).
    ltf = qpsk_sequence(32, np.random.default_rng(0xAE0)).astype(np.complex128)
    np.testing.assert_allclose(np.abs(ltf), 1.0, rtol=1e-6)
    for cfo_per_symbol in (0.0, 0.01):
        rx = ltf * np.exp(2j * np.pi * cfo_per_symbol * np.arange(32))
        corr = np.abs(np.correlate(rx, ltf, mode="full"))
        peak = corr[31]
        assert np.max(np.delete(corr, 31)) < 0.5 * peak


def test_header_roundtrip_and_chase_correction(rng: np.random.Generator) -> None:
    h = Header(seq=513, kind=PAYLOAD_DATA, length=4000, model_hash=0xBEEF)
    bits = encode_header(h)
    assert bits.shape == (HEADER_BITS,)
    llr = (1.0 - 2.0 * bits) * (2.0 + rng.random(HEADER_BITS))
    assert decode_header(llr) == h
    # Two flipped bits that are among the least reliable: the Chase decoder repairs them.
    bad = llr.copy()
    bad[[5, 40]] = -0.1 * np.sign(llr[[5, 40]])
    assert decode_header(bad) == h
    # Many confident errors: the CRC rejects the header.
    worse = llr.copy()
    worse[:12] *= -1
    assert decode_header(worse) is None


def test_header_fields_are_range_checked() -> None:
    with pytest.raises(ConfigError, match="header.length"):
        Header(seq=0, kind=0, length=5000, model_hash=0)


def test_data_pack_roundtrip_and_crc(rng: np.random.Generator) -> None:
    k, blocks = 8, 16
    cap = data_capacity_bytes(k, blocks)
    assert cap == 12
    data = bytes(rng.integers(0, 256, cap, dtype=np.uint8))
    msgs = pack_data(data, k, blocks)
    assert msgs.shape == (blocks,) and msgs.max() < 256
    assert unpack_data(msgs, k, len(data)) == data
    broken = msgs.copy()
    broken[3] ^= 1
    assert unpack_data(broken, k, len(data)) is None
    with pytest.raises(ConfigError, match="at most 12 bytes"):
        pack_data(bytes(cap + 1), k, blocks)
    # k not a multiple of 8 (bits straddle messages).
    msgs7 = pack_data(b"hello", 7, 12)
    assert unpack_data(msgs7, 7, 5) == b"hello"


def test_test_pattern_is_deterministic_and_uniform() -> None:
    a = pattern_messages(3, np.arange(200), 50, 256)
    np.testing.assert_array_equal(a, pattern_messages(3, np.arange(200), 50, 256))
    np.testing.assert_array_equal(a[17], pattern_messages(3, 17, 50, 256))
    assert not np.array_equal(a, pattern_messages(4, np.arange(200), 50, 256))
    counts = np.bincount(a.reshape(-1), minlength=256)
    # 10000 draws over 256 values: chi-square with 255 dof stays far below 400.
    chi2 = np.sum((counts - 10000 / 256) ** 2 / (10000 / 256))
    assert chi2 < 400


def test_vectorized_header_decoding_matches_one_by_one(rng: np.random.Generator) -> None:
    headers = [Header(seq=s, kind=s % 2, length=s * 7, model_hash=0x1234) for s in range(20)]
    llr = np.stack([(1.0 - 2.0 * encode_header(h)) * (1 + rng.random(HEADER_BITS)) for h in headers])
    llr[3, [2, 9]] *= -0.05  # two weak errors: repaired by the Chase search
    llr[7, :10] *= -1  # beyond repair
    got = decode_headers(llr)
    assert got == [decode_header(row) for row in llr]
    assert got[3] == headers[3] and got[7] is None
    assert [g for i, g in enumerate(got) if i != 7] == [h for i, h in enumerate(headers) if i != 7]
