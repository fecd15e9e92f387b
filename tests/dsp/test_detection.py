import numpy as np

from aeradio.dsp import detection
from aeradio.dsp.detection import ml_detect


def test_ml_detect_matches_brute_force(rng):
    lut = (rng.standard_normal((64, 3)) + 1j * rng.standard_normal((64, 3))).astype(np.complex64)
    y = (
        lut[rng.integers(0, 64, 5000)]
        + 0.8 * (rng.standard_normal((5000, 3)) + 1j * rng.standard_normal((5000, 3)))
    ).astype(np.complex64)
    brute = np.argmin(np.sum(np.abs(y[:, None, :].astype(np.complex128) - lut[None]) ** 2, axis=2), axis=1)
    got = ml_detect(y, lut)
    assert got.dtype == np.int64
    # float32 scores may flip near-exact ties only.
    assert np.mean(got != brute) < 1e-3


def test_ml_detect_chunks(monkeypatch, rng):
    lut = (rng.standard_normal((16, 2)) + 1j * rng.standard_normal((16, 2))).astype(np.complex64)
    labels = rng.integers(0, 16, 1000)
    monkeypatch.setattr(detection, "CHUNK_BLOCKS", 7)
    assert np.array_equal(ml_detect(lut[labels], lut), labels)
