"""A model directory for GNU Radio, without torch: the LUT, a numpy neural receiver, the noise.

GNU Radio's Python (Debian's ``/usr/bin/python3``) has numpy but neither torch nor the
safetensors package; this module needs neither. The weights come from
:func:`aeradio.core.model_dir.load_receiver_arrays`, which verifies the directory (format,
config bounds, headers, sha256) before it reads a tensor.

:class:`NumpyReceiver` is the forward pass of ``aeradio.learning.receiver.NeuralReceiver``
in numpy float32 (``tests/gnuradio/test_model.py`` keeps it within float32 rounding of
the torch ``ReceiverRuntime``): features ``[B, 2n]`` (re, im interleaved per symbol, plus
``log10(noise_var)`` for a receiver trained with ``model.noise_input``), ``hidden_layers``
Linear + ReLU, and the logits ``out(hidden(x)) + linear(x)``.

Soft outputs. The receiver is trained with cross-entropy, so ``log_softmax(logits)`` is its
estimate of the message posteriors ``log P(m | y)`` (:meth:`NumpyReceiver.log_probs`). Bit
LLRs marginalize them (:meth:`NumpyReceiver.bit_llrs`): bit ``i`` of message ``m`` is
``(m >> (k - 1 - i)) & 1`` (most significant first, as ``aeradio.dsp.framing.pack_data``
packs data and GNU Radio's ``packed_to_unpacked`` with ``GR_MSB_FIRST`` unpacks it), and

    LLR_i = logsumexp_{m: bit i of m = 0} log P(m | y) - logsumexp_{m: bit i of m = 1} log P(m | y)

positive for a 0, the sign convention of the frame header's LLRs (``llr < 0`` is a 1).

Noise. Under the energy convention of docs/contracts.md (unit energy per complex channel
use, ``R = k / n``), the complex noise of power ``N = 1 / (R Eb/N0)`` per symbol, which
GNU Radio's ``channels.channel_model`` adds with ``noise_voltage = sqrt(N)`` (its noise has
``E|n|^2 = noise_voltage^2``); through unit-energy RRC filters the per-sample noise power
is the per-symbol one (:func:`noise_voltage`).

>>> round(noise_voltage(6.0, rate=2.0), 6)   # QPSK at Eb/N0 = 6 dB
0.354393
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from aeradio.core.config import LinkConfig
from aeradio.core.errors import ConfigError, ModelFormatError
from aeradio.core.model_dir import load_link_config, load_lut, load_receiver_arrays
from aeradio.core.units import noise_var_per_real

#: Blocks per chunk of the forward pass (keeps the [chunk, M] logits in cache).
CHUNK_BLOCKS = 1024
#: Item types of the mapper's input and the demapper's output: int32, or uint8 (k <= 8).
ITEM_TYPES = {"int": np.int32, "byte": np.uint8}
#: Soft outputs of the demapper: none, bit LLRs [k], message log-probabilities [M].
SOFT_OUTPUTS = ("none", "llr", "logprob")


#: ``channels.channel_model`` (GNU Radio 3.10) runs its input through an MMSE timing
#: resampler of 8 taps: at ``epsilon = 1`` its output sample i is input sample i + 3. A
#: flowgraph that counts samples (a genie-synchronized BLER) delays its input by this many.
CHANNEL_MODEL_ADVANCE_SAMPLES = 3


def noise_voltage(ebn0_db: float, rate: float) -> float:
    """``channels.channel_model``'s noise voltage for ``ebn0_db`` at ``rate`` = k/n bits per
    complex use: the square root of the complex noise power ``2 * noise_var_per_real``."""
    return math.sqrt(2.0 * noise_var_per_real(ebn0_db, rate))


def unit_energy_taps(taps: Sequence[float]) -> list[float]:
    """``taps`` scaled to unit energy (``sum h^2 = 1``), the pulse-shape convention of
    docs/contracts.md (GNU Radio's ``firdes.root_raised_cosine`` sums to its gain instead)."""
    energy = math.fsum(float(t) * float(t) for t in taps)
    if not energy > 0:
        raise ConfigError(f"filter taps must have positive energy, got {len(taps)} taps of energy {energy}")
    return [float(t) / math.sqrt(energy) for t in taps]


def soft_vector_length(model_dir: str | Path, soft: str) -> int:
    """Length of the demapper's soft output vectors: k for "llr", M for "logprob", 1 for
    "none" (the output is absent; the model directory is not read)."""
    if soft == "none":
        return 1
    model = load_link_config(model_dir).model
    return model.k if soft == "llr" else model.M


def check_item_type(item_type: str, k: int) -> type[np.integer]:
    """The numpy dtype of ``item_type`` ("int" or "byte"); "byte" holds messages of k <= 8 bits."""
    if item_type not in ITEM_TYPES:
        raise ConfigError(f"item_type must be one of {', '.join(ITEM_TYPES)}, got {item_type!r}")
    if item_type == "byte" and k > 8:
        raise ConfigError(
            f"item_type 'byte' holds messages of at most 8 bits; this model has k = {k}: use 'int'"
        )
    return ITEM_TYPES[item_type]


def _logsumexp(x: np.ndarray, axis: int) -> np.ndarray:
    peak = np.max(x, axis=axis, keepdims=True)
    return np.squeeze(peak, axis) + np.log(np.sum(np.exp(x - peak), axis=axis))


class NumpyReceiver:
    """The neural receiver of a model directory in numpy float32.

    ``y``: ``[B, n]`` complex64, synchronized, on the unit-energy scale of the LUT;
    ``noise_var``: the noise variance per real component (float or ``[B]``), required only
    by a receiver trained with ``model.noise_input``.
    """

    def __init__(self, config: LinkConfig, weights: dict[str, np.ndarray]) -> None:
        model = config.model
        self.config = config
        self.k, self.n, self.M = model.k, model.n, model.M
        self.noise_input = model.noise_input
        self._hidden = [
            (np.ascontiguousarray(weights[f"hidden.{2 * i}.weight"].T), weights[f"hidden.{2 * i}.bias"])
            for i in range(model.hidden_layers)
        ]
        # The output layer and the linear path as one product on [hidden, features], as
        # ReceiverRuntime fuses them.
        self._w = np.ascontiguousarray(np.concatenate([weights["out.weight"].T, weights["linear.weight"].T]))
        self._bias = weights["out.bias"] + weights["linear.bias"]
        bits = (np.arange(self.M)[:, None] >> np.arange(self.k - 1, -1, -1)) & 1
        #: [k, M] bool: message m has bit i (MSB first) set.
        self._bit_set = bits.T.astype(bool)

    @classmethod
    def load(cls, model_dir: str | Path) -> NumpyReceiver:
        """The verified receiver of ``model_dir``; :class:`~aeradio.core.errors.ModelFormatError`
        otherwise."""
        config, weights = load_receiver_arrays(model_dir)
        if config.model.bitwise:
            raise ModelFormatError(
                f"{model_dir} has a bit-wise receiver (LLR outputs); the GNU Radio blocks need a "
                'message receiver (model.receiver = "message")'
            )
        if config.code is not None:
            raise ModelFormatError(
                f"{model_dir} is a coded model (an outer code on its marginalized message posteriors); "
                "the GNU Radio blocks need an uncoded message model"
            )
        return cls(config, weights)

    def _features(self, y: np.ndarray, noise_var: float | np.ndarray | None) -> np.ndarray:
        y = np.ascontiguousarray(y, dtype=np.complex64)
        if y.ndim != 2 or y.shape[1] != self.n:
            raise ValueError(f"y must have shape [B, {self.n}], got {y.shape}")
        feats = y.view(np.float32).reshape(len(y), 2 * self.n)
        if not self.noise_input:
            return feats
        if noise_var is None:
            raise ValueError("this receiver needs noise_var (trained with noise_input)")
        nv = np.broadcast_to(np.asarray(noise_var, np.float32), (len(y),))
        return np.concatenate([feats, np.log10(nv)[:, None]], axis=1)

    def logits(self, y: np.ndarray, noise_var: float | np.ndarray | None = None) -> np.ndarray:
        """``[B, n]`` complex64 -> ``[B, M]`` float32 logits."""
        x = self._features(y, noise_var)
        h = x
        for weight, bias in self._hidden:
            h = np.maximum(h @ weight + bias, np.float32(0))
        return np.concatenate([h, x], axis=1) @ self._w + self._bias

    def decide(self, y: np.ndarray, noise_var: float | np.ndarray | None = None) -> np.ndarray:
        """Most likely message per block, ``[B]`` int64."""
        out = np.empty(len(y), np.int64)
        for i, logits in self._chunks(y, noise_var):
            out[i : i + len(logits)] = logits.argmax(axis=1)
        return out

    def log_probs(self, y: np.ndarray, noise_var: float | np.ndarray | None = None) -> np.ndarray:
        """``log P(m | y)``: ``[B, M]`` float32, ``log_softmax`` of the logits."""
        logits = self.logits(y, noise_var)
        return logits - _logsumexp(logits, axis=1)[:, None]

    def bit_llrs(self, logp: np.ndarray) -> np.ndarray:
        """``[B, k]`` float32 bit LLRs (positive for 0, MSB first) from ``logp`` ``[B, M]``
        (:meth:`log_probs`), marginalized as the module docstring says."""
        llrs = np.empty((len(logp), self.k), np.float32)
        for i, is_one in enumerate(self._bit_set):
            llrs[:, i] = _logsumexp(logp[:, ~is_one], axis=1) - _logsumexp(logp[:, is_one], axis=1)
        return llrs

    def _chunks(
        self, y: np.ndarray, noise_var: float | np.ndarray | None
    ) -> Iterator[tuple[int, np.ndarray]]:
        """``(first block, logits)`` of each chunk of :data:`CHUNK_BLOCKS` blocks."""
        nv = None if noise_var is None else np.broadcast_to(np.asarray(noise_var, np.float32), (len(y),))
        for i in range(0, len(y), CHUNK_BLOCKS):
            yield i, self.logits(y[i : i + CHUNK_BLOCKS], None if nv is None else nv[i : i + CHUNK_BLOCKS])


class GnuRadioModel:
    """What the GNU Radio blocks use of a model directory: config, LUT ``[M, n]`` complex64
    and the numpy receiver, all verified on loading (one-line ModelFormatError otherwise)."""

    def __init__(self, model_dir: str | Path) -> None:
        self.model_dir = Path(model_dir)
        self.receiver = NumpyReceiver.load(self.model_dir)
        self.config = self.receiver.config
        self.lut = load_lut(self.model_dir)
        self.k, self.n, self.M = self.receiver.k, self.receiver.n, self.receiver.M

    @property
    def rate(self) -> float:
        """k / n bits per complex channel use."""
        return self.config.model.rate

    def noise_var(self, ebn0_db: float | None) -> float | None:
        """The receiver's noise input at ``ebn0_db`` (None when it takes none).

        :class:`ConfigError` when the receiver was trained with a noise input and no
        Eb/N0 is given.
        """
        if not self.receiver.noise_input:
            return None
        if ebn0_db is None:
            raise ConfigError(
                f"the receiver of {self.model_dir} was trained with a noise input: give ebn0_db"
            )
        return noise_var_per_real(ebn0_db, self.rate)
