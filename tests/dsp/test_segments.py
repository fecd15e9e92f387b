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


def test_a_window_of_a_segment_is_the_segments_slice():
    # What the timing track derotates from the buffer for one group: any window of a segment,
    # reaching before the buffer, before the segment or beyond its end (zeros there), is the
    # cut segment's slice bit for bit.
    from aeradio.dsp.segments import _derotate_into, _segment_phasors

    rng = np.random.default_rng(3)
    x = (rng.standard_normal(5000) + 1j * rng.standard_normal(5000)).astype(np.complex64)
    length = 3 * PHASOR_BLOCK * RESYNC_BLOCKS // 2 + 7
    fine, block = np.empty(PHASOR_BLOCK, np.complex64), np.empty(-(-length // PHASOR_BLOCK), np.complex64)
    for start in (-130, 0, 1234, len(x) - length):
        cfo = float(rng.uniform(-0.03, 0.03))
        seg = derotated_segments(x, np.array([start]), np.array([cfo]), length)[0]
        padded = np.concatenate([np.zeros(200, np.complex64), seg, np.zeros(200, np.complex64)])
        _segment_phasors(cfo, fine, block)
        windows = ((-200, 150), (-20, 300), (0, length), (700, 1), (length - 50, 250), (length + 3, 9))
        for first, count in windows:
            out = np.full(count, np.nan, np.complex64)
            _derotate_into(x, start, length, first, count, fine, block, out)
            expected = padded[200 + first : 200 + first + count]
            assert np.array_equal(out.view(np.uint32), expected.view(np.uint32)), (start, first, count)
