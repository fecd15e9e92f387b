"""TX chain: messages -> LUT -> frames -> pulse shaping -> complex64 samples.

Pure numpy, no torch: the transmitter is the LUT of the trained model. A coded model's
frames carry whole codewords (:mod:`aeradio.dsp.framing`): its outer code is given to the
chain (``code``, an :class:`~aeradio.dsp.framing.OuterCode`), which encodes the test-pattern
bits and the data bytes before the LUT.

>>> from aeradio.core.config import LinkConfig
>>> cfg = LinkConfig.from_dict({"model": {"k": 2, "n": 1}, "frame": {"blocks_per_frame": 8}})
>>> lut = np.array([[1], [1j], [-1], [-1j]], dtype=np.complex64)
>>> tx = TxChain(cfg, lut, model_hash=0xBEEF)
>>> tx.test_pattern(np.arange(3), seed=0, last=True).dtype
dtype('complex64')

Sequence numbers are the run's full numbers (0, 1, 2, ...); headers carry them modulo
2**16 and receivers extend them again (:func:`aeradio.dsp.framing.extend_seq`).
"""

from __future__ import annotations

import numpy as np

from aeradio.core.config import LinkConfig
from aeradio.core.defaults import TX_PATTERNS
from aeradio.core.errors import ConfigError
from aeradio.dsp.framing import (
    FrameLayout,
    Header,
    OuterCode,
    check_outer_code,
    encode_header,
    encode_payload,
    pack_data,
    pattern_bits,
    pattern_messages,
)
from aeradio.dsp.probe import probe_header, probe_radius, probe_symbols

#: Samples produced per :meth:`TxChain.frames_per_write` batch at most (2 MiB of complex64,
#: about 80 default frames), unless one frame alone is longer: a batch holds at least one
#: frame, and the link config bounds a frame (``aeradio.core.config.MAX_FRAME_SAMPLES``).
MAX_WRITE_SAMPLES = 1 << 18


class TxChain:
    """Builds sample streams of frames for one model (LUT) and link config.

    Args:
        cfg: the model's link config.
        lut: [M, n] complex64, mean row energy / n = 1.
        model_hash: the model's hash (only its low 16 bits travel in the header).
        gap_symbols: silence after each frame (None: the config's; 0: back to back).
        code: the outer code of a coded model (required then, refused otherwise).
    """

    def __init__(
        self, cfg: LinkConfig, lut: np.ndarray, model_hash: int, gap_symbols: int | None = None,
        code: OuterCode | None = None,
    ):
        check_outer_code(cfg, code)
        self.code = code
        self.layout = FrameLayout(cfg)
        if lut.shape != (self.layout.M, self.layout.n):
            raise ConfigError(
                f"LUT must have shape [M={self.layout.M}, n={self.layout.n}], got {list(lut.shape)}"
            )
        self.lut = np.asarray(lut, dtype=np.complex64)
        self.model_hash16 = int(model_hash) & 0xFFFF
        self.gap_symbols = gap_symbols
        #: Peak amplitude of probe frames (:func:`aeradio.dsp.probe.probe_radius`).
        self.probe_radius = probe_radius(cfg, self.lut)

    @property
    def frame_samples(self) -> int:
        """Samples one frame and its gap take in the stream."""
        gap = self.layout.gap_symbols if self.gap_symbols is None else self.gap_symbols
        return (self.layout.num_symbols + gap) * self.layout.sps

    @property
    def frames_per_write(self) -> int:
        """Frames to modulate at once so a batch stays within :data:`MAX_WRITE_SAMPLES`
        (at least one)."""
        return max(1, MAX_WRITE_SAMPLES // self.frame_samples)

    @property
    def data_capacity(self) -> int:
        """Data bytes per frame."""
        return self.layout.data_capacity

    def modulate(self, headers: list[Header], messages: np.ndarray) -> np.ndarray:
        """Frames with these headers and payload messages.

        Args:
            headers: F headers.
            messages: [F, blocks] int in [0, M).
        Returns:
            [samples] complex64: each frame, then its gap; the filter tail at the end.
        """
        return self.modulate_symbols(headers, self.lut[messages])

    def modulate_symbols(self, headers: list[Header], payload: np.ndarray) -> np.ndarray:
        """Frames with these headers and payload symbols of the caller's choice (not LUT
        rows: perturbed symbols of model-free training, ``aeradio train-ota``).

        Args:
            headers: F headers.
            payload: [F, blocks, n] complex64, on the LUT's scale (mean energy 1 per symbol).
        Returns:
            [samples] complex64, as :meth:`modulate`.
        """
        lay = self.layout
        payload = np.asarray(payload, dtype=np.complex64)
        if payload.shape != (len(headers), lay.blocks, lay.n):
            raise ConfigError(
                f"payload must have shape [F={len(headers)}, blocks={lay.blocks}, n={lay.n}], "
                f"got {list(payload.shape)}"
            )
        bits = np.stack([encode_header(h) for h in headers])
        return lay.shape(lay.frame_symbols(bits, payload), self.gap_symbols)

    def test_pattern(self, seqs: np.ndarray, seed: int, *, last: bool = False) -> np.ndarray:
        """Test-pattern frames.

        Args:
            seqs: [F] int >= 0, the frames' sequence numbers (the header carries them mod 2**16).
            seed: the test-pattern seed, in [0, 4095]; it travels in each header.
            last: the final frame of ``seqs`` is the last of the run (its header says so).
        """
        seqs = np.asarray(seqs, dtype=np.int64)
        lay = self.layout
        headers = [
            Header.test_pattern(int(s), seed, self.model_hash16, last=last and i == len(seqs) - 1,
                                coded=lay.coded)
            for i, s in enumerate(seqs)
        ]
        if self.code is not None:
            bits = pattern_bits(seed, seqs, lay.info_bits)
            return self.modulate(headers, encode_payload(self.code, bits, lay.k))
        return self.modulate(headers, pattern_messages(seed, seqs, lay.blocks, lay.M))

    def probe(self, seqs: np.ndarray, seed: int, *, last: bool = False) -> np.ndarray:
        """Probe frames (:mod:`aeradio.dsp.probe`): known i.i.d. payload symbols in the disc
        of :attr:`probe_radius`, mean energy 1; arguments as :meth:`test_pattern`."""
        seqs = np.asarray(seqs, dtype=np.int64)
        lay = self.layout
        count = lay.blocks * lay.n
        headers = [
            probe_header(int(s), seed, self.model_hash16, last=last and i == len(seqs) - 1)
            for i, s in enumerate(seqs)
        ]
        payload = np.stack([probe_symbols(seed, int(s), count, self.probe_radius) for s in seqs])
        return self.modulate_symbols(headers, payload.reshape(len(seqs), lay.blocks, lay.n))

    def pattern(self, kind: str, seqs: np.ndarray, seed: int, *, last: bool = False) -> np.ndarray:
        """Known-payload frames of ``kind`` (one of :data:`~aeradio.core.defaults.TX_PATTERNS`)."""
        if kind not in TX_PATTERNS:
            raise ConfigError(f"--pattern must be one of {', '.join(TX_PATTERNS)}, got {kind!r}")
        make = self.probe if kind == "probe" else self.test_pattern
        return make(seqs, seed, last=last)

    def data(self, chunks: list[bytes], first_seq: int, *, last: bool = False) -> np.ndarray:
        """One data frame per chunk (each at most :attr:`data_capacity` bytes), sequence
        numbers from ``first_seq``; ``last``: the final chunk ends the run."""
        lay = self.layout
        headers = [
            Header.data(first_seq + i, len(c), self.model_hash16, last=last and i == len(chunks) - 1,
                        coded=lay.coded)
            for i, c in enumerate(chunks)
        ]
        pairs = list(zip(chunks, headers, strict=True))  # whitened by each frame's seq
        if self.code is not None:  # the bytes and their CRC-32 in the codewords' information bits
            bits = np.stack([pack_data(c, 1, lay.info_bits, h.seq) for c, h in pairs])
            return self.modulate(headers, encode_payload(self.code, bits, lay.k))
        messages = np.stack([pack_data(c, lay.k, lay.blocks, h.seq) for c, h in pairs])
        return self.modulate(headers, messages)
