"""Model files are validated and size-bounded before anything is allocated from them.

Each test forges a model directory consistently (the sha256 in model.json updated), as an
attacker or a broken tool would, so only the format checks stand between the file and the
allocation.
"""

import io
import json
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from aeradio.core import model_dir as model_io
from aeradio.core.config import (
    HEADER_SYMBOLS_BOUND,
    MAX_FRAME_SAMPLES,
    MAX_LUT_SYMBOLS,
    MAX_RECEIVER_PARAMETERS,
    LinkConfig,
)
from aeradio.core.errors import ConfigError, ModelFormatError
from aeradio.learning.inference import ReceiverRuntime, load_receiver
from aeradio.learning.receiver import NeuralReceiver

CFG = LinkConfig.from_dict({"model": {"k": 2, "n": 1, "hidden_width": 4, "hidden_layers": 1}}, name="tiny")
QPSK = np.array([[1], [1j], [-1], [-1j]], dtype=np.complex64)
#: Bytes a loader may allocate while refusing a tiny forged model (Python objects, headers,
#: lazily imported modules), against the gigabytes to terabytes the forgeries declare.
REFUSAL_PEAK_BYTES = 16 << 20


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return model_io.save_model(tmp_path / "m", CFG, QPSK, NeuralReceiver.from_config(CFG.model).state_dict())


def forge(model: Path, name: str, data: bytes) -> None:
    """Replace ``name`` with ``data`` and record its sha256 in model.json (a consistent forgery)."""
    (model / name).write_bytes(data)
    meta_path = model / "model.json"
    meta = json.loads(meta_path.read_text())
    meta["files"][name]["sha256"] = model_io.sha256_file(model / name)
    meta_path.write_text(json.dumps(meta))


def forge_config(directory: Path, **sections: dict) -> None:
    meta_path = directory / "model.json"
    meta = json.loads(meta_path.read_text())
    for section, values in sections.items():
        meta["config"][section].update(values)
    meta_path.write_text(json.dumps(meta))


def npy(header: dict, data: bytes = b"", version: tuple[int, int] = (1, 0)) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header) if version == (
        1,
        0,
    ) else np.lib.format.write_array_header_2_0(buf, header)
    return buf.getvalue() + data


def refused_within(limit: int, call, match: str) -> None:
    """``call()`` raises ModelFormatError matching ``match`` and allocates < ``limit`` bytes."""
    tracemalloc.start()
    try:
        with pytest.raises(ModelFormatError, match=match):
            call()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < limit, peak


# --- bounds in the config itself ------------------------------------------------------


def test_config_bounds_the_receiver_the_lut_and_the_frame() -> None:
    # The receiver that made rx allocate 6.1 GB: within every per-field range.
    with pytest.raises(ConfigError, match=rf"at most {MAX_RECEIVER_PARAMETERS} parameters, got 604274689"):
        LinkConfig.from_dict({"model": {"k": 16, "n": 1, "hidden_width": 8192}})
    with pytest.raises(ConfigError, match=rf"LUT \(M 65536 x n 64\) must hold at most {MAX_LUT_SYMBOLS}"):
        LinkConfig.from_dict({"model": {"k": 16, "n": 64, "hidden_width": 1, "hidden_layers": 1}})
    # The largest frame every field allowed: 89 M samples (31.5 GiB for `tx --frames 64`).
    biggest = {
        "model": {"k": 1, "n": 64},
        "radio": {"samples_per_symbol": 64},
        "frame": {"blocks_per_frame": 4096, "pilot_spacing_symbols": 2, "gap_symbols": 1_000_000},
    }
    with pytest.raises(ConfigError, match=rf"at most {MAX_FRAME_SAMPLES} samples, got 89188864"):
        LinkConfig.from_dict(biggest)
    # What configs/ and the defaults use is far inside.
    default = LinkConfig.from_dict({"model": {"k": 8, "n": 7}})
    assert default.model.receiver_parameters < MAX_RECEIVER_PARAMETERS // 100
    assert default.frame_samples_bound < MAX_FRAME_SAMPLES // 1000


def test_frame_samples_bound_is_an_upper_bound_of_the_tx_chain() -> None:
    from aeradio.dsp.framing import HEADER_SYMBOLS
    from aeradio.flowgraphs.tx_chain import TxChain

    for frame, radio, n in [
        ({}, {}, 7),
        ({"blocks_per_frame": 5, "gap_symbols": 0}, {"samples_per_symbol": 8}, 3),
        ({"pilot_spacing_symbols": 2}, {"rrc_span_symbols": 16}, 1),
    ]:
        cfg = LinkConfig.from_dict({"model": {"k": 2, "n": n}, "frame": frame, "radio": radio})
        lut = np.ones((4, n), np.complex64)
        tx = TxChain(cfg, lut, 0)
        two = len(tx.test_pattern(np.arange(2), seed=0))
        one_frame = two - tx.frame_samples  # the stream of one frame, its gap and the filter tail
        header_allowance = HEADER_SYMBOLS_BOUND - HEADER_SYMBOLS
        assert cfg.frame_samples_bound == one_frame + header_allowance * cfg.radio.samples_per_symbol


def test_receiver_shapes_mirror_the_neural_receiver() -> None:
    for model in (
        {"k": 3, "n": 2, "hidden_width": 8, "hidden_layers": 1},
        {"k": 5, "n": 7, "hidden_width": 16, "hidden_layers": 3, "noise_input": True},
    ):
        cfg = LinkConfig.from_dict({"model": model}).model
        state = NeuralReceiver.from_config(cfg).state_dict()
        assert {k: tuple(v.shape) for k, v in state.items()} == cfg.receiver_parameter_shapes()
        assert sum(v.numel() for v in state.values()) == cfg.receiver_parameters


def test_an_oversized_config_in_model_json_is_refused_before_the_receiver_is_built(model: Path) -> None:
    forge_config(model, model={"k": 16, "hidden_width": 8192})
    for load in (model_io.load_link_config, load_receiver, ReceiverRuntime.load):
        refused_within(REFUSAL_PEAK_BYTES, lambda load=load: load(model), "invalid config: .*parameters")


def test_model_json_k_n_m_must_agree_with_its_config(model: Path) -> None:
    meta = json.loads((model / "model.json").read_text())
    meta["M"] = 8
    (model / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelFormatError, match="M is 8 but the config says 4"):
        model_io.load_link_config(model)


# --- model.json ------------------------------------------------------------------------


def test_model_json_size_and_nesting_are_bounded(model: Path) -> None:
    path = model / "model.json"
    path.write_bytes(b" " * (model_io.MAX_MODEL_JSON_BYTES + 1))
    refused_within(
        REFUSAL_PEAK_BYTES + model_io.MAX_MODEL_JSON_BYTES,
        lambda: model_io.load_link_config(model),
        f"larger than {model_io.MAX_MODEL_JSON_BYTES} bytes",
    )
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ModelFormatError, match="is not JSON: nested too deeply"):
        model_io.load_link_config(model)
    path.write_text('{"format_version": 1' + "1" * 5000 + "}")  # an int Python will not convert
    with pytest.raises(ModelFormatError, match="is not JSON"):
        model_io.load_link_config(model)


def test_save_refuses_to_write_a_model_json_the_loader_would_refuse(tmp_path: Path) -> None:
    rx = NeuralReceiver.from_config(CFG.model).state_dict()
    with pytest.raises(ModelFormatError, match="model.json would be .* bytes"):
        model_io.save_model(
            tmp_path / "m", CFG, QPSK, rx, extra_meta={"x": "y" * model_io.MAX_MODEL_JSON_BYTES}
        )
    assert not (tmp_path / "m").exists() and list(tmp_path.iterdir()) == []


# --- tx_lut.npy ---------------------------------------------------------------------------


def test_a_forged_lut_shape_is_refused_before_allocating(model: Path) -> None:
    # The header that died with "Unable to allocate 13.0 TiB".
    forge(
        model,
        "tx_lut.npy",
        npy({"descr": "<c8", "fortran_order": False, "shape": (1 << 20, 1 << 20)}, b"\0" * 64),
    )
    refused_within(
        REFUSAL_PEAK_BYTES,
        lambda: model_io.load_lut(model),
        r"must be complex64 of shape \(4, 1\) in C order, got complex64 of shape \(1048576, 1048576\)",
    )
    # The check is part of verification, so rx and tx refuse as well.
    with pytest.raises(ModelFormatError, match="must be complex64"):
        model_io.model_hash32(model)


@pytest.mark.parametrize(
    "data, message",
    [
        (
            npy(
                {"descr": "<c16", "fortran_order": False, "shape": (4, 1)},
                QPSK.astype(np.complex128).tobytes(),
            ),
            "got complex128",
        ),
        (npy({"descr": "<c8", "fortran_order": True, "shape": (4, 1)}, QPSK.tobytes()), "in Fortran order"),
        (
            npy({"descr": "<c8", "fortran_order": False, "shape": (4, 1)}, QPSK.tobytes()[:-8]),
            "holds 24 bytes of data, its header says 32",
        ),
        (
            npy({"descr": "<c8", "fortran_order": False, "shape": (4, 1)}, QPSK.tobytes() + b"\0" * 8),
            "holds 40",
        ),
        (npy({"descr": "|O", "fortran_order": False, "shape": (4, 1)}, b"\0" * 32), "got object"),
        (b"\x93NUMPY\x03\x00" + b"\0" * 40, "version must be 1.0 or 2.0"),
        (b"PK\x03\x04 a zip, not an npy", "not a numpy array file"),
        (b"\x93NUMPY\x01\x00\x10\x00{'descr': [}" + b" " * 4, "not a numpy array file"),
    ],
)
def test_lut_headers_are_checked_against_the_config(model: Path, data: bytes, message: str) -> None:
    forge(model, "tx_lut.npy", data)
    with pytest.raises(ModelFormatError, match=message):
        model_io.load_lut(model)


def test_a_version_2_header_is_read(model: Path) -> None:
    forge(
        model,
        "tx_lut.npy",
        npy({"descr": "<c8", "fortran_order": False, "shape": (4, 1)}, QPSK.tobytes(), (2, 0)),
    )
    assert np.array_equal(model_io.load_lut(model), QPSK)


@pytest.mark.parametrize(
    "lut, message",
    [
        (np.array([[np.nan], [1], [-1], [1j]], np.complex64), "must be finite, got 1 non-finite"),
        (np.array([[1e30], [1], [-1], [1j]], np.complex64), "mean energy per complex use must be 1"),
        (
            np.array([[1e3], [1], [-1], [1j]], np.complex64),
            r"mean energy per complex use must be 1 \+- 0.0001",
        ),
        (QPSK * np.complex64(0.5), "got 0.25"),
    ],
)
def test_a_lut_that_is_not_finite_or_not_normalized_is_refused(
    model: Path, lut: np.ndarray, message: str
) -> None:
    buf = io.BytesIO()
    np.save(buf, lut)
    forge(model, "tx_lut.npy", buf.getvalue())
    with pytest.raises(ModelFormatError, match=message):
        model_io.load_lut(model)
    with pytest.raises(ModelFormatError, match=message):  # and it is never written
        model_io.save_model(
            model.parent / "other", CFG, lut, NeuralReceiver.from_config(CFG.model).state_dict()
        )


# --- receiver.safetensors ------------------------------------------------------------------


def _safetensors(header: dict, data: bytes) -> bytes:
    text = json.dumps(header).encode()
    return len(text).to_bytes(8, "little") + text + data


def test_safetensors_header_is_checked_against_the_config(model: Path) -> None:
    shapes = model_io.stored_receiver_shapes(CFG)
    header, offset = {}, 0
    for name, shape in shapes.items():
        size = int(np.prod(shape)) * 4
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    # A consistent file loads.
    forge(model, "receiver.safetensors", _safetensors(header, b"\0" * offset))
    assert load_receiver(model).out.weight.shape == (4, 4)
    # A tensor of another shape (a huge one that the file does not hold) is refused first.
    big = dict(
        header, **{"out.weight": {"dtype": "F32", "shape": [1 << 20, 1 << 20], "data_offsets": [0, 16]}}
    )
    forge(model, "receiver.safetensors", _safetensors(big, b"\0" * offset))
    refused_within(
        REFUSAL_PEAK_BYTES, lambda: load_receiver(model), r"tensor out.weight must be F32 of shape \[4, 4\]"
    )
    # Another dtype, a missing or extra tensor, a short file.
    f64 = dict(header, **{"out.bias": dict(header["out.bias"], dtype="F64")})
    forge(model, "receiver.safetensors", _safetensors(f64, b"\0" * offset))
    with pytest.raises(ModelFormatError, match="tensor out.bias must be F32"):
        load_receiver(model)
    extra = dict(header, **{"evil": {"dtype": "F32", "shape": [1], "data_offsets": [offset, offset + 4]}})
    forge(model, "receiver.safetensors", _safetensors(extra, b"\0" * (offset + 4)))
    with pytest.raises(ModelFormatError, match="'evil' is unexpected"):
        load_receiver(model)
    missing = {k: v for k, v in header.items() if k != "log_scale"}
    forge(model, "receiver.safetensors", _safetensors(missing, b"\0" * offset))
    with pytest.raises(ModelFormatError, match="'log_scale' is missing"):
        load_receiver(model)
    forge(model, "receiver.safetensors", _safetensors(header, b"\0" * (offset - 4)))
    with pytest.raises(ModelFormatError, match="its header describes"):
        load_receiver(model)


def test_save_refuses_weights_of_another_receiver(tmp_path: Path) -> None:
    other = LinkConfig.from_dict({"model": {"k": 2, "n": 1, "hidden_width": 5, "hidden_layers": 1}}).model
    with pytest.raises(ModelFormatError, match="receiver weights do not match"):
        model_io.save_model(tmp_path / "m", CFG, QPSK, NeuralReceiver.from_config(other).state_dict())
