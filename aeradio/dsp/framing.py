"""Frame layout shared by TX and RX, header coding and payload packing.

A frame, in symbols (all of unit energy, like the LUT)::

    | STF (repeated pattern) | LTF (random QPSK) | header (coded QPSK) | payload + pilots |

- STF: ``stf_symbols`` repeating one cycle of a tone every ``stf_period_symbols``
  (``+1, -1, ...`` by default): periodic, so detection and coarse CFO need no knowledge
  of the carrier; free of DC, so DC removal leaves it alone.
- LTF: a pseudo-random QPSK sequence for timing (cross-correlation) and fine CFO.
- Header: 64 bits = seq (16) | kind (4) | length (12) | model hash (16) | CRC-16,
  convolutionally coded (rate 1/3, K = 7, zero tail: :mod:`aeradio.dsp.conv_code`; 210
  coded bits), scrambled, QPSK: :data:`HEADER_SYMBOLS` = 105 symbols. The receiver decodes
  it with a soft Viterbi decoder and checks the CRC. ``kind`` is the payload
  type (bits 0-1: 0 test pattern, 1 data as earlier versions sent it, 2 probe, 3 data
  whitened), the CODED flag (bit 2: the payload is codewords of an outer code) and
  the LAST flag (bit 3: the last frame of a transmitter's run);
  ``length`` is the byte count of a data frame and the test-pattern seed of a test-pattern
  frame, so a receiver needs nothing but the frames (see :class:`Header`).
- Payload: ``blocks_per_frame`` AE blocks of n symbols, one pilot after every
  ``pilot_spacing_symbols`` payload symbols (and after the last partial group).

Test-pattern payloads are messages drawn from ``(seed, seq)``; data payloads carry bytes
followed by their CRC-32, packed k bits per message, XORed with the frame's whitening
sequence (:func:`whitening_bits`), so that any data looks random on the air.

Frames of a coded model (a ``[code]`` section) carry whole codewords: the payload is
:attr:`FrameLayout.codewords` codewords of ``codeword_bits`` bits, k bits per block (most
significant first), ``frame.blocks_per_frame`` rounded up to whole codewords
(:attr:`~aeradio.core.config.LinkConfig.payload_blocks`). The information bits of the
codewords (:attr:`FrameLayout.info_bits`) hold what an uncoded frame's messages hold: the
test-pattern bits of ``(seed, seq)`` (:func:`pattern_bits`), or the data bytes and their
CRC-32 (:func:`pack_data` with k = 1); the header says so with its CODED flag. The code
itself is the caller's (:class:`OuterCode`): the chains take it as an argument.

Sequence numbers: a transmitter's run numbers its frames 0, 1, 2, ... (up to
:data:`MAX_RUN_FRAMES`); the header carries the low 16 bits, and a receiver recovers the
full number with :func:`extend_seq` (as RTP's extended sequence number).

>>> from aeradio.core.config import LinkConfig
>>> lay = FrameLayout(LinkConfig.from_dict({"model": {"k": 8, "n": 7}}))
>>> lay.num_symbols, len(lay.payload_index), len(lay.pilot_index), lay.header_len
(1116, 896, 19, 105)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numba
import numpy as np

from aeradio.core.config import LinkConfig
from aeradio.core.constants import SAMPLE_DTYPE
from aeradio.core.errors import ConfigError, check_range
from aeradio.dsp import conv_code
from aeradio.dsp.crc import crc16, crc16_rows, crc32
from aeradio.dsp.pulse import rrc_taps, shape_bursts

#: Payload types (bits 0-1 of the header's ``kind``).
PAYLOAD_TEST_PATTERN = 0
#: Data as sent by earlier versions: the bits as they are (still received).
PAYLOAD_DATA = 1
#: Reserved: known i.i.d. probe symbols over the amplitude range (``tx --pattern probe``).
PAYLOAD_PROBE = 2
#: Data whitened by the frame's pseudo-random sequence (:func:`whitening_bits`): what
#: ``tx --file`` sends. Without it a constant file (zeros) is a constant symbol, whose DC
#: the receiver's DC removal took for the radio's and subtracted, losing every frame.
PAYLOAD_DATA_WHITENED = 3
#: The data payload types.
DATA_PAYLOADS = (PAYLOAD_DATA, PAYLOAD_DATA_WHITENED)
_PAYLOAD_MASK = 0x3
#: Bit 2 of ``kind``: the payload is codewords of the model's outer code (a coded model).
CODED_FLAG = 0x4
#: Bit 3 of ``kind``: the last frame of a transmitter's run (``tx --frames N``, ``tx --file``).
LAST_FLAG = 0x8
#: Largest test-pattern seed: it travels in the 12-bit ``length`` field.
MAX_TEST_PATTERN_SEED = 0xFFF
#: The header carries sequence numbers modulo this.
SEQ_MODULUS = 1 << 16
#: Most frames in one transmitter run (sequence numbers 0 .. MAX_RUN_FRAMES - 1).
MAX_RUN_FRAMES = 1 << 31
#: Header size in bits (including the CRC-16).
HEADER_BITS = 64
#: Coded header bits (rate 1/3 with the zero tail) and the QPSK symbols that carry them.
HEADER_CODED_BITS = conv_code.coded_length(HEADER_BITS)
HEADER_SYMBOLS = HEADER_CODED_BITS // 2
#: Largest ``length`` field (12 bits): data bytes in one frame.
MAX_FRAME_DATA_BYTES = 4095
#: Fixed seed of the pilot and scrambler sequences (a property of the waveform).
_SEQUENCE_SEED = 0xAE0
#: Seed of the data whitening sequence (above every test-pattern seed).
_WHITENING_SEED = 1 << 16


def qpsk_sequence(length: int, rng: np.random.Generator) -> np.ndarray:
    """A pseudo-random QPSK sequence of unit magnitude, [length] complex64.

    Used for the LTF: a random sequence has a thumbtack ambiguity function, so a residual
    CFO does not move its correlation peak (a chirp such as Zadoff-Chu root 1 would).
    """
    k = rng.integers(0, 4, length)
    return np.exp(0.5j * np.pi * (k + 0.5)).astype(SAMPLE_DTYPE)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finalizer on uint64 arrays (wrapping arithmetic: numpy warns of the
    overflow on 0-d arrays only, and it is the point)."""
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def pattern_messages(
    seed: int | np.ndarray, seqs: np.ndarray | int, blocks: int, num_messages: int
) -> np.ndarray:
    """Test-pattern messages of frames ``seqs``, a counter-based hash of (seed, seq, block).

    Deterministic across platforms and vectorized, so TX and RX regenerate them cheaply.
    Only the low 16 bits of ``seqs`` count (what the header carries), so the pattern of a
    frame follows from its header alone.

    Args:
        seed: test-pattern seed(s) in [0, MAX_TEST_PATTERN_SEED], a scalar or an array
            broadcast against ``seqs`` (one seed per frame).
        seqs: [F] (or a scalar) frame sequence numbers (>= 0).
        blocks: messages per frame.
        num_messages: M (a power of two).
    Returns:
        [F, blocks] (or [blocks]) int64 in [0, num_messages).

    >>> pattern_messages(0, 3, 4, 256).shape
    (4,)
    >>> bool(np.array_equal(pattern_messages(5, 3, 4, 256), pattern_messages(5, 3 + SEQ_MODULUS, 4, 256)))
    True
    """
    seq16 = np.asarray(seqs, dtype=np.uint64) & np.uint64(SEQ_MODULUS - 1)
    key = _splitmix64(np.asarray(seed, dtype=np.uint64)) ^ (seq16 << np.uint64(20))
    out = np.empty(key.shape + (blocks,), np.int64)
    _pattern_kernel(np.ascontiguousarray(key).reshape(-1), num_messages, out.reshape(key.size, blocks))
    return out


def pattern_messages_of_keys_reference(key: np.ndarray, blocks: int, num_messages: int) -> np.ndarray:
    """The messages of :func:`pattern_messages` from each frame's key (uint64, any shape),
    in numpy: the model its compiled kernel is tested against. Returns ``key.shape +
    (blocks,)`` int64."""
    h = _splitmix64(key[..., None] + np.arange(blocks, dtype=np.uint64))
    return (h >> np.uint64(32)).astype(np.int64) % num_messages


@numba.njit(nogil=True, cache=True)
def _pattern_kernel(keys, num_messages, out):  # pragma: no cover - compiled
    """:func:`pattern_messages_of_keys_reference` of ``keys`` [F] into ``out`` [F, blocks],
    one pass without temporaries (the RX chain regenerates every test-pattern frame's
    messages to count its block errors)."""
    for f in range(out.shape[0]):
        for b in range(out.shape[1]):
            x = keys[f] + np.uint64(b) + np.uint64(0x9E3779B97F4A7C15)
            x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            x = x ^ (x >> np.uint64(31))
            out[f, b] = np.int64(x >> np.uint64(32)) % num_messages


def extend_seq(seq16: int, reference: int | None) -> int:
    """The full sequence number of a header's 16-bit ``seq16``.

    Of the non-negative numbers equal to ``seq16`` modulo :data:`SEQ_MODULUS`, the one
    nearest ``reference`` (the last full number seen), as RTP's extended sequence number;
    ``seq16`` itself without a reference. Right while fewer than 32768 frames in a row
    are lost.

    >>> extend_seq(3, 65534), extend_seq(65534, 65539), extend_seq(7, None), extend_seq(65535, 2)
    (65539, 65534, 7, 65535)
    """
    if reference is None:
        return seq16
    delta = (seq16 - reference) % SEQ_MODULUS
    if delta >= SEQ_MODULUS // 2:
        delta -= SEQ_MODULUS
    return reference + delta if reference + delta >= 0 else seq16


@dataclass(frozen=True)
class Header:
    """What a frame says about itself: the 48 bits before the header's CRC-16.

    Attributes:
        seq: the frame's sequence number modulo 2**16.
        kind: payload type (bits 0-2, :attr:`payload`) | LAST flag (bit 3, :attr:`last`).
        length: data frames: the data byte count; test-pattern frames: the test-pattern
            seed (:attr:`seed`).
        model_hash: the low 16 bits of the transmitter model's hash.

    >>> h = Header.test_pattern(70000, seed=9, model_hash=0xBEEF, last=True)
    >>> h.seq, h.payload, h.last, h.seed, h.kind
    (4464, 0, True, 9, 8)
    >>> Header.data(3, nbytes=100, model_hash=1).seed is None
    True
    """

    seq: int
    kind: int
    length: int
    model_hash: int

    def __post_init__(self) -> None:
        check_range("header.seq", self.seq, 0, SEQ_MODULUS - 1)
        check_range("header.kind", self.kind, 0, 0xF)
        check_range("header.length", self.length, 0, MAX_FRAME_DATA_BYTES)
        check_range("header.model_hash", self.model_hash, 0, 0xFFFF)

    @classmethod
    def test_pattern(
        cls, seq: int, seed: int, model_hash: int, *, last: bool = False, coded: bool = False
    ) -> Header:
        """A test-pattern frame's header (``seq`` taken modulo 2**16; ``seed`` in [0, 4095];
        ``coded``: its payload is codewords)."""
        check_range("test-pattern seed", seed, 0, MAX_TEST_PATTERN_SEED)
        return cls(seq % SEQ_MODULUS, PAYLOAD_TEST_PATTERN | _flags(last, coded), seed, model_hash)

    @classmethod
    def data(
        cls, seq: int, nbytes: int, model_hash: int, *, last: bool = False, coded: bool = False
    ) -> Header:
        """A data frame's header (``seq`` taken modulo 2**16) for ``nbytes`` data bytes."""
        return cls(seq % SEQ_MODULUS, PAYLOAD_DATA_WHITENED | _flags(last, coded), nbytes, model_hash)

    @property
    def payload(self) -> int:
        """The payload type: PAYLOAD_TEST_PATTERN, PAYLOAD_DATA, PAYLOAD_PROBE, ..."""
        return self.kind & _PAYLOAD_MASK

    @property
    def is_data(self) -> bool:
        """True for a data frame (whitened, or as earlier versions sent it)."""
        return self.payload in DATA_PAYLOADS

    @property
    def whitened(self) -> bool:
        """True when the payload bits are whitened (:func:`whitening_bits` of :attr:`seq`)."""
        return self.payload == PAYLOAD_DATA_WHITENED

    @property
    def last(self) -> bool:
        """True for the last frame of a transmitter's run."""
        return bool(self.kind & LAST_FLAG)

    @property
    def coded(self) -> bool:
        """True when the payload is codewords of an outer code (a coded model's frame)."""
        return bool(self.kind & CODED_FLAG)

    @property
    def seed(self) -> int | None:
        """The test-pattern seed of a test-pattern frame; None for other payloads."""
        return self.length if self.payload == PAYLOAD_TEST_PATTERN else None

    def to_bytes(self) -> bytes:
        """The 6 header bytes the CRC covers, big-endian."""
        word = (self.seq << 32) | (self.kind << 28) | (self.length << 16) | self.model_hash
        return word.to_bytes(6, "big")

    @classmethod
    def from_bytes(cls, data: bytes) -> Header:
        return cls(*_header_fields(int.from_bytes(data[:6], "big")))


def _header_fields(word: Any) -> tuple[Any, Any, Any, Any]:
    """(seq, kind, length, model_hash) of the 48-bit header word(s) ``word`` (an int, or
    uint64 arrays: every row's fields at once), the layout :meth:`Header.to_bytes` writes."""
    return word >> 32, (word >> 28) & 0xF, (word >> 16) & 0xFFF, word & 0xFFFF


def _flags(last: bool, coded: bool) -> int:
    """The LAST and CODED bits of a header's ``kind``."""
    return (LAST_FLAG if last else 0) | (CODED_FLAG if coded else 0)


def encode_header(header: Header) -> np.ndarray:
    """Header bits with CRC-16 (before the channel code): [64] uint8."""
    body = header.to_bytes()
    return np.unpackbits(np.frombuffer(body + crc16(body).to_bytes(2, "big"), np.uint8))


def decode_headers(llr: np.ndarray) -> list[Header | None]:
    """Soft Viterbi decoding of coded headers, then the CRC-16 of each.

    Args:
        llr: [F, HEADER_CODED_BITS] float, the coded bits' soft values (positive: bit 0).
    Returns:
        F headers, None where the CRC fails.
    """
    raw = np.packbits(conv_code.decode(llr), axis=1)
    ok = crc16_rows(raw[:, :6]) == (raw[:, 6].astype(np.int64) << 8 | raw[:, 7])
    # Every row's header word and fields at once, then one Header per good row.
    words = np.bitwise_or.reduce(raw[:, :6].astype(np.int64) << np.arange(40, -1, -8), axis=1)
    fields = zip(*(f.tolist() for f in _header_fields(words)), ok.tolist(), strict=True)
    return [Header(seq, kind, length, model_hash) if good else None
            for seq, kind, length, model_hash, good in fields]


def decode_header(llr: np.ndarray) -> Header | None:
    """:func:`decode_headers` of one header's soft values [HEADER_CODED_BITS]."""
    return decode_headers(np.asarray(llr)[None, :])[0]


def data_capacity_bytes(k: int, blocks: int) -> int:
    """Data bytes one frame carries (after its CRC-32), at most 4095."""
    return min(MAX_FRAME_DATA_BYTES, blocks * k // 8 - 4)


def whitening_bits(seq: int, nbits: int) -> np.ndarray:
    """``[nbits]`` uint8: the pseudo-random bits a data frame's payload is XORed with, from
    the low 16 bits of its sequence number (what the header carries), as 802.11's scrambler
    or DVB's energy dispersal: whatever the data, the payload's symbols look random (no DC,
    no spectral lines, timing transitions everywhere).

    >>> bool(np.array_equal(whitening_bits(5, 64), whitening_bits(5 + SEQ_MODULUS, 64)))
    True
    >>> 20 < int(whitening_bits(5, 64).sum()) < 44
    True
    """
    return pattern_messages(_WHITENING_SEED, seq, nbits, 2).astype(np.uint8)


def pack_data(data: bytes, k: int, blocks: int, seq: int | None = None) -> np.ndarray:
    """Bytes + CRC-32 -> [blocks] int64 messages of k bits (zero padded), whitened with
    :func:`whitening_bits` of ``seq`` when it is given (padding included).

    >>> m = pack_data(bytes(20), 8, 32, seq=3)
    >>> unpack_data(m, 8, 20, seq=3) == bytes(20), unpack_data(m, 8, 20) is None
    (True, True)
    """
    cap = data_capacity_bytes(k, blocks)
    if len(data) > cap:
        raise ConfigError(f"frame data must be at most {cap} bytes, got {len(data)}")
    bits = np.unpackbits(np.frombuffer(data + crc32(data).to_bytes(4, "big"), np.uint8))
    padded = np.zeros(blocks * k, np.int64)
    padded[: len(bits)] = bits
    if seq is not None:
        padded ^= whitening_bits(seq, blocks * k)
    return padded.reshape(blocks, k) @ (1 << np.arange(k - 1, -1, -1, dtype=np.int64))


def unpack_data(messages: np.ndarray, k: int, length: int, seq: int | None = None) -> bytes | None:
    """Inverse of :func:`pack_data` (``seq``: the frame was whitened with it): the
    ``length`` data bytes, or None if the CRC-32 fails."""
    bits = messages_to_bits(messages, k).reshape(-1)
    if seq is not None:
        bits = bits ^ whitening_bits(seq, bits.size)
    raw = np.packbits(bits[: (length + 4) * 8]).tobytes()
    if len(raw) < length + 4 or crc32(raw[:length]) != int.from_bytes(raw[length : length + 4], "big"):
        return None
    return raw[:length]


def messages_to_bits(messages: np.ndarray, k: int) -> np.ndarray:
    """``[...]`` messages -> ``[..., k]`` uint8 bits, most significant first.

    >>> messages_to_bits(np.array([2, 3]), 2).tolist()
    [[1, 0], [1, 1]]
    """
    return ((np.asarray(messages, np.int64)[..., None] >> np.arange(k - 1, -1, -1)) & 1).astype(np.uint8)


def bits_to_messages(bits: np.ndarray, k: int) -> np.ndarray:
    """``[..., m k]`` bits -> ``[..., m]`` int64 messages of k bits, most significant first.

    >>> bits_to_messages(np.array([1, 0, 1, 1]), 2).tolist()
    [2, 3]
    """
    bits = np.asarray(bits, np.int64)
    grouped = bits.reshape(*bits.shape[:-1], bits.shape[-1] // k, k)
    return grouped @ (1 << np.arange(k - 1, -1, -1, dtype=np.int64))


def pattern_bits(seed: int | np.ndarray, seqs: np.ndarray | int, nbits: int) -> np.ndarray:
    """Test-pattern information bits of a coded model's frames: :func:`pattern_messages`
    with M = 2, ``[F, nbits]`` (or ``[nbits]``) uint8."""
    return pattern_messages(seed, seqs, nbits, 2).astype(np.uint8)


class OuterCode(Protocol):
    """What the TX and RX chains need of a coded model's outer code
    (``aeradio.learning.ldpc.Ldpc5GCode`` is one): ``info_bits`` K and ``codeword_bits`` N,
    ``encode(bits [B, K] uint8) -> [B, N] uint8`` and ``decode(llrs [B, N] float32, LLR =
    log P(1)/P(0)) -> (bits [B, K] uint8, parity_ok [B] bool)``."""

    info_bits: int
    codeword_bits: int

    def encode(self, bits: np.ndarray) -> np.ndarray: ...

    def decode(self, llrs: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


def check_outer_code(cfg: LinkConfig, code: OuterCode | None) -> None:
    """Raise ConfigError unless ``code`` is given exactly for a coded ``cfg``, with its sizes."""
    if cfg.code is None:
        if code is not None:
            raise ConfigError("an outer code was given for an uncoded link (its model has no [code] section)")
        return
    if code is None:
        raise ConfigError("a coded model's frames need its outer code ([code] section): none was given")
    if (code.info_bits, code.codeword_bits) != (cfg.code.info_bits, cfg.code.codeword_bits):
        raise ConfigError(
            f"the outer code has {code.info_bits} information bits in {code.codeword_bits}, the model's "
            f"[code] section {cfg.code.info_bits} in {cfg.code.codeword_bits}"
        )


def encode_payload(code: OuterCode, info_bits: np.ndarray, k: int) -> np.ndarray:
    """Information bits ``[F, C K]`` -> the codewords' messages ``[F, C N / k]`` int64."""
    f = len(info_bits)
    words = code.encode(np.asarray(info_bits, np.uint8).reshape(-1, code.info_bits))
    return bits_to_messages(words.reshape(f, -1), k)


class FrameLayout:
    """Where every symbol of a frame goes; built from the link config, shared by TX and RX.

    Index arrays address the frame's symbols ``[0, num_symbols)``.
    """

    def __init__(self, cfg: LinkConfig) -> None:
        fc, rc = cfg.frame, cfg.radio
        self.cfg = cfg
        self.k, self.n, self.M = cfg.model.k, cfg.model.n, cfg.model.M
        self.blocks = cfg.payload_blocks
        #: Codewords per frame (0: an uncoded link), and their information bits in all.
        self.codewords = cfg.codewords_per_frame
        self.info_bits = 0 if cfg.code is None else self.codewords * cfg.code.info_bits
        self.sps = rc.samples_per_symbol
        self.rolloff = rc.rolloff
        self.span = rc.rrc_span_symbols
        self.taps = rrc_taps(rc.rolloff, rc.rrc_span_symbols, rc.samples_per_symbol)
        self.stf_period = fc.stf_period_symbols
        # One tone cycle per period: DC-free (a DC blocker does not eat it), periodic.
        period = np.exp(2j * np.pi * np.arange(self.stf_period) / self.stf_period).astype(SAMPLE_DTYPE)
        self.stf = np.tile(period, fc.stf_symbols // fc.stf_period_symbols)
        rng = np.random.default_rng(_SEQUENCE_SEED)
        self.ltf = qpsk_sequence(fc.ltf_symbols, rng)
        self.preamble = np.concatenate([self.stf, self.ltf])
        # Scrambled coded bits: a header of zeros is no line in the spectrum.
        self.header_scrambler = (1 - 2 * rng.integers(0, 2, HEADER_CODED_BITS)).astype(np.float32)
        self.header_start = len(self.preamble)
        self.header_len = HEADER_SYMBOLS
        payload_start = self.header_start + self.header_len
        nsym = self.blocks * self.n
        spacing = fc.pilot_spacing_symbols
        num_pilots = -(-nsym // spacing)
        # Payload symbol i sits after i // spacing pilots.
        i = np.arange(nsym)
        self.payload_index = payload_start + i + i // spacing
        self.pilot_index = payload_start + (np.arange(num_pilots) + 1) * (spacing + 1) - 1
        self.pilot_index[-1] = min(self.pilot_index[-1], payload_start + nsym + num_pilots - 1)
        self.pilot_symbols = (1 - 2 * rng.integers(0, 2, num_pilots)).astype(SAMPLE_DTYPE)
        self.num_symbols = payload_start + nsym + num_pilots
        self.known_index = np.concatenate([np.arange(len(self.preamble)), self.pilot_index])
        self.known_symbols = np.concatenate([self.preamble, self.pilot_symbols])
        self.gap_symbols = fc.gap_symbols
        self.filter_delay = (len(self.taps) - 1) // 2

    @property
    def coded(self) -> bool:
        """True for the frames of a coded model (whole codewords)."""
        return self.codewords > 0

    @property
    def data_capacity(self) -> int:
        """Data bytes one data frame carries (after its CRC-32): in the codewords'
        information bits for a coded model, in the blocks' k bits otherwise."""
        if self.coded:
            return data_capacity_bytes(1, self.info_bits)
        return data_capacity_bytes(self.k, self.blocks)

    @property
    def overhead(self) -> dict[str, float]:
        """Fractions of the frame's symbols spent on preamble, header and pilots."""
        total = float(self.num_symbols)
        return {
            "preamble": len(self.preamble) / total,
            "header": self.header_len / total,
            "pilots": len(self.pilot_index) / total,
            "payload": len(self.payload_index) / total,
        }

    def header_symbols(self, bits: np.ndarray) -> np.ndarray:
        """[F, 64] bits -> [F, HEADER_SYMBOLS] unit-energy QPSK symbols: coded, scrambled,
        coded bit 2 i on the real and 2 i + 1 on the imaginary part of symbol i."""
        signs = (1.0 - 2.0 * conv_code.encode(bits).astype(np.float32)) * self.header_scrambler
        return ((signs[:, 0::2] + 1j * signs[:, 1::2]) * np.sqrt(0.5)).astype(SAMPLE_DTYPE)

    def header_llr(self, y: np.ndarray) -> np.ndarray:
        """Soft coded header bits from unit-gain header symbols: [F, HEADER_SYMBOLS] ->
        [F, HEADER_CODED_BITS] float32, positive for bit 0 (scaled as the symbols: the
        Viterbi decoder needs no noise variance)."""
        soft = np.empty((y.shape[0], HEADER_CODED_BITS), np.float32)
        soft[:, 0::2] = np.real(y)
        soft[:, 1::2] = np.imag(y)
        return soft * self.header_scrambler

    def frame_symbols(self, header_bits: np.ndarray, payload: np.ndarray) -> np.ndarray:
        """Assemble frames.

        Args:
            header_bits: [F, 64] uint8.
            payload: [F, blocks, n] complex64 (LUT rows of the messages).
        Returns:
            [F, num_symbols] complex64.
        """
        f = payload.shape[0]
        out = np.empty((f, self.num_symbols), SAMPLE_DTYPE)
        out[:, : len(self.preamble)] = self.preamble
        out[:, self.header_start : self.header_start + self.header_len] = self.header_symbols(header_bits)
        out[:, self.payload_index] = payload.reshape(f, -1)
        out[:, self.pilot_index] = self.pilot_symbols
        return out

    def shape(self, frames: np.ndarray, gap_symbols: int | None = None) -> np.ndarray:
        """Pulse-shape frames [F, num_symbols] into one stream, ``gap_symbols`` of silence
        after each (the config's gap by default). Returns [samples] complex64."""
        gap = self.gap_symbols if gap_symbols is None else gap_symbols
        return shape_bursts(frames, self.taps, self.sps, (frames.shape[1] + gap) * self.sps)
