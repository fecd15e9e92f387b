"""Fuzzing the calibration-file loader: any file raises CalibrationError or loads."""

import json
import math
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aeradio.calibration.calfile import (
    _REQUIRED,
    MAX_CALIBRATION_FILE_BYTES,
    Calibration,
    load_calibration,
    save_calibration,
)
from aeradio.core.errors import CalibrationError
from tests.strategies import json_values

FUZZ = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
VALID = Calibration(
    sample_rate_hz=1e6,
    center_freq_hz=915e6,
    cfo_hz=1234.5,
    cfo_ppm=1.35,
    sco_ppm=3.2,
    iq_gain_db=0.4,
    iq_phase_deg=-2.5,
    dc_offset=(0.02, -0.01),
    snr_db=21.3,
    noise_floor_dbfs=-33.0,
    delay_samples=12.5,
).to_dict()
extreme = st.one_of(
    st.sampled_from(
        [
            0,
            -1,
            2**63,
            10**400,
            1e308,
            math.inf,
            -math.inf,
            math.nan,
            "",
            "x",
            "y" * 20_000,
            True,
            None,
            [],
            {},
            [1],
            [1, 2, 3],
            [math.nan, 0],
            ["a", "b"],
            [[[[1]]]],
        ]
    ),
    st.floats(),
    st.integers(),
    json_values,
)


def _load_text(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cal.json"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            cal = load_calibration(path, 1e6)
        except CalibrationError as exc:
            assert "\n" not in str(exc) and len(str(exc)) < 1000
        else:
            save_calibration(cal, Path(tmp) / "again.json")  # what loads can be written back
            assert load_calibration(Path(tmp) / "again.json", 1e6) == cal


@FUZZ
@given(doc=json_values | st.binary(max_size=200).map(lambda b: b.decode("latin-1")))
def test_any_calibration_file(doc: object) -> None:
    _load_text(doc if isinstance(doc, str) else json.dumps(doc))


@FUZZ
@given(
    overrides=st.dictionaries(
        st.sampled_from([*_REQUIRED, "signal_rms_dbfs", "bursts", "recommended", "device"]), extreme
    ),
    dropped=st.lists(st.sampled_from(_REQUIRED), max_size=2),
)
def test_valid_looking_calibration_with_extreme_values(overrides: dict, dropped: list) -> None:
    data = {**VALID, **overrides}
    for key in dropped:
        data.pop(key, None)
    _load_text(json.dumps(data))


@pytest.mark.parametrize("text", ["[" * 100_000 + "]" * 100_000, '{"a": ' * 50_000 + "1" + "}" * 50_000])
def test_deeply_nested_json_is_one_line(tmp_path: Path, text: str) -> None:
    path = tmp_path / "cal.json"
    path.write_text(text)
    with pytest.raises(CalibrationError, match="is not JSON: nested too deeply"):
        load_calibration(path, 1e6)


def test_calibration_file_size_is_bounded(tmp_path: Path) -> None:
    path = tmp_path / "cal.json"
    path.write_text(json.dumps(VALID) + " " * MAX_CALIBRATION_FILE_BYTES)
    with pytest.raises(CalibrationError, match=f"larger than {MAX_CALIBRATION_FILE_BYTES} bytes"):
        load_calibration(path, 1e6)
    path.write_text(json.dumps({**VALID, "recommended": [1, 2]}))
    with pytest.raises(CalibrationError, match="recommended must be an object"):
        load_calibration(path, 1e6)
