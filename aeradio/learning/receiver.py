"""The neural receiver: an MLP from the 2n received reals to logits over M messages.

Input layout: ``y`` is ``[B, n]`` complex; the network sees ``[B, 2n]`` float32 with the
real and imaginary parts interleaved per symbol (``torch.view_as_real(y).reshape(B, 2n)``,
the same memory as complex64), plus optionally one feature for the noise variance.

Besides the MLP, the logits get a linear path straight from the input: on AWGN the ML
detector of a LUT is exactly linear in y (``s (2 Re<y, x_m> - |x_m|^2)``), so the MLP only
has to learn what is not linear (phase, IQ imbalance, compression). During joint training
on AWGN the linear path is tied to the transmitter's current LUT (``forward(..., lut=...)``,
a learned scale ``s``): the transmitter then gets the gradient of a matched-filter bank
from the first step, which is what makes training converge in seconds. :meth:`untie`
folds the LUT into ordinary weights for deployment and fine-tuning. This is also what
lets a narrow, fast MLP stay within 0.1 dB of ML detection.

>>> rx = NeuralReceiver(M=16, n=2, hidden_width=8, hidden_layers=1)
>>> rx(torch.zeros(3, 2, dtype=torch.complex64)).shape
torch.Size([3, 16])
"""

from __future__ import annotations

import torch
from torch import nn

from aeradio.core.config import ModelConfig


def complex_to_features(y: torch.Tensor) -> torch.Tensor:
    """``[B, n]`` complex -> ``[B, 2n]`` real, (re, im) interleaved per symbol."""
    return torch.view_as_real(y).reshape(y.shape[0], -1)


class NeuralReceiver(nn.Module):
    """``forward(y: [B, n] complex64, noise_var: [B] float32 | None) -> [B, M] float32 logits``.

    ``noise_var`` is the noise variance per real component; it is used only when the
    receiver was built with ``noise_input=True`` (fed as ``log10(noise_var)``).
    """

    def __init__(
        self, M: int, n: int, hidden_width: int, hidden_layers: int, noise_input: bool = False
    ) -> None:
        super().__init__()
        self.M, self.n, self.noise_input = M, n, noise_input
        in_features = 2 * n + (1 if noise_input else 0)
        layers: list[nn.Module] = []
        width = in_features
        for _ in range(hidden_layers):
            layers += [nn.Linear(width, hidden_width), nn.ReLU()]
            width = hidden_width
        self.hidden = nn.Sequential(*layers)
        self.out = nn.Linear(width, M)
        # Zero-init the MLP's output: training starts from the linear path alone (matched
        # filtering once tied to a LUT) and the MLP learns a residual correction.
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.linear = nn.Linear(in_features, M)
        #: log of the matched-filter scale s used while the linear path is tied to a LUT.
        self.log_scale = nn.Parameter(torch.zeros(()))

    @classmethod
    def from_config(cls, model: ModelConfig) -> NeuralReceiver:
        return cls(model.M, model.n, model.hidden_width, model.hidden_layers, model.noise_input)

    def features(self, y: torch.Tensor, noise_var: torch.Tensor | None = None) -> torch.Tensor:
        """The network input ``[B, 2n (+1)]`` float32."""
        feats = complex_to_features(y)
        if self.noise_input:
            if noise_var is None:
                raise ValueError("this receiver needs noise_var (built with noise_input=True)")
            nv = torch.as_tensor(noise_var, dtype=feats.dtype).expand(feats.shape[0])
            feats = torch.cat([feats, torch.log10(nv).unsqueeze(1)], dim=1)
        return feats

    def matched_filter(self, lut: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Linear-path ``(weight [M, in], bias [M])`` of ML detection of ``lut [M, n]``."""
        scale = torch.exp(self.log_scale)
        lut_real = complex_to_features(lut)
        weight = 2.0 * scale * lut_real
        if self.noise_input:
            weight = torch.cat([weight, torch.zeros_like(weight[:, :1])], dim=1)
        bias = -scale * lut_real.pow(2).sum(dim=1)
        return weight, bias

    @torch.no_grad()
    def untie(self, lut: torch.Tensor) -> None:
        """Freeze the tied linear path of ``lut`` into :attr:`linear` (before export)."""
        weight, bias = self.matched_filter(lut)
        self.linear.weight.copy_(weight)
        self.linear.bias.copy_(bias)

    def forward(
        self,
        y: torch.Tensor,
        noise_var: torch.Tensor | None = None,
        lut: torch.Tensor | None = None,
        mlp: bool = True,
    ) -> torch.Tensor:
        """Logits ``[B, M]``; with ``lut`` the linear path is the matched filter of ``lut``.

        ``mlp=False`` evaluates the linear path alone (the AWGN joint-training phase).
        """
        x = self.features(y, noise_var)
        if lut is None:
            linear = self.linear(x)
        else:
            weight, bias = self.matched_filter(lut)
            linear = nn.functional.linear(x, weight, bias)
        return self.out(self.hidden(x)) + linear if mlp else linear
