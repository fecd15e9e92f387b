"""Learned channel model benchmark: fidelity of the CVAE, end-to-end vs receiver-only fine-tuning (issue 12).

Scenario: the fine-tuning benchmark's mismatch channel (``bench_finetune.py``: receiver IQ
imbalance, a Rapp PA with little back-off, Wiener phase noise, an echo) on the default
model (configs/ae-n7-k8.toml, trained on AWGN), at Eb/N0 :data:`EBN0_DB` (5, 6, 7 dB: the
channel model conditions on the frame's SNR, so it sees the SNRs it is judged at). Captured
through the loopback simulator stages and the capture recorder:

- ``caps``: at each Eb/N0, :data:`PROBE_FRAMES` probe frames and :data:`TEST_FRAMES`
  test-pattern frames: the channel model is fitted on them (receiver-only fine-tuning uses
  the test frames, end-to-end fine-tuning their SNR spread);
- ``held``: at each Eb/N0, :data:`HELD_FRAMES` other test-pattern frames (other seeds,
  other noise): fidelity (BLER predicted through the learned channel vs measured per SNR
  bin; sliced Wasserstein distance per transmitted point, CVAE vs the AWGN baseline);
- ``fresh``: :data:`FRESH_FRAMES` new test-pattern frames at Eb/N0 :data:`FRESH_EBN0_DB`
  sent by each pair through the real (simulated) channel, same channel seed: the original
  pair, the receiver-only pair (original LUT, fine-tuned receiver) and the end-to-end pair
  (new LUT, new receiver).

Targets (issue 12): predicted BLER within 1.5x of the measured one in every SNR bin with
>= 100 measured block errors; distance <= half the AWGN baseline's; end-to-end BLER on
fresh frames <= 0.7x receiver-only; fit plus end-to-end fine-tuning < 5 minutes.

``channelmodel.awgn``, no regression: the same procedure on plain AWGN captures (probe and
test-pattern frames at :data:`AWGN_EBN0_DB`); the end-to-end pair needs at most
:data:`AWGN_LOSS_MAX_DB` more Eb/N0 than the original for BLER 1e-2 on fresh frames.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path
from typing import Any

import numpy as np

from aeradio.apps.bench import BenchContext, figure
from aeradio.apps.capture import record_loopback_capture
from aeradio.core.model_dir import load_link_config
from aeradio.learning.channel_model import (
    BLER_FACTOR_MAX,
    check_channel_model,
    fit_channel_model,
)
from aeradio.learning.end_to_end import finetune_end_to_end
from aeradio.learning.finetune import finetune_model

EBN0_DB = (5.0, 6.0, 7.0)
PROBE_FRAMES = 400
TEST_FRAMES = 400
HELD_FRAMES = 300
FRESH_EBN0_DB = 6.0
FRESH_FRAMES = 600
AWGN_EBN0_DB = (3.0, 4.0, 5.0)
AWGN_FRAMES = 300
AWGN_FRESH_FRAMES = 400
AWGN_BLER = 1e-2
AWGN_LOSS_MAX_DB = 0.1
SECONDS_MAX = 300.0
SWD_RATIO_MAX = 0.5
E2E_RATIO_MAX = 0.7


def _finetune_bench() -> Any:
    """The fine-tuning benchmark's module (its scenario: model, channel, capture helper)."""
    path = Path(__file__).with_name("bench_finetune.py")
    spec = importlib.util.spec_from_file_location("aeradio_benchmarks_bench_finetune_for_channelmodel", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _capture(ctx: BenchContext, model: Path, out: Path, settings: Any, frames: int, seed: int,
             pattern: str = "test") -> dict[str, Any]:
    start = time.perf_counter()
    report = record_loopback_capture(model, out, settings, frames=frames, seed=seed, pattern=pattern,
                                     rng=np.random.default_rng(2000 + seed))
    bler = "" if report["bler"] is None else f", BLER {report['bler']:.3e}"
    ctx.log(f"captured {out.name} ({pattern}): {report['frames_decoded']}/{frames} frames{bler} "
            f"({time.perf_counter() - start:.1f} s)")
    return report


def bench_channelmodel_mismatch(ctx: BenchContext) -> dict[str, Any]:
    ft = _finetune_bench()
    model = ft._model(ctx)
    work = ctx.work_dir / "channelmodel"
    channel = ft._settings(model, FRESH_EBN0_DB, mismatch=True)
    ctx.log("mismatch channel: " + channel.describe(load_link_config(model).radio.sample_rate_hz))
    caps = work / "caps"
    for i, ebn0 in enumerate(EBN0_DB):
        at = ft._settings(model, ebn0, mismatch=True)
        _capture(ctx, model, caps, at, PROBE_FRAMES, seed=1 + i, pattern="probe")
        _capture(ctx, model, caps, at, TEST_FRAMES, seed=5 + i)
        _capture(ctx, model, work / "held", at, HELD_FRAMES, seed=10 + i)

    start = time.perf_counter()
    fit = fit_channel_model(model, caps, work / "cm", progress=False, log=ctx.log)
    fit_seconds = time.perf_counter() - start
    ctx.log(f"fit ({fit_seconds:.1f} s), held-out split: {fit['summary']}")
    start = time.perf_counter()
    e2e = finetune_end_to_end(model, caps, work / "cm", work / "e2e", progress=False, log=ctx.log,
                              keep_unimproved=True)
    e2e_seconds = time.perf_counter() - start
    ctx.log(f"end-to-end ({e2e_seconds:.1f} s): BLER through the channel model "
            f"{e2e['bler_channel_model']['before']:.3e} -> {e2e['bler_channel_model']['after']:.3e}")
    rx_only = finetune_model(model, caps, work / "rx-only", progress=False, log=ctx.log, keep_unimproved=True)

    check = check_channel_model(work / "cm", model, work / "held", plots=work / "plots", log=ctx.log)
    ctx.log(f"check on held-out captures: {check['summary']}")
    for b in check["bins"]:
        ctx.log(f"  SNR {b['snr_db_low']:g} dB: {b['blocks']} blocks, measured {b['measured_errors']}, CVAE "
                f"{b['cvae_errors']}, AWGN {b['awgn_errors']} errors" + (" (judged)" if b["judged"] else ""))
    judged = [b for b in check["bins"] if b["judged"]]
    factors = [max(b["cvae_errors"] / b["measured_errors"], b["measured_errors"] / max(b["cvae_errors"], 1))
               for b in judged]
    worst_factor = max(factors) if factors else None

    fresh = {}
    for name in ("rx-only", "e2e"):
        fresh[name] = _capture(ctx, work / name, work / f"fresh-{name}", channel, FRESH_FRAMES, seed=30)
    ratio = (fresh["e2e"]["bler"] / fresh["rx-only"]["bler"]) if fresh["rx-only"]["bler"] else None
    original = _capture(ctx, model, work / "fresh-original", channel, FRESH_FRAMES, seed=30)
    total = fit_seconds + e2e_seconds
    return {
        "figures": [
            figure("held-out SNR bins judged (>= 100 measured block errors)", len(judged), ""),
            figure("worst judged bin: predicted / measured BLER factor (either way)", worst_factor, "x",
                   target=f"<= {BLER_FACTOR_MAX:g}",
                   passed=worst_factor is not None and worst_factor <= BLER_FACTOR_MAX),
            figure("BLER measured, held-out captures", check["bler_measured"], ""),
            figure("BLER through the CVAE, same frames", check["bler_cvae"], ""),
            figure("BLER through the AWGN baseline, same frames", check["bler_awgn"], ""),
            figure("sliced Wasserstein per point, CVAE", check["swd_cvae"], ""),
            figure("sliced Wasserstein per point, AWGN baseline", check["swd_awgn"], ""),
            figure("distance ratio CVAE / AWGN", check["swd_ratio"], "", target=f"<= {SWD_RATIO_MAX:g}",
                   passed=check["swd_ratio"] is not None and check["swd_ratio"] <= SWD_RATIO_MAX),
            figure("original pair BLER, fresh frames", original["bler"], ""),
            figure("receiver-only fine-tuned BLER, fresh frames", fresh["rx-only"]["bler"], ""),
            figure("end-to-end fine-tuned BLER, fresh frames", fresh["e2e"]["bler"], ""),
            figure("end-to-end / receiver-only BLER", ratio, "", target=f"<= {E2E_RATIO_MAX:g}",
                   passed=ratio is not None and ratio <= E2E_RATIO_MAX),
            figure("fit + end-to-end fine-tuning time", total, "s", target=f"< {SECONDS_MAX:g}",
                   passed=total < SECONDS_MAX),
        ],
        "fit": {k: fit[k] for k in ("train_frames", "held_out_frames", "fidelity", "seconds")},
        "check": check,
        "end_to_end": {k: v for k, v in e2e.items() if k != "history"},
        "rx_only": {k: rx_only[k] for k in ("validation", "epochs", "best_epoch", "train_frames")},
        "fresh": {name: {k: r[k] for k in ("frames_decoded", "blocks", "block_errors", "bler")}
                  for name, r in {**fresh, "original": original}.items()},
        "ebn0_db": list(EBN0_DB),
        "fresh_ebn0_db": FRESH_EBN0_DB,
    }


def bench_channelmodel_awgn(ctx: BenchContext) -> dict[str, Any]:
    from aeradio.learning.evaluate import ebn0_at_bler

    ft = _finetune_bench()
    model = ft._model(ctx)
    work = ctx.work_dir / "channelmodel-awgn"
    caps = work / "caps"
    for i, ebn0 in enumerate(AWGN_EBN0_DB):
        at = ft._settings(model, ebn0, mismatch=False)
        _capture(ctx, model, caps, at, AWGN_FRAMES, seed=1 + i, pattern="probe")
        _capture(ctx, model, caps, at, AWGN_FRAMES, seed=5 + i)
    start = time.perf_counter()
    fit = fit_channel_model(model, caps, work / "cm", progress=False, log=ctx.log)
    e2e = finetune_end_to_end(model, caps, work / "cm", work / "e2e", progress=False, log=ctx.log,
                              keep_unimproved=True)
    seconds = time.perf_counter() - start
    ctx.log(f"fit: {fit['summary']}; end-to-end: BLER through the channel model "
            f"{e2e['bler_channel_model']['before']:.3e} -> {e2e['bler_channel_model']['after']:.3e}")
    curves: dict[str, list[float]] = {"original": [], "e2e": []}
    for i, ebn0 in enumerate(AWGN_EBN0_DB):
        at = ft._settings(model, ebn0, mismatch=False)
        for name, pair in (("original", model), ("e2e", work / "e2e")):
            report = _capture(ctx, pair, work / f"fresh-{name}-{ebn0:g}", at, AWGN_FRESH_FRAMES, seed=40 + i)
            curves[name].append(report["bler"] or 0.0)
    ref = ebn0_at_bler(list(AWGN_EBN0_DB), curves["original"], AWGN_BLER)
    new = ebn0_at_bler(list(AWGN_EBN0_DB), curves["e2e"], AWGN_BLER)
    loss = None if ref is None or new is None else new - ref
    return {
        "figures": [
            figure(f"original pair Eb/N0 at BLER {AWGN_BLER:g}, AWGN", ref, "dB"),
            figure(f"end-to-end pair Eb/N0 at BLER {AWGN_BLER:g}, AWGN", new, "dB"),
            figure("end-to-end pair's Eb/N0 loss on AWGN", loss, "dB", target=f"<= {AWGN_LOSS_MAX_DB:g}",
                   passed=loss is not None and loss <= AWGN_LOSS_MAX_DB),
            figure("fit + end-to-end fine-tuning time (AWGN captures)", seconds, "s",
                   target=f"< {SECONDS_MAX:g}", passed=seconds < SECONDS_MAX),
        ],
        "ebn0_db": list(AWGN_EBN0_DB),
        "fresh_frames_per_point": AWGN_FRESH_FRAMES,
        "bler": curves,
        "fit_fidelity": fit["fidelity"],
        "end_to_end": {k: v for k, v in e2e.items() if k != "history"},
    }


BENCHMARKS = {
    "channelmodel.mismatch": bench_channelmodel_mismatch,
    "channelmodel.awgn": bench_channelmodel_awgn,
}
