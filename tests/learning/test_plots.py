"""The plots draw what a paper needs: error bars, distinct styles, labelled axes, bit labels,
per-use panels and codeword distances for n > 1, the training Eb/N0 range."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from aeradio.core.config import TrainingConfig
from aeradio.learning import plots
from aeradio.learning.baselines import hamming74_pair_lut, qpsk_lut
from aeradio.learning.evaluate import wilson_interval


@pytest.fixture
def figures(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The figures the plot functions save (still open, to inspect), PNGs written too."""
    saved: list[Any] = []
    real_save = plots._save

    def keep(fig: Any, path: str | Path) -> Path:
        saved.append(fig)
        fig.savefig(path, dpi=30)
        return Path(path)

    monkeypatch.setattr(plots, "_save", keep)
    yield saved
    import matplotlib.pyplot as plt

    for fig in saved:
        plt.close(fig)
    assert real_save  # restored by monkeypatch


def _curve(label: str, errors: list[int], blocks: int, **kw: Any) -> plots.BlerCurve:
    return plots.BlerCurve(label, [4.0, 5.0, 6.0], [e / blocks for e in errors],
                           [list(wilson_interval(e, blocks)) for e in errors], **kw)


def test_bler_plot_has_error_bars_distinct_styles_and_upper_bounds(
    figures: list[Any], tmp_path: Path
) -> None:
    curves = [
        _curve("neural", [200, 40, 0], 100_000),
        _curve("ML", [198, 41, 0], 100_000),
        _curve("QPSK", [210, 39, 2], 100_000),
        plots.BlerCurve("QPSK (analytic)", [4.0, 5.0, 6.0], [2e-3, 4e-4, 5e-5], analytic=True),
    ]
    plots.plot_bler(curves, tmp_path / "bler.png", title="t")
    assert (tmp_path / "bler.png").stat().st_size > 1000
    ax = figures[0].axes[0]
    assert ax.get_yscale() == "log" and "E_b/N_0" in ax.get_xlabel() and "BLER" in ax.get_ylabel()
    bars = ax.containers
    assert len(bars) == 3  # one errorbar container per simulated curve
    # The interval of the neural curve's first point is the Wilson interval.
    lo, hi = wilson_interval(200, 100_000)
    segments = bars[0].lines[2][0].get_segments()
    assert np.allclose(segments[0][:, 1], [lo, hi])
    lines = [c.lines[0] for c in bars]
    styles = {(ln.get_marker(), ln.get_linestyle(), ln.get_color()) for ln in lines}
    assert len(styles) == 3  # curves that coincide stay distinguishable
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "no error: 95 % upper bound" in labels and "QPSK (analytic)" in labels
    # The zero-error points are drawn at their upper bound, once labelled.
    bound = [ln for ln in ax.get_lines() if ln.get_label() == "no error: 95 % upper bound"][0]
    assert np.isclose(bound.get_ydata()[0], wilson_interval(0, 100_000)[1])


def test_small_constellation_has_iq_axes_and_bit_labels(figures: list[Any], tmp_path: Path) -> None:
    plots.plot_constellation(qpsk_lut(), tmp_path / "c.png")
    ax = figures[0].axes[0]
    assert ax.get_xlabel() == "in-phase I" and ax.get_ylabel() == "quadrature Q"
    assert sorted(t.get_text() for t in ax.texts) == ["00", "01", "10", "11"]


def test_large_n_constellation_has_a_panel_per_use_and_codeword_distances(
    figures: list[Any], tmp_path: Path, rng: np.random.Generator
) -> None:
    gaussian = rng.standard_normal((256, 7)) + 1j * rng.standard_normal((256, 7))
    lut = (gaussian / np.sqrt(2)).astype(np.complex64)
    plots.plot_constellation(lut, tmp_path / "c.png")
    visible = [ax for ax in figures[0].axes if ax.axison]
    assert len(visible) == 8  # 7 uses and the distance spectrum
    assert [ax.get_title() for ax in visible[:7]] == [f"channel use {u} of 7" for u in range(1, 8)]
    assert not visible[0].texts  # 256 messages: no bit labels
    legend = [t.get_text() for t in visible[7].get_legend().get_texts()]
    # The default reference for (k=8, n=7) is the Hamming pair.
    assert legend[0].startswith("this code: $d_{min}$") and legend[1].startswith("Hamming(7,4) I+Q")
    dmin = float(plots.codeword_distances(hamming74_pair_lut()).min())
    assert f"= {dmin:.2f}" in legend[1]


def test_codeword_distances_match_brute_force(rng: np.random.Generator) -> None:
    lut = rng.standard_normal((20, 3)) + 1j * rng.standard_normal((20, 3))
    brute = [np.linalg.norm(lut[i] - lut[j]) for i, j in itertools.combinations(range(20), 2)]
    assert np.allclose(plots.codeword_distances(lut), brute)


def test_received_plot_for_n_gt_1_is_per_use(
    figures: list[Any], tmp_path: Path, rng: np.random.Generator
) -> None:
    lut = hamming74_pair_lut()
    noise = rng.standard_normal((100, 7)) + 1j * rng.standard_normal((100, 7))
    y = lut[rng.integers(0, 256, 100)] + 0.1 * noise
    plots.plot_received(y.reshape(-1).astype(np.complex64), lut, tmp_path / "r.png")
    visible = [ax for ax in figures[0].axes if ax.axison]
    assert len(visible) == 8
    # Each use's panel holds that use's 100 received symbols ...
    assert all(len(ax.collections[0].get_offsets()) == 100 for ax in visible[:7])
    # ... and the last one the error vectors to the nearest codeword: noise 0.1 per real part.
    errors = visible[7].collections[0].get_offsets()
    assert len(errors) == 700 and abs(np.std(errors) - 0.1) < 0.01
    assert "EVM" in visible[7].get_title()


def test_training_plot_has_two_labelled_axes_and_the_ebn0_range(figures: list[Any], tmp_path: Path) -> None:
    history = [{"step": s, "loss": 1.0 / s, "bler": 0.5 / s} for s in range(10, 1001, 10)]
    cfg = TrainingConfig(ebn0_db_min=2.0, ebn0_db_max=4.0, steps=1000, receiver_only_fraction=0.2)
    plots.plot_training_curve(history, tmp_path / "t.png", title="x", training=cfg)
    loss, bler = figures[0].axes
    assert "loss (nats)" in loss.get_ylabel() and bler.get_ylabel() == "running BLER"
    assert bler.get_xlabel() == "training step"
    assert "from 2 to 4 dB" in loss.get_title()
    assert any("receiver only" in t.get_text() for t in loss.texts)
