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


@pytest.mark.parametrize("M, n", [(16, 2), (16, 7), (256, 7)])
def test_energy_normalization_is_exact_per_row(M, n):
    tx = Transmitter(M, n, normalization="energy", generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        tx.weight[0].mul_(40.0)  # one loud row must not change any other row's energy
    row_energy = tx.lut().detach().to(torch.complex128).abs().pow(2).sum(dim=1)
    assert torch.allclose(row_energy, torch.full((M,), float(n), dtype=torch.float64), rtol=1e-6)
    exported = tx.export_lut().astype(np.complex128)
    assert np.abs(np.sum(np.abs(exported) ** 2, axis=1) - n).max() <= 1e-6 * n
    # Unlike "average", the row energies of a random table are not all n there.
    spread = Transmitter(M, n, generator=torch.Generator().manual_seed(3)).export_lut()
    assert np.ptp(np.sum(np.abs(spread) ** 2, axis=1)) > 0.5


def test_unknown_normalization_is_rejected():
    with pytest.raises(ConfigError, match="normalization must be one of average, energy, peak, got 'unit'"):
        Transmitter(4, 1, normalization="unit")


def _codes(lut: np.ndarray, step: float) -> np.ndarray:
    """The integer codes of ``lut``; asserts every value is float32(code * step) bit for bit."""
    values = np.stack([lut.real, lut.imag])
    codes = np.rint(values.astype(np.float64) / step)
    assert np.array_equal((codes * step).astype(np.float32), values)
    return codes


@pytest.mark.parametrize("normalization", ["average", "energy", "peak"])
@pytest.mark.parametrize("bits, full_scale", [(2, 0.9), (4, 2.0), (8, 2.0), (12, 2.5)])
def test_quantized_lut_is_on_its_grid_with_unit_energy(normalization, bits, full_scale):
    tx = Transmitter(
        64, 3, normalization=normalization, dac_bits=bits, dac_full_scale=full_scale,
        generator=torch.Generator().manual_seed(bits),
    )
    lut, grid = tx.export_lut(), tx.lut_grid()
    assert lut.dtype == np.complex64 and grid["dac_bits"] == bits
    assert np.abs(_codes(lut, grid["step"])).max() <= 2 ** (bits - 1) - 1
    assert np.mean(np.abs(lut.astype(np.complex128)) ** 2) == pytest.approx(1.0, abs=1e-6)
    assert grid["mean_energy"] == pytest.approx(1.0, abs=1e-6)
    assert grid["full_scale"] == pytest.approx(full_scale, rel=0.5 if bits == 2 else 0.1)
    # The training forward pass sends exactly the deployed table.
    assert np.array_equal(tx.lut().detach().numpy(), lut)
    if normalization == "energy":
        assert grid["row_energy_min"] < 1.0 < grid["row_energy_max"]  # exact per row only before the DAC


def test_rounding_is_to_the_nearest_code_and_clips_at_full_scale():
    from aeradio.learning.transmitter import quantize_lut

    lut = np.array([[0.1 + 0.0j], [0.26 - 0.24j], [5.0 - 9.0j]])
    codes, step = quantize_lut(lut, bits=3, full_scale=1.5)  # nominal step 0.5
    assert codes.tolist() == [[[0.0, 0.0]], [[1.0, -0.0]], [[3.0, -3.0]]]
    assert step == pytest.approx(1.0 / np.sqrt((1 + 18) / 3))


def test_straight_through_gradient_is_the_float_tables():
    g = torch.Generator().manual_seed(4)
    weights = torch.randn(16, 2, 2, generator=g)
    direction = torch.view_as_complex(torch.randn(16, 2, 2, generator=g))
    grads = {}
    for bits in (0, 2):
        tx = Transmitter(16, 2, dac_bits=bits, dac_full_scale=0.9)
        with torch.no_grad():
            tx.weight.copy_(weights)
        table = tx.lut()
        (table * direction.conj()).real.sum().backward()  # linear in the table
        grads[bits] = (table.detach(), tx.weight.grad.clone())
    (float_table, float_grad), (quantized, quantized_grad) = grads[0], grads[2]
    assert not torch.equal(quantized, float_table)  # the forward pass is quantized ...
    assert torch.count_nonzero(quantized_grad) == quantized_grad.numel()
    assert torch.allclose(quantized_grad, float_grad)  # ... the backward pass is the identity


def test_quantization_aware_training_deploys_its_grid():
    from aeradio.core.config import LinkConfig
    from aeradio.learning.training import train_autoencoder

    cfg = LinkConfig.from_dict(
        {
            "model": {"k": 3, "n": 2, "hidden_width": 8, "hidden_layers": 1, "dac_bits": 3,
                      "dac_full_scale": 1.4},
            "training": {"steps": 60, "batch_size": 256, "tx_lr_scale": 10.0, "receiver_only_fraction": 0.2},
        },
        name="qat",
    )
    result = train_autoencoder(cfg, progress=False)
    grid = result.lut_grid
    assert np.abs(_codes(result.lut, grid["step"])).max() <= 3 and grid["dac_bits"] == 3
    # The receiver's linear path is ML detection of the quantized table it was trained with.
    from aeradio.dsp.detection import ml_detect
    from aeradio.learning.receiver import NeuralReceiver

    rx = NeuralReceiver.from_config(cfg.model)
    rx.load_state_dict(result.receiver_state)
    with torch.no_grad():
        weight, bias = rx.linear.weight, rx.linear.bias
        y = torch.from_numpy(result.lut[[0, 5, 7]])
        linear = torch.nn.functional.linear(torch.view_as_real(y).reshape(3, -1), weight, bias)
    assert linear.argmax(dim=1).tolist() == ml_detect(result.lut[[0, 5, 7]], result.lut).tolist() == [0, 5, 7]
