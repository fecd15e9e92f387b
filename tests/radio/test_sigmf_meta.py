"""The one SigMF metadata module: keys, builder, reader; every reader error is a CaptureFormatError."""

import json
import os
import signal
from pathlib import Path

import pytest
import sigmf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aeradio.core.errors import CaptureFormatError
from aeradio.radio import sigmf_meta as sm
from aeradio.radio.sigmf_meta import (
    AERADIO_SEED,
    ANNOTATIONS,
    CAPTURES,
    CORE_SAMPLE_RATE,
    GLOBAL,
    MAX_METADATA_BYTES,
    annotation,
    build_metadata,
    capture_segment,
    check_metadata,
    read_metadata,
)


def _valid(**extra_global: object) -> dict:
    return build_metadata(
        sample_rate_hz=1e6, hw="test",
        captures=[capture_segment(0, datetime_utc=None, frequency_hz=915e6, global_index=0)],
        annotations=[annotation(5, 10, "frame 1", seq=1, cfo_hz=3.0)], extra_global=extra_global,
    )


def _file(tmp_path: Path, doc: object, name: str = "r.sigmf-meta") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


def test_core_keys_are_the_sigmf_librarys() -> None:
    names = {k: v for k, v in vars(sm).items() if k.startswith("CORE_")}
    library = {v for k, v in vars(sigmf.keys).items() if k.endswith("_KEY")}
    assert len(names) >= 14 and set(names.values()) <= library


def test_built_metadata_declares_the_extension_and_validates_with_sigmf() -> None:
    meta = _valid(**{AERADIO_SEED: 3})
    sigmf.validate.validate(meta)  # the library itself
    assert meta[GLOBAL]["core:extensions"] == [{"name": "aeradio", "version": "0.1.0", "optional": True}]
    bare = build_metadata(sample_rate_hz=1e6, hw="t", captures=[capture_segment(0, datetime_utc=None,
                          frequency_hz=None)], annotations=[annotation(0, 4)])
    assert "core:extensions" not in bare[GLOBAL]  # no aeradio: key, no declaration
    caps = [capture_segment(s, datetime_utc=None, frequency_hz=None) for s in (100, 0)]
    out_of_order = build_metadata(sample_rate_hz=1e6, hw="t", captures=caps,
                                  annotations=[annotation(9, 1), annotation(2, 1)])
    assert [c["core:sample_start"] for c in out_of_order[CAPTURES]] == [0, 100]
    assert [a["core:sample_start"] for a in out_of_order[ANNOTATIONS]] == [2, 9]


def test_read_round_trip(tmp_path: Path) -> None:
    got = read_metadata(_file(tmp_path, _valid(**{AERADIO_SEED: 2**64 - 1})))
    assert got.sample_rate_hz == 1e6 and got.seed == 2**64 - 1 and got.center_freq_hz == 915e6
    assert got.annotations[0]["aeradio:seq"] == 1 and got.sha512 is None


def _with_global(**values: object) -> dict:
    doc = _valid()
    doc[GLOBAL].update(values)
    return doc


BAD_DOCUMENTS = {
    "not an object": ([1, 2], "no 'global' object"),
    "global not an object": ({"global": [], "captures": [], "annotations": []}, "no 'global' object"),
    "datatype": (_with_global(**{"core:datatype": "ci16_le"}),
                 "core:datatype must be 'cf32_le', got 'ci16_le'"),
    "rate nan": (_with_global(**{CORE_SAMPLE_RATE: float("nan")}), "core:sample_rate must be a number"),
    "rate inf": (_with_global(**{CORE_SAMPLE_RATE: float("inf")}), "core:sample_rate must be a number"),
    "rate zero": (_with_global(**{CORE_SAMPLE_RATE: 0}), "core:sample_rate must be a number"),
    "rate bool": (_with_global(**{CORE_SAMPLE_RATE: True}), "got True"),
    "rate huge int": (_with_global(**{CORE_SAMPLE_RATE: 10**400}), "core:sample_rate must be a number"),
    "rate string": (_with_global(**{CORE_SAMPLE_RATE: "1e6"}), "got '1e6'"),
    "seed 2**80": (_with_global(**{AERADIO_SEED: 2**80}),
                   r"aeradio:seed must be an integer in \[0, 2\*\*64 - 1\], got 1208925819614629174706176"),
    "seed negative": (_with_global(**{AERADIO_SEED: -1}), "aeradio:seed must be an integer"),
    "seed float": (_with_global(**{AERADIO_SEED: 1.5}), "aeradio:seed must be an integer"),
    "seed bool": (_with_global(**{AERADIO_SEED: True}), "aeradio:seed must be an integer"),
    "captures missing": ({"global": _valid()[GLOBAL], "annotations": []},
                         "'captures' must be a list of objects"),
    "captures of numbers": ({**_valid(), "captures": [1]}, "'captures' must be a list of objects"),
    "annotations object": ({**_valid(), "annotations": {}}, "'annotations' must be a list of objects"),
    "schema": ({**_valid(), "annotations": [{"core:sample_start": "x"}]},
               "invalid SigMF metadata at \\$.annotations\\[0\\]"),
    "ordering": ({**_valid(), "annotations": [annotation(9, 1), annotation(2, 1)]}, "sample start ordering"),
}


@pytest.mark.parametrize("case", list(BAD_DOCUMENTS))
def test_bad_documents_are_one_clear_error_naming_the_file(case: str, tmp_path: Path) -> None:
    doc, message = BAD_DOCUMENTS[case]
    path = tmp_path / "r.sigmf-meta"
    path.write_text(json.dumps(doc))
    with pytest.raises(CaptureFormatError, match=message) as info:
        read_metadata(path)
    text = str(info.value)
    assert text.startswith(f"{path}: ") and "\n" not in text and len(text) < 400


def test_bad_files_are_refused_before_reading(tmp_path: Path) -> None:
    with pytest.raises(CaptureFormatError, match="no such recording"):
        read_metadata(tmp_path / "none.sigmf-meta")
    big = tmp_path / "big.sigmf-meta"
    with open(big, "wb") as f:
        f.truncate(MAX_METADATA_BYTES + 1)  # sparse: nothing is written, nothing must be read
    too_big = f"at most {MAX_METADATA_BYTES} bytes, got {MAX_METADATA_BYTES + 1}"
    with pytest.raises(CaptureFormatError, match=too_big):
        read_metadata(big)
    small = _file(tmp_path, _valid(), "small.sigmf-meta")
    with pytest.raises(CaptureFormatError, match="at most 100 bytes"):
        read_metadata(small, max_bytes=100)
    (tmp_path / "dir.sigmf-meta").mkdir()
    with pytest.raises(CaptureFormatError, match="not a regular file"):
        read_metadata(tmp_path / "dir.sigmf-meta")
    os.mkfifo(tmp_path / "fifo.sigmf-meta")
    signal.alarm(10)  # a hang fails the test instead of the suite
    try:
        with pytest.raises(CaptureFormatError, match="fifo.sigmf-meta: cannot open the metadata file: not a"):
            read_metadata(tmp_path / "fifo.sigmf-meta")
    finally:
        signal.alarm(0)


@pytest.mark.parametrize(("raw", "message"), [
    (b"[" * 100_000 + b"]" * 100_000, "not readable SigMF metadata"),  # RecursionError inside json
    (b"\xff\xfe{}", "not readable SigMF metadata"),
    (b'{"global": ' + b"1" * 5000 + b"}", "not readable SigMF metadata"),  # int longer than Python parses
    (b"", "not readable SigMF metadata"),
])
def test_unparseable_bytes(raw: bytes, message: str, tmp_path: Path) -> None:
    path = tmp_path / "r.sigmf-meta"
    path.write_bytes(raw)
    with pytest.raises(CaptureFormatError, match=message):
        read_metadata(path)


@pytest.mark.parametrize("depth", [900, 990, 5000])
@pytest.mark.parametrize("where", ["x:deep", "core:label"])
def test_deep_nesting_inside_a_document_is_never_a_crash(depth: int, where: str, tmp_path: Path) -> None:
    """Nested lists as deep as the JSON parser takes, in a field the schema checks or not."""
    text = json.dumps(_valid())
    deep = "[" * depth + "]" * depth
    path = tmp_path / "r.sigmf-meta"
    path.write_text(text.replace('"core:label": "frame 1"', f'"{where}": {deep}'))
    try:
        read_metadata(path)  # accepted if the validator copes, else a CaptureFormatError
    except CaptureFormatError as exc:
        assert str(exc).startswith(f"{path}: ")
    else:
        assert where == "x:deep"


# ---- fuzzing ---------------------------------------------------------------------------------
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=20), inner, max_size=5),
    max_leaves=30,
)
KEYS = st.sampled_from([
    "core:datatype", "core:sample_rate", "core:version", "core:sha512", "core:extensions", "aeradio:seed",
    "core:sample_start", "core:sample_count", "core:global_index", "core:datetime", "core:frequency", "x",
])


def _check_only_capture_format_errors(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "fuzz.sigmf-meta"
    path.write_bytes(raw)
    try:
        got = read_metadata(path)
    except CaptureFormatError as exc:
        assert str(exc).startswith(f"{path}: ") and "\n" not in str(exc)
    else:
        assert got.sample_rate_hz > 0


FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(doc=JSON)
def test_fuzz_arbitrary_json(tmp_path: Path, doc: object) -> None:
    _check_only_capture_format_errors(tmp_path, json.dumps(doc).encode())


@FUZZ
@given(raw=st.binary(max_size=300))
def test_fuzz_arbitrary_bytes(tmp_path: Path, raw: bytes) -> None:
    _check_only_capture_format_errors(tmp_path, raw)


@FUZZ
@given(section=st.sampled_from([GLOBAL, CAPTURES, ANNOTATIONS]), key=KEYS, value=JSON,
       index=st.integers(0, 1))
def test_fuzz_one_field_of_a_valid_document(tmp_path: Path, section: str, key: str, value: object,
                                            index: int) -> None:
    doc = _valid(**{AERADIO_SEED: 1})
    target = doc[section] if section == GLOBAL else doc[section][min(index, len(doc[section]) - 1)]
    target[key] = value
    _check_only_capture_format_errors(tmp_path, json.dumps(doc).encode())


def test_check_metadata_is_the_writers_check_too() -> None:
    """What the writers publish passes the reader's checks (one validator for both)."""
    assert check_metadata(_valid(), "w").seed is None
    with pytest.raises(CaptureFormatError, match="^w: aeradio:seed"):
        check_metadata(_valid(**{AERADIO_SEED: -3}), "w")
