"""``aeradio channel`` arguments -> channel settings: SNR conventions, units, validation."""

import math

import numpy as np
import pytest

from aeradio.apps import channel as channel_cmd
from aeradio.apps.channel import settings_from_args
from aeradio.cli import build_parser
from aeradio.core.config import LinkConfig
from aeradio.core.defaults import DEFAULT_RAPP_P
from aeradio.core.errors import ConfigError
from aeradio.dsp import impairments as imp
from aeradio.flowgraphs import channel_sim as cs


def _args(**overrides):
    argv = ["channel", "--tx", "zmq:tcp://127.0.0.1:1", "--rx", "zmq:tcp://127.0.0.1:2",
            "--sample-rate-hz", "1e6"]
    for key, value in overrides.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    return build_parser().parse_args(argv)


def test_snr_relative_to_tx_frame_power_one_over_sps():
    s = settings_from_args(_args(snr_db=10))  # default sps: the link config's (4)
    assert s.signal_power == pytest.approx(1 / 4) and s.noise_power == pytest.approx(0.1 / 4)
    assert "AWGN SNR 10.00 dB" in s.describe(1e6)
    s = settings_from_args(_args(snr_db=10, samples_per_symbol=8, pa_rapp_p=2))
    assert s.noise_power == pytest.approx(0.1 / 8)
    # The PA saturates relative to the frame RMS amplitude sqrt(1/sps), here 6 dB above it.
    assert cs.ChannelModel(s, np.random.default_rng(0)).stages[0].saturation_amplitude == pytest.approx(
        np.sqrt(1 / 8) * 10 ** (6 / 20))


def test_snr_sets_noise_power_and_model_reproducible():
    s = settings_from_args(_args(snr_db=10, samples_per_symbol=1))
    assert s.noise_power == pytest.approx(0.1)
    x = np.zeros(100_000, np.complex64)
    y = cs.ChannelModel(s, np.random.default_rng(1)).process(x)
    assert np.mean(np.abs(y) ** 2) == pytest.approx(0.1, rel=0.03)
    np.testing.assert_array_equal(y, cs.ChannelModel(s, np.random.default_rng(1)).process(x))
    assert not np.array_equal(y, cs.ChannelModel(s, np.random.default_rng(2)).process(x))


def test_ebn0_uses_model_rate_and_samples_per_symbol(monkeypatch):
    cfg = LinkConfig.from_dict({"model": {"k": 8, "n": 7}, "radio": {"samples_per_symbol": 4}})
    monkeypatch.setattr(channel_cmd, "load_link_config", lambda path: cfg)
    s = settings_from_args(_args(ebn0_db=6, model="/some/dir"))
    # Es/N0 = 1 / N per symbol after the matched filter, and Es/N0 = R Eb/N0.
    assert s.noise_power == pytest.approx(1 / (8 / 7 * 10 ** 0.6))
    expected_snr_db = 6 + 10 * math.log10(8 / 7) - 10 * math.log10(4)
    assert 10 * math.log10(s.signal_power / s.noise_power) == pytest.approx(expected_snr_db)
    with pytest.raises(ConfigError, match="--ebn0-db needs --model"):
        settings_from_args(_args(ebn0_db=6))
    with pytest.raises(ConfigError, match="--model DIR or --samples-per-symbol, not both"):
        settings_from_args(_args(snr_db=6, model="/some/dir", samples_per_symbol=2))


def test_full_chain_order_and_units():
    s = settings_from_args(_args(cfo_hz=1000, dc_offset="0.1-0.2j", iq_imbalance_db=0.5,
                                    iq_imbalance_deg=3, multipath="1,0.2j", pa_backoff_db=3,
                                    phase_noise_dbc=-80, delay_samples=3))
    assert s.cfo_cps == pytest.approx(1e-3) and s.pa_rapp_p == DEFAULT_RAPP_P
    assert s.multipath_taps == (1, 0.2j) and s.dc_offset == 0.1 - 0.2j
    assert s.phase_noise_std_rad == pytest.approx(imp.phase_noise_std_per_sample(-80, 10e3, 1e6))
    model = cs.ChannelModel(s, np.random.default_rng(0))
    kinds = [type(st).__name__ for st in model.stages]
    assert kinds == ["RappStage", "MultipathStage", "IntegerDelayStage", "CfoStage",
                     "PhaseNoiseStage", "IqImbalanceStage", "DcOffsetStage"]
    y = model.process(np.zeros(1000, np.complex64))
    np.testing.assert_allclose(y, 0.1 - 0.2j, atol=1e-6)  # silence in: only the DC out
    assert "CFO 1000 Hz" in s.describe(1e6) and "DC offset" in s.describe(1e6)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"cfo_hz": 6e5}, r"--cfo-hz must be in \[-500000, 500000\] Hz, got 600000"),
        ({"snr_db": 500}, r"--snr-db must be in \[-30, 100\] dB, got 500"),
        ({"multipath": "1,x"}, "--multipath tap must be a complex number"),
        ({"dc_offset": "big"}, "--dc-offset must be a complex number"),
        ({"iq_imbalance_db": 10}, r"--iq-imbalance-db must be in \[-6, 6\] dB"),
        ({"delay_samples": -1}, r"--delay-samples must be in \[0, 1e\+06\]"),
        ({"sample_rate_hz": 0}, r"--sample-rate-hz must be in \[1000, 1e\+09\] Hz, got 0"),
    ],
)
def test_bad_arguments_name_parameter_range_and_value(overrides, match):
    args = _args()
    for k, v in overrides.items():
        setattr(args, k, v)
    with pytest.raises(ConfigError, match=match):
        settings_from_args(args)
