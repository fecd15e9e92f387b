"""The model directory of DESIGN.md, readable without torch.

``DIR/model.json``: format version, the link configuration (``LinkConfig.to_dict()``),
k, n, M, and the sha256 of each weight file; ``DIR/tx_lut.npy``: the LUT ``[M, n]``
complex64; ``DIR/receiver.safetensors``: the receiver weights. No pickle anywhere:
``np.load(allow_pickle=False)`` and safetensors. A model with ``[model] dac_bits`` also
stores its LUT's DAC grid in model.json (``lut_grid``: ``step`` and measured figures), and
every load checks that each LUT value is ``float32(q * step)`` with ``|q| <= 2^(bits-1) - 1``.

Writes are atomic: the files go to a temporary sibling directory that is renamed into
place, so a crash never leaves a half-written model. An existing model directory is
replaced; a non-empty directory that is not a model directory is never touched.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import struct
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from aeradio.core.config import LinkConfig, dac_max_code
from aeradio.core.constants import SAMPLE_DTYPE
from aeradio.core.errors import AeradioError, ModelFormatError

FORMAT_VERSION = 1
MODEL_JSON = "model.json"
LUT_FILE = "tx_lut.npy"
RECEIVER_FILE = "receiver.safetensors"
WEIGHT_FILES = (LUT_FILE, RECEIVER_FILE)
#: Tolerance on the LUT's mean energy per complex use (float32 rounding).
LUT_ENERGY_TOLERANCE = 1e-4
#: model.json key of a quantized LUT's DAC grid (``[model] dac_bits``): its ``step`` and the
#: measured figures of ``aeradio.learning.transmitter.Transmitter.lut_grid``.
LUT_GRID_KEY = "lut_grid"
#: Upper bound on a safetensors JSON header (the format's own limit is 100 MB).
_MAX_SAFETENSORS_HEADER = 100_000_000


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
        raise ModelFormatError(f"model directory {model_dir} does not exist")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelFormatError(f"{path} is missing: {model_dir} is not a model directory") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFormatError(f"{path} is not readable JSON: {exc}") from None
    if not isinstance(meta, dict):
        raise ModelFormatError(f"{path} must hold a JSON object")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelFormatError(f"{path}: format_version must be {FORMAT_VERSION}, got {version!r}")
    files = meta.get("files")
    if not isinstance(files, dict) or set(files) != set(WEIGHT_FILES):
        raise ModelFormatError(f"{path}: 'files' must list the sha256 of {', '.join(WEIGHT_FILES)}")
    return meta


def _check_safetensors(path: Path) -> None:
    """Raise unless ``path`` has a safetensors header (u64 length + JSON object)."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            size = struct.unpack("<Q", head)[0] if len(head) == 8 else -1
            ok = 2 <= size <= _MAX_SAFETENSORS_HEADER
            header = json.loads(f.read(size)) if ok else None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        header = None
    if not isinstance(header, dict):
        raise ModelFormatError(f"{path} is not a safetensors file")


def verify_model_dir(model_dir: str | Path) -> dict[str, Any]:
    """Check model.json, the format version and every file's sha256; returns model.json.

    Raises :class:`ModelFormatError` with one line naming the file at fault.
    """
    model_dir = Path(model_dir)
    meta = _read_meta(model_dir)
    for name in WEIGHT_FILES:
        path = model_dir / name
        if not path.is_file():
            raise ModelFormatError(f"{path} is missing")
        expected = meta["files"][name].get("sha256") if isinstance(meta["files"][name], dict) else None
        actual = sha256_file(path)
        if actual != expected:
            raise ModelFormatError(
                f"{path} was altered: sha256 {actual[:16]}... does not match model.json "
                f"({str(expected)[:16]}...)"
            )
    _check_safetensors(model_dir / RECEIVER_FILE)
    return meta


def load_link_config(model_dir: str | Path) -> LinkConfig:
    """The verified link configuration of a model directory."""
    meta = verify_model_dir(model_dir)
    try:
        return LinkConfig.from_dict(meta.get("config"))
    except AeradioError as exc:
        raise ModelFormatError(f"{Path(model_dir) / MODEL_JSON}: invalid config: {exc}") from None


def load_lut(model_dir: str | Path) -> np.ndarray:
    """The verified transmitter LUT ``[M, n]`` complex64 (mean energy 1 per complex use)."""
    cfg = load_link_config(model_dir)
    path = Path(model_dir) / LUT_FILE
    try:
        lut = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ModelFormatError(f"{path} is not a numpy array file: {exc}") from None
    expected = (cfg.model.M, cfg.model.n)
    if lut.dtype != SAMPLE_DTYPE or lut.shape != expected:
        raise ModelFormatError(f"{path} must be complex64 of shape {expected}, got {lut.dtype} {lut.shape}")
    if cfg.model.dac_bits:
        check_lut_grid(lut, cfg.model.dac_bits, (read_lut_grid(model_dir) or {}).get("step"), path)
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


#: Link-config sections the transmitted waveform depends on (hashed with the LUT).
WAVEFORM_SECTIONS = ("radio", "frame")


def hash32_from_meta(meta: dict[str, Any]) -> int:
    """32-bit id of the transmitter: sha256 of the LUT file and of the waveform config sections.

    The receiver weights are left out on purpose: a fine-tuned receiver (same LUT, same
    link config) keeps the id, so it accepts frames from the deployed transmitter.
    """
    config = meta.get("config") if isinstance(meta.get("config"), dict) else {}
    waveform = json.dumps({s: config.get(s) for s in WAVEFORM_SECTIONS}, sort_keys=True)
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


def check_output_dir(out_dir: str | Path) -> Path:
    """Raise ModelFormatError unless ``out_dir`` may receive a model (absent, empty, or a model dir)."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ModelFormatError(f"--out {out_dir} exists and is not a directory")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not _is_model_dir(out_dir):
        raise ModelFormatError(
            f"--out {out_dir} is a non-empty directory that is not a model directory; refusing to overwrite"
        )
    return out_dir


def save_model(
    out_dir: str | Path,
    config: LinkConfig,
    lut: np.ndarray,
    receiver_state_dict: dict[str, Any],
    extra_meta: dict[str, Any] | None = None,
    lut_grid: dict[str, Any] | None = None,
) -> Path:
    """Write a model directory atomically; returns its path.

    ``lut``: ``[M, n]`` complex, mean energy 1 per complex use. ``receiver_state_dict``:
    name -> tensor or array (stored as float32 safetensors). ``lut_grid``: with
    ``config.model.dac_bits``, the DAC grid (``step`` at least) that ``lut`` is on, checked
    and stored in model.json. An existing model directory is replaced; a non-empty
    directory without ``model.json`` raises ModelFormatError.
    """
    from safetensors.numpy import save_file

    out_dir = check_output_dir(out_dir)
    lut = np.asarray(lut)
    expected = (config.model.M, config.model.n)
    if lut.shape != expected:
        raise ModelFormatError(f"LUT must have shape {expected}, got {lut.shape}")
    energy = float(np.mean(np.abs(lut.astype(np.complex128)) ** 2))
    if not math.isclose(energy, 1.0, abs_tol=LUT_ENERGY_TOLERANCE):
        raise ModelFormatError(f"LUT mean energy per complex use must be 1, got {energy:.6f}")
    if bool(config.model.dac_bits) != (lut_grid is not None):
        raise ModelFormatError(f"a DAC grid goes with model.dac_bits > 0 (got {config.model.dac_bits})")
    if lut_grid is not None:
        check_lut_grid(lut.astype(SAMPLE_DTYPE), config.model.dac_bits, lut_grid.get("step"), "LUT")

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        np.save(tmp / LUT_FILE, lut.astype(SAMPLE_DTYPE), allow_pickle=False)
        arrays = {
            k: np.ascontiguousarray(np.asarray(v.detach().cpu() if hasattr(v, "detach") else v, np.float32))
            for k, v in receiver_state_dict.items()
        }
        save_file(arrays, str(tmp / RECEIVER_FILE), metadata={"format": "aeradio-receiver"})
        meta = {
            "format_version": FORMAT_VERSION,
            "k": config.model.k,
            "n": config.model.n,
            "M": config.model.M,
            "config": config.to_dict(),
            "files": {name: {"sha256": sha256_file(tmp / name)} for name in WEIGHT_FILES},
            "meta": extra_meta or {},
        }
        if lut_grid is not None:
            meta[LUT_GRID_KEY] = lut_grid
        meta["model_hash32"] = f"{hash32_from_meta(meta):08x}"
        (tmp / MODEL_JSON).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        _swap_into_place(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def _swap_into_place(tmp: Path, out_dir: Path) -> None:
    """Rename ``tmp`` to ``out_dir``; an old model directory is moved aside, then deleted."""
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
