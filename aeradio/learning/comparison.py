"""An autoencoder's BLER curve next to the classical schemes of the same (k, n)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from aeradio.learning.baselines import analytic_curves, reference_luts
from aeradio.learning.evaluate import ml_decoder, simulate_lut


def baseline_curves(
    k: int,
    n: int,
    ebn0_db: Sequence[float],
    *,
    target_errors: int = 200,
    max_blocks: int = 2_000_000,
    generator: torch.Generator,
) -> dict[str, list[float]]:
    """BLER per Eb/N0 of every baseline with this (k, n): exact formulas and Monte Carlo ML."""
    out = {
        name: [float(v) for v in curve] for name, curve in analytic_curves(k, n, np.asarray(ebn0_db)).items()
    }
    for name, lut in reference_luts(k, n).items():
        out[name] = [
            simulate_lut(
                lut,
                {"ml": ml_decoder(lut)},
                float(e),
                k / n,
                target_errors=target_errors,
                max_blocks=max_blocks,
                generator=generator,
            )["ml"]["bler"]
            for e in ebn0_db
        ]
    return out


def comparison_curves(document: dict[str, Any], baselines: dict[str, list[float]]) -> dict[str, Any]:
    """Curves for :func:`~aeradio.learning.plots.plot_bler` from an eval document + baselines."""
    x = document["ebn0_db"]
    curves: dict[str, Any] = {f"AE({document['n']},{document['k']}) neural": (x, document["bler"])}
    if any(v is not None for v in document["ml_bler"]):
        curves[f"AE({document['n']},{document['k']}) ML of LUT"] = (x, document["ml_bler"])
    for name, bler in baselines.items():
        curves[name] = (x, bler)
    return curves


def format_table(document: dict[str, Any], baselines: dict[str, list[float]]) -> str:
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
                *(f"{baselines[name][i]:.2e}" for name in names),
            ]
        )
    widths = [max(len(r[c]) for r in rows) for c in range(len(head))]
    return "\n".join("  ".join(cell.rjust(w) for cell, w in zip(r, widths, strict=True)) for r in rows)
