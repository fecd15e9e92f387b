"""Monte Carlo evaluation of a coded model: codeword error rate through the outer LDPC code.

Per batch: random information bits -> 5G NR LDPC codewords -> k bits at a time to message
indices -> the model's LUT -> the channel (the training channels' torch modules, genie
synchronized) -> bit LLRs -> belief propagation -> information bits. Every codeword goes
through three receivers at once, so their difference is not noise:

- ``neural``: the model's bit LLRs (the figure reported as ``bler``): its bit-wise
  receiver's, or its message receiver's posteriors marginalized per bit (``[model]
  bit_llrs = "marginal"``, :class:`~aeradio.learning.bitwise.MarginalRuntime`);
- ``app``: exact APP demapping of the same LUT (``aeradio.learning.bitwise.app_llrs``, the
  best any demapper can do with that constellation on AWGN; reported as ``ml_bler``);
- the baseline (its own draws): 64-QAM (square 2^k-QAM) with Gray labels and APP
  demapping, the same code: Sionna's reference.

Eb/N0 counts information bits: the noise variance per real component is
``1 / (2 r (k / n) Eb/N0)``, i.e. N0 = 1 / (Eb/N0 r k / n), Sionna's ``ebnodb2no``.
``bler`` is the codeword error rate (any information bit wrong), ``ber`` the information
bit error rate after decoding; ``uncoded_ber`` is the bit error rate of the LLRs' hard
decisions before decoding, ``uncoded_ser`` the rate of blocks with any bit wrong.
``--target-errors`` counts codeword errors of the slowest receiver.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aeradio.core.config import LinkConfig
from aeradio.core.errors import ConfigError
from aeradio.learning.bitwise import app_llrs, bits_to_messages, message_bits, qam_gray_lut
from aeradio.learning.channels import build_channel
from aeradio.learning.evaluate import BatchCallback, SweepProgress, wilson_interval
from aeradio.learning.ldpc import DEFAULT_DECODER, Ldpc5GCode

#: An LLR source: ``(y [B, n] complex64, noise_var float) -> [B, k]`` float32 LLRs.
Demapper = Callable[[np.ndarray, float], np.ndarray]
#: Codewords per simulated batch.
BATCH_CODEWORDS = 256
#: Statement of the Eb/N0 convention put beside every coded figure.
EBN0_CONVENTION = "Eb/N0 per information bit: N0 = 1 / (Eb/N0 x code rate x k / n) (Sionna's ebnodb2no)"


def outer_code(config: LinkConfig) -> Ldpc5GCode | None:
    """The outer code of a link configuration (its ``[code]`` section, with the 5G output
    interleaver for its k bits per block, as simulated here), None for an uncoded link:
    what the TX and RX chains of a coded model take as ``code``."""
    return None if config.code is None else Ldpc5GCode(config.code, config.model.k)


def noise_var_coded(ebn0_db: float, config: LinkConfig) -> float:
    """Noise variance per real component (N0 / 2) at ``ebn0_db`` per information bit."""
    return 1.0 / (2.0 * config.info_rate * 10.0 ** (ebn0_db / 10.0))


def simulate_coded(
    lut: np.ndarray,
    demappers: dict[str, Demapper],
    code: Ldpc5GCode,
    config: LinkConfig,
    ebn0_db: float,
    *,
    channel: str = "awgn",
    target_errors: int,
    max_codewords: int,
    generator: torch.Generator,
    decoder: str = DEFAULT_DECODER,
    on_batch: BatchCallback | None = None,
) -> dict[str, dict[str, Any]]:
    """Codewords sent with ``lut [M, n]`` through ``channel``; each demapper's LLRs decoded.

    Stops once every demapper has ``target_errors`` codeword errors or ``max_codewords``
    codewords were sent. Returns ``{demapper: {codewords, errors, bler, bler_ci,
    bit_errors, ber, uncoded_ber, uncoded_ser, decoder_failures}}``; ``decoder_failures``
    counts codewords the decoder flagged (parity unsatisfied), ``errors - decoder_failures``
    the undetected ones at most.
    """
    k, n = config.model.k, config.model.n
    if lut.shape != (1 << k, n):
        raise ConfigError(f"the LUT must have shape {(1 << k, n)}, got {lut.shape}")
    noise_var = noise_var_coded(ebn0_db, config)
    ch = build_channel(channel, config.training)
    lut_t = torch.from_numpy(np.ascontiguousarray(lut, dtype=np.complex64))
    blocks_per_word = code.codeword_bits // k
    keys = ("errors", "bit_errors", "raw_bit_errors", "raw_block_errors", "failures")
    counts = {name: dict.fromkeys(keys, 0) for name in demappers}
    words_sent = 0
    while words_sent < max_codewords and min(c["errors"] for c in counts.values()) < target_errors:
        batch = min(BATCH_CODEWORDS, max_codewords - words_sent)
        info = torch.randint(0, 2, (batch, code.info_bits), generator=generator).numpy().astype(np.uint8)
        words = code.encode(info)
        coded_bits = words.reshape(batch * blocks_per_word, k)
        messages = torch.from_numpy(bits_to_messages(coded_bits))
        with torch.no_grad():
            y = ch(lut_t[messages], torch.full((len(messages),), noise_var), generator).numpy()
        for name, demap in demappers.items():
            llrs = demap(y, noise_var)
            wrong = (llrs > 0) != coded_bits.astype(bool)
            decoded, ok = code.decode(llrs.reshape(batch, code.codeword_bits), decoder)
            bit_errors = np.count_nonzero(decoded != info, axis=1)
            c = counts[name]
            c["errors"] += int(np.count_nonzero(bit_errors))
            c["bit_errors"] += int(bit_errors.sum())
            c["raw_bit_errors"] += int(wrong.sum())
            c["raw_block_errors"] += int(wrong.any(axis=1).sum())
            c["failures"] += int(np.count_nonzero(~ok))
        words_sent += batch
        if on_batch is not None:
            on_batch(words_sent, min(c["errors"] for c in counts.values()))
    return {
        name: {
            "codewords": words_sent,
            "errors": c["errors"],
            "bler": c["errors"] / words_sent,
            "bler_ci": list(wilson_interval(c["errors"], words_sent)),
            "bit_errors": c["bit_errors"],
            "ber": c["bit_errors"] / (words_sent * code.info_bits),
            "uncoded_ber": c["raw_bit_errors"] / (words_sent * code.codeword_bits),
            "uncoded_ser": c["raw_block_errors"] / (words_sent * blocks_per_word),
            "decoder_failures": c["failures"],
        }
        for name, c in counts.items()
    }


def bmd_rate(
    lut: np.ndarray,
    demapper: Demapper,
    config: LinkConfig,
    ebn0_db: float,
    *,
    blocks: int,
    generator: torch.Generator,
    batch_blocks: int = 1 << 16,
) -> tuple[float, float]:
    """The bit-metric decoding rate of ``demapper`` on ``lut [M, n]`` sent on AWGN at
    ``ebn0_db`` (per information bit of ``config``), in bits per block, and its standard error.

    ``k - sum_i E[log2(1 + exp(-s_i LLR_i))]`` over ``blocks`` random messages (s_i = +1
    where bit i is 1): k minus the binary cross-entropy in bits, the rate a binary code with
    bit-interleaved decoding can reach with these LLRs. With the exact APP demapper
    (:func:`app_demapper`) it is the constellation's BMD rate (its GMI); any other demapper
    scores at most that. Unlike a codeword error rate it has a small spread: a thousandth of
    a bit is about 0.003 dB.
    """
    k = config.model.k
    if lut.shape != (1 << k, config.model.n):
        raise ConfigError(f"the LUT must have shape {(1 << k, config.model.n)}, got {lut.shape}")
    noise_var = noise_var_coded(ebn0_db, config)
    ch = build_channel("awgn", config.training)
    lut_t = torch.from_numpy(np.ascontiguousarray(lut, dtype=np.complex64))
    labels = message_bits(1 << k, k).astype(bool)
    losses = []
    for start in range(0, blocks, batch_blocks):
        messages = torch.randint(0, 1 << k, (min(batch_blocks, blocks - start),), generator=generator)
        with torch.no_grad():
            y = ch(lut_t[messages], torch.full((len(messages),), noise_var), generator).numpy()
        llrs = demapper(y, noise_var).astype(np.float64)
        signed = np.where(labels[messages.numpy()], llrs, -llrs)
        losses.append(np.logaddexp(0.0, -signed).sum(axis=1) / np.log(2.0))
    loss = np.concatenate(losses)
    return float(k - loss.mean()), float(loss.std() / np.sqrt(loss.size))


def app_demapper(lut: np.ndarray) -> Demapper:
    """Exact APP demapping of ``lut`` on AWGN as a :data:`Demapper`."""
    return lambda y, noise_var: app_llrs(y, lut, noise_var)


def baseline_name(k: int) -> str:
    return f"{1 << k}-QAM Gray + APP + LDPC"


def sweep_coded(
    model_dir: str | Path,
    ebn0_db: Sequence[float],
    channel: str = "awgn",
    *,
    target_errors: int,
    max_codewords: int,
    seed: int,
    progress: bool = False,
    baseline: bool = True,
    decoder: str = DEFAULT_DECODER,
) -> dict[str, Any]:
    """The ``aeradio eval --json`` document of a coded model (module docstring's figures).

    Columns per Eb/N0: ``bler`` (coded, neural receiver), ``ber``, ``uncoded_ber``,
    ``uncoded_ser``, ``ml_bler`` (APP demapping of the LUT, on AWGN only), and
    ``baselines`` (square QAM + Gray + APP + the same code, on AWGN with n = 1 and even k:
    none for a block model such as AE(7,8), which no square QAM matches), and
    ``bit_llrs`` (where the model's LLRs come from: "receiver" or "marginal").
    """
    from aeradio.core.model_dir import load_lut
    from aeradio.learning.bitwise import load_llr_runtime

    runtime = load_llr_runtime(model_dir)
    config = runtime.config
    if config.code is None:
        raise ConfigError(f"{model_dir} has no [code] section: evaluate it as an uncoded model")
    lut = load_lut(model_dir)
    code = Ldpc5GCode(config.code, config.model.k)
    generator = torch.Generator().manual_seed(seed)
    demappers: dict[str, Demapper] = {"neural": runtime.llrs}
    if channel == "awgn":
        demappers["app"] = app_demapper(lut)
    with_baseline = baseline and channel == "awgn" and config.model.n == 1 and config.model.k % 2 == 0
    points, base_points = [], []
    options = {"channel": channel, "target_errors": target_errors, "max_codewords": max_codewords,
               "generator": generator, "decoder": decoder}
    with SweepProgress(f"eval {config.name}", len(ebn0_db), target_errors, enabled=progress) as bar:
        for e in ebn0_db:
            res = simulate_coded(lut, demappers, code, config, float(e), **options,
                                 on_batch=bar.point(f"{float(e):g} dB"))
            points.append(res)
            if with_baseline:
                qam = qam_gray_lut(config.model.k)
                base_points.append(simulate_coded(qam, {"app": app_demapper(qam)}, code, config, float(e),
                                                  **options)["app"])
    doc = coded_document(config, channel, [float(e) for e in ebn0_db], points, base_points)
    doc["bit_llrs"] = config.model.bit_llrs
    return doc


def coded_document(
    config: LinkConfig, channel: str, ebn0_db: list[float], points: list[dict[str, Any]],
    base_points: list[dict[str, Any]],
) -> dict[str, Any]:
    """Columns of a coded sweep (see :func:`sweep_coded`)."""

    def col(name: str, key: str) -> list[Any]:
        return [p[name][key] if name in p else None for p in points]

    code = config.code
    doc: dict[str, Any] = {
        "model": config.name,
        "k": config.model.k,
        "n": config.model.n,
        "code": config.to_dict()["code"],
        "coded": True,
        "channel": channel,
        "ebn0_convention": EBN0_CONVENTION,
        "info_bits_per_channel_use": config.info_rate,
        "ebn0_db": ebn0_db,
        "bler": col("neural", "bler"),
        "bler_ci": col("neural", "bler_ci"),
        "ber": col("neural", "ber"),
        "codewords": col("neural", "codewords"),
        "errors": col("neural", "errors"),
        "decoder_failures": col("neural", "decoder_failures"),
        "uncoded_ber": col("neural", "uncoded_ber"),
        "uncoded_ser": col("neural", "uncoded_ser"),
        "ser": col("neural", "uncoded_ser"),  # every eval document's key: the blocks' error rate
        "ml_bler": col("app", "bler"),
        "ml_bler_ci": col("app", "bler_ci"),
        "ml_errors": col("app", "errors"),
        "ml_uncoded_ber": col("app", "uncoded_ber"),
        "blocks": [c * code.codeword_bits // config.model.k for c in col("neural", "codewords")],
        "baselines": {},
        "baselines_ci": {},
    }
    if base_points:
        name = baseline_name(config.model.k)
        doc["baselines"] = {name: [b["bler"] for b in base_points]}
        doc["baselines_ci"] = {name: [b["bler_ci"] for b in base_points]}
        doc["baseline_detail"] = {name: base_points}
    return doc


def uncoded_bler_bound(uncoded_ber: float, codeword_bits: int) -> float:
    """Codeword error rate of the same bits sent uncoded with independent errors: ``1 -
    (1 - BER)^N`` (the 'uncoded' curve of a coded BLER plot)."""
    return 1.0 - (1.0 - uncoded_ber) ** codeword_bits


def coded_curves(doc: dict[str, Any]) -> list[Any]:
    """The curves of a coded sweep's BLER plot: the model (neural receiver, APP demapping of
    its LUT), the baseline, and the uncoded curve (:func:`uncoded_bler_bound` of the neural
    receiver's raw bit errors over the information bits of a codeword)."""
    from aeradio.learning.plots import BlerCurve

    ebn0 = doc["ebn0_db"]
    info_bits = int(round(doc["code"]["rate"] * doc["code"]["codeword_bits"]))
    source = "message posteriors marginalized" if doc.get("bit_llrs") == "marginal" else "neural demapper"
    curves = [BlerCurve(f"{doc['model']} ({source}) + LDPC", ebn0, doc["bler"], doc["bler_ci"])]
    if any(v is not None for v in doc["ml_bler"]):
        curves.append(BlerCurve("same constellation, APP demapping + LDPC", ebn0, doc["ml_bler"],
                                doc["ml_bler_ci"]))
    for name, values in doc["baselines"].items():
        curves.append(BlerCurve(name, ebn0, values, doc["baselines_ci"][name]))
    uncoded = [None if b is None else uncoded_bler_bound(b, info_bits) for b in doc["uncoded_ber"]]
    curves.append(BlerCurve(f"uncoded: 1 - (1 - raw BER)^{info_bits}", ebn0, uncoded, analytic=True))
    return curves


def format_coded_table(doc: dict[str, Any]) -> str:
    """A text table of a coded sweep: Eb/N0, coded BLER (neural, APP, baseline), BER, uncoded
    BER, codewords sent and the neural receiver's codeword errors; a line says what the
    columns are."""
    base = next(iter(doc["baselines"].values()), [None] * len(doc["ebn0_db"]))
    code = doc["code"]
    baseline = next(iter(doc["baselines"]), "none for this model or channel")
    lines = [f"{doc['model']}: {code['kind']} rate {code['rate']:g}, codewords of {code['codeword_bits']} "
             f"bits, {doc['channel']}; {doc['ebn0_convention']}",
             f"APP BLER: exact APP demapping of the same points (AWGN only); baseline: {baseline}; "
             "BER: information bits after decoding; uncoded BER: the LLRs' hard decisions",
             f"{'Eb/N0 dB':>8} {'BLER':>10} {'APP BLER':>10} {'baseline':>10} {'BER':>10} "
             f"{'uncoded BER':>12} {'codewords':>10} {'errors':>7}"]

    def fmt(v: float | None) -> str:
        return "-" if v is None else f"{v:.3e}"

    for i, e in enumerate(doc["ebn0_db"]):
        lines.append(f"{e:8.2f} {fmt(doc['bler'][i]):>10} {fmt(doc['ml_bler'][i]):>10} {fmt(base[i]):>10} "
                     f"{fmt(doc['ber'][i]):>10} {fmt(doc['uncoded_ber'][i]):>12} {doc['codewords'][i]:>10} "
                     f"{doc['errors'][i]:>7}")
    return "\n".join(lines)



