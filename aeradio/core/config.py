"""The link configuration: one frozen, validated object shared by TX, RX and training.

A link configuration is read from TOML (``configs/*.toml``), stored in ``model.json``
next to the weights, and read back by every process that uses the model, so TX and RX
always agree on the frame layout, the pulse shape and the code.

Sections (TOML tables) and their dataclasses:

- ``[model]`` -> :class:`ModelConfig`: k, n and the receiver architecture.
- ``[training]`` -> :class:`TrainingConfig`: channel, Eb/N0 range, optimizer, budget.
- ``[radio]`` -> :class:`RadioConfig`: sample rate, pulse shape.
- ``[frame]`` -> :class:`FrameConfig`: preamble, header, pilots, payload blocks.
- ``[code]`` -> :class:`CodeConfig` (optional): an outer 5G NR LDPC code around blocks
  with bit LLRs (a bit-wise receiver's, or a message receiver's posteriors marginalized:
  ``[model] bit_llrs``); a configuration without it is an uncoded link, as every model
  before it.

Defaults are defined here once (those the CLI shows too in :mod:`aeradio.core.defaults`);
a TOML file states only what differs from them.

Sizes are bounded here too, so that a configuration read from a file (a TOML config, a
``model.json`` from anywhere) cannot make a process allocate more than a research link
plausibly needs: the LUT (:data:`MAX_LUT_SYMBOLS`), the neural receiver
(:data:`MAX_RECEIVER_PARAMETERS`) and one frame (:data:`MAX_FRAME_SAMPLES`) are checked on
construction, before anything is built from them. Files are read through
:func:`read_bounded` and :func:`parse_json`, which refuse oversized or unparsable input
with the caller's error class.

>>> cfg = LinkConfig.from_dict({"model": {"k": 2, "n": 1}})
>>> cfg.model.M, cfg.model.rate
(4, 2.0)
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tomllib
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, get_type_hints

from aeradio.core.defaults import DEFAULT_RAPP_BACKOFF_DB, DEFAULT_RAPP_P
from aeradio.core.errors import AeradioError, ConfigError, check_range, short_repr

#: Names of the differentiable training channels; composed with '+' (e.g. "awgn+phase").
CHANNEL_NAMES = ("awgn", "phase", "cfo", "rayleigh", "multipath", "iq", "rapp", "phasenoise")

#: Complex values in the LUT (M * n) at most: 8 MiB of complex64, and ML detection of the
#: LUT stays tractable. Any n <= 64 up to k = 14; k = 16 up to n = 16 (rate >= 1).
MAX_LUT_SYMBOLS = 1 << 20
#: Receiver parameters at most: 200 MB of float32 weights (about 800 MB while fine-tuning,
#: with the gradient and Adam's two moments). The receivers of configs/ have 1e3 to 1.4e4;
#: k = 16, n = 16 with the default width has 1.1e7.
MAX_RECEIVER_PARAMETERS = 50_000_000
#: Samples of one frame and its gap at most: 16 Mi samples (128 MiB of complex64, 16 s at
#: 1 MS/s). The default frame has about 4600.
MAX_FRAME_SAMPLES = 1 << 24
#: Frame header symbols counted by :meth:`LinkConfig.frame_samples_bound`: the header has
#: 105 today (``aeradio.dsp.framing.HEADER_SYMBOLS``); counting 256 keeps the bound an upper
#: bound whatever the header comes to carry, without this layer depending on the DSP one.
HEADER_SYMBOLS_BOUND = 256
#: Size of a TOML link configuration file at most (the ones in configs/ are < 1 kB).
MAX_CONFIG_FILE_BYTES = 1 << 20

#: Transmit constraints of ``[model] normalization`` (aeradio/learning/transmitter.py).
NORMALIZATIONS = ("average", "energy", "peak")

#: Learning-rate schedules of :class:`TrainingConfig`.
LR_SCHEDULES = ("cosine", "constant")
#: Training settings of the message trainer's tied matched filter, which a bit-wise model
#: (``model.receiver = "bitwise"``) refuses rather than ignores.
MESSAGE_TRAINING_ONLY = ("joint_receiver", "tied_scale_ratio")
#: Receivers of the joint training phase (see TrainingConfig.joint_receiver).
JOINT_RECEIVERS = ("auto", "matched_filter", "tied", "free")
#: Receiver outputs of ``[model] receiver``: "message" (M logits, cross-entropy on the
#: message) or "bitwise" (k bit LLRs, binary cross-entropy; Sionna's neural demapper).
RECEIVER_KINDS = ("message", "bitwise")
#: Sources of a coded model's bit LLRs, ``[model] bit_llrs``: "receiver" (a bit-wise
#: receiver outputs them) or "marginal" (a message receiver's M posteriors are marginalized
#: per bit: ``LLR_i = logsumexp over the messages with bit i set - logsumexp over the others``).
BIT_LLR_SOURCES = ("receiver", "marginal")
#: Bits per block at most of ``bit_llrs = "marginal"``: each block's 2^k posteriors are
#: marginalized k times (2^12 = 4096 logits per block, ~16 kB of float32; a frame of the RX
#: chain holds hundreds of blocks).
MAX_MARGINAL_K = 12
#: Transmitter initializations of ``[training] tx_init``: "random" (Gaussian) or "qam" (square
#: Gray-labelled QAM, n = 1 and even k: Sionna's trainable constellation starts there).
TX_INITS = ("random", "qam")
#: Outer codes of ``[code] kind``.
CODE_KINDS = ("ldpc5g",)
#: Code rates of ``[code] rate``: those of the 5G NR LDPC base graphs' usual range (the
#: encoder takes 1/5 < r <= 0.95; these are the ones tested here).
CODE_RATES = (1 / 3, 2 / 5, 1 / 2, 2 / 3, 3 / 4, 5 / 6)
#: Information bits of one codeword (5G NR LDPC: 12 <= K <= 8448, base graphs 1 and 2).
CODE_INFO_BITS_RANGE = (12, 8448)
#: Codeword length in bits at most (a frame carries whole codewords).
MAX_CODEWORD_BITS = 16384


def read_bounded(
    path: str | Path, max_bytes: int, *, what: str, error: type[AeradioError] = ConfigError
) -> bytes:
    """The bytes of ``path``, read only if the file holds at most ``max_bytes``.

    Raises ``error`` (one line naming ``what``, the path and the limit) when the file cannot
    be read or is larger; nothing beyond ``max_bytes + 1`` bytes is ever read.
    """
    try:
        with open(path, "rb") as f:
            # Sized by the file (read(n) allocates n bytes first), one byte more to see growth.
            data = f.read(min(os.fstat(f.fileno()).st_size, max_bytes) + 1)
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        raise error(f"{what} {path} is larger than {max_bytes} bytes, the most allowed")
    return data


def parse_json(data: bytes | str, *, what: str, error: type[AeradioError] = ConfigError) -> Any:
    """``json.loads`` with every failure as one-line ``error``: bad syntax, bad UTF-8, an
    integer of more digits than Python converts, nesting deeper than the recursion limit."""
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise error(f"{what} is not JSON: {reason}") from None


def parse_channel_spec(spec: str) -> tuple[str, ...]:
    """Split a channel spec such as ``"awgn+phase+iq"`` into validated names.

    >>> parse_channel_spec("awgn+phase")
    ('awgn', 'phase')
    """
    names = tuple(part.strip() for part in spec.split("+"))
    if not spec.strip() or any(not n for n in names):
        raise ConfigError(f"channel must be names joined by '+', got {short_repr(spec)}")
    for name in names:
        if name not in CHANNEL_NAMES:
            raise ConfigError(
                f"unknown channel {short_repr(name)} in {short_repr(spec)}; known: {', '.join(CHANNEL_NAMES)}"
            )
    if len(set(names)) != len(names):
        raise ConfigError(f"channel {short_repr(spec)} names a component twice")
    return names


def dac_max_code(bits: int) -> int:
    """Largest code magnitude of a ``bits``-bit DAC used symmetrically: ``2^(bits-1) - 1``.

    >>> dac_max_code(8)
    127
    """
    return (1 << (bits - 1)) - 1


@dataclass(frozen=True)
class ModelConfig:
    """The code (k bits over n complex channel uses) and the receiver architecture."""

    k: int
    n: int
    #: Receiver MLP width. 128 keeps the neural receiver of the default model fast enough
    #: for a 20 MS/s RX chain on 2 CPU cores (about 0.7 M blocks/s).
    hidden_width: int = 128
    hidden_layers: int = 2
    #: Feed the receiver the noise-variance estimate as an extra input.
    noise_input: bool = False
    #: "average": mean energy 1 per complex use over the table; "energy": every message has
    #: energy exactly n; "peak": average, and every |x| <= peak_amplitude.
    normalization: str = "average"
    peak_amplitude: float = 1.5
    #: DAC resolution of the deployed LUT in bits per real component (I and Q), trained
    #: quantization-aware; 0: a float LUT.
    dac_bits: int = 0
    #: Nominal DAC full scale of one real component, in units of the table's RMS amplitude
    #: per complex use (1): the grid step is dac_full_scale / (2^(dac_bits-1) - 1).
    dac_full_scale: float = 2.0
    #: "message": M logits (the default); "bitwise": k bit LLRs ``log P(b=1)/P(b=0)`` from an
    #: MLP with no linear path (Sionna's neural demapper), trained with binary cross-entropy.
    receiver: str = "message"
    #: Where a coded model's bit LLRs come from (:data:`BIT_LLR_SOURCES`): "receiver" (the
    #: bit-wise receiver's outputs; unused by an uncoded message model) or "marginal" (a
    #: message receiver's posteriors marginalized per bit: the block model under an outer
    #: code, ``configs/ae-n7-k8-ldpc.toml``; k <= :data:`MAX_MARGINAL_K`).
    bit_llrs: str = "receiver"
    #: A bit-wise receiver with the noise input divides its k outputs by the noise variance
    #: (per real component): an LLR scales as 1 / sigma^2 (exactly, for the max-log
    #: approximation), so the network learns the distance terms, a function of y alone, and
    #: not a product of y and 1 / sigma^2, which ReLU layers fit poorly.
    scale_by_noise: bool = False

    def __post_init__(self) -> None:
        if self.scale_by_noise and not (self.bitwise and self.noise_input):
            raise ConfigError(
                'model.scale_by_noise divides a bit-wise receiver\'s LLRs by its noise input: it needs '
                'model.receiver = "bitwise" and model.noise_input = true'
            )
        if self.receiver not in RECEIVER_KINDS:
            raise ConfigError(
                f"model.receiver must be one of {', '.join(RECEIVER_KINDS)}, got {short_repr(self.receiver)}"
            )
        if self.bit_llrs not in BIT_LLR_SOURCES:
            raise ConfigError(
                f"model.bit_llrs must be one of {', '.join(BIT_LLR_SOURCES)}, got {short_repr(self.bit_llrs)}"
            )
        if self.marginal and self.bitwise:
            raise ConfigError(
                'model.bit_llrs = "marginal" marginalizes the posteriors of a message receiver; this model '
                'is bit-wise already (model.receiver = "bitwise" outputs its LLRs): use bit_llrs = "receiver"'
            )
        if self.marginal and self.k > MAX_MARGINAL_K:
            raise ConfigError(
                f'model.k must be in [1, {MAX_MARGINAL_K}] with bit_llrs = "marginal" (2^k message '
                f"posteriors per block are marginalized), got {self.k}"
            )
        check_range("model.k", self.k, 1, 16)
        check_range("model.n", self.n, 1, 64)
        check_range("model.hidden_width", self.hidden_width, 1, 8192)
        check_range("model.hidden_layers", self.hidden_layers, 1, 16)
        if self.normalization not in NORMALIZATIONS:
            raise ConfigError(
                f"model.normalization must be one of {', '.join(NORMALIZATIONS)}, "
                f"got {short_repr(self.normalization)}"
            )
        check_range("model.peak_amplitude", self.peak_amplitude, 1.0, 10.0)
        if self.dac_bits != 0 and not 2 <= self.dac_bits <= 16:
            raise ConfigError(f"model.dac_bits must be 0 (a float LUT) or in [2, 16], got {self.dac_bits!r}")
        check_range("model.dac_full_scale", self.dac_full_scale, 0.1, 16.0)
        # Below this bound some component of any unit-energy table rounds to a non-zero code.
        if self.dac_bits and self.dac_full_scale >= math.sqrt(2.0) * dac_max_code(self.dac_bits):
            raise ConfigError(
                f"model.dac_full_scale must be < sqrt(2) * (2^(dac_bits-1) - 1) = "
                f"{math.sqrt(2.0) * dac_max_code(self.dac_bits):.4g} for dac_bits {self.dac_bits} "
                f"(coarser, every symbol may round to 0), got {self.dac_full_scale!r}"
            )
        if self.M * self.n > MAX_LUT_SYMBOLS:
            raise ConfigError(
                f"model: the LUT (M {self.M} x n {self.n}) must hold at most {MAX_LUT_SYMBOLS} "
                f"complex values, got {self.M * self.n}"
            )
        params = self.receiver_parameters
        if params > MAX_RECEIVER_PARAMETERS:
            raise ConfigError(
                f"model: the receiver must have at most {MAX_RECEIVER_PARAMETERS} parameters, got "
                f"{params} (k {self.k}, n {self.n}, hidden_width {self.hidden_width}, "
                f"hidden_layers {self.hidden_layers}); lower hidden_width or hidden_layers"
            )

    @property
    def M(self) -> int:  # noqa: N802 - M is the name of the field in the literature
        """Number of messages, 2**k."""
        return 1 << self.k

    @property
    def rate(self) -> float:
        """R = k / n information bits per complex channel use."""
        return self.k / self.n

    @property
    def bitwise(self) -> bool:
        """True when the receiver outputs k bit LLRs (``receiver = "bitwise"``)."""
        return self.receiver == "bitwise"

    @property
    def marginal(self) -> bool:
        """True when the bit LLRs are the message posteriors marginalized (``bit_llrs = "marginal"``)."""
        return self.bit_llrs == "marginal"

    def receiver_parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        """Name -> shape of every tensor of the neural receiver's state dict.

        Mirrors ``aeradio.learning.receiver.NeuralReceiver`` (a test keeps the two equal):
        ``hidden_layers`` Linear + ReLU pairs of ``hidden_width`` on ``2n (+1)`` inputs, the
        output layer and the linear path to M logits, and the matched-filter log-scale; a
        bit-wise receiver (``aeradio.learning.bitwise.BitwiseReceiver``) has the hidden layers
        and an output layer to k LLRs only. Computed without building anything, so a file's
        sizes are checked first.
        """
        in_features = 2 * self.n + (1 if self.noise_input else 0)
        shapes: dict[str, tuple[int, ...]] = {}
        width = in_features
        for layer in range(self.hidden_layers):
            shapes[f"hidden.{2 * layer}.weight"] = (self.hidden_width, width)
            shapes[f"hidden.{2 * layer}.bias"] = (self.hidden_width,)
            width = self.hidden_width
        if self.bitwise:
            shapes["out.weight"] = (self.k, width)
            shapes["out.bias"] = (self.k,)
            return shapes
        shapes["out.weight"] = (self.M, width)
        shapes["out.bias"] = (self.M,)
        shapes["linear.weight"] = (self.M, in_features)
        shapes["linear.bias"] = (self.M,)
        shapes["log_scale"] = ()
        return shapes

    @property
    def receiver_parameters(self) -> int:
        """Parameters of the neural receiver (all tensors of :meth:`receiver_parameter_shapes`)."""
        return sum(math.prod(shape) for shape in self.receiver_parameter_shapes().values())


@dataclass(frozen=True)
class TrainingConfig:
    """End-to-end training through a differentiable channel."""

    channel: str = "awgn"
    ebn0_db_min: float = 4.0
    ebn0_db_max: float = 8.0
    steps: int = 3000
    batch_size: int = 1024
    learning_rate: float = 3e-3
    #: "cosine": decay from learning_rate to lr_min_ratio * learning_rate; "constant".
    lr_schedule: str = "cosine"
    lr_min_ratio: float = 0.02
    #: The transmitter's learning rate is this times learning_rate (the LUT moves slowly).
    tx_lr_scale: float = 1.0
    #: The tied matched filter starts at this times the log-posterior scale 1/(2 sigma^2) of
    #: the middle of the Eb/N0 range: a softer start spreads the LUT better (issue 2 recipe).
    tied_scale_ratio: float = 0.3
    #: Receiver in the joint phase: "matched_filter" (the linear path tied to the LUT, alone;
    #: the MLP trains in the receiver phase), "tied" (MLP + tied linear path), "free" (MLP +
    #: free linear path: the plain autoencoder), "auto" (matched_filter on pure AWGN with a
    #: receiver phase, tied on pure AWGN without one, free on any other channel, where the
    #: matched filter is not the ML detector and tying it hinders training).
    joint_receiver: str = "auto"
    #: Final fraction of the steps that trains the receiver alone, the LUT frozen.
    receiver_only_fraction: float = 0.0
    #: Stop early when the smoothed loss has not improved for this many steps (0: never).
    plateau_steps: int = 0
    seed: int = 0
    #: Torch threads while training. 1 by default: the matrices are small, and on a busy
    #: 2-core machine two spinning threads per process made training up to 10x slower.
    threads: int = 1
    # Channel impairment ranges (drawn uniformly per block by the training channels).
    cfo_cps_max: float = 0.0
    phase_noise_std_rad: float = 0.0
    iq_gain_db_max: float = 0.0
    iq_phase_deg_max: float = 0.0
    rapp_p: float = DEFAULT_RAPP_P
    rapp_backoff_db: float = DEFAULT_RAPP_BACKOFF_DB
    multipath_taps: int = 2
    multipath_decay: float = 0.3
    #: Start of the transmitter's table (:data:`TX_INITS`).
    tx_init: str = "random"

    def __post_init__(self) -> None:
        if self.tx_init not in TX_INITS:
            raise ConfigError(
                f"training.tx_init must be one of {', '.join(TX_INITS)}, got {short_repr(self.tx_init)}"
            )
        if "awgn" not in parse_channel_spec(self.channel):
            raise ConfigError(
                "training.channel must include 'awgn' (the noise set by Eb/N0), "
                f"got {short_repr(self.channel)}"
            )
        check_range("training.ebn0_db_min", self.ebn0_db_min, -20.0, 40.0, unit="dB")
        check_range("training.ebn0_db_max", self.ebn0_db_max, -20.0, 40.0, unit="dB")
        if self.ebn0_db_min > self.ebn0_db_max:
            raise ConfigError(
                "training Eb/N0 range is inverted: ebn0_db_min "
                f"{self.ebn0_db_min:g} > ebn0_db_max {self.ebn0_db_max:g}"
            )
        check_range("training.steps", self.steps, 1, 10_000_000)
        check_range("training.batch_size", self.batch_size, 1, 1_000_000)
        check_range("training.learning_rate", self.learning_rate, 1e-7, 1.0)
        if self.lr_schedule not in LR_SCHEDULES:
            raise ConfigError(
                f"training.lr_schedule must be one of {', '.join(LR_SCHEDULES)}, "
                f"got {short_repr(self.lr_schedule)}"
            )
        check_range("training.lr_min_ratio", self.lr_min_ratio, 0.0, 1.0)
        check_range("training.tx_lr_scale", self.tx_lr_scale, 0.0, 1000.0)
        if self.joint_receiver not in JOINT_RECEIVERS:
            raise ConfigError(
                f"training.joint_receiver must be one of {', '.join(JOINT_RECEIVERS)}, "
                f"got {short_repr(self.joint_receiver)}"
            )
        check_range("training.tied_scale_ratio", self.tied_scale_ratio, 1e-3, 10.0)
        check_range("training.receiver_only_fraction", self.receiver_only_fraction, 0.0, 1.0)
        check_range("training.plateau_steps", self.plateau_steps, 0, 10_000_000)
        if self.plateau_steps and self.receiver_only_fraction > 0:
            raise ConfigError(
                "training.plateau_steps stops the whole run, which would skip the receiver-only phase of "
                "training.receiver_only_fraction (the last steps): set one of them"
            )
        check_range("training.seed", self.seed, 0, 2**63 - 1)
        check_range("training.threads", self.threads, 1, 256)
        check_range("training.cfo_cps_max", self.cfo_cps_max, 0.0, 0.5, unit="cycles/sample")
        check_range("training.phase_noise_std_rad", self.phase_noise_std_rad, 0.0, math.pi)
        check_range("training.iq_gain_db_max", self.iq_gain_db_max, 0.0, 6.0, unit="dB")
        check_range("training.iq_phase_deg_max", self.iq_phase_deg_max, 0.0, 45.0, unit="deg")
        check_range("training.rapp_p", self.rapp_p, 0.1, 100.0)
        check_range("training.rapp_backoff_db", self.rapp_backoff_db, -10.0, 40.0, unit="dB")
        check_range("training.multipath_taps", self.multipath_taps, 1, 16)
        check_range("training.multipath_decay", self.multipath_decay, 0.0, 1.0)

    @property
    def channel_names(self) -> tuple[str, ...]:
        return parse_channel_spec(self.channel)


@dataclass(frozen=True)
class RadioConfig:
    """Sample rate and pulse shape: what TX and RX must agree on at the sample level."""

    sample_rate_hz: float = 1e6
    center_freq_hz: float = 915e6
    samples_per_symbol: int = 4
    rolloff: float = 0.35
    rrc_span_symbols: int = 8

    def __post_init__(self) -> None:
        check_range("radio.sample_rate_hz", self.sample_rate_hz, 1e3, 1e9, unit="Hz")
        check_range("radio.center_freq_hz", self.center_freq_hz, 0.0, 1e11, unit="Hz")
        check_range("radio.samples_per_symbol", self.samples_per_symbol, 2, 64)
        check_range("radio.rolloff", self.rolloff, 0.01, 1.0)
        check_range("radio.rrc_span_symbols", self.rrc_span_symbols, 2, 64)


@dataclass(frozen=True)
class FrameConfig:
    """Frame layout: preamble, header, pilots and a payload of AE blocks.

    A frame is, in symbols: the short training field (STF, ``stf_symbols`` repeating a
    ``stf_period_symbols`` pattern: detection and coarse CFO), the long training field
    (LTF, a pseudo-random QPSK sequence: timing), the header (64 bits, convolutionally
    coded at rate 1/3, QPSK: 105 symbols), then ``blocks_per_frame`` AE blocks with one
    pilot after every ``pilot_spacing_symbols`` payload symbols.

    The defaults spend 19.7 % of the frame's symbols on overhead (0.95 dB of Eb/N0) with
    k = 8, n = 7: an STF of 64 symbols, as long as detection needs at Eb/N0 4 dB with the
    false-alarm target (it detected all of 1500 frames, 48 symbols missed 0.5 %), an LTF of 32 (24 let a
    stream that starts inside a frame detect it twice: the LTF check is what rejects false
    detections), the coded header of 105 and 19 pilots for 896 payload symbols
    (docs/contracts.md, Frames).
    """

    #: AE blocks (n complex symbols each) in one frame's payload.
    blocks_per_frame: int = 128
    #: One pilot symbol after every this many payload symbols.
    pilot_spacing_symbols: int = 48
    #: Period of the repeated STF pattern; the coarse CFO range is +-1/(2 period sps) cps.
    stf_period_symbols: int = 2
    #: Length of the STF in symbols (a multiple of the period).
    stf_symbols: int = 64
    #: Length of the LTF (pseudo-random QPSK) in symbols.
    ltf_symbols: int = 32
    #: Silence between frames sent as bursts, in symbols.
    gap_symbols: int = 32
    #: Probability that noise alone crosses the detection threshold at one sample position.
    detection_false_alarm_prob: float = 1e-7

    def __post_init__(self) -> None:
        check_range("frame.blocks_per_frame", self.blocks_per_frame, 1, 4096)
        check_range("frame.pilot_spacing_symbols", self.pilot_spacing_symbols, 2, 1024)
        check_range("frame.stf_period_symbols", self.stf_period_symbols, 2, 64)
        check_range("frame.stf_symbols", self.stf_symbols, 8 * self.stf_period_symbols, 4096)
        if self.stf_symbols % self.stf_period_symbols:
            raise ConfigError(
                f"frame.stf_symbols must be a multiple of frame.stf_period_symbols "
                f"({self.stf_period_symbols}), got {self.stf_symbols}"
            )
        check_range("frame.ltf_symbols", self.ltf_symbols, 8, 4096)
        check_range("frame.gap_symbols", self.gap_symbols, 0, 1_000_000)
        check_range("frame.detection_false_alarm_prob", self.detection_false_alarm_prob, 1e-15, 1e-2)


@dataclass(frozen=True)
class CodeConfig:
    """An outer code (``[code]``): the 5G NR LDPC code of ``rate`` and ``codeword_bits``.

    ``rate * codeword_bits`` information bits are encoded (5G NR base graph, lifting and
    rate matching of 3GPP TS 38.212) into ``codeword_bits`` coded bits, mapped k at a time
    onto the model's blocks; the receiver's bit LLRs are decoded by belief propagation with
    ``bp_iterations`` iterations at most. Eb/N0 of a coded model counts information bits:
    ``N0 = 1 / (Eb/N0 * rate * k / n)`` (Sionna's ``ebnodb2no``).

    >>> CodeConfig(rate=0.5, codeword_bits=1500).info_bits
    750
    """

    kind: str = "ldpc5g"
    rate: float = 0.5
    codeword_bits: int = 1500
    bp_iterations: int = 20

    def __post_init__(self) -> None:
        if self.kind not in CODE_KINDS:
            raise ConfigError(
                f"code.kind must be one of {', '.join(CODE_KINDS)}, got {short_repr(self.kind)}"
            )
        if not any(math.isclose(self.rate, r, rel_tol=1e-9) for r in CODE_RATES):
            # every digit (repr): a rounded 0.333333 listed here would be refused as written
            rates = ", ".join(f"{r!r} ({Fraction(r).limit_denominator(10)})" for r in CODE_RATES)
            raise ConfigError(f"code.rate must be one of {rates}, got {short_repr(self.rate)}")
        check_range("code.codeword_bits", self.codeword_bits, 16, MAX_CODEWORD_BITS)
        info = self.rate * self.codeword_bits
        low, high = CODE_INFO_BITS_RANGE
        if abs(info - round(info)) > 1e-6 or not low <= round(info) <= high:
            raise ConfigError(
                f"code: rate x codeword_bits must be a whole number of information bits in [{low}, {high}] "
                f"(5G NR LDPC), got {self.rate:.6g} x {self.codeword_bits} = {info:.6g}"
            )
        check_range("code.bp_iterations", self.bp_iterations, 1, 200)

    @property
    def info_bits(self) -> int:
        """Information bits per codeword, ``rate * codeword_bits``."""
        return int(round(self.rate * self.codeword_bits))


#: TOML table name -> dataclass.
_SECTIONS: dict[str, type] = {
    "model": ModelConfig,
    "training": TrainingConfig,
    "radio": RadioConfig,
    "frame": FrameConfig,
}
#: Optional sections: absent from a configuration (and from its ``to_dict``) when not used.
_OPTIONAL_SECTIONS: dict[str, type] = {"code": CodeConfig}


def _coerce(section: str, name: str, value: Any, kind: Any) -> Any:
    where = f"{section}.{name}"
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {short_repr(value)}")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, got {short_repr(value)}")
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} must be a number, got {short_repr(value)}")
        try:
            return float(value)
        except OverflowError:  # an integer beyond the float range
            raise ConfigError(f"{where} must be a float-range number, got {short_repr(value)}") from None
    if kind is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {short_repr(value)}")
        return value
    return value


def _build_section(section: str, cls: type, data: Any) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"[{section}] must be a table, got {short_repr(data)}")
    hints = get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ConfigError(
            f"unknown key {short_repr(unknown[0])} in [{section}]; allowed: {', '.join(names)}"
        )
    missing = [
        f.name
        for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
        and f.name not in data
    ]
    if missing:
        raise ConfigError(f"[{section}] is missing required key {missing[0]!r}")
    kwargs = {k: _coerce(section, k, v, hints[k]) for k, v in data.items()}
    return cls(**kwargs)


@dataclass(frozen=True)
class LinkConfig:
    """Everything TX, RX and training must agree on. Stored in ``model.json``."""

    model: ModelConfig
    training: TrainingConfig = field(default_factory=TrainingConfig)
    radio: RadioConfig = field(default_factory=RadioConfig)
    frame: FrameConfig = field(default_factory=FrameConfig)
    #: A short name for logs and file names (the TOML file's stem by default).
    name: str = "link"
    #: The outer code; None: an uncoded link.
    code: CodeConfig | None = None

    def __post_init__(self) -> None:
        if self.code is not None:
            if not (self.model.bitwise or self.model.marginal):
                raise ConfigError(
                    'a [code] section needs bit LLRs: model.receiver = "bitwise", or a message receiver '
                    'with model.bit_llrs = "marginal" (its posteriors marginalized per bit)'
                )
            if self.code.codeword_bits % self.model.k:
                raise ConfigError(
                    f"code.codeword_bits must be a multiple of model.k ({self.model.k}: whole blocks per "
                    f"codeword), got {self.code.codeword_bits}"
                )
        elif self.model.marginal:
            raise ConfigError(
                'model.bit_llrs = "marginal" gives bit LLRs to an outer code: it needs a [code] section'
            )
        if self.model.bitwise:
            for name in MESSAGE_TRAINING_ONLY:
                if getattr(self.training, name) != TrainingConfig.__dataclass_fields__[name].default:
                    raise ConfigError(
                        f"training.{name} applies to message receivers (their tied matched filter); "
                        'the bit-wise trainer (model.receiver = "bitwise") has none: remove it'
                    )
        samples = self.frame_samples_bound
        if samples > MAX_FRAME_SAMPLES:
            raise ConfigError(
                f"frame: one frame and its gap must take at most {MAX_FRAME_SAMPLES} samples, got "
                f"{samples} (payload blocks {self.payload_blocks} x n {self.model.n}, "
                f"gap_symbols {self.frame.gap_symbols}, samples_per_symbol "
                f"{self.radio.samples_per_symbol}); shorten the frame or the gap"
            )

    @property
    def info_rate(self) -> float:
        """Information bits per complex channel use: ``k / n``, times the code rate of a coded
        link. Eb/N0 counts these bits: the noise variance per real component is
        ``1 / (2 info_rate Eb/N0)`` (for a coded link Sionna's ``ebnodb2no``, N0 / 2).

        >>> LinkConfig.from_dict({"model": {"k": 6, "n": 1, "receiver": "bitwise"}, "code": {}}).info_rate
        3.0
        """
        return self.model.rate * (self.code.rate if self.code is not None else 1.0)

    @property
    def codewords_per_frame(self) -> int:
        """Whole codewords one frame of a coded link carries: ``frame.blocks_per_frame``
        rounded up to whole codewords of ``codeword_bits / k`` blocks (0 for an uncoded link).

        >>> coded = {"model": {"k": 6, "n": 1, "receiver": "bitwise"}, "code": {}}
        >>> LinkConfig.from_dict(coded).codewords_per_frame
        1
        """
        if self.code is None:
            return 0
        per_codeword = self.code.codeword_bits // self.model.k
        return -(-self.frame.blocks_per_frame // per_codeword)

    @property
    def payload_blocks(self) -> int:
        """AE blocks in one frame's payload: ``frame.blocks_per_frame``, rounded up to whole
        codewords for a coded link (:attr:`codewords_per_frame`).

        >>> coded = {"model": {"k": 6, "n": 1, "receiver": "bitwise"}, "code": {}}
        >>> LinkConfig.from_dict(coded).payload_blocks
        250
        """
        if self.code is None:
            return self.frame.blocks_per_frame
        return self.codewords_per_frame * (self.code.codeword_bits // self.model.k)

    @property
    def frame_samples_bound(self) -> int:
        """Samples of one frame, its gap and the pulse-shaping tail (span x sps samples), at
        most: exact but for the header, counted as :data:`HEADER_SYMBOLS_BOUND` symbols."""
        fc, sps = self.frame, self.radio.samples_per_symbol
        payload = self.payload_blocks * self.model.n
        pilots = -(-payload // fc.pilot_spacing_symbols)
        symbols = fc.stf_symbols + fc.ltf_symbols + HEADER_SYMBOLS_BOUND + payload + pilots + fc.gap_symbols
        return (symbols + self.radio.rrc_span_symbols) * sps

    @classmethod
    def from_dict(cls, data: Any, *, name: str | None = None) -> LinkConfig:
        """Build and validate from a nested dict (parsed TOML or ``model.json``)."""
        if not isinstance(data, dict):
            raise ConfigError(f"a link configuration must be a table, got {type(data).__name__}")
        data = dict(data)
        cfg_name = data.pop("name", name or "link")
        if not isinstance(cfg_name, str) or not cfg_name:
            raise ConfigError(f"name must be a non-empty string, got {short_repr(cfg_name)}")
        allowed = {**_SECTIONS, **_OPTIONAL_SECTIONS}
        unknown = sorted(set(data) - set(allowed), key=str)
        if unknown:
            u = unknown[0]
            name = f"[{u}]" if isinstance(u, str) and u.isprintable() and len(u) <= 64 else short_repr(u)
            raise ConfigError(f"unknown section {name}; allowed: {', '.join(allowed)}")
        if "model" not in data:
            raise ConfigError("the configuration has no [model] section (k and n are required)")
        sections = {s: _build_section(s, c, data.get(s, {})) for s, c in _SECTIONS.items()}
        optional = {s: _build_section(s, c, data[s]) for s, c in _OPTIONAL_SECTIONS.items() if s in data}
        return cls(name=cfg_name, **sections, **optional)

    @classmethod
    def from_toml(cls, path: str | Path) -> LinkConfig:
        """Read and validate a TOML link configuration."""
        path = Path(path)
        raw = read_bounded(path, MAX_CONFIG_FILE_BYTES, what="config")
        try:
            data = tomllib.loads(raw.decode("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config {path} is not valid TOML: {exc}") from None
        except RecursionError:
            raise ConfigError(f"config {path} is not valid TOML: nested too deeply") from None
        return cls.from_dict(data, name=path.stem)

    def to_dict(self) -> dict[str, Any]:
        """A JSON/TOML-serializable nested dict that :meth:`from_dict` reads back."""
        out: dict[str, Any] = {"name": self.name}
        for section in _SECTIONS:
            out[section] = dataclasses.asdict(getattr(self, section))
        for section in _OPTIONAL_SECTIONS:
            if getattr(self, section) is not None:
                out[section] = dataclasses.asdict(getattr(self, section))
        return out

    def replace(self, **sections: Any) -> LinkConfig:
        """A copy with whole sections replaced (e.g. ``training=...``)."""
        return dataclasses.replace(self, **sections)
