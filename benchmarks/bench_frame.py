"""The frame (issue 15): overhead, header failures, detection and false alarms at Eb/N0
4 dB, and the synchronization loss of long frames at +-200 ppm with the timing track.

- ``frame.overhead``: the default frame's overhead (preamble, header, pilots) as a share of
  its air time and as an Eb/N0 penalty (AE(n=7, k=8), the defaults of ``[frame]``).
- ``frame.header``: header failures (CRC failure or a wrong header) of the coded header
  alone on AWGN at the payload's Eb/N0 4 dB and 2 dB (Es/N0 = R Eb/N0, R = k/n), and the
  Viterbi decoder's time per header.
- ``frame.detection``: frames through the RX chain at Eb/N0 4 dB (CFO up to 0.03 cps, SCO
  up to 100 ppm, random delay and phase): detected, headers failed among them; false
  alarms (detector crossings and false detections) per 1e7 noise samples.
- ``frame.sync_loss``: frames of 256 blocks (4x the payload of the frame before issue 15) at
  +200 and -200 ppm (CFO 0.02 cps, random delay and phase) through the chain against the
  genie (the LUT's symbols with AWGN, perfectly synchronized): the Eb/N0 gap at BLER 1e-2,
  with the timing track and without it (the preamble's timing for the whole frame). The LUT
  is the Hamming(7,4) pair (k = 8, n = 7, ML detection): no training needed, and the
  synchronization loss does not depend on the receiver.

Recordings use ``aeradio.dsp.impairments``. ``AERADIO_FRAME_BENCH_SCALE`` (default 1)
scales every count, for a quicker look (e.g. 0.1).
Run alone: ``aeradio bench --only frame`` (or ``--only frame.header``).
"""

from __future__ import annotations

import math
import os
import time
from typing import Any

import numpy as np

from aeradio.apps.bench import BenchContext, figure
from aeradio.core.config import LinkConfig
from aeradio.core.units import noise_var_per_real
from aeradio.dsp import impairments as imp
from aeradio.dsp.detection import ml_detect
from aeradio.dsp.framing import FrameLayout, Header, decode_headers, encode_header
from aeradio.flowgraphs.rx_chain import RxChain
from aeradio.flowgraphs.tx_chain import TxChain

SEED = 15
MODEL = {"k": 8, "n": 7}
EBN0_DB = 4.0
MAX_OVERHEAD = 0.20
MAX_HEADER_FAILURES = 1e-4
MIN_DETECTION = 0.999
MAX_FALSE_ALARMS_PER_1E7 = 1.0
HEADER_TRIALS = 300_000
DETECTION_FRAMES = 10_000
NOISE_SAMPLES = 20_000_000
READ_BLOCK = 1 << 16
#: Long frames of the sync-loss figure: 4x the 64 blocks of the frame before issue 15.
LONG_BLOCKS = 256
SCO_PPM = (200.0, -200.0)
SYNC_CFO_CPS = 0.02
SYNC_EBN0_DB = (3.5, 4.0, 4.5, 5.0, 5.5, 6.0)
SYNC_BLER = 1e-2
MAX_SYNC_LOSS_DB = 0.3
#: Block errors wanted per BLER point, and frames at most.
TARGET_ERRORS = 300
MAX_FRAMES = 400
MODEL_HASH = 0x15


def _scaled(count: int) -> int:
    return max(1, int(count * float(os.environ.get("AERADIO_FRAME_BENCH_SCALE", "1"))))


def _config(**frame: int) -> LinkConfig:
    return LinkConfig.from_dict({"model": MODEL, "frame": frame})


def _lut() -> np.ndarray:
    from aeradio.learning.baselines import hamming74_pair_lut

    return hamming74_pair_lut().astype(np.complex64)


def _impaired(x: np.ndarray, ebn0_db: float, rate: float, rng: np.random.Generator,
              cfo_cps: float, sco_ppm: float) -> np.ndarray:
    """Random lead-in, delay and phase, then SCO, CFO and AWGN at the payload's Eb/N0."""
    x = np.concatenate([np.zeros(int(rng.integers(500, 1500)), np.complex64), x])
    x = imp.apply_delay(x, float(rng.random()))
    if sco_ppm:
        x = imp.apply_sco(x, sco_ppm)
    x = imp.apply_cfo(x, cfo_cps, phase_rad=float(rng.uniform(-np.pi, np.pi)))
    return imp.add_awgn(x, 2 * noise_var_per_real(ebn0_db, rate), rng)


def _run(rx: RxChain, y: np.ndarray) -> None:
    for i in range(0, len(y), READ_BLOCK):
        rx.process(y[i : i + READ_BLOCK])
    rx.flush()


def _null_decoder(y: np.ndarray, noise_var: np.ndarray) -> np.ndarray:
    return np.zeros(len(y), np.int64)


def bench_overhead(ctx: BenchContext) -> dict[str, Any]:
    """Overhead of the default frame (AE(n=7, k=8)): shares of the air time and the penalty."""
    lay = FrameLayout(_config())
    over = lay.overhead
    overhead = 1.0 - over["payload"]
    penalty = 10 * math.log10(1 / over["payload"])
    return {
        "symbols": lay.num_symbols,
        "figures": [
            figure("frame overhead (default frame, AE(7,8))", 100 * overhead, "% of air time",
                   target=f"<= {100 * MAX_OVERHEAD:g}", passed=overhead <= MAX_OVERHEAD),
            figure("  preamble", 100 * over["preamble"], "% of air time"),
            figure("  header", 100 * over["header"], "% of air time"),
            figure("  pilots", 100 * over["pilots"], "% of air time"),
            figure("Eb/N0 penalty of the overhead", penalty, "dB", target="<= 1.0", passed=penalty <= 1.0),
        ],
    }


def _header_failures(
    lay: FrameLayout, ebn0_db: float, trials: int, rng: np.random.Generator
) -> tuple[float, float]:
    """(failure rate, decoding time per header in s) of random headers on AWGN."""
    esn0 = lay.k / lay.n * 10 ** (ebn0_db / 10)
    failures, seconds, batch = 0, 0.0, 2000
    for start in range(0, trials, batch):
        count = min(batch, trials - start)
        words = rng.integers(0, 1 << 16, (count, 3))
        headers = [Header(int(s), int(k) & 0xF, int(n) & 0xFFF, int(s ^ n)) for s, k, n in words]
        x = lay.header_symbols(np.stack([encode_header(h) for h in headers]))
        noise = rng.standard_normal(x.shape) + 1j * rng.standard_normal(x.shape)
        y = (x + noise * math.sqrt(0.5 / esn0)).astype(np.complex64)
        t = time.perf_counter()
        got = decode_headers(lay.header_llr(y))
        seconds += time.perf_counter() - t
        failures += sum(g != h for g, h in zip(got, headers, strict=True))
    return failures / trials, seconds / trials


def bench_header(ctx: BenchContext) -> dict[str, Any]:
    """Header failures at Eb/N0 4 dB and 2 dB (header symbols on AWGN), decoding time."""
    lay = FrameLayout(_config())
    rng = np.random.default_rng(SEED)
    trials = _scaled(HEADER_TRIALS)
    rate4, sec = _header_failures(lay, EBN0_DB, trials, rng)
    rate2, _ = _header_failures(lay, EBN0_DB - 2, _scaled(HEADER_TRIALS // 10), rng)
    ctx.log(f"{trials} headers at {EBN0_DB:g} dB: failure rate {rate4:.2e}")
    return {
        "trials": trials,
        "figures": [
            figure(f"header failures at Eb/N0 {EBN0_DB:g} dB ({trials} headers)", rate4, "fraction",
                   target=f"<= {MAX_HEADER_FAILURES:g}", passed=rate4 <= MAX_HEADER_FAILURES),
            figure(f"header failures at Eb/N0 {EBN0_DB - 2:g} dB", rate2, "fraction"),
            figure("Viterbi decoding time per header (batches of 2000)", 1e6 * sec, "us"),
        ],
    }


def bench_detection(ctx: BenchContext) -> dict[str, Any]:
    """Detection and header failures in the chain at Eb/N0 4 dB; false alarms on noise."""
    cfg = _config()
    tx = TxChain(cfg, _lut(), MODEL_HASH)
    rng = np.random.default_rng(SEED + 1)
    total = _scaled(DETECTION_FRAMES)
    detected = decoded = 0
    chunk = 250
    for start in range(0, total, chunk):
        count = min(chunk, total - start)
        y = _impaired(tx.test_pattern(np.arange(start, start + count), 3), EBN0_DB, cfg.model.rate, rng,
                      float(rng.uniform(-0.03, 0.03)), float(rng.uniform(-100, 100)))
        rx = RxChain(cfg, _null_decoder, model_hash=MODEL_HASH)
        _run(rx, y)
        detected += rx.stats.frames_detected
        decoded += rx.stats.frames_decoded
    rate = detected / total
    header_failures = (detected - decoded) / max(detected, 1)
    noise_samples = _scaled(NOISE_SAMPLES)
    rx = RxChain(cfg, _null_decoder, model_hash=MODEL_HASH)
    _run(rx, imp.add_awgn(np.zeros(noise_samples, np.complex64), 1.0, rng))
    false_alarms = (rx.stats.frames_detected + rx.stats.false_detections) * 1e7 / noise_samples
    ctx.log(f"{detected} of {total} frames detected, {decoded} decoded")
    return {
        "frames": total,
        "figures": [
            figure(f"frames detected at Eb/N0 {EBN0_DB:g} dB ({total} frames, CFO<=0.03, SCO<=100ppm)", rate,
                   "fraction", target=f">= {MIN_DETECTION}", passed=rate >= MIN_DETECTION),
            figure("header failures among detected frames (chain)", header_failures, "fraction",
                   target=f"<= {MAX_HEADER_FAILURES:g}", passed=header_failures <= MAX_HEADER_FAILURES),
            figure(f"false alarms per 1e7 noise samples ({noise_samples} samples)", false_alarms, "count",
                   target=f"<= {MAX_FALSE_ALARMS_PER_1E7:g}",
                   passed=false_alarms <= MAX_FALSE_ALARMS_PER_1E7),
        ],
    }


def _genie_bler(lut: np.ndarray, ebn0_db: float, rate: float, rng: np.random.Generator) -> float:
    blocks = errors = 0
    while errors < TARGET_ERRORS and blocks < 2_000_000:
        m = rng.integers(0, len(lut), 20_000)
        x = lut[m]
        sigma = math.sqrt(noise_var_per_real(ebn0_db, rate))
        y = x + sigma * (rng.standard_normal(x.shape) + 1j * rng.standard_normal(x.shape))
        errors += int(np.sum(ml_detect(y.astype(np.complex64), lut) != m))
        blocks += len(m)
    return errors / blocks


def _chain_bler(cfg: LinkConfig, lut: np.ndarray, ebn0_db: float, sco_ppm: float, rng: np.random.Generator,
                *, track: bool) -> float:
    """BLER through TX, the impairments and the RX chain; lost frames count all their blocks."""
    tx = TxChain(cfg, lut, MODEL_HASH)
    rx = RxChain(cfg, lambda y, nv: ml_detect(y, lut), model_hash=MODEL_HASH)
    if not track:  # the preamble's timing for the whole frame
        rx.gardner.error = lambda zs: np.zeros(zs.shape[1])
    frames, batch = 0, 20
    while rx.stats.block_errors < TARGET_ERRORS and frames < _scaled(MAX_FRAMES):
        x = tx.test_pattern(np.arange(frames, frames + batch), 3)
        _run(rx, _impaired(x, ebn0_db, cfg.model.rate, rng, SYNC_CFO_CPS, sco_ppm))
        frames += batch
    lost = frames - rx.stats.frames_decoded
    blocks = rx.stats.blocks + lost * cfg.frame.blocks_per_frame
    return (rx.stats.block_errors + lost * cfg.frame.blocks_per_frame) / blocks


def bench_sync_loss(ctx: BenchContext) -> dict[str, Any]:
    """Eb/N0 gap to the genie at BLER 1e-2 of 256-block frames at +-200 ppm, tracked or not."""
    from aeradio.learning.evaluate import ebn0_at_bler

    cfg = _config(blocks_per_frame=LONG_BLOCKS)
    lut = _lut()
    rng = np.random.default_rng(SEED + 2)
    genie = [_genie_bler(lut, e, cfg.model.rate, rng) for e in SYNC_EBN0_DB]
    at_genie = ebn0_at_bler(SYNC_EBN0_DB, genie, SYNC_BLER)
    figures = [figure(f"genie Eb/N0 at BLER {SYNC_BLER:g} (Hamming(7,4) pair, ML)", at_genie, "dB")]
    curves: dict[str, list[float]] = {"genie": genie}
    for sco in SCO_PPM:
        for track in (True, False):
            bler = [_chain_bler(cfg, lut, e, sco, rng, track=track) for e in SYNC_EBN0_DB]
            at = ebn0_at_bler(SYNC_EBN0_DB, bler, SYNC_BLER)
            loss = None if at is None or at_genie is None else at - at_genie
            label = "tracked" if track else "preamble timing only"
            curves[f"{sco:+g} ppm {label}"] = bler
            ctx.log(f"{sco:+g} ppm, {label}: BLER {[f'{b:.1e}' for b in bler]}")
            figures.append(figure(
                f"sync loss at BLER {SYNC_BLER:g}, {LONG_BLOCKS} blocks, {sco:+g} ppm, {label}", loss, "dB",
                target=f"<= {MAX_SYNC_LOSS_DB}" if track else None,
                passed=(None if loss is None else loss <= MAX_SYNC_LOSS_DB) if track else None,
            ))
    return {"ebn0_db": list(SYNC_EBN0_DB), "bler": curves, "figures": figures}


BENCHMARKS = {
    "frame.overhead": bench_overhead,
    "frame.header": bench_header,
    "frame.detection": bench_detection,
    "frame.sync_loss": bench_sync_loss,
}
