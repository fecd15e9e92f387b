"""Frame layout, header coding (CRC-16, convolutional code, Viterbi) and payload packing."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aeradio.core.config import LinkConfig
from aeradio.core.errors import ConfigError
from aeradio.dsp import conv_code, framing
from aeradio.dsp.crc import crc16, crc16_rows, crc32
from aeradio.dsp.framing import (
    HEADER_BITS,
    HEADER_CODED_BITS,
    HEADER_SYMBOLS,
    MAX_FRAME_DATA_BYTES,
    MAX_RUN_FRAMES,
    PAYLOAD_DATA,
    PAYLOAD_DATA_WHITENED,
    PAYLOAD_PROBE,
    PAYLOAD_TEST_PATTERN,
    SEQ_MODULUS,
    FrameLayout,
    Header,
    data_capacity_bytes,
    decode_header,
    decode_headers,
    encode_header,
    extend_seq,
    pack_data,
    pattern_messages,
    pattern_messages_of_keys_reference,
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
    # 70 payload symbols, one pilot after every 48 and after the last partial group.
    assert len(lay.pilot_index) == 2
    assert lay.pilot_index[-1] == lay.num_symbols - 1
    assert sum(lay.overhead.values()) == pytest.approx(1.0)


def test_frame_symbols_have_unit_energy(rng: np.random.Generator) -> None:
    cfg = LinkConfig.from_dict({"model": {"k": 2, "n": 1}, "frame": {"blocks_per_frame": 64}})
    lay = FrameLayout(cfg)
    qpsk = (np.array([1 + 1j, 1 - 1j, -1 + 1j, -1 - 1j]) / np.sqrt(2)).astype(np.complex64)
    bits = rng.integers(0, 2, (3, HEADER_BITS)).astype(np.uint8)
    frames = lay.frame_symbols(bits, qpsk[rng.integers(0, 4, (3, 64))][..., None])
    np.testing.assert_allclose(np.abs(frames), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(frames[:, lay.pilot_index], np.broadcast_to(lay.pilot_symbols, (3, 2)))


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


def _coded_llr(h: Header, scale: float = 1.0) -> np.ndarray:
    """Noise-free soft values of a header's coded bits [HEADER_CODED_BITS]."""
    return scale * (1.0 - 2.0 * conv_code.encode(encode_header(h)[None, :])[0])


def test_header_roundtrip_and_error_correction(rng: np.random.Generator) -> None:
    h = Header(seq=513, kind=PAYLOAD_DATA, length=4000, model_hash=0xBEEF)
    bits = encode_header(h)
    assert bits.shape == (HEADER_BITS,)
    assert HEADER_CODED_BITS == 3 * (HEADER_BITS + 6) and HEADER_SYMBOLS == 105
    llr = _coded_llr(h) * (2.0 + rng.random(HEADER_CODED_BITS))
    assert decode_header(llr) == h
    # Free distance 15: any 7 confident errors are corrected.
    for _ in range(50):
        bad = llr.copy()
        bad[rng.choice(HEADER_CODED_BITS, 7, replace=False)] *= -1
        assert decode_header(bad) == h
    # Weak errors are cheap to repair, whatever their number.
    weak = llr.copy()
    idx = rng.choice(HEADER_CODED_BITS, 40, replace=False)
    weak[idx] = -0.05 * np.sign(weak[idx])
    assert decode_header(weak) == h
    # A burst of confident errors: the decoder picks another path, the CRC rejects it.
    worse = llr.copy()
    worse[30:90] *= -1
    assert decode_header(worse) is None


def test_conv_code_free_distance_and_linearity(rng: np.random.Generator) -> None:
    # One input 1 (then zeros) weighs the free distance; the code is linear.
    one = np.zeros((1, 20), np.uint8)
    one[0, 7] = 1
    assert int(conv_code.encode(one).sum()) == conv_code.FREE_DISTANCE == 15
    a, b = rng.integers(0, 2, (2, 3, 20)).astype(np.uint8)
    np.testing.assert_array_equal(conv_code.encode(a ^ b), conv_code.encode(a) ^ conv_code.encode(b))
    # Zero-terminated: the last 6 inputs are the tail, the encoder ends in state 0.
    assert conv_code.encode(a).shape == (3, conv_code.coded_length(20))


def test_header_decoding_at_low_snr(rng: np.random.Generator) -> None:
    # QPSK header symbols through the layout at Es/N0 = 2.6 dB (an AE(7, 8) payload at
    # Eb/N0 2 dB, 2 dB below the operating point): 400 headers decode with at most 1 loss
    # (measured ~1e-4 there; the bench measures 4 dB).
    lay = FrameLayout(LinkConfig.from_dict({"model": {"k": 8, "n": 7}}))
    headers = [Header(seq=s, kind=s % 2, length=s % 4096, model_hash=0x5A5A) for s in range(400)]
    x = lay.header_symbols(np.stack([encode_header(h) for h in headers]))
    esn0 = 10 ** 0.2 * 8 / 7
    y = x + (rng.normal(size=x.shape) + 1j * rng.normal(size=x.shape)) * np.sqrt(0.5 / esn0)
    got = decode_headers(lay.header_llr(y.astype(np.complex64)))
    assert sum(g != h for g, h in zip(got, headers, strict=True)) <= 1


def test_header_fields_are_range_checked() -> None:
    with pytest.raises(ConfigError, match="header.length"):
        Header(seq=0, kind=0, length=5000, model_hash=0)


@pytest.mark.parametrize("field, bad", [
    ("seq", -1), ("seq", SEQ_MODULUS), ("seq", SEQ_MODULUS - 0.5), ("kind", 16), ("kind", 15.5),
    ("length", MAX_FRAME_DATA_BYTES + 1), ("length", MAX_FRAME_DATA_BYTES + 0.5), ("model_hash", 0x10000),
    ("model_hash", 0xFFFF + 0.5), ("model_hash", -0.5), ("seq", float("nan")),
])
def test_every_header_field_beyond_its_range_is_named(field: str, bad: float) -> None:
    # The one chained comparison Header tries first must reject whatever the named checks
    # reject (the bounds inclusive, as check_range's), so the field is named.
    fields = {"seq": 0, "kind": 0, "length": 0, "model_hash": 0, field: bad}
    with pytest.raises(ConfigError, match=f"header.{field} must be in"):
        Header(**fields)


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


@pytest.mark.parametrize("num_messages", [2, 16, 256, 65536])
def test_compiled_test_pattern_is_the_numpy_model(num_messages: int) -> None:
    rng = np.random.default_rng(8)
    seeds = rng.integers(0, 4096, 300)
    seqs = np.concatenate([rng.integers(0, 1 << 40, 299), [2**63 - 1]])  # the high bits ignored
    got = pattern_messages(seeds, seqs, 130, num_messages)
    key = framing._splitmix64(seeds.astype(np.uint64)) ^ (
        (seqs.astype(np.uint64) & np.uint64(SEQ_MODULUS - 1)) << np.uint64(20))
    np.testing.assert_array_equal(got, pattern_messages_of_keys_reference(key, 130, num_messages))
    assert got.dtype == np.int64 and got.min() >= 0 and num_messages / 2 <= got.max() < num_messages
    np.testing.assert_array_equal(pattern_messages(int(seeds[5]), int(seqs[5]), 130, num_messages), got[5])
    assert pattern_messages(seeds, seqs, 0, num_messages).shape == (300, 0)


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
    llr = np.stack([_coded_llr(h) * (1 + rng.random(HEADER_CODED_BITS)) for h in headers])
    llr[3, [2, 9, 50, 51, 52]] *= -1  # five errors: corrected
    llr[7, 20:80] *= -1  # beyond repair
    got = decode_headers(llr)
    assert got == [decode_header(row) for row in llr]
    assert got[3] == headers[3] and got[7] is None
    assert [g for i, g in enumerate(got) if i != 7] == [h for i, h in enumerate(headers) if i != 7]


def test_vectorized_header_fields_cover_every_bit(rng: np.random.Generator) -> None:
    # decode_headers takes the fields of all rows at once; each field's full range (and its
    # neighbours' bits set) reads back as Header.from_bytes reads it.
    top = np.array([0xFFFF, 0xF, 0xFFF, 0xFFFF])
    fields = [tuple(top.tolist()), (0, 0, 0, 0), (0x8001, 0x8, 0x801, 0x8001),
              *[tuple(rng.integers(0, top + 1).tolist()) for _ in range(30)]]
    headers = [Header(*f) for f in fields]
    got = decode_headers(np.stack([_coded_llr(h) for h in headers]))
    assert got == headers
    assert got == [Header.from_bytes(h.to_bytes()) for h in headers]


def test_header_kind_is_payload_type_and_last_flag() -> None:
    tp = Header.test_pattern(SEQ_MODULUS + 5, seed=4095, model_hash=0xBEEF, last=True)
    assert (tp.seq, tp.payload, tp.last, tp.seed, tp.length) == (5, PAYLOAD_TEST_PATTERN, True, 4095, 4095)
    data = Header.data(7, nbytes=12, model_hash=1)
    assert (data.payload, data.last, data.seed, data.length) == (PAYLOAD_DATA_WHITENED, False, None, 12)
    assert data.is_data and data.whitened and Header(7, PAYLOAD_DATA, 12, 1).is_data
    probe = Header(seq=0, kind=PAYLOAD_PROBE | 0x8, length=0, model_hash=0)
    assert probe.payload == PAYLOAD_PROBE and probe.last and probe.seed is None
    # The flag and the seed survive the air: encode, decode (the 64-bit layout is unchanged).
    for h in (tp, data, probe):
        assert decode_header(_coded_llr(h, 3.0)) == h
    assert encode_header(Header.data(3, 100, 0xAB, last=True))[16:20].tolist() == [1, 0, 1, 1]  # kind


def test_test_pattern_seed_is_range_checked() -> None:
    with pytest.raises(ConfigError, match=r"test-pattern seed must be in \[0, 4095\], got 4096"):
        Header.test_pattern(0, seed=4096, model_hash=0)


def test_pattern_takes_a_seed_per_frame_and_the_header_seq() -> None:
    seeds, seqs = np.array([1, 2, 3]), np.array([10, 11, SEQ_MODULUS + 12])
    rows = pattern_messages(seeds, seqs, 8, 256)
    for i in range(3):
        one = pattern_messages(int(seeds[i]), int(seqs[i]) % SEQ_MODULUS, 8, 256)
        np.testing.assert_array_equal(rows[i], one)


@settings(max_examples=200, deadline=None)
@given(reference=st.integers(0, MAX_RUN_FRAMES - 1),
       step=st.integers(1 - SEQ_MODULUS // 2, SEQ_MODULUS // 2 - 1))
def test_extend_seq_recovers_numbers_within_half_the_modulus(reference: int, step: int) -> None:
    seq = max(0, reference + step)
    assert extend_seq(seq % SEQ_MODULUS, reference) == seq


def test_extend_seq_across_the_wrap() -> None:
    got, ref = [], None
    for s in range(SEQ_MODULUS - 3, SEQ_MODULUS + 3):
        ref = extend_seq(s % SEQ_MODULUS, ref)
        got.append(ref)
    assert got == list(range(SEQ_MODULUS - 3, SEQ_MODULUS + 3))
    assert extend_seq(SEQ_MODULUS - 1, 3) == SEQ_MODULUS - 1  # never below 0


@settings(max_examples=200, deadline=None)
@given(seq=st.integers(0, SEQ_MODULUS - 1), kind=st.integers(0, 15), length=st.integers(0, 4095),
       model_hash=st.integers(0, 0xFFFF), flips=st.lists(st.integers(0, HEADER_CODED_BITS - 1), max_size=7))
def test_any_header_survives_seven_hard_errors(seq: int, kind: int, length: int, model_hash: int,
                                               flips: list[int]) -> None:
    h = Header(seq=seq, kind=kind, length=length, model_hash=model_hash)
    lay = FrameLayout(LinkConfig.from_dict({"model": {"k": 4, "n": 2}, "frame": {"blocks_per_frame": 8}}))
    llr = lay.header_llr(lay.header_symbols(encode_header(h)[None, :]))
    llr[0, sorted(set(flips))] *= -1
    assert decode_headers(llr) == [h]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6, width=32), min_size=HEADER_CODED_BITS, max_size=HEADER_CODED_BITS))
def test_any_soft_header_decodes_to_a_valid_header_or_none(values: list[float]) -> None:
    # Whatever the air delivers (finite soft values: the RX zeroes non-finite samples), the
    # decoder returns a header whose fields are in range, or None; it never raises.
    got = decode_header(np.array(values, np.float32))
    assert got is None or (0 <= got.seq < SEQ_MODULUS and 0 <= got.length <= 4095 and 0 <= got.kind <= 15)


@pytest.mark.parametrize("noise_std", [0.5, 1.3, 3.0])
def test_compiled_viterbi_decides_as_the_numpy_trellis(noise_std: float) -> None:
    """decode (compiled) and decode_reference (numpy) make the same decisions, including on
    words too noisy to decode right (where ties and wrong paths are common)."""
    rng = np.random.default_rng(7)
    bits = rng.integers(0, 2, (400, HEADER_BITS)).astype(np.uint8)
    llr = (1.0 - 2.0 * conv_code.encode(bits)) + rng.normal(0.0, noise_std, (400, HEADER_CODED_BITS))
    llr[:5] = np.round(llr[:5])  # integer soft bits: exact ties in the add-compare-select
    assert np.array_equal(conv_code.decode(llr), conv_code.decode_reference(llr))
    assert conv_code.decode(llr[:0]).shape == (0, HEADER_BITS)


@pytest.mark.parametrize("words", [1, 3, 63, 64, 65, 130])
def test_compiled_viterbi_decides_each_word_alone_as_in_a_batch(words: int) -> None:
    """The compiled decoder runs up to 64 words side by side: any batch size, a partial last
    batch included, decides each word as the numpy trellis and as the word alone."""
    rng = np.random.default_rng(words)
    bits = rng.integers(0, 2, (words, HEADER_BITS)).astype(np.uint8)
    llr = (1.0 - 2.0 * conv_code.encode(bits)) + rng.normal(0.0, 1.3, (words, HEADER_CODED_BITS))
    batch = conv_code.decode(llr)
    assert np.array_equal(batch, conv_code.decode_reference(llr))
    for i in (0, words // 2, words - 1):
        assert np.array_equal(conv_code.decode(llr[i : i + 1])[0], batch[i])


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(st.binary(min_size=6, max_size=6), min_size=1, max_size=5))
def test_crc16_rows_equals_crc16_of_each_row(rows: list[bytes]) -> None:
    data = np.frombuffer(b"".join(rows), np.uint8).reshape(len(rows), 6)
    assert crc16_rows(data).tolist() == [crc16(r) for r in rows]
