"""PNG plots for papers (matplotlib, Agg backend): constellations, BLER curves, training.

- :func:`plot_bler`: BLER against Eb/N0 on a log axis, each simulated point with its 95 %
  Wilson interval as an error bar, a point with no error as the interval's upper bound
  (a down triangle); every curve with its own marker, line style and colour, so curves
  that coincide (the neural receiver and ML detection of its LUT) stay distinguishable;
  exact formulas as thin black lines.
- :func:`plot_constellation`: the LUT on labelled I/Q axes, the unit-energy circle, bit
  labels of the messages when M <= 16. For n > 1, one small panel per channel use and a
  panel that tells what the code is worth: the distribution of the Euclidean distances
  between codewords (over all n uses), minimum distance marked, against the classical code
  of the same (k, n) when there is one.
- :func:`plot_received`: synchronized received symbols over the LUT points, per channel use
  when n > 1 (not all uses overlaid into one cloud), with the error vectors to the nearest
  codeword and their EVM.
- :func:`plot_training_curve`: loss and running BLER on separate labelled axes, the
  training Eb/N0 range stated and the receiver-only phase shaded.

matplotlib is imported inside each function, so importing this module stays cheap.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from aeradio.core.config import TrainingConfig

#: Resolution of the PNGs (dots per inch).
DPI = 150
#: Most messages labelled with their bits in a constellation.
MAX_LABELLED_MESSAGES = 16
#: Codewords whose pairwise distances are histogrammed at most (a seeded sample beyond).
MAX_DISTANCE_CODEWORDS = 1024
#: Styles of the simulated curves, in order: (colour, marker, line style, filled, marker size).
CURVE_STYLES = (
    ("C0", "o", "-", True, 6),
    ("C1", "s", "--", False, 9),
    ("C2", "^", ":", False, 8),
    ("C3", "D", "-.", False, 7),
    ("C4", "v", (0, (5, 1.5)), False, 8),
    ("C5", "P", (0, (1, 1)), True, 7),
)
#: Line styles of the exact (analytic) curves, in order.
ANALYTIC_STYLES = ("-", (0, (6, 2, 1, 2)), (0, (2, 2)))


@dataclass(frozen=True)
class BlerCurve:
    """One BLER curve.

    ``bler[i]`` at ``ebn0_db[i]`` (None: not simulated); ``ci[i]`` its 95 % interval
    ``(low, high)`` (None for all points of an exact curve); ``analytic``: an exact formula.
    """

    label: str
    ebn0_db: Sequence[float]
    bler: Sequence[float | None]
    ci: Sequence[Sequence[float] | None] | None = None
    analytic: bool = False


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str | Path) -> Path:
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    _pyplot().close(fig)
    return Path(path)


# ---- BLER ---------------------------------------------------------------------------------
def plot_bler(curves: Sequence[BlerCurve], path: str | Path, title: str = "") -> Path:
    """BLER vs Eb/N0 (dB), log scale, with 95 % Wilson intervals (see the module docstring)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    simulated = analytic = 0
    handles: list[Any] = []  # legend entries in drawing order (matplotlib puts plain lines first)
    bound = None
    for curve in sorted(curves, key=lambda c: c.analytic):  # simulated first
        if curve.analytic:
            style = ANALYTIC_STYLES[analytic % len(ANALYTIC_STYLES)]
            analytic += 1
            pts = [(x, y) for x, y in zip(curve.ebn0_db, curve.bler, strict=True) if y]
            if pts:
                handles += ax.semilogy(*zip(*pts, strict=True), color="k", lw=1.0, ls=style,
                                       label=curve.label, zorder=1)
            continue
        color, marker, ls, filled, size = CURVE_STYLES[simulated % len(CURVE_STYLES)]
        simulated += 1
        face = color if filled else "none"
        cis = curve.ci or [None] * len(curve.ebn0_db)
        xs, ys, lo, hi, bounds = [], [], [], [], []
        for x, y, ci in zip(curve.ebn0_db, curve.bler, cis, strict=True):
            if y is None:
                continue
            if y > 0:
                xs.append(x)
                ys.append(y)
                lo.append(y - ci[0] if ci else 0.0)
                hi.append(ci[1] - y if ci else 0.0)
            elif ci is not None and ci[1] > 0:
                bounds.append((x, ci[1]))
        if xs:
            handles.append(ax.errorbar(xs, ys, yerr=[lo, hi], color=color, marker=marker, ls=ls, lw=1.4,
                                       ms=size, mfc=face, mew=1.4, capsize=3, elinewidth=0.9,
                                       label=curve.label, zorder=3))
        if bounds:
            (marks,) = ax.semilogy(*zip(*bounds, strict=True), ls="none", marker="v", ms=size, mfc="none",
                                   mec=color, label="no error: 95 % upper bound", zorder=3)
            bound = bound or marks
    ax.set_yscale("log")
    ax.set_xlabel(r"$E_b/N_0$ (dB)")
    ax.set_ylabel("block error rate (BLER)")
    ax.grid(which="major", alpha=0.35)
    ax.grid(which="minor", alpha=0.12)
    handles += [bound] if bound is not None else []
    ax.legend(handles=handles, fontsize=8, loc="lower left", framealpha=0.9)
    ax.set_title(title, fontsize=10)
    ax.text(0.99, 0.99, "error bars: 95 % Wilson intervals", transform=ax.transAxes, ha="right", va="top",
            fontsize=7, color="0.35")
    return _save(fig, path)


# ---- constellations -------------------------------------------------------------------------
def _bits(m: int, k: int) -> str:
    """Message ``m``'s k-bit label, most significant bit first.

    >>> _bits(5, 4)
    '0101'
    """
    return format(m, f"0{k}b")


def _iq_axes(ax: Any, lim: float, *, xlabel: bool = True, ylabel: bool = True) -> None:
    """Square I/Q axes of half-width ``lim`` with the unit-energy circle."""
    from matplotlib.patches import Circle

    ax.add_patch(Circle((0, 0), 1.0, fill=False, ls="--", lw=0.7, color="0.55", zorder=0))
    ax.axhline(0, color="0.8", lw=0.6, zorder=0)
    ax.axvline(0, color="0.8", lw=0.6, zorder=0)
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.grid(alpha=0.25)
    if xlabel:
        ax.set_xlabel("in-phase I")
    if ylabel:
        ax.set_ylabel("quadrature Q")


def _label_points(ax: Any, points: np.ndarray, k: int, fontsize: float = 7) -> None:
    """Each point's message bits, just outside the point (away from the origin)."""
    for m, p in enumerate(points):
        direction = p / abs(p) if abs(p) > 1e-6 else 1j
        ax.annotate(_bits(m, k), (p.real, p.imag), xytext=(9 * direction.real, 9 * direction.imag),
                    textcoords="offset points", ha="center", va="center", fontsize=fontsize, color="0.15")


def _use_grid(plt: Any, panels: int, size: float) -> tuple[Any, list[Any]]:
    """A figure of ``panels`` small panels, at most 4 per row; unused ones hidden."""
    cols = min(panels, 4)
    rows = math.ceil(panels / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols, size * rows), squeeze=False)
    flat = list(axes.flat)
    for ax in flat[panels:]:
        ax.axis("off")
    return fig, flat[:panels]


def codeword_distances(lut: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
    """Euclidean distances between all pairs of rows of ``lut [M, n]`` (over the n uses),
    float64 ``[P]``; a seeded sample of :data:`MAX_DISTANCE_CODEWORDS` rows when M is larger.

    >>> codeword_distances(np.array([[1], [-1], [1j]])).round(3).tolist()
    [2.0, 1.414, 1.414]
    """
    x = np.asarray(lut, np.complex128)
    if len(x) > MAX_DISTANCE_CODEWORDS:
        rng = rng or np.random.default_rng(0)
        x = x[rng.choice(len(x), MAX_DISTANCE_CODEWORDS, replace=False)]
    gram = x @ x.conj().T
    energy = np.real(np.diag(gram))
    d2 = energy[:, None] + energy[None, :] - 2 * gram.real
    i, j = np.triu_indices(len(x), 1)
    return np.sqrt(np.maximum(d2[i, j], 0.0))


def _distance_panel(ax: Any, lut: np.ndarray, reference: dict[str, np.ndarray]) -> None:
    """The distance spectrum's low tail: the mean number of codewords within distance d of a
    codeword, against d (log), for ``lut`` and each reference LUT; what sets the BLER at
    high SNR (the union bound): the minimum distance and how many neighbours sit there."""
    sets = [("this code", lut, "C0", "-")]
    sets += [(name, ref, f"C{i + 1}", "--") for i, (name, ref) in enumerate(reference.items())]
    tails = []
    for name, x, color, ls in sets:
        d = np.sort(codeword_distances(x))
        words = min(len(x), MAX_DISTANCE_CODEWORDS)
        neighbours = 2 * np.arange(1, len(d) + 1) / words  # each pair counts for both codewords
        dmin = float(d[0])
        at_dmin = float(np.sum(d < dmin * (1 + 1e-6))) * 2 / words
        ax.step(d, neighbours, where="post", color=color, ls=ls, lw=1.5,
                label=f"{name}: $d_{{min}}$ = {dmin:.2f}, {at_dmin:.2g} neighbours at $d_{{min}}$ (mean)")
        ax.axvline(dmin, color=color, ls=":", lw=0.9)
        tails.append(d)
    ax.set_yscale("log")
    ax.set_xlim(0.9 * min(float(d[0]) for d in tails), max(float(np.median(d)) for d in tails))
    ax.set_ylim(top=1e3)
    ax.set_xlabel("Euclidean distance d (all n uses)")
    ax.set_ylabel("codewords within d\n(mean per codeword)")
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(which="major", alpha=0.3)
    ax.grid(which="minor", alpha=0.1)
    ax.set_title("distance spectrum of the code (low tail: what sets the BLER at high SNR)", fontsize=9)


def plot_constellation(
    lut: np.ndarray,
    path: str | Path,
    title: str = "",
    *,
    reference: dict[str, np.ndarray] | None = None,
    bit_labels: bool | None = None,
) -> Path:
    """The LUT ``[M, n]`` complex (see the module docstring). ``reference``: classical LUTs
    of the same shape to compare codeword distances with (n > 1); by default those of
    :func:`aeradio.learning.baselines.reference_luts`. ``bit_labels``: write each point's
    bits (by default when M <= 16; a bit-wise model's 64 learned labels on a larger figure)."""
    plt = _pyplot()
    M, n = lut.shape
    k = int(round(math.log2(M)))
    lim = 1.25 * max(float(np.max(np.abs(lut))) if lut.size else 1.0, 1.0)
    label = M <= MAX_LABELLED_MESSAGES if bit_labels is None else bit_labels
    if n == 1:
        crowded = label and M > MAX_LABELLED_MESSAGES
        fig, ax = plt.subplots(figsize=(7.5, 7.5) if crowded else (4.8, 4.8))
        ax.scatter(lut[:, 0].real, lut[:, 0].imag, s=28 if M <= 64 else 10, color="C0", zorder=3)
        _iq_axes(ax, lim)
        if label:
            _label_points(ax, lut[:, 0], k, fontsize=5.5 if crowded else 7)
        ax.set_title(title or f"learned constellation, M = {M} (k = {k}), n = 1", fontsize=10)
        return _save(fig, path)
    if reference is None:
        from aeradio.learning.baselines import reference_luts

        reference = reference_luts(k, n)
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    fig = plt.figure(figsize=(2.7 * cols + 0.6, 2.7 * rows + 3.0))
    grid = fig.add_gridspec(rows + 1, cols, height_ratios=[1.0] * rows + [1.15])
    for u in range(n):
        ax = fig.add_subplot(grid[u // cols, u % cols])
        ax.scatter(lut[:, u].real, lut[:, u].imag, s=12 if M > 64 else 22, color="C0", alpha=0.8, zorder=3)
        _iq_axes(ax, lim, xlabel=u + cols >= n, ylabel=u % cols == 0)
        if label:
            _label_points(ax, lut[:, u], k)
        ax.set_title(f"channel use {u + 1} of {n}", fontsize=9)
    _distance_panel(fig.add_subplot(grid[rows, :]), lut, reference)
    heading = f"learned code, M = {M} messages (k = {k} bits) over n = {n} complex uses"
    fig.suptitle(title or heading, fontsize=11)
    fig.tight_layout()
    return _save(fig, path)


def _error_vector_panel(ax: Any, y: np.ndarray, lut: np.ndarray) -> None:
    """Received blocks minus their nearest codeword (all uses), with the EVM: the noise and
    distortion the receiver sees, which per-use clouds of M points hide."""
    from aeradio.dsp.detection import ml_detect

    nearest = lut[ml_detect(y, lut)]
    e = (y - nearest).reshape(-1)
    error_power = max(float(np.mean(np.abs(e) ** 2)), 1e-30)
    evm_db = 10 * math.log10(error_power / float(np.mean(np.abs(nearest) ** 2)))
    rms = math.sqrt(error_power)
    ax.scatter(e.real, e.imag, s=2, alpha=0.3, color="C2", rasterized=True)
    from matplotlib.patches import Circle

    ax.add_patch(Circle((0, 0), rms, fill=False, color="k", lw=1.0, ls="--", label=f"RMS {rms:.2f}"))
    lim = 4.5 * rms
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.grid(alpha=0.25)
    ax.set_xlabel("error, in-phase")
    ax.legend(loc="upper right", fontsize=7)
    ax.set_title(f"error to nearest codeword, EVM {evm_db:.1f} dB", fontsize=9)


def plot_received(symbols: np.ndarray, lut: np.ndarray, path: str | Path, title: str = "") -> Path:
    """Synchronized received symbols (``[N]`` complex in block order, n uses per block, as
    ``rx --constellation`` saves them) over the LUT's points; for n > 1 one panel per channel
    use and one of the error vectors to the nearest codeword (decision-directed EVM)."""
    plt = _pyplot()
    M, n = lut.shape
    k = int(round(math.log2(M)))
    y = np.asarray(symbols).reshape(-1)
    y = y[: len(y) // n * n].reshape(-1, n)
    lim = 1.2 * float(np.percentile(np.abs(y), 99.5)) if y.size else 1.5
    lim = max(lim, 1.15 * float(np.max(np.abs(lut))))
    if n == 1:
        fig, ax = plt.subplots(figsize=(5, 5))
        axes = [ax]
    else:
        fig, axes = _use_grid(plt, n + 1, 2.8)
    cols = min(len(axes), 4)
    for u, ax in enumerate(axes[:n]):
        ax.scatter(y[:, u].real, y[:, u].imag, s=2, alpha=0.3, color="C0", rasterized=True,
                   label="received (after sync)")
        ax.scatter(lut[:, u].real, lut[:, u].imag, s=14 if M <= 64 else 5, c="C3", marker="x", lw=1,
                   label="transmitted (LUT)")
        _iq_axes(ax, lim, xlabel=n == 1 or u + cols >= n + 1, ylabel=u % cols == 0)
        if M <= MAX_LABELLED_MESSAGES:
            _label_points(ax, lut[:, u], k)
        if n > 1:
            ax.set_title(f"channel use {u + 1} of {n}", fontsize=9)
    axes[0].legend(loc="upper right", fontsize=7, markerscale=2)
    heading = title or f"received constellation, {len(y) * n} symbols ({len(y)} blocks)"
    if n == 1:
        axes[0].set_title(heading, fontsize=10)
    else:
        if len(y):
            _error_vector_panel(axes[n], y, lut)
        fig.suptitle(heading, fontsize=11)
        fig.tight_layout()
    return _save(fig, path)


# ---- training -------------------------------------------------------------------------------
def plot_training_curve(
    history: list[dict[str, float]], path: str | Path, title: str = "", training: TrainingConfig | None = None
) -> Path:
    """Running loss (nats) and running BLER against the step, on two labelled axes.

    ``training`` (the config trained with) adds the Eb/N0 range, channel and batch to the
    title and shades the receiver-only phase.
    """
    plt = _pyplot()
    fig, (ax_loss, ax_bler) = plt.subplots(2, 1, figsize=(6.4, 5.2), sharex=True)
    steps = [h["step"] for h in history]
    ax_loss.semilogy(steps, [h["loss"] for h in history], color="C0", lw=1.5)
    ax_loss.set_ylabel("cross-entropy loss (nats)")
    ax_bler.semilogy(steps, [max(h["bler"], 1e-6) for h in history], color="C3", lw=1.5)
    ax_bler.set_ylabel("running BLER")
    ax_bler.set_xlabel("training step")
    subtitle = ""
    if training is not None:
        subtitle = (f"{training.channel}, $E_b/N_0$ drawn per block from {training.ebn0_db_min:g} to "
                    f"{training.ebn0_db_max:g} dB, batch {training.batch_size}; "
                    "running values: exponential average over steps")
        receiver_only = int(round(training.receiver_only_fraction * training.steps))
        if receiver_only and steps:
            start = training.steps - receiver_only
            for ax in (ax_loss, ax_bler):
                ax.axvspan(start, training.steps, color="0.9", zorder=0)
            ax_loss.text(start + 0.01 * training.steps, 0.95, "receiver only\n(LUT frozen)",
                         transform=ax_loss.get_xaxis_transform(), va="top", fontsize=7, color="0.3")
    for ax in (ax_loss, ax_bler):
        ax.grid(which="major", alpha=0.35)
        ax.grid(which="minor", alpha=0.12)
    fig.suptitle(title or "training", fontsize=11)
    if subtitle:
        ax_loss.set_title(subtitle, fontsize=7.5, color="0.3")
    fig.tight_layout()
    return _save(fig, path)
