"""The model directory of docs/contracts.md, readable without torch.

``DIR/model.json``: format version, the link configuration (``LinkConfig.to_dict()``),
k, n, M, and the sha256 of each weight file; ``DIR/tx_lut.npy``: the LUT ``[M, n]``
complex64; ``DIR/receiver.safetensors``: the receiver weights. No pickle anywhere:
``np.load(allow_pickle=False)`` and safetensors. A model with ``[model] dac_bits`` also
stores its LUT's DAC grid in model.json (``lut_grid``: ``step`` and measured figures), and
every load checks that each LUT value is ``float32(q * step)`` with ``|q| <= 2^(bits-1) - 1``.

Bit-wise and coded models (docs/contracts.md, "Coded models") use the same files:
``model.json`` states ``receiver_output`` ("bit_llrs" for ``[model] receiver = "bitwise"``,
"message_logits" otherwise) and, for a coded model, carries the ``[code]`` section in its
config (and in ``code`` at the top level, for readers that look no deeper). A model with
bit LLRs also states where they come from in ``bit_llrs`` (the config's ``[model]
bit_llrs``): "receiver" (a bit-wise receiver's outputs) or "marginal" (a message
receiver's posteriors marginalized per bit: ``receiver_output`` is "message_logits" and
the model is coded). Row ``m`` of the LUT carries the bits of ``m``, most significant
first (the learned labels, or the binary label of the message index). A model directory
written before these keys existed has none of them and loads as an uncoded message model
(or, with a ``[code]``, a bit-wise one); a ``receiver_output``, ``bit_llrs`` or ``code``
that disagrees with the config is refused.

Loading checks before it allocates: ``model.json`` is read only if it holds at most
:data:`MAX_MODEL_JSON_BYTES`; its link configuration is validated, which bounds the sizes
of the LUT, the receiver and a frame (:mod:`aeradio.core.config`); the ``.npy`` header of
the LUT (dtype, shape, order) and the safetensors header of the receiver (every tensor's
name, dtype and shape) must match the configuration and the file sizes the headers; every
weight file must match its sha256; all before an array is read. The LUT is then
checked finite with mean energy 1 per complex use. Every failure is one
:class:`~aeradio.core.errors.ModelFormatError` line naming the file.

The receiver weights load without torch too (:func:`load_receiver_arrays`, for GNU Radio's
Python): the bytes read are checked against the verified sha256 and header.

Writes are atomic: the files go to a temporary sibling directory that is renamed into
place, so a crash never leaves a half-written model. An existing model directory is
replaced only when asked (``overwrite=True``); a non-empty directory that is not a model
directory is never touched.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import math
import os
import shutil
import struct
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import numpy as np

from aeradio.core.atomic import publish_tree
from aeradio.core.config import LinkConfig, dac_max_code, parse_json, read_bounded
from aeradio.core.constants import SAMPLE_DTYPE
from aeradio.core.errors import AeradioError, ConfigError, ModelFormatError, short_repr
from aeradio.core.npy import read_npy_header
from aeradio.core.paths import check_parents

#: 2: the frame header is convolutionally coded (``[frame] header_repetition`` is gone).
FORMAT_VERSION = 2
#: Older versions still read: format 1 differs only by ``[frame] header_repetition`` (its
#: weights fit the coded header as well: the header is framing, not part of the model), so
#: it loads with that key dropped; both ends of a link must run a version that codes it.
READABLE_FORMAT_VERSIONS = (1, FORMAT_VERSION)
MODEL_JSON = "model.json"
LUT_FILE = "tx_lut.npy"
RECEIVER_FILE = "receiver.safetensors"
WEIGHT_FILES = (LUT_FILE, RECEIVER_FILE)
#: Tolerance on the LUT's mean energy per complex use (float32 rounding).
LUT_ENERGY_TOLERANCE = 1e-4
#: model.json key of a quantized LUT's DAC grid (``[model] dac_bits``): its ``step`` and the
#: measured figures of ``aeradio.learning.transmitter.Transmitter.lut_grid``.
LUT_GRID_KEY = "lut_grid"
#: Size of model.json at most. A trained model's is tens of kB (the training history is
#: kept to a thousand points); 4 MiB parses into at most about 100 MB of Python objects.
MAX_MODEL_JSON_BYTES = 4 << 20
#: Size of the safetensors JSON header at most: the receiver's ~10 tensors take < 2 kB
#: (the format itself allows 100 MB).
MAX_SAFETENSORS_HEADER_BYTES = 1 << 16
#: The dtype of every receiver tensor in the safetensors file.
SAFETENSORS_DTYPE = "F32"


def stored_receiver_shapes(config: LinkConfig) -> dict[str, tuple[int, ...]]:
    """Name -> shape of each tensor in ``receiver.safetensors``: the receiver's state dict,
    a scalar stored with shape ``(1,)`` (as every model directory written so far has it;
    torch loads it back into the 0-d parameter)."""
    return {k: shape or (1,) for k, shape in config.model.receiver_parameter_shapes().items()}


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _read_meta(model_dir: Path) -> dict[str, Any]:
    path = model_dir / MODEL_JSON
    if not model_dir.is_dir():
        if model_dir.exists():  # a config or a file given as --model (new-user trial)
            raise ModelFormatError(f"{model_dir} is a file, not a model directory (train one with "
                                   "aeradio train --config FILE --out DIR)")
        raise ModelFormatError(f"model directory {model_dir} does not exist")
    if not path.exists():
        raise ModelFormatError(f"{path} is missing: {model_dir} is not a model directory")
    raw = read_bounded(path, MAX_MODEL_JSON_BYTES, what="model file", error=ModelFormatError)
    meta = parse_json(raw, what=str(path), error=ModelFormatError)
    if not isinstance(meta, dict):
        raise ModelFormatError(f"{path} must hold a JSON object")
    version = meta.get("format_version")
    if version not in READABLE_FORMAT_VERSIONS:
        raise ModelFormatError(
            f"{path}: format_version must be one of {', '.join(map(str, READABLE_FORMAT_VERSIONS))}, "
            f"got {short_repr(version)}"
        )
    if version == 1:
        meta = _from_format_1(meta)
    files = meta.get("files")
    if not isinstance(files, dict) or set(files) != set(WEIGHT_FILES):
        raise ModelFormatError(f"{path}: 'files' must list the sha256 of {', '.join(WEIGHT_FILES)}")
    for name in WEIGHT_FILES:
        entry = files[name]
        if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
            raise ModelFormatError(f"{path}: files.{name} must be an object with a sha256 string")
    return meta


def _from_format_1(meta: dict[str, Any]) -> dict[str, Any]:
    """model.json of format 1 as format 2: ``[frame] header_repetition`` dropped."""
    config = meta.get("config")
    if isinstance(config, dict) and isinstance(config.get("frame"), dict):
        frame = {k: v for k, v in config["frame"].items() if k != "header_repetition"}
        meta = {**meta, "config": {**config, "frame": frame}}
    return meta


def _config_from_meta(meta: dict[str, Any], model_dir: Path) -> LinkConfig:
    """The validated (size-bounded) link config of model.json, consistent with its k, n, M."""
    path = model_dir / MODEL_JSON
    try:
        config = LinkConfig.from_dict(meta.get("config"))
    except AeradioError as exc:
        raise ModelFormatError(f"{path}: invalid config: {exc}") from None
    model = config.model
    for key, value in (("k", model.k), ("n", model.n), ("M", model.M)):
        if key in meta and meta[key] != value:
            raise ModelFormatError(f"{path}: {key} is {short_repr(meta[key])} but the config says {value}")
    if "receiver_output" in meta and meta["receiver_output"] != receiver_output(config):
        raise ModelFormatError(
            f"{path}: receiver_output is {short_repr(meta['receiver_output'])} but the config's receiver "
            f"gives {receiver_output(config)!r}"
        )
    if "bit_llrs" in meta and meta["bit_llrs"] != bit_llrs(config):
        raise ModelFormatError(
            f"{path}: bit_llrs is {short_repr(meta['bit_llrs'])} but the config gives "
            f"{short_repr(bit_llrs(config))}"
        )
    code = config.to_dict().get("code")
    if "code" in meta and meta["code"] != code:
        raise ModelFormatError(
            f"{path}: code is {short_repr(meta['code'])} but the config says {short_repr(code)}"
        )
    return config


def receiver_output(config: LinkConfig) -> str:
    """What the receiver outputs: "bit_llrs" (k LLRs per block) or "message_logits" (M)."""
    return "bit_llrs" if config.model.bitwise else "message_logits"


def bit_llrs(config: LinkConfig) -> str | None:
    """Where the model's bit LLRs come from: "receiver" (a bit-wise receiver), "marginal" (a
    message receiver's posteriors marginalized, coded models only), None (an uncoded message
    model has none)."""
    if config.model.bitwise:
        return "receiver"
    return "marginal" if config.model.marginal else None


def require_message_receiver(
    config: LinkConfig, model_dir: str | Path, what: str, *, coded_ok: bool = False
) -> None:
    """Raise :class:`ModelFormatError` (one line) when ``config`` is a bit-wise model (LLR
    outputs; coded or not) or, unless ``coded_ok``, a coded one (a message receiver whose
    posteriors are marginalized for an outer code): ``what`` works with uncoded message
    receivers only."""
    if config.model.bitwise:
        coded = " and an outer code" if config.code is not None else ""
        raise ModelFormatError(
            f"{Path(model_dir)} has a bit-wise receiver (LLR outputs){coded}; {what} needs a message "
            "receiver (model.receiver = \"message\"); coded models run with tx, rx, channel and eval"
        )
    if config.code is not None and not coded_ok:
        raise ModelFormatError(
            f"{Path(model_dir)} is a coded model (an outer code on its message posteriors marginalized "
            f"to bit LLRs); {what} needs an uncoded message model; coded models run with tx, rx, channel "
            "and eval"
        )


def _read_lut_header(f: IO[bytes], path: Path, config: LinkConfig) -> None:
    """Read and check the .npy header of the LUT against ``config``, leaving ``f`` at the data.

    The file must be complex64, C order, shape ``[M, n]`` and exactly as long as the header
    and that array; nothing of the array is read.
    """
    try:
        shape, fortran_order, dtype = read_npy_header(f)
    except ValueError as exc:
        raise ModelFormatError(f"{path} is {exc}") from None
    expected = (config.model.M, config.model.n)
    if dtype != SAMPLE_DTYPE or fortran_order or tuple(shape) != expected:
        order = "Fortran" if fortran_order else "C"
        raise ModelFormatError(
            f"{path} must be complex64 of shape {expected} in C order, got {dtype} of shape "
            f"{short_repr(tuple(shape))} in {order} order"
        )
    offset = f.tell()
    size = os.fstat(f.fileno()).st_size
    data_bytes = math.prod(expected) * SAMPLE_DTYPE().itemsize
    if size != offset + data_bytes:
        raise ModelFormatError(
            f"{path} holds {size - offset} bytes of data, its header says {data_bytes}"
        )


def _check_receiver_header(
    f: IO[bytes], file_size: int, path: Path, config: LinkConfig
) -> tuple[int, dict[str, tuple[int, int]]]:
    """Check the safetensors header of ``f`` against the config's receiver
    (:func:`stored_receiver_shapes`; see :func:`check_safetensors_header`)."""
    expected = stored_receiver_shapes(config)
    return check_safetensors_header(f, file_size, path, expected, "the config's receiver")


def check_safetensors_header(
    f: IO[bytes], file_size: int, path: Path, expected: dict[str, tuple[int, ...]], what: str
) -> tuple[int, dict[str, tuple[int, int]]]:
    """Check the safetensors header of ``f`` (at its start, ``file_size`` bytes) against
    ``expected`` (tensor name -> shape, of ``what``), before a tensor is read.

    Every expected tensor must be there, float32, with its shape and a byte range of its
    size, and nothing else (bar ``__metadata__``); the file must end where the last tensor
    does. Returns the offset of the data and each tensor's byte range ``(start, end)``
    relative to it.
    """
    try:
        head = f.read(8)
        size = struct.unpack("<Q", head)[0] if len(head) == 8 else -1
        ok = 2 <= size <= MAX_SAFETENSORS_HEADER_BYTES
        header = parse_json(f.read(size), what=str(path), error=ModelFormatError) if ok else None
    except (OSError, ModelFormatError):
        header = None
    if not isinstance(header, dict):
        raise ModelFormatError(f"{path} is not a safetensors file")
    names = set(header) - {"__metadata__"}
    if names != set(expected):
        odd = sorted(names ^ set(expected))
        raise ModelFormatError(
            f"{path}: the tensors do not match {what} ({short_repr(odd[0])} is "
            f"{'unexpected' if odd[0] in names else 'missing'}; expected {len(expected)} tensors)"
        )
    end = 0
    ranges: dict[str, tuple[int, int]] = {}
    for name, shape in expected.items():
        entry = header[name]
        want_bytes = math.prod(shape) * 4
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if (
            not isinstance(entry, dict)
            or entry.get("dtype") != SAFETENSORS_DTYPE
            or entry.get("shape") != list(shape)
            or not (isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int for o in offsets))
            or offsets[1] - offsets[0] != want_bytes
            or offsets[0] < 0
        ):
            raise ModelFormatError(
                f"{path}: tensor {name} must be {SAFETENSORS_DTYPE} of shape {list(shape)}, "
                f"got {short_repr(entry)}"
            )
        ranges[name] = (offsets[0], offsets[1])
        end = max(end, offsets[1])
    if file_size != 8 + size + end:
        raise ModelFormatError(f"{path} is {file_size} bytes, its header describes {8 + size + end}")
    return 8 + size, ranges


def verify_model_dir(model_dir: str | Path) -> dict[str, Any]:
    """Check model.json, the format version, the config, the weight files' headers and
    sizes against it, then every file's sha256.

    Returns model.json as a dict. Raises :class:`ModelFormatError` with one line naming
    the file at fault. Nothing larger than the bounds of :mod:`aeradio.core.config` is read
    into memory.
    """
    model_dir = Path(model_dir)
    meta = _read_meta(model_dir)
    config = _config_from_meta(meta, model_dir)
    for name in WEIGHT_FILES:
        if not (model_dir / name).is_file():
            raise ModelFormatError(f"{model_dir / name} is missing")
    # Headers and sizes first (bounded reads), so a huge file is refused before it is hashed.
    with open(model_dir / LUT_FILE, "rb") as f:
        _read_lut_header(f, model_dir / LUT_FILE, config)
    path = model_dir / RECEIVER_FILE
    try:
        with open(path, "rb") as f:
            _check_receiver_header(f, os.fstat(f.fileno()).st_size, path, config)
    except OSError as exc:
        raise ModelFormatError(f"cannot read {path}: {exc.strerror or exc}") from None
    for name in WEIGHT_FILES:
        expected = meta["files"][name]["sha256"]
        actual = sha256_file(model_dir / name)
        if actual != expected:
            raise ModelFormatError(
                f"{model_dir / name} was altered: sha256 {actual[:16]}... does not match model.json "
                f"({expected[:16]}...)"
            )
    return meta


def load_link_config(model_dir: str | Path) -> LinkConfig:
    """The verified link configuration of a model directory."""
    return _config_from_meta(verify_model_dir(model_dir), Path(model_dir))


def check_lut(lut: np.ndarray, where: str) -> None:
    """Raise :class:`ModelFormatError` unless ``lut`` is finite with mean energy 1 per complex use."""
    values = np.asarray(lut)
    if not np.all(np.isfinite(values)):
        raise ModelFormatError(f"{where}: the LUT must be finite, got {int(np.sum(~np.isfinite(values)))} "
                               "non-finite values")
    energy = float(np.mean(np.abs(values.astype(np.complex128)) ** 2))
    if not math.isclose(energy, 1.0, abs_tol=LUT_ENERGY_TOLERANCE):
        raise ModelFormatError(
            f"{where}: the LUT's mean energy per complex use must be 1 +- {LUT_ENERGY_TOLERANCE:g}, "
            f"got {energy:.6g}"
        )


def load_lut(model_dir: str | Path) -> np.ndarray:
    """The verified transmitter LUT ``[M, n]`` complex64 (finite, mean energy 1 per complex use)."""
    cfg = load_link_config(model_dir)
    path = Path(model_dir) / LUT_FILE
    try:
        with open(path, "rb") as f:
            _read_lut_header(f, path, cfg)  # again on this handle: what is read is what was checked
            lut = np.fromfile(f, dtype=SAMPLE_DTYPE, count=cfg.model.M * cfg.model.n)
    except OSError as exc:
        raise ModelFormatError(f"cannot read {path}: {exc.strerror or exc}") from None
    lut = lut.reshape(cfg.model.M, cfg.model.n)
    if cfg.model.dac_bits:  # first: an off-grid value is the more specific diagnosis
        check_lut_grid(lut, cfg.model.dac_bits, (read_lut_grid(model_dir) or {}).get("step"), path)
    check_lut(lut, str(path))
    return lut


def check_lut_grid(lut: np.ndarray, dac_bits: int, step: Any, where: str | Path) -> None:
    """Raise ModelFormatError unless every I and Q value of ``lut`` is ``float32(q * step)``
    bit for bit, with an integer ``q`` in ``[-(2^(dac_bits-1) - 1), 2^(dac_bits-1) - 1]``."""
    if isinstance(step, bool) or not isinstance(step, (int, float)) or not 0 < step < math.inf:
        raise ModelFormatError(
            f"{where}: model.json has no valid DAC grid step ({LUT_GRID_KEY}), got {step!r}"
        )
    parts = np.stack([lut.real, lut.imag]).astype(np.float32)
    with np.errstate(all="ignore"):  # inf and NaN (of a forged file) count as off the grid
        codes = np.rint(parts.astype(np.float64) / step)
        off = (np.abs(codes) > dac_max_code(dac_bits)) | ((codes * step).astype(np.float32) != parts)
    if off.any():
        raise ModelFormatError(
            f"{where} is off its {dac_bits}-bit DAC grid: {int(off.sum())} of {off.size} values are not "
            f"q * {step:.9g} with |q| <= {dac_max_code(dac_bits)}"
        )


def load_receiver_arrays(model_dir: str | Path) -> tuple[LinkConfig, dict[str, np.ndarray]]:
    """The verified link configuration and receiver weights of a model directory, without torch.

    Returns ``(config, {name: float32 array})`` with the shapes of
    :meth:`~aeradio.core.config.ModelConfig.receiver_parameter_shapes` (the scalar
    ``log_scale`` as shape ``()``). After :func:`verify_model_dir`, the file is read once,
    bounded by the size its checked header describes; those bytes are checked against
    model.json's sha256 and their header checked again, so what is used is what was
    verified. The safetensors format: an 8-byte little-endian header length, a JSON header
    (name -> dtype, shape, data_offsets), then the raw little-endian tensors.
    """
    meta = verify_model_dir(model_dir)
    config = _config_from_meta(meta, Path(model_dir))
    path = Path(model_dir) / RECEIVER_FILE
    limit = 8 + MAX_SAFETENSORS_HEADER_BYTES + 4 * config.model.receiver_parameters
    data = read_bounded(path, limit, what="receiver file", error=ModelFormatError)
    if hashlib.sha256(data).hexdigest() != meta["files"][RECEIVER_FILE]["sha256"]:
        raise ModelFormatError(f"{path} changed while it was loaded: its sha256 no longer matches model.json")
    start, ranges = _check_receiver_header(io.BytesIO(data), len(data), path, config)
    shapes = config.model.receiver_parameter_shapes()
    arrays = {
        name: np.frombuffer(data, dtype="<f4", count=(end - begin) // 4, offset=start + begin)
        .astype(np.float32)
        .reshape(shapes[name])
        for name, (begin, end) in ranges.items()
    }
    return config, arrays


#: Link-config sections the transmitted waveform depends on (hashed with the LUT).
WAVEFORM_SECTIONS = ("radio", "frame")
#: ... and the outer code, hashed only when present (so uncoded models keep their id).
OPTIONAL_WAVEFORM_SECTIONS = ("code",)


def hash32_from_meta(meta: dict[str, Any]) -> int:
    """32-bit id of the transmitter: sha256 of the LUT file and of the waveform config sections.

    The receiver weights are left out on purpose: a fine-tuned receiver (same LUT, same
    link config) keeps the id, so it accepts frames from the deployed transmitter.
    """
    config = meta.get("config") if isinstance(meta.get("config"), dict) else {}
    sections = {s: config.get(s) for s in WAVEFORM_SECTIONS}
    sections.update({s: config[s] for s in OPTIONAL_WAVEFORM_SECTIONS if config.get(s) is not None})
    waveform = json.dumps(sections, sort_keys=True)
    text = f"{LUT_FILE}:{meta['files'][LUT_FILE]['sha256']}\n{waveform}\n"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")


def model_hash32(model_dir: str | Path) -> int:
    """A 32-bit id of the transmitter for frame headers: changes with the LUT or the waveform."""
    return hash32_from_meta(verify_model_dir(model_dir))


def read_lut_grid(model_dir: str | Path) -> dict[str, Any] | None:
    """The DAC grid stored by :func:`save_model` (None for a float LUT)."""
    grid = _read_meta(Path(model_dir)).get(LUT_GRID_KEY)
    return grid if isinstance(grid, dict) else None


def read_extra_meta(model_dir: str | Path) -> dict[str, Any]:
    """The ``meta`` object stored by :func:`save_model` (training figures, etc.)."""
    meta = _read_meta(Path(model_dir)).get("meta", {})
    return meta if isinstance(meta, dict) else {}


def _is_model_dir(path: Path) -> bool:
    return (path / MODEL_JSON).is_file()


def check_output_dir(
    out_dir: str | Path, *, overwrite: bool = False, source: str | Path | None = None
) -> Path:
    """Raise ModelFormatError unless ``out_dir`` may receive a model: absent, empty, or (with
    ``overwrite``) a model directory. A non-empty directory that is not a model directory is
    never accepted, nor (ConfigError) the ``source`` model directory a command starts from."""
    out_dir = Path(out_dir)
    if source is not None and Path(source).resolve() == out_dir.resolve():
        raise ConfigError(f"--out {out_dir} is the --model directory; the original model is never replaced")
    if out_dir.exists() and not out_dir.is_dir():
        raise ModelFormatError(f"--out {out_dir} exists and is not a directory")
    check_parents(out_dir, "--out")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        if not _is_model_dir(out_dir):
            raise ModelFormatError(
                f"--out {out_dir} is a non-empty directory that is not a model directory; "
                "refusing to overwrite"
            )
        if not overwrite:
            raise ModelFormatError(
                f"--out {out_dir} is an existing model directory; pass --overwrite to replace it"
            )
    return out_dir


def _receiver_arrays(config: LinkConfig, state: dict[str, Any]) -> dict[str, np.ndarray]:
    """The state dict as contiguous float32 arrays (at least 1-d), checked against the config's receiver."""
    arrays = {
        k: np.ascontiguousarray(np.asarray(v.detach().cpu() if hasattr(v, "detach") else v, np.float32))
        for k, v in state.items()
    }
    expected = stored_receiver_shapes(config)
    got = {k: a.shape for k, a in arrays.items()}
    if got != expected:
        odd = sorted(set(got.items()) ^ set(expected.items()))
        name, shape = odd[0]
        raise ModelFormatError(f"receiver weights do not match the config's receiver: {name} {shape}")
    return arrays


def save_model(
    out_dir: str | Path,
    config: LinkConfig,
    lut: np.ndarray,
    receiver_state_dict: dict[str, Any],
    extra_meta: dict[str, Any] | None = None,
    lut_grid: dict[str, Any] | None = None,
    *,
    overwrite: bool = False,
) -> Path:
    """Write a model directory atomically; returns its path.

    ``lut``: ``[M, n]`` complex, finite, mean energy 1 per complex use.
    ``receiver_state_dict``: name -> tensor or array of the config's receiver (stored as
    float32 safetensors). ``lut_grid``: with ``config.model.dac_bits``, the DAC grid
    (``step`` at least) that ``lut`` is on, checked and stored in model.json. An existing
    model directory is replaced only with ``overwrite``; a non-empty directory without
    ``model.json`` is never replaced. What is written is what :func:`verify_model_dir`
    accepts: ModelFormatError otherwise, before writing.
    """
    from safetensors.numpy import save_file

    out_dir = check_output_dir(out_dir, overwrite=overwrite)
    lut = np.asarray(lut)
    expected = (config.model.M, config.model.n)
    if lut.shape != expected:
        raise ModelFormatError(f"LUT must have shape {expected}, got {lut.shape}")
    check_lut(lut, "save_model")
    if bool(config.model.dac_bits) != (lut_grid is not None):
        raise ModelFormatError(f"a DAC grid goes with model.dac_bits > 0 (got {config.model.dac_bits})")
    if lut_grid is not None:
        check_lut_grid(lut.astype(SAMPLE_DTYPE), config.model.dac_bits, lut_grid.get("step"), "LUT")
    arrays = _receiver_arrays(config, receiver_state_dict)

    with staged_directory(out_dir, overwrite=overwrite) as tmp:
        np.save(tmp / LUT_FILE, lut.astype(SAMPLE_DTYPE), allow_pickle=False)
        save_file(arrays, str(tmp / RECEIVER_FILE), metadata={"format": "aeradio-receiver"})
        meta = {
            "format_version": FORMAT_VERSION,
            "k": config.model.k,
            "n": config.model.n,
            "M": config.model.M,
            "receiver_output": receiver_output(config),
            "config": config.to_dict(),
            "files": {name: {"sha256": sha256_file(tmp / name)} for name in WEIGHT_FILES},
            "meta": extra_meta or {},
        }
        if config.code is not None:
            meta["code"] = config.to_dict()["code"]
        if bit_llrs(config) is not None:
            meta["bit_llrs"] = bit_llrs(config)
        if lut_grid is not None:
            meta[LUT_GRID_KEY] = lut_grid
        meta["model_hash32"] = f"{hash32_from_meta(meta):08x}"
        text = (json.dumps(meta, indent=2) + "\n").encode("utf-8")
        if len(text) > MAX_MODEL_JSON_BYTES:
            raise ModelFormatError(
                f"{MODEL_JSON} would be {len(text)} bytes, more than the {MAX_MODEL_JSON_BYTES} a loader "
                "reads (extra_meta too large)"
            )
        (tmp / MODEL_JSON).write_bytes(text)
    return out_dir


@contextmanager
def staged_directory(out_dir: Path, *, overwrite: bool) -> Iterator[Path]:
    """A temporary sibling of ``out_dir`` to fill: renamed into place
    (:func:`swap_into_place`) when the block ends, deleted when it raises, so ``out_dir`` is
    either the old directory or the whole new one, never a part."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        yield tmp
        publish_tree(tmp)
        swap_into_place(tmp, out_dir, overwrite=overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def swap_into_place(tmp: Path, out_dir: Path, *, overwrite: bool) -> None:
    """Rename ``tmp`` to ``out_dir``. With ``overwrite`` an old model directory is moved
    aside, then deleted; without, only an absent or empty ``out_dir`` is replaced (also when
    a model appeared there while this one was written)."""
    if not overwrite:
        try:
            os.rename(tmp, out_dir)  # POSIX: replaces an empty directory, never a non-empty one
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                raise ModelFormatError(
                    f"--out {out_dir} appeared while the model was written; refusing to overwrite it"
                ) from None
            raise
        return
    old = None
    if out_dir.is_dir():
        old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
        os.rename(out_dir, old)
    try:
        os.rename(tmp, out_dir)
    except OSError:
        if old is not None:
            os.rename(old, out_dir)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


#: Every file of a model directory.
MODEL_FILES = (MODEL_JSON, *WEIGHT_FILES)


def read_model_files(model_dir: str | Path) -> dict[str, bytes]:
    """A verified model directory's files as bytes, by name (to send it to another process
    or machine, which writes it back with :func:`write_model_files`)."""
    model_dir = Path(model_dir)
    verify_model_dir(model_dir)  # bounds every file's size by the config before it is read
    try:
        return {name: (model_dir / name).read_bytes() for name in MODEL_FILES}
    except OSError as exc:
        raise ModelFormatError(f"cannot read {model_dir}: {exc.strerror or exc}") from None


def write_model_files(out_dir: str | Path, files: dict[str, bytes]) -> Path:
    """Write the files of :func:`read_model_files` as the model directory ``out_dir``, atomically.

    They are verified as a model directory (:func:`verify_model_dir`) before the directory
    is renamed into place; an existing non-empty ``out_dir`` is never replaced.
    """
    out_dir = check_output_dir(out_dir)
    if set(files) != set(MODEL_FILES) or not all(isinstance(v, bytes) for v in files.values()):
        raise ModelFormatError(
            f"a model must be the files {', '.join(MODEL_FILES)} as bytes, got {short_repr(sorted(files))}"
        )
    if len(files[MODEL_JSON]) > MAX_MODEL_JSON_BYTES:
        raise ModelFormatError(f"{MODEL_JSON} is larger than {MAX_MODEL_JSON_BYTES} bytes, the most allowed")
    with staged_directory(out_dir, overwrite=False) as tmp:
        for name in MODEL_FILES:
            (tmp / name).write_bytes(files[name])
        verify_model_dir(tmp)
    return out_dir
