"""Fuzzing the model-directory loaders: any model.json, tx_lut.npy header or safetensors
header raises ModelFormatError (ConfigError for a bare config) or loads, never another
exception, and the bound checks come before any large allocation."""

import dataclasses
import json
import math
import shutil
import tempfile
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aeradio.core import model_dir as model_io
from aeradio.core.config import (
    _SECTIONS,
    MAX_FRAME_SAMPLES,
    MAX_LUT_SYMBOLS,
    MAX_RECEIVER_PARAMETERS,
    LinkConfig,
)
from aeradio.core.errors import ConfigError, ModelFormatError
from aeradio.learning.inference import ReceiverRuntime
from aeradio.learning.receiver import NeuralReceiver
from tests.strategies import json_values

CFG = LinkConfig.from_dict({"model": {"k": 2, "n": 1, "hidden_width": 4, "hidden_layers": 1}}, name="tiny")
QPSK = np.array([[1], [1j], [-1], [-1j]], dtype=np.complex64)
FUZZ = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
#: Peak bytes (tracemalloc) allowed while loading a forged LUT of the tiny model (hashing
#: reads 1 MiB chunks): the files declare up to 2^70 elements.
LUT_PEAK_BYTES = 4 << 20

#: Values at and beyond the edges of every field's range, and of the wrong type.
extreme = st.one_of(
    st.sampled_from(
        [
            0,
            -1,
            1,
            2,
            16,
            17,
            64,
            65,
            8192,
            2**31,
            2**63,
            2**64,
            10**30,
            10**400,
            1e308,
            -1e308,
            math.inf,
            -math.inf,
            math.nan,
            1e-320,
            "",
            "awgn",
            "x" * 300,
            "y" * 20_000,
            True,
            False,
            None,
            [],
            {},
            [[[[1]]]],
        ]
    ),
    st.integers(-(10**6), 10**6),
    st.floats(),
)


def _section_overrides(name: str, cls: type) -> st.SearchStrategy:
    fields = [f.name for f in dataclasses.fields(cls)]
    return st.dictionaries(st.sampled_from(fields), extreme, max_size=len(fields))


#: A valid-looking config: every section present, some fields overridden with extremes.
extreme_configs = st.fixed_dictionaries(
    {name: _section_overrides(name, cls) for name, cls in _SECTIONS.items()}
)


@pytest.fixture(scope="module")
def base_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rx = NeuralReceiver.from_config(CFG.model)
    return model_io.save_model(tmp_path_factory.mktemp("fuzz") / "m", CFG, QPSK, rx.state_dict())


def _copy(base: Path) -> Path:
    out = Path(tempfile.mkdtemp(prefix="aeradio-fuzz-")) / "m"
    shutil.copytree(base, out)
    return out


def _forge(model: Path, name: str, data: bytes) -> None:
    (model / name).write_bytes(data)
    meta = json.loads((model / "model.json").read_text())
    meta["files"][name]["sha256"] = model_io.sha256_file(model / name)
    (model / "model.json").write_text(json.dumps(meta))


def _load_everything(model: Path) -> None:
    """Every loader of a model directory: each returns or raises ModelFormatError."""
    for load in (
        model_io.load_link_config,
        model_io.load_lut,
        model_io.model_hash32,
        model_io.read_extra_meta,
        model_io.load_receiver_arrays,  # the torch-free reader of the GNU Radio blocks
        ReceiverRuntime.load,
    ):
        try:
            load(model)
        except ModelFormatError as exc:
            assert "\n" not in str(exc) and len(str(exc)) < 1000


def _within_bounds(cfg: LinkConfig) -> bool:
    return (
        cfg.model.M * cfg.model.n <= MAX_LUT_SYMBOLS
        and cfg.model.receiver_parameters <= MAX_RECEIVER_PARAMETERS
        and cfg.frame_samples_bound <= MAX_FRAME_SAMPLES
    )


@FUZZ
@given(doc=json_values | st.binary(max_size=200).map(lambda b: b.decode("latin-1")))
def test_any_model_json(base_model: Path, doc: object) -> None:
    model = _copy(base_model)
    try:
        text = doc if isinstance(doc, str) else json.dumps(doc)
        (model / "model.json").write_text(text, encoding="utf-8", errors="surrogatepass")
        _load_everything(model)
    finally:
        shutil.rmtree(model.parent)


@FUZZ
@given(
    config=extreme_configs, keys=st.dictionaries(st.sampled_from(["k", "n", "M", "format_version"]), extreme)
)
def test_valid_looking_model_json_with_extreme_values(base_model: Path, config: dict, keys: dict) -> None:
    model = _copy(base_model)
    try:
        meta = json.loads((model / "model.json").read_text())
        for section, values in config.items():
            meta["config"][section].update(values)
        meta.update(keys)
        (model / "model.json").write_text(json.dumps(meta))
        try:
            cfg = model_io.load_link_config(model)
        except ModelFormatError:
            pass
        else:
            assert _within_bounds(cfg)
        _load_everything(model)
    finally:
        shutil.rmtree(model.parent)


@FUZZ
@given(config=extreme_configs | json_values)
def test_link_config_from_dict(config: object) -> None:
    try:
        cfg = LinkConfig.from_dict(config)
    except ConfigError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 1000
    else:
        assert _within_bounds(cfg)


shapes = st.one_of(
    st.just((4, 1)),
    st.lists(st.integers(-(2**70), 2**70), max_size=4).map(tuple),
    st.lists(st.integers(0, 8), max_size=3).map(tuple),
    extreme,
)
descrs = st.one_of(
    st.sampled_from(
        [
            "<c8",
            ">c8",
            "<c16",
            "<f4",
            "|O",
            "<i8",
            "V8",
            "|S10",
            "<U3",
            "bogus",
            [("a", "<c8")],
            [("re", "<f4"), ("im", "<f4")],
        ]
    ),
    extreme,
)
npy_headers = st.fixed_dictionaries(
    {"descr": descrs, "fortran_order": st.booleans() | extreme, "shape": shapes}
)


def _npy(header: dict, version: int) -> bytes:
    """An .npy header of ``header``'s repr (cut to what a version-1 length field holds)."""
    text = "{" + "".join(f"'{k}': {v!r}, " for k, v in header.items()) + "}"
    raw = text.encode("latin-1", errors="replace")[:60_000]
    raw += b" " * (-(len(raw) + 11) % 64) + b"\n"
    length = len(raw).to_bytes(2 if version == 1 else 4, "little")
    return b"\x93NUMPY" + bytes([version, 0]) + length + raw


@FUZZ
@given(
    header=npy_headers | st.dictionaries(st.text(max_size=8), json_values, max_size=4),
    version=st.sampled_from([1, 2, 3]),
    data=st.binary(max_size=64) | st.just(QPSK.tobytes()),
    garbage=st.none() | st.binary(max_size=120),
)
def test_any_lut_file(
    base_model: Path, header: dict, version: int, data: bytes, garbage: bytes | None
) -> None:
    model = _copy(base_model)
    try:
        _forge(model, "tx_lut.npy", garbage if garbage is not None else _npy(header, version) + data)
        tracemalloc.start()
        try:
            try:
                lut = model_io.load_lut(model)
            except ModelFormatError:
                pass
            else:
                assert lut.shape == (4, 1) and np.all(np.isfinite(lut))
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < LUT_PEAK_BYTES
    finally:
        shutil.rmtree(model.parent)


def _tensor_entries() -> st.SearchStrategy:
    shapes = model_io.stored_receiver_shapes(CFG)
    entry = st.fixed_dictionaries(
        {
            "dtype": st.sampled_from(["F32", "F64", "F16", "I64", "bogus"]) | extreme,
            "shape": st.lists(st.integers(-(2**40), 2**40), max_size=3)
            | st.sampled_from([list(s) for s in shapes.values()])
            | extreme,
            "data_offsets": st.lists(st.integers(-(2**40), 2**40), max_size=3) | extreme,
        }
    )
    names = st.sampled_from([*shapes, "__metadata__", "evil"])
    return st.dictionaries(names, entry | json_values, max_size=len(shapes) + 2)


@FUZZ
@given(header=_tensor_entries() | json_values, data=st.binary(max_size=200))
def test_any_safetensors_header(base_model: Path, header: object, data: bytes) -> None:
    model = _copy(base_model)
    try:
        text = json.dumps(header).encode()
        _forge(model, "receiver.safetensors", len(text).to_bytes(8, "little") + text + data)
        _load_everything(model)
    finally:
        shutil.rmtree(model.parent)
