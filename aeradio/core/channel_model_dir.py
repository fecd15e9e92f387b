"""The channel-model directory (``aeradio channel-model fit --out CM``), readable without torch.

``CM/channel_model.json``: format version, ``kind`` (``"cvae"``), the transmitter it was
fitted for (``model_hash32``, 8 hex digits) and its ``sample_rate_hz``, the architecture
(``half_window`` neighbours either side of a symbol, ``latent`` size, ``hidden_width``,
``hidden_layers``), the AWGN baseline fitted beside it (``awgn.noise_scale``), the probe
radius and SNR range of the data, the fidelity figures measured on held-out frames, and
the sha256 of the weight file; ``CM/channel_model.safetensors``: the conditional VAE's
float32 weights (no pickle).

Loading checks before anything is allocated from the files: the JSON is read only if it
holds at most :data:`MAX_CHANNEL_JSON_BYTES`; every field is type- and range-checked (the
architecture bounds the tensor sizes); the safetensors header must name exactly the tensors
of that architecture (:func:`cvae_parameter_shapes`), float32, with their shapes, and the
file must end where they do; the file must match its sha256. Then
:func:`check_fitted_for` refuses a channel model fitted for another transmitter (model
hash) or sample rate. Every failure is one :class:`~aeradio.core.errors.ModelFormatError`
line naming the file.

>>> sorted(cvae_parameter_shapes(2, 4, 16, 1).items())[:2]
[('decoder.0.bias', (16,)), ('decoder.0.weight', (16, 15))]
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from aeradio.core.config import parse_json, read_bounded
from aeradio.core.errors import ModelFormatError, short_repr
from aeradio.core.model_dir import check_safetensors_header, sha256_file

CHANNEL_FORMAT_VERSION = 1
CHANNEL_JSON = "channel_model.json"
CHANNEL_WEIGHTS = "channel_model.safetensors"
#: Kinds of channel model this format holds.
CHANNEL_KINDS = ("cvae",)
#: Size of channel_model.json at most (a fitted one is a few kB).
MAX_CHANNEL_JSON_BYTES = 1 << 20
#: Architecture bounds: name -> (low, high), integers. They bound the weight file
#: (at most about 1.3 M parameters, 5 MB).
ARCHITECTURE_BOUNDS = {
    "half_window": (0, 8),
    "latent": (1, 16),
    "hidden_width": (4, 512),
    "hidden_layers": (1, 6),
}
#: Features of the condition: real and imaginary part of each symbol of the window, and the
#: frame's SNR estimate.
CONTEXT_FEATURES = 1


def condition_features(half_window: int) -> int:
    """Inputs of the condition ``(x window, SNR)``: ``2 (2 half_window + 1) + 1``."""
    return 2 * (2 * half_window + 1) + CONTEXT_FEATURES


def _mlp_shapes(
    prefix: str, inputs: int, hidden: int, layers: int, outputs: int
) -> dict[str, tuple[int, ...]]:
    """Parameter shapes of ``nn.Sequential(Linear, ReLU, ..., Linear)`` with ``layers`` hidden layers."""
    shapes: dict[str, tuple[int, ...]] = {}
    width = inputs
    for i in range(layers):
        shapes[f"{prefix}.{2 * i}.weight"] = (hidden, width)
        shapes[f"{prefix}.{2 * i}.bias"] = (hidden,)
        width = hidden
    shapes[f"{prefix}.{2 * layers}.weight"] = (outputs, width)
    shapes[f"{prefix}.{2 * layers}.bias"] = (outputs,)
    return shapes


def cvae_parameter_shapes(
    half_window: int, latent: int, hidden_width: int, hidden_layers: int
) -> dict[str, tuple[int, ...]]:
    """Name -> shape of each tensor of the conditional VAE
    (:class:`aeradio.learning.channel_model.ConditionalVAE`): an encoder
    ``(condition, y) -> (mean, log-variance) of z`` and a decoder ``(condition, z) ->
    (mean, log-variance) of y``."""
    c = condition_features(half_window)
    return {
        **_mlp_shapes("encoder", c + 2, hidden_width, hidden_layers, 2 * latent),
        **_mlp_shapes("decoder", c + latent, hidden_width, hidden_layers, 4),
    }


def _number(meta: dict[str, Any], key: str, path: Path, low: float, high: float) -> float:
    value = meta.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ModelFormatError(
            f"{path}: {key} must be a number in [{low:g}, {high:g}], got {short_repr(value)}"
        )
    return float(value)


def read_channel_meta(cm_dir: str | Path) -> dict[str, Any]:
    """channel_model.json, size-bounded and field-checked (the weights are checked by
    :func:`verify_channel_model_dir`)."""
    cm_dir = Path(cm_dir)
    path = cm_dir / CHANNEL_JSON
    if not cm_dir.is_dir():
        raise ModelFormatError(f"channel-model directory {cm_dir} does not exist")
    if not path.is_file():
        raise ModelFormatError(f"{path} is missing: {cm_dir} is not a channel-model directory")
    meta = parse_json(
        read_bounded(path, MAX_CHANNEL_JSON_BYTES, what="channel model file", error=ModelFormatError),
        what=str(path),
        error=ModelFormatError,
    )
    if not isinstance(meta, dict):
        raise ModelFormatError(f"{path} must hold a JSON object")
    if meta.get("format_version") != CHANNEL_FORMAT_VERSION:
        raise ModelFormatError(
            f"{path}: format_version must be {CHANNEL_FORMAT_VERSION}, "
            f"got {short_repr(meta.get('format_version'))}"
        )
    if meta.get("kind") not in CHANNEL_KINDS:
        raise ModelFormatError(
            f"{path}: kind must be one of {', '.join(CHANNEL_KINDS)}, got {short_repr(meta.get('kind'))}"
        )
    hash32 = meta.get("model_hash32")
    if not (isinstance(hash32, str) and len(hash32) == 8 and all(ch in "0123456789abcdef" for ch in hash32)):
        raise ModelFormatError(
            f"{path}: model_hash32 must be 8 lowercase hex digits, got {short_repr(hash32)}"
        )
    _number(meta, "sample_rate_hz", path, 1.0, 1e12)
    _number(meta, "probe_radius", path, 1.0, 1e3)
    arch = meta.get("architecture")
    if not isinstance(arch, dict) or set(arch) != set(ARCHITECTURE_BOUNDS):
        raise ModelFormatError(f"{path}: architecture must hold {', '.join(ARCHITECTURE_BOUNDS)}")
    for key, (low, high) in ARCHITECTURE_BOUNDS.items():
        value = arch[key]
        if type(value) is not int or not low <= value <= high:
            raise ModelFormatError(
                f"{path}: architecture.{key} must be an integer in [{low}, {high}], got {short_repr(value)}"
            )
    awgn = meta.get("awgn")
    if not isinstance(awgn, dict):
        raise ModelFormatError(f"{path}: awgn must be an object with noise_scale")
    _number(awgn, "noise_scale", path, 1e-6, 1e6)
    files = meta.get("files")
    entry = files.get(CHANNEL_WEIGHTS) if isinstance(files, dict) else None
    if (
        not isinstance(entry, dict)
        or not isinstance(entry.get("sha256"), str)
        or set(files) != {CHANNEL_WEIGHTS}
    ):
        raise ModelFormatError(f"{path}: files must list the sha256 of {CHANNEL_WEIGHTS}")
    return meta


def channel_shapes(meta: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """The weight shapes of a checked channel_model.json's architecture."""
    a = meta["architecture"]
    return cvae_parameter_shapes(a["half_window"], a["latent"], a["hidden_width"], a["hidden_layers"])


def verify_channel_model_dir(cm_dir: str | Path) -> dict[str, Any]:
    """Check channel_model.json, the weight file's header and size against its architecture,
    then its sha256. Returns channel_model.json as a dict; :class:`ModelFormatError` otherwise."""
    cm_dir = Path(cm_dir)
    meta = read_channel_meta(cm_dir)
    path = cm_dir / CHANNEL_WEIGHTS
    try:
        with open(path, "rb") as f:
            check_safetensors_header(
                f,
                os.fstat(f.fileno()).st_size,
                path,
                channel_shapes(meta),
                "the channel model's architecture",
            )
    except OSError as exc:
        raise ModelFormatError(f"cannot read {path}: {exc.strerror or exc}") from None
    expected, actual = meta["files"][CHANNEL_WEIGHTS]["sha256"], sha256_file(path)
    if actual != expected:
        raise ModelFormatError(
            f"{path} was altered: sha256 {actual[:16]}... does not match {CHANNEL_JSON} ({expected[:16]}...)"
        )
    return meta


def check_fitted_for(
    meta: dict[str, Any], cm_dir: str | Path, model_hash32: int, sample_rate_hz: float, model_dir: str | Path
) -> None:
    """Refuse a channel model fitted for another transmitter or sample rate than ``model_dir``'s
    (:class:`ModelFormatError`, one line with both values)."""
    if meta["model_hash32"] != f"{model_hash32:08x}":
        raise ModelFormatError(
            f"--channel-model {cm_dir} was fitted for the transmitter {meta['model_hash32']}, not "
            f"{model_hash32:08x} of --model {model_dir}: fit it on captures of this model"
        )
    if not math.isclose(meta["sample_rate_hz"], sample_rate_hz, rel_tol=1e-9):
        raise ModelFormatError(
            f"--channel-model {cm_dir} was fitted at sample rate {meta['sample_rate_hz']:g} S/s, --model "
            f"{model_dir} runs at {sample_rate_hz:g} S/s"
        )
