"""The repository documents itself: README and docs/ link only inside it, nothing points to
a design file outside it, and the chains follow the one impairment order of
docs/impairments.md."""

import re
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: Where code, comments and docs live.
SOURCES = ["aeradio", "tests", "benchmarks", "scripts", "configs", "docs"]
SUFFIXES = {".py", ".md", ".toml", ".sh", ".txt"}


def _text_files() -> list[Path]:
    files = [ROOT / "README.md", ROOT / "Makefile", ROOT / "pyproject.toml"]
    for top in SOURCES:
        files += [p for p in (ROOT / top).rglob("*") if p.suffix in SUFFIXES and p.is_file()]
    return files


def test_nothing_points_outside_the_repository():
    outside = re.compile(r"\.\./shared|DESIGN\.md|STYLE\.md")
    hits = [
        f"{p.relative_to(ROOT)}:{i}"
        for p in _text_files()
        if p != Path(__file__).resolve()
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if outside.search(line)
    ]
    assert not hits


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_relative_links_resolve(doc):
    text = doc.read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    for target in targets:
        if re.match(r"[a-z]+://", target):
            continue
        path, _, anchor = target.partition("#")
        dest = (doc.parent / path).resolve() if path else doc
        assert dest.is_file(), f"{doc.name}: broken link {target}"
        if anchor:
            headings = re.findall(r"^#+ (.+)$", dest.read_text(encoding="utf-8"), re.M)
            slugs = {re.sub(r"[^\w\- ]", "", h).strip().lower().replace(" ", "-") for h in headings}
            assert anchor in slugs, f"{doc.name}: no heading for #{anchor} in {dest.name}"


def test_simulator_and_training_channels_share_the_impairment_order():
    from aeradio.flowgraphs import channel_sim as cs
    from aeradio.learning.channels import STAGE_ORDER

    settings = cs.ChannelSettings(
        signal_power=0.25, noise_power=0.01, cfo_cps=1e-3, sco_ppm=5.0, delay_samples=2.5,
        multipath_taps=(1, 0.2j), iq_gain_db=0.5, iq_phase_deg=2.0, dc_offset=0.01,
        phase_noise_std_rad=1e-3, pa_rapp_p=3.0,
    )
    stages = [type(s).__name__ for s in cs.ChannelModel(settings, np.random.default_rng(0)).stages]
    # The impairments both model, as the simulator's stage and the training channel's name.
    shared = {"RappStage": "rapp", "MultipathStage": "multipath", "CfoStage": "cfo",
              "PhaseNoiseStage": "phasenoise", "AwgnStage": "awgn", "IqImbalanceStage": "iq"}
    simulator = [shared[s] for s in stages if s in shared]
    training = [n for n in STAGE_ORDER if n in shared.values()]
    assert simulator == training
    assert stages.index("AwgnStage") < stages.index("IqImbalanceStage") < stages.index("DcOffsetStage")
