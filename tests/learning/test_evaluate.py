import numpy as np
import pytest
import torch

from aeradio.core.errors import ConfigError
from aeradio.learning.baselines import qpsk_lut, qpsk_ser
from aeradio.learning.evaluate import (
    ebn0_at_bler,
    ml_decoder,
    parse_ebn0_range,
    simulate_lut,
    wilson_interval,
)


def test_wilson_interval_covers_and_shrinks():
    lo, hi = wilson_interval(0, 1000)
    assert lo == 0.0 and 0 < hi < 0.005
    lo1, hi1 = wilson_interval(50, 1000)
    lo2, hi2 = wilson_interval(500, 10000)
    assert lo1 < 0.05 < hi1 and hi2 - lo2 < hi1 - lo1


def test_ebn0_at_bler_interpolates_in_log_domain():
    assert ebn0_at_bler([0, 1], [1e-2, 1e-4], 1e-3) == pytest.approx(0.5)
    assert ebn0_at_bler([0, 1], [1e-2, 5e-3], 1e-3) is None


@pytest.mark.parametrize(
    "spec",
    ["5:4:1", "0:4:0", "0:4:-1", "a:b:c", "1:2", "0:1e6:0.0001", "", "nan", "inf", "0:inf:1", "0:4:nan"],
)
def test_bad_ebn0_ranges(spec):
    with pytest.raises(ConfigError, match="--ebn0-db"):
        parse_ebn0_range(spec)


def test_simulation_stops_at_target_errors_and_counts_bits():
    lut = qpsk_lut()
    res = simulate_lut(
        lut,
        {"ml": ml_decoder(lut), "wrong": lambda y, nv: np.zeros(len(y), np.int64)},
        4.0,
        2.0,
        target_errors=100,
        generator=torch.Generator().manual_seed(0),
        batch_blocks=1000,
    )
    ml, wrong = res["ml"], res["wrong"]
    assert ml["errors"] >= 100 and ml["blocks"] < 20000
    assert ml["bler_ci"][0] <= qpsk_ser(4.0) <= ml["bler_ci"][1]
    # Gray labels: a QPSK symbol error is one bit error in most cases.
    assert ml["ber"] == pytest.approx(ml["bler"] / 2, rel=0.2)
    # Always deciding 0 is wrong for 3/4 of the messages, 1 bit on average of 2.
    assert wrong["bler"] == pytest.approx(0.75, abs=0.03)
    assert wrong["ber"] == pytest.approx(0.5, abs=0.03)


def test_simulation_refuses_a_channel_without_noise():
    # Without 'awgn' the Eb/N0 argument would be ignored and every point would be the same.
    with pytest.raises(ConfigError, match="must include 'awgn'"):
        simulate_lut(qpsk_lut(), {"ml": ml_decoder(qpsk_lut())}, 6.0, 2.0, channel="multipath",
                     generator=torch.Generator().manual_seed(0))
