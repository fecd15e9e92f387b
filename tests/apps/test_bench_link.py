"""The whole-loop benchmark reads the channel's status line and names what limited a trial."""

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_link.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_link", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


LINE = ("channel: t=6.0s out=57277303 (9.541 MS/s) in=0 partial=0 tx_restarts=0 late=2 malformed=0 "
        "lag_max=419.0ms cpu=35% tx_power=-6.05dB snr=4.53dB")


def test_channel_status_figures_from_its_last_line(bench):
    status = bench._channel_status(["channel: PULL ...", LINE.replace("late=2", "late=0"), LINE])
    assert status == {"channel_msps": 9.541, "channel_late_resyncs": 2, "channel_lag_max_ms": 419.0,
                      "channel_cpu_pct": 35}
    assert bench._channel_status(["no status"])["channel_msps"] is None


def _report(**overrides):
    report = {"channel_late_resyncs": 0, "channel_msps": 10.0, "samples_dropped": 0, "frames_sent": 100,
              "frames_decoded": 100, "tx_exit_code": 0}
    report.update(overrides)
    return report


def test_a_trial_that_held_has_no_limit(bench):
    assert bench.limits(_report(), 10e6) == []


@pytest.mark.parametrize(("overrides", "expected"), [
    ({"channel_late_resyncs": 3}, ["channel late (3 resyncs, 10.0 MS/s out)"]),
    ({"channel_msps": 9.0}, ["channel late (0 resyncs, 9.0 MS/s out)"]),  # under 98 % of 10
    ({"channel_late_resyncs": None}, ["channel printed no status"]),
    ({"samples_dropped": 5}, ["rx dropped 5 samples (slower than the stream)"]),
    ({"frames_decoded": 97}, ["3 of 100 frames not decoded"]),
    ({"tx_exit_code": 1}, ["tx exited with 1"]),
    ({"channel_late_resyncs": 1, "samples_dropped": 5},
     ["channel late (1 resyncs, 10.0 MS/s out)", "rx dropped 5 samples (slower than the stream)"]),
])
def test_each_stage_that_fell_short_is_named(bench, overrides, expected):
    assert bench.limits(_report(**overrides), 10e6) == expected


def test_lost_frames_are_explained_by_their_sequence_numbers(bench):
    # 7 of 100 lost: 2 not detected (no detection between frames 9 and 12), 1 header CRC
    # failure (frame 40), a mixed run (50-51: one detection failed), the last 2 never came.
    ranges = [
        {"first_seq": a, "last_seq": b, "after_sample": None, "before_sample": 0.0, "undecoded_detections": u}
        for a, b, u in ((10, 11, 0), (40, 40, 1), (50, 51, 1))
    ]
    report = _report(frames_decoded=93, frames_missing=5, missing_ranges=ranges, last_decoded_seq=97,
                     header_crc_failures=2, block_errors=3)
    lost = bench.lost_frames(report)
    assert lost["not_decoded"] == 7
    assert lost["causes"] == {"not detected": 3, "header CRC failure": 2, "after the last decoded frame": 2}
    assert [r["cause"] for r in lost["missing_ranges"]] == [
        "not detected", "header CRC failure", "not detected or header CRC failure"]
    assert bench.limits(report, 10e6) == [
        "7 of 100 frames not decoded (3 not detected; 2 header CRC failure; 2 after the last decoded frame)"]
    assert bench._lost_summary({"lost_frames": lost}) == (
        "7 (3 not detected, 2 header CRC failure, 2 after the last decoded frame); seq 10-11: not detected, "
        "40: header CRC failure, 50-51: not detected or header CRC failure")
    # Samples dropped somewhere in the trial, no positions: a miss may be a drop.
    dropped = bench.lost_frames({**report, "samples_dropped": 8192, "frames_missing": 30})
    assert dropped["causes"] == {"not detected, samples dropped": 3, "header CRC failure": 2,
                                 "in runs beyond the 20 listed": 25, "after the last decoded frame": 2}


def test_the_neighbours_positions_tell_drops_and_gaps(bench):
    # Frames 1000 samples apart. Around 10-11: 3 periods (a miss). Around 40: 800 samples too
    # many (idle inserted: a stream gap cut it). Around 50-51: 1500 too few (samples dropped).
    ranges = [
        {"first_seq": a, "last_seq": b, "after_sample": t0, "before_sample": t1, "undecoded_detections": u}
        for a, b, t0, t1, u in ((10, 11, 9000.0, 12000.0, 0), (40, 40, 39000.0, 41800.0, 1),
                                (50, 51, 49000.0, 50500.0, 0))
    ]
    report = _report(frames_decoded=95, frames_missing=5, missing_ranges=ranges, last_decoded_seq=99,
                     frame_samples=1000, samples_dropped=1500)
    lost = bench.lost_frames(report)
    assert [r["cause"] for r in lost["missing_ranges"]] == [
        "not detected",
        "stream gap (800 samples more between its neighbours than 2 frame periods; header CRC failure)",
        "samples dropped (1500 samples fewer between its neighbours than 3 frame periods)",
    ]
    assert lost["causes"] == {"not detected": 2, "stream gap": 1, "samples dropped": 2}
