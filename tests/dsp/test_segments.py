"""The compiled segment cut-and-derotate against its numpy model."""

from __future__ import annotations

import numpy as np
import pytest

from aeradio.dsp.segments import PHASOR_BLOCK, RESYNC_BLOCKS, derotated_segments, derotated_segments_reference


@pytest.mark.parametrize("length", [1, PHASOR_BLOCK - 1, 3 * RESYNC_BLOCKS * PHASOR_BLOCK + 5])
def test_segments_match_the_model(length):
    rng = np.random.default_rng(length)
    x = (rng.standard_normal(20_000) + 1j * rng.standard_normal(20_000)).astype(np.complex64)
    starts = np.concatenate([[-length - 3, -2, 0], rng.integers(0, len(x) - length, 40), [len(x) - length]])
    cfo = rng.uniform(-0.03, 0.03, len(starts))
    fast = derotated_segments(x, starts, cfo, length)
    ref = derotated_segments_reference(x, starts, cfo, length)
    assert fast.dtype == np.complex64 and fast.shape == (len(starts), length)
    np.testing.assert_allclose(fast, ref, rtol=0, atol=2e-6 * float(np.max(np.abs(x))))
    assert not fast[0].any() and not fast[1, :2].any()  # before the buffer: zeros
    assert np.all(fast[2:] != 0)


def test_a_segment_beyond_the_buffer_is_refused():
    with pytest.raises(ValueError, match="beyond the buffer of 10"):
        derotated_segments(np.zeros(10, np.complex64), np.array([5]), np.array([0.0]), 6)
