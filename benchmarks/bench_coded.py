"""Coded-link benchmarks (issue 14): Sionna's autoencoder tutorial reproduced.

Eb/N0 counts information bits everywhere here: N0 = 1 / (Eb/N0 x code rate x k / n), as
Sionna's ``ebnodb2no``; the 5G NR LDPC code of rate 1/2, n = 1500, 20 BP iterations, the
5G output interleaver, AWGN, genie synchronization.

- ``coded.baseline``: 64-QAM + Gray + APP demapping + the LDPC code; the reference's BLER
  is 9.2e-3 at 6.5 dB. Target: the Eb/N0 where the simulated curve crosses 9.2e-3
  (log-interpolated between 6.3, 6.5 and 6.7 dB) within 0.1 dB of 6.5 dB.
- ``coded.ae``: ``configs/ae-n1-k6-ldpc.toml`` trained, its neural demapper + the code at
  6.5 dB. Target: BLER <= 1.05e-3 (the reference's autoencoder, conventional training).
- ``coded.decoder``: BP decoding throughput in Mbit/s of information bits, two worker
  processes (two cores), on the baseline's LLRs at 6.5 dB, for every decoder of
  :mod:`aeradio.learning.ldpc` (the compiled flooding default, the compiled layered one,
  the ``ldpc`` package's and Sionna's references), per CPU-second too, and how many
  codewords each decodes with the same outcome (right or wrong) as the ``ldpc`` package's
  sum-product. Target: >= 5 Mbit/s for the default decoder; agreement > 0.99.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
import torch

from aeradio.apps.bench import BenchContext, figure
from aeradio.apps.train import load_training_config, train_and_save
from aeradio.core.config import LinkConfig
from aeradio.core.paths import checkout_path
from aeradio.learning.bitwise import BitwiseRuntime, qam_gray_lut
from aeradio.learning.coded import EBN0_CONVENTION, app_demapper, simulate_coded
from aeradio.learning.evaluate import ebn0_at_bler
from aeradio.learning.ldpc import DECODERS, DEFAULT_DECODER, Ldpc5GCode, timed_decode

CONFIG = "ae-n1-k6-ldpc"
EBN0_DB = 6.5
REFERENCE_BASELINE_BLER = 9.2e-3
REFERENCE_AE_BLER = 1.05e-3
#: Codeword errors per baseline point (+-20 % at 95 %).
BASELINE_ERRORS = 100
#: Codeword errors of the autoencoder's point, and codewords at most.
AE_ERRORS = 50
MAX_CODEWORDS = 200_000
#: Codewords decoded per worker for the throughput figure (20 per lane of the compiled decoders,
#: so the batch's tail, where lanes fall idle, weighs little).
THROUGHPUT_CODEWORDS = 640
THROUGHPUT_TARGET_MBPS = 5.0


def _config() -> LinkConfig:
    return load_training_config(checkout_path("configs") / f"{CONFIG}.toml")


def _ci(res: dict[str, Any]) -> str:
    lo, hi = res["bler_ci"]
    return (f"{res['errors']}/{res['codewords']} codewords, 95 % Wilson [{lo:.2e}, {hi:.2e}]; "
            f"{EBN0_CONVENTION}")


def baseline(ctx: BenchContext) -> dict[str, Any]:
    cfg = _config()
    code = Ldpc5GCode(cfg.code, cfg.model.k)
    qam = qam_gray_lut(cfg.model.k)
    points = {}
    for e in (6.3, EBN0_DB, 6.7):
        ctx.log(f"64-QAM + LDPC at {e:g} dB")
        points[e] = simulate_coded(
            qam, {"app": app_demapper(qam)}, code, cfg, e, target_errors=BASELINE_ERRORS,
            max_codewords=MAX_CODEWORDS, generator=torch.Generator().manual_seed(11),
        )["app"]
    ebn0 = sorted(points)
    crossing = ebn0_at_bler(ebn0, [points[e]["bler"] for e in ebn0], REFERENCE_BASELINE_BLER)
    ok = crossing is not None and abs(crossing - EBN0_DB) <= 0.1
    at = points[EBN0_DB]
    return {
        "points": {f"{e:g}": points[e] for e in ebn0},
        "figures": [
            figure(f"64-QAM Gray APP + LDPC BLER at {EBN0_DB} dB ({_ci(at)})", at["bler"], ""),
            figure("Eb/N0 where it crosses the reference's 9.2e-3", crossing, "dB",
                   target=f"{EBN0_DB} +- 0.1", passed=ok),
        ],
    }


def _trained_model(ctx: BenchContext) -> Any:
    if "coded.model" not in ctx.memo:
        cfg = _config()
        ctx.log(f"training {CONFIG} ({cfg.training.steps} steps)")
        ctx.memo["coded.model"] = train_and_save(cfg, ctx.work_dir / CONFIG, progress=False)
    return ctx.memo["coded.model"]


def autoencoder(ctx: BenchContext) -> dict[str, Any]:
    model_dir = _trained_model(ctx)
    runtime = BitwiseRuntime.load(model_dir)
    from aeradio.core.model_dir import load_lut

    cfg = runtime.config
    lut = load_lut(model_dir)
    ctx.log(f"{CONFIG} + LDPC at {EBN0_DB:g} dB (up to {AE_ERRORS} codeword errors)")
    res = simulate_coded(
        lut, {"neural": runtime.llrs, "app": app_demapper(lut)}, Ldpc5GCode(cfg.code, cfg.model.k), cfg,
        EBN0_DB, target_errors=AE_ERRORS, max_codewords=MAX_CODEWORDS,
        generator=torch.Generator().manual_seed(12),
    )
    neural, app = res["neural"], res["app"]
    return {
        "result": res,
        "figures": [
            figure(f"AE(1,6) neural demapper + LDPC BLER at {EBN0_DB} dB ({_ci(neural)})", neural["bler"],
                   "", target=f"<= {REFERENCE_AE_BLER:g}", passed=neural["bler"] <= REFERENCE_AE_BLER),
            figure(f"same constellation, APP demapping + LDPC ({_ci(app)})", app["bler"], ""),
        ],
    }


def decoder(ctx: BenchContext) -> dict[str, Any]:
    cfg = _config()
    code = Ldpc5GCode(cfg.code, cfg.model.k)
    qam = qam_gray_lut(cfg.model.k)
    rng = np.random.default_rng(13)
    workers = 2
    total = workers * THROUGHPUT_CODEWORDS
    info = rng.integers(0, 2, (total, code.info_bits), dtype=np.uint8)
    words = code.encode(info)
    from aeradio.learning.bitwise import app_llrs, bits_to_messages
    from aeradio.learning.coded import noise_var_coded

    nv = noise_var_coded(EBN0_DB, cfg)
    sym = qam[bits_to_messages(words.reshape(-1, cfg.model.k))]
    y = sym + np.sqrt(nv) * (rng.normal(size=sym.shape) + 1j * rng.normal(size=sym.shape))
    llrs = app_llrs(y.astype(np.complex64), qam, nv).reshape(total, code.codeword_bits)
    figures, wrong = [], {}
    for name in DECODERS:
        ctx.log(f"decoding {total} codewords with {name} on {workers} processes")
        chunks = np.array_split(llrs, workers)
        start = time.perf_counter()
        with ProcessPoolExecutor(workers) as pool:
            parts = list(pool.map(timed_decode, [cfg.code] * workers, [cfg.model.k] * workers, chunks,
                                  [name] * workers))
        wall = max(p[0] for p in parts)
        cpu = sum(p[1] for p in parts)
        wrong[name] = np.any(np.concatenate([p[2] for p in parts]) != info, axis=1)
        mbps = total * code.info_bits / wall / 1e6
        default = name == DEFAULT_DECODER
        role = "default" if default else "reference" if name in ("ldpc", "sionna") else "option"
        figures.append(figure(
            f"{name} BP decoder ({role}), 2 processes, BLER {wrong[name].mean():.2e} on {total} codewords",
            mbps, "Mbit/s", target=f">= {THROUGHPUT_TARGET_MBPS:g}" if default else None,
            passed=mbps >= THROUGHPUT_TARGET_MBPS if default else None,
        ))
        figures.append(figure(f"{name} BP decoder per CPU-second (one core, load-independent)",
                              total * code.info_bits / cpu / 1e6, "Mbit/s"))
        load = os.getloadavg()[0]
        ctx.log(f"{name}: {time.perf_counter() - start:.1f} s wall in all, load average {load:.1f}")
    for name in [n for n in DECODERS if n != "ldpc"]:  # against the ldpc package's sum-product
        agree = float(np.mean(wrong[name] == wrong["ldpc"]))
        default = name == DEFAULT_DECODER
        figures.append(figure(f"codewords {name} decodes with the ldpc package's outcome (right or wrong)",
                              agree, "", target="> 0.99" if default else None,
                              passed=agree > 0.99 if default else None))
    return {"figures": figures}


BENCHMARKS = {
    "coded.baseline": baseline,
    "coded.ae": autoencoder,
    "coded.decoder": decoder,
}
