"""ReceiverRuntime.decide: the logits' argmax, bit for bit, through its preallocated path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aeradio.core.config import LinkConfig
from aeradio.learning import inference
from aeradio.learning.inference import ReceiverRuntime
from aeradio.learning.receiver import NeuralReceiver


def _runtime(layers: int, noise_input: bool, seed: int = 3) -> ReceiverRuntime:
    cfg = LinkConfig.from_dict({"model": {"k": 6, "n": 3, "hidden_width": 16, "hidden_layers": layers,
                                          "noise_input": noise_input}}, name="t")
    torch.manual_seed(seed)
    rx = NeuralReceiver.from_config(cfg.model)
    torch.nn.init.normal_(rx.out.weight)  # zero-initialized: the MLP would not count
    torch.nn.init.normal_(rx.linear.weight, std=3.0)  # decisions that vary with y
    return ReceiverRuntime(cfg, rx)


def _reference(runtime: ReceiverRuntime, y: np.ndarray, nv: np.ndarray | None) -> np.ndarray:
    """The straightforward forward pass: the module itself, its logits' argmax."""
    with torch.inference_mode():
        nvt = None if nv is None else torch.from_numpy(nv)
        return runtime.receiver(torch.from_numpy(y), nvt).numpy().argmax(axis=1)


@pytest.mark.parametrize("noise_input", [False, True])
@pytest.mark.parametrize("layers", [1, 2, 3])
def test_decide_is_the_argmax_of_the_modules_logits(layers: int, noise_input: bool) -> None:
    runtime = _runtime(layers, noise_input)
    rng = np.random.default_rng(5)
    blocks = 2 * inference._DECIDE_CHUNK + 17  # two full chunks and a short one
    shape = (blocks, 3)
    y = (0.7 * (rng.standard_normal(shape) + 1j * rng.standard_normal(shape))).astype(np.complex64)
    y[5] = np.nan  # a NaN block: numpy's argmax (the first NaN) either way
    nv = rng.uniform(0.01, 0.5, blocks).astype(np.float32) if noise_input else None
    got = runtime.decide(y, nv)
    assert got.dtype == np.int64 and got.shape == (blocks,)
    np.testing.assert_array_equal(got, _reference(runtime, y, nv))
    # The fused output layer gives the same logits as the module's, bit for bit.
    np.testing.assert_array_equal(got, runtime.logits(y, nv).argmax(axis=1))
    assert len(np.unique(got)) > 20  # the decisions vary: the comparison means something


def test_decide_takes_views_and_empty_input() -> None:
    runtime = _runtime(2, False)
    rng = np.random.default_rng(6)
    y = (rng.standard_normal((300, 6)) + 1j * rng.standard_normal((300, 6))).astype(np.complex64)
    view = y[:, ::2]  # not contiguous
    np.testing.assert_array_equal(runtime.decide(view), _reference(runtime, np.ascontiguousarray(view), None))
    assert runtime.decide(np.zeros((0, 3), np.complex64)).shape == (0,)
    with pytest.raises(ValueError, match="shape"):
        runtime.decide(y)


def test_decide_of_a_noise_input_receiver_needs_the_noise() -> None:
    runtime = _runtime(1, True)
    y = np.zeros((4, 3), np.complex64)
    with pytest.raises(ValueError, match="needs noise_var"):
        runtime.decide(y)
    # A scalar noise variance stands for every block.
    np.testing.assert_array_equal(runtime.decide(y + 0.3, 0.1),
                                  _reference(runtime, y + 0.3, np.full(4, 0.1, np.float32)))
