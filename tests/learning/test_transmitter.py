import numpy as np
import pytest
import torch

from aeradio.core.errors import ConfigError
from aeradio.learning.transmitter import Transmitter, normalize_peak


@pytest.mark.parametrize("M, n", [(4, 1), (16, 1), (256, 7), (16, 7)])
def test_average_normalization_is_exact_and_batch_independent(M, n):
    tx = Transmitter(M, n, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        tx.weight.mul_(7.3)  # the raw scale must not matter
    lut = tx.lut().detach().to(torch.complex128)
    assert lut.abs().pow(2).mean().item() == pytest.approx(1.0, abs=1e-6)
    # Symbols of a batch are rows of the same LUT: no batch statistics.
    msgs = torch.tensor([0, 0, 1])
    out = tx(msgs).detach()
    assert torch.equal(out[0], out[1])
    assert torch.allclose(out[2], tx.lut().detach()[1])
    exported = tx.export_lut()
    assert exported.dtype == np.complex64 and exported.shape == (M, n)
    assert np.mean(np.abs(exported.astype(np.complex128)) ** 2) == pytest.approx(1.0, abs=1e-6)


def test_peak_normalization_keeps_energy_and_limits_amplitude():
    g = torch.Generator().manual_seed(2)
    u = torch.view_as_complex(torch.randn(64, 3, 2, generator=g))
    u[0, 0] = 50.0  # one huge point that must be clipped
    x = normalize_peak(u, 1.3)
    assert x.abs().pow(2).mean().item() == pytest.approx(1.0, abs=1e-6)
    assert x.abs().max().item() <= 1.3 * (1 + 1e-5)
    # Clipping changes only amplitudes: phases are kept.
    assert torch.allclose(torch.angle(x[0, 0]), torch.angle(u[0, 0]))


def test_peak_below_one_is_rejected():
    with pytest.raises(ConfigError, match="peak_amplitude"):
        normalize_peak(torch.ones(4, 1, dtype=torch.complex64), 0.9)


def test_peak_transmitter_gradients_flow():
    tx = Transmitter(
        16, 2, normalization="peak", peak_amplitude=1.2, generator=torch.Generator().manual_seed(0)
    )
    tx.lut().abs().sum().backward()
    assert tx.weight.grad is not None and torch.isfinite(tx.weight.grad).all()
