"""Fast batched CPU inference of the neural receiver of a model directory.

>>> # runtime = ReceiverRuntime.load("models/ae-n7-k8")
>>> # runtime.decide(y)            # y: [B, n] complex64 -> [B] int64
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from aeradio.core.config import LinkConfig
from aeradio.core.errors import ModelFormatError
from aeradio.core.model_dir import RECEIVER_FILE, load_link_config, require_message_receiver, verify_model_dir
from aeradio.learning.receiver import NeuralReceiver

#: Blocks per chunk of :meth:`ReceiverRuntime.decide`.
_DECIDE_CHUNK = 1024


def _read_state(model_dir: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of the (already verified) receiver file."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(model_dir) / RECEIVER_FILE
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelFormatError(f"{path} is not a readable safetensors file: {exc}") from None


def load_receiver_state(model_dir: str | Path) -> dict[str, torch.Tensor]:
    """The verified receiver weights of a model directory as torch tensors.

    :func:`~aeradio.core.model_dir.verify_model_dir` checks the safetensors header (every
    tensor's name, dtype and shape against the size-bounded config) before anything is read.
    """
    verify_model_dir(model_dir)
    return _read_state(model_dir)


def _receiver_of(model_dir: str | Path, config: LinkConfig) -> NeuralReceiver:
    """The receiver of a model directory verified to hold ``config`` (its checked weights).

    A bit-wise model (LLR outputs, ``aeradio.learning.bitwise``) is refused with one line:
    the paths that take a message receiver cannot use it. A coded message model (its
    posteriors marginalized to bit LLRs, ``aeradio.learning.bitwise.MarginalRuntime``) loads.
    """
    require_message_receiver(config, model_dir, "this command", coded_ok=True)
    receiver = NeuralReceiver.from_config(config.model)
    try:
        receiver.load_state_dict(_read_state(model_dir))
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise ModelFormatError(
            f"{Path(model_dir)}: receiver weights do not match the config: {first}"
        ) from None
    return receiver


def load_receiver(model_dir: str | Path) -> NeuralReceiver:
    """The trained receiver of a model directory, as a (trainable) module.

    The config bounds the receiver's size and the weights' header is checked against it
    before the network is built or a tensor read. Raises :class:`ModelFormatError` when the
    weights do not fit the stored config.
    """
    return _receiver_of(model_dir, load_link_config(model_dir))


class ReceiverRuntime:
    """A loaded receiver: ``y [B, n] complex64`` (synchronized, unit-energy scale) -> logits.

    ``noise_var`` is the noise variance per real component (float or ``[B]``); required
    only by receivers trained with ``model.noise_input = true``.
    """

    def __init__(self, config: LinkConfig, receiver: NeuralReceiver) -> None:
        self.config = config
        self.receiver = receiver.eval()
        self.M, self.n = config.model.M, config.model.n
        # The output layer and the linear path fused into one matrix product on the
        # concatenated [hidden, features] (a single pass over the [B, M] logits).
        with torch.no_grad():
            self._w = torch.cat([receiver.out.weight.t(), receiver.linear.weight.t()], 0).contiguous()
            self._bias = (receiver.out.bias + receiver.linear.bias).contiguous()
            # The hidden layers as (weight [in, out] (a transposed view), bias [out]): what
            # nn.Linear hands torch.addmm on a 2-D input, so decide's values are its.
            self._hidden = [(layer.weight.t(), layer.bias) for layer in receiver.hidden
                            if isinstance(layer, nn.Linear)]
        self._width = receiver.out.in_features

    @classmethod
    def load(cls, model_dir: str | Path) -> ReceiverRuntime:
        config = load_link_config(model_dir)
        return cls(config, _receiver_of(model_dir, config))

    def _noise(self, noise_var: float | np.ndarray | None, batch: int) -> torch.Tensor | None:
        if noise_var is None:
            if self.receiver.noise_input:
                raise ValueError("this receiver needs noise_var (trained with noise_input)")
            return None
        nv = np.array(np.broadcast_to(np.asarray(noise_var, dtype=np.float32), (batch,)))  # a writable copy
        return torch.from_numpy(nv)

    def _logits(self, y: np.ndarray, noise_var: float | np.ndarray | None) -> torch.Tensor:
        y = np.ascontiguousarray(y, dtype=np.complex64)
        if y.ndim != 2 or y.shape[1] != self.n:
            raise ValueError(f"y must have shape [B, {self.n}], got {y.shape}")
        x = self.receiver.features(torch.from_numpy(y), self._noise(noise_var, y.shape[0]))
        return torch.addmm(self._bias, torch.cat([self.receiver.hidden(x), x], 1), self._w)

    def logits(self, y: np.ndarray, noise_var: float | np.ndarray | None = None) -> np.ndarray:
        """``[B, n]`` complex64 -> ``[B, M]`` float32 logits."""
        with torch.inference_mode():
            return self._logits(y, noise_var).numpy()

    def decide(self, y: np.ndarray, noise_var: float | np.ndarray | None = None) -> np.ndarray:
        """Most likely message per block, ``[B]`` int64: ``logits(y, noise_var).argmax(axis=1)``.

        The same operators on the same values as :meth:`logits` (so the same logits, bit for
        bit), written into buffers allocated once per call instead of new tensors per
        layer and chunk: the last hidden layer's output goes straight into the first columns
        of the ``[hidden, features]`` input of the output product (no concatenation), ReLU in
        place, the logits into a ``[chunk, M]`` buffer that stays in cache.
        """
        y = np.ascontiguousarray(y, dtype=np.complex64)
        if y.ndim != 2 or y.shape[1] != self.n:
            raise ValueError(f"y must have shape [B, {self.n}], got {y.shape}")
        # A receiver without the noise input ignores it; its features are y's floats.
        noise = self._noise(noise_var, len(y)) if self.receiver.noise_input else None
        floats = y.view(np.float32)  # [B, 2n], re and im interleaved: complex_to_features
        out = np.empty(len(y), np.int64)
        chunk = min(len(y), _DECIDE_CHUNK)
        width = self._width
        with torch.inference_mode():
            hx = torch.empty(chunk, self._w.shape[0])  # [hidden (width), features]
            inner = (torch.empty(chunk, width), torch.empty(chunk, width))  # between hidden layers
            logits = torch.empty(chunk, self.M)
            for i in range(0, len(y), _DECIDE_CHUNK):
                j = min(i + _DECIDE_CHUNK, len(y))
                b = j - i
                x = (torch.from_numpy(floats[i:j]) if noise is None
                     else self.receiver.features(torch.from_numpy(y[i:j]), noise[i:j]))
                h = x
                for layer, (w, bias) in enumerate(self._hidden):
                    to = hx[:b, :width] if layer == len(self._hidden) - 1 else inner[layer % 2][:b]
                    h = torch.addmm(bias, h, w, out=to).relu_()
                hx[:b, width:] = x
                torch.addmm(self._bias, hx[:b], self._w, out=logits[:b])
                # numpy's argmax is SIMD and several times faster than torch's on [B, M] float32.
                out[i:j] = logits[:b].numpy().argmax(axis=1)
        return out
