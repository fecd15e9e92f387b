"""An autoencoder's BLER curve next to the classical schemes of the same (k, n)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from aeradio.learning.baselines import analytic_curves, reference_luts
from aeradio.learning.evaluate import SweepProgress, ml_decoder, simulate_lut
from aeradio.learning.plots import BlerCurve

#: A baseline's curve: ``{"bler": [per Eb/N0], "bler_ci": [[low, high] per Eb/N0] or None}``
#: (None: an exact formula).
Baseline = dict[str, Any]


def baseline_curves(
    k: int,
    n: int,
    ebn0_db: Sequence[float],
    *,
    target_errors: int = 200,
    max_blocks: int = 2_000_000,
    generator: torch.Generator,
    progress: bool = False,
) -> dict[str, Baseline]:
    """Every baseline with this (k, n), by name: exact formulas and Monte Carlo ML detection
    (with 95 % intervals). ``progress``: a bar on stderr (a terminal only)."""
    out: dict[str, Baseline] = {
        name: {"bler": [float(v) for v in curve], "bler_ci": None}
        for name, curve in analytic_curves(k, n, np.asarray(ebn0_db)).items()
    }
    luts = reference_luts(k, n)
    with SweepProgress("baselines", len(luts) * len(ebn0_db), target_errors, enabled=progress) as bar:
        for name, lut in luts.items():
            points = [
                simulate_lut(
                    lut,
                    {"ml": ml_decoder(lut)},
                    float(e),
                    k / n,
                    target_errors=target_errors,
                    max_blocks=max_blocks,
                    generator=generator,
                    on_batch=bar.point(f"{name} {float(e):g} dB"),
                )["ml"]
                for e in ebn0_db
            ]
            out[name] = {"bler": [p["bler"] for p in points], "bler_ci": [p["bler_ci"] for p in points]}
    return out


def comparison_curves(document: dict[str, Any], baselines: dict[str, Baseline]) -> list[BlerCurve]:
    """Curves for :func:`~aeradio.learning.plots.plot_bler` from an eval document + baselines."""
    x = document["ebn0_db"]
    name = f"AE(n={document['n']}, k={document['k']})"
    curves = [BlerCurve(f"{name}, neural receiver", x, document["bler"], document["bler_ci"])]
    if any(v is not None for v in document["ml_bler"]):
        ml = BlerCurve(f"{name}, ML detection of its LUT", x, document["ml_bler"], document["ml_bler_ci"])
        curves.append(ml)
    for label, b in baselines.items():
        analytic = b["bler_ci"] is None
        shown = label if analytic else f"{label} (simulated)"
        curves.append(BlerCurve(shown, x, b["bler"], b["bler_ci"], analytic))
    return curves


def format_table(document: dict[str, Any], baselines: dict[str, Baseline]) -> str:
    """A text table: Eb/N0, neural BLER with its 95 % interval, ML BLER, baselines."""
    names = list(baselines)
    head = ["Eb/N0 dB", "AE neural BLER", "95% CI", "AE ML BLER", "blocks", *names]
    rows = [head]
    for i, e in enumerate(document["ebn0_db"]):
        lo, hi = document["bler_ci"][i]
        ml = document["ml_bler"][i]
        rows.append(
            [
                f"{e:g}",
                f"{document['bler'][i]:.2e}",
                f"[{lo:.1e}, {hi:.1e}]",
                "-" if ml is None else f"{ml:.2e}",
                str(document["blocks"][i]),
                *(f"{baselines[name]['bler'][i]:.2e}" for name in names),
            ]
        )
    widths = [max(len(r[c]) for r in rows) for c in range(len(head))]
    return "\n".join("  ".join(cell.rjust(w) for cell, w in zip(r, widths, strict=True)) for r in rows)
