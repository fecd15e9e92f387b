import pytest

from aeradio.core.config import LinkConfig, parse_channel_spec
from aeradio.core.errors import ConfigError


def test_defaults_and_roundtrip():
    cfg = LinkConfig.from_dict({"model": {"k": 8, "n": 7}, "training": {"channel": "awgn+phase"}})
    assert cfg.model.M == 256
    assert cfg.model.rate == pytest.approx(8 / 7)
    assert cfg.training.channel_names == ("awgn", "phase")
    assert LinkConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize(
    "data, message",
    [
        ({"model": {"k": 0, "n": 1}}, "model.k must be in [1, 16], got 0"),
        ({"model": {"k": 2, "n": 0}}, "model.n must be in [1, 64], got 0"),
        ({"model": {"k": 2}}, "missing required key 'n'"),
        ({"model": {"k": 2, "n": 1, "width": 3}}, "unknown key 'width' in [model]"),
        ({"model": {"k": 2.5, "n": 1}}, "model.k must be an integer"),
        ({"model": {"k": 2, "n": 1}, "training": {"channel": "awgn+fog"}}, "unknown channel 'fog'"),
        ({"model": {"k": 2, "n": 1}, "training": {"ebn0_db_min": 9.0, "ebn0_db_max": 3.0}},
         "range is inverted"),
        ({"model": {"k": 2, "n": 1}, "radar": {}}, "unknown section [radar]"),
        ({"training": {}}, "no [model] section"),
    ],
)
def test_invalid_configs_name_the_parameter(data, message):
    with pytest.raises(ConfigError) as err:
        LinkConfig.from_dict(data)
    assert message in str(err.value)


def test_channel_spec_rejects_empty_parts():
    with pytest.raises(ConfigError):
        parse_channel_spec("awgn++phase")


def test_toml_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[model\nk=2")
    with pytest.raises(ConfigError, match="not valid TOML"):
        LinkConfig.from_toml(bad)
    with pytest.raises(ConfigError, match="cannot read config"):
        LinkConfig.from_toml(tmp_path / "missing.toml")


def test_toml_size_and_nesting_are_bounded(tmp_path):
    from aeradio.core.config import MAX_CONFIG_FILE_BYTES

    path = tmp_path / "deep.toml"
    path.write_text("a = " + "[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(ConfigError, match="not valid TOML: nested too deeply"):
        LinkConfig.from_toml(path)
    path.write_text("[model]\nk = 2\nn = 1\n" + "#" * MAX_CONFIG_FILE_BYTES)
    with pytest.raises(ConfigError, match=f"larger than {MAX_CONFIG_FILE_BYTES} bytes"):
        LinkConfig.from_toml(path)
    path.write_bytes(b"[model]\nk = 2\nn = 1\nname = '\xff'\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        LinkConfig.from_toml(path)


def test_error_messages_stay_short_for_huge_or_nested_values():
    for value in ("x" * 1_000_000, [[[[[[[[1]]]]]]]], 10**400):
        with pytest.raises(ConfigError) as err:
            LinkConfig.from_dict({"model": {"k": 2, "n": 1, "normalization": value}})
        assert len(str(err.value)) < 200
    with pytest.raises(ConfigError, match="must be a float-range number"):
        LinkConfig.from_dict({"model": {"k": 2, "n": 1, "peak_amplitude": 10**400}})
