"""PNG plots (matplotlib, Agg backend): constellation, BLER curves, training curve.

matplotlib is imported inside each function, so importing this module stays cheap.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_constellation(lut: np.ndarray, path: str | Path, title: str = "") -> Path:
    """One panel per channel use of ``lut [M, n]`` complex (all M points in each panel)."""
    plt = _pyplot()
    n = lut.shape[1]
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 3 * rows), squeeze=False)
    lim = 1.1 * float(np.max(np.abs(lut))) if lut.size else 1.0
    for i, ax in enumerate(axes.flat):
        if i >= n:
            ax.axis("off")
            continue
        ax.scatter(lut[:, i].real, lut[:, i].imag, s=8)
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
        ax.grid(alpha=0.3)
        ax.set_title(f"use {i}" if n > 1 else "constellation")
    fig.suptitle(title or f"learned constellation, M={lut.shape[0]}, n={n}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def plot_bler(
    curves: dict[str, tuple[Sequence[float], Sequence[float | None]]], path: str | Path, title: str = ""
) -> Path:
    """BLER vs Eb/N0 (dB), log scale; ``curves``: name -> (ebn0_db, bler)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for name, (x, y) in curves.items():
        pts = [(a, b) for a, b in zip(x, y, strict=True) if b]
        if pts:
            ax.semilogy(*zip(*pts, strict=True), marker="o" if len(pts) < 30 else None, label=name)
    ax.set_xlabel("Eb/N0 (dB)")
    ax.set_ylabel("BLER")
    ax.grid(which="both", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def plot_bler_intervals(
    curves: dict[str, tuple[Sequence[float], Sequence[float], Sequence[float], Sequence[float]]],
    lines: dict[str, tuple[Sequence[float], Sequence[float]]],
    path: str | Path,
    title: str = "",
) -> Path:
    """BLER vs Eb/N0 (dB), log scale: ``curves`` name -> (ebn0_db, bler, ci_low, ci_high)
    drawn as markers with error bars (the interval), ``lines`` name -> (ebn0_db, bler)
    as dashed lines (exact formulas). Values <= 0 are left out (no place on a log scale)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 5))
    for name, (x, y, lo, hi) in curves.items():
        pts = sorted((a, b, b - c, d - b) for a, b, c, d in zip(x, y, lo, hi, strict=True) if b > 0)
        if pts:
            xs, ys, below, above = zip(*pts, strict=True)
            ax.errorbar(xs, ys, yerr=[below, above], marker="o", markersize=3, capsize=3, label=name)
    for name, (x, y) in lines.items():
        pts = [(a, b) for a, b in zip(x, y, strict=True) if b > 0]
        if pts:
            ax.plot(*zip(*pts, strict=True), linestyle="--", linewidth=1, label=name)
    ax.set_yscale("log")
    ax.set_xlabel("Eb/N0 (dB)")
    ax.set_ylabel("BLER")
    ax.grid(which="both", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def plot_training_curve(history: list[dict[str, float]], path: str | Path, title: str = "") -> Path:
    """Running loss (nats) and BLER against the step."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    steps = [h["step"] for h in history]
    ax.semilogy(steps, [h["loss"] for h in history], label="loss (nats)")
    ax.semilogy(steps, [max(h["bler"], 1e-6) for h in history], label="running BLER")
    ax.set_xlabel("step")
    ax.grid(which="both", alpha=0.3)
    ax.legend()
    ax.set_title(title or "training")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def plot_received(symbols: np.ndarray, lut: np.ndarray, path: str | Path, title: str = "") -> Path:
    """Synchronized received symbols ``[N]`` complex over the LUT's points (all uses overlaid)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(symbols.real, symbols.imag, s=2, alpha=0.3, label="received (after sync)")
    points = lut.reshape(-1)
    ax.scatter(points.real, points.imag, s=10, c="k", marker="x", label="transmitted (LUT)")
    lim = 1.2 * float(np.percentile(np.abs(symbols), 99.5)) if symbols.size else 1.5
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title(title or f"received constellation, {symbols.size} symbols")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)
