"""The compiled sum-product decoders of aeradio.learning.ldpc against the ldpc package's."""

import numba
import numpy as np
import pytest

from aeradio.core.config import CodeConfig
from aeradio.learning.bitwise import app_llrs, bits_to_messages, qam_gray_lut
from aeradio.learning.ldpc import DEFAULT_DECODER, LANES, Ldpc5GCode, _exp, _log

#: Sionna's tutorial code: rate 1/2, n = 1500, 20 iterations, 64-QAM (k = 6).
TUTORIAL_CODE = CodeConfig(rate=0.5, codeword_bits=1500, bp_iterations=20)
K_BITS = 6


@pytest.fixture(scope="module")
def code() -> Ldpc5GCode:
    return Ldpc5GCode(TUTORIAL_CODE, bits_per_symbol=K_BITS)


def qam_llrs(code: Ldpc5GCode, ebn0_db: float, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` random codewords on 64-QAM + Gray + APP at ``ebn0_db`` per information bit:
    (information bits [count, K], LLRs [count, N]), as the coded.baseline benchmark draws them."""
    rng = np.random.default_rng(seed)
    info = rng.integers(0, 2, (count, code.info_bits), dtype=np.uint8)
    words = code.encode(info)
    qam = qam_gray_lut(K_BITS)
    noise_var = 1.0 / (2.0 * TUTORIAL_CODE.rate * K_BITS * 10.0 ** (ebn0_db / 10.0))
    sym = qam[bits_to_messages(words.reshape(-1, K_BITS))]
    y = sym + np.sqrt(noise_var) * (rng.normal(size=sym.shape) + 1j * rng.normal(size=sym.shape))
    return info, app_llrs(y.astype(np.complex64), qam, noise_var).reshape(count, code.codeword_bits)


@numba.njit(fastmath=True, error_model="numpy")
def _exp_log_vectorized(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``_exp(x)`` and ``_log(y)`` in loops numba vectorizes, as the decoder runs them."""
    ex, lg = np.empty_like(x), np.empty_like(y)
    for i in range(x.size):
        ex[i] = _exp(x[i])
    for i in range(y.size):
        lg[i] = _log(y[i])
    return ex, lg


def test_vectorizable_exp_and_log_are_accurate_on_their_whole_ranges():
    """exp over [-87, 88] (what a float32 holds without denormals), log over every positive
    normal float32, both vectorized and scalar, against numpy in float64."""
    x = np.concatenate([np.linspace(-87.0, 88.0, 400_001), [-87.0, -30.0, 0.0, 88.0]]).astype(np.float32)
    y = np.concatenate([np.geomspace(1.2e-38, 3.4e38, 400_001), np.linspace(0.5, 2.0, 100_001),
                        [1.0, np.finfo(np.float32).tiny, np.finfo(np.float32).max]]).astype(np.float32)
    exact_exp, exact_log = np.exp(x.astype(np.float64)), np.log(y.astype(np.float64))
    ex, lg = _exp_log_vectorized(x, y)
    assert np.max(np.abs(ex - exact_exp) / exact_exp) < 4e-7
    assert np.max(np.abs(lg - exact_log) / (1 + np.abs(exact_log))) < 2e-7
    assert lg[np.flatnonzero(y == 1.0)[0]] == 0.0
    scalar = (np.array([_exp(v) for v in x[::97]], np.float64),
              np.array([_log(v) for v in y[::97]], np.float64))
    assert np.max(np.abs(scalar[0] - exact_exp[::97]) / exact_exp[::97]) < 4e-7
    assert np.max(np.abs(scalar[1] - exact_log[::97]) / (1 + np.abs(exact_log[::97]))) < 2e-7


def test_clean_codewords_decode_in_one_iteration(code):
    """One iteration at most: the 2Z punctured systematic bits (LLR 0) are unknown before it."""
    rng = np.random.default_rng(4)
    info = rng.integers(0, 2, (5, code.info_bits), dtype=np.uint8)
    llrs = np.where(code.encode(info) == 1, 2.0, -2.0).astype(np.float32)
    for decoder in ("flooding", "layered"):
        bits, ok = code.decode(llrs, decoder)
        assert np.array_equal(bits, info) and ok.all()
        assert np.all(code.iterations <= 1)


@pytest.mark.parametrize("decoder", ["flooding", "layered"])
def test_flipped_bits_are_corrected(code, decoder):
    rng = np.random.default_rng(5)
    info = rng.integers(0, 2, (4, code.info_bits), dtype=np.uint8)
    llrs = np.where(code.encode(info) == 1, 3.0, -3.0).astype(np.float32)
    flipped = np.stack([rng.choice(code.codeword_bits, 40, replace=False) for _ in range(4)])
    np.put_along_axis(llrs, flipped, -np.take_along_axis(llrs, flipped, 1), 1)
    assert np.all(np.count_nonzero((llrs > 0) != code.encode(info).astype(bool), axis=1) == 40)
    bits, ok = code.decode(llrs, decoder)
    assert np.array_equal(bits, info) and ok.all()
    assert np.all(code.iterations >= 1)


@pytest.mark.parametrize("decoder", ["flooding", "layered"])
def test_parity_failure_is_reported(code, decoder):
    rng = np.random.default_rng(6)
    noise = rng.normal(0, 2.0, (6, code.codeword_bits)).astype(np.float32)
    bits, ok = code.decode(noise, decoder)
    assert not ok.any() and np.all(code.iterations == TUTORIAL_CODE.bp_iterations)
    info, llrs = qam_llrs(code, 5.5, 60, seed=7)  # below the waterfall: many failures
    bits, ok = code.decode(llrs, decoder)
    wrong = np.any(bits != info, axis=1)
    assert wrong.sum() >= 10
    assert not np.any(wrong & ok)  # every wrong codeword is flagged (none undetected here)
    assert np.all(code.iterations[~ok] == TUTORIAL_CODE.bp_iterations)  # a failure ran them all


def test_batch_decodes_as_one_codeword_at_a_time(code):
    """More codewords than lanes: lanes take new codewords as theirs finish, and nothing of
    a lane's previous codeword leaks into the next. (Alone, a codeword runs in the scalar
    remainder of the lane loops, whose division is exact where the vector one is not: the
    bits of a codeword that never converges may differ in a few places, so those are only
    compared as failures.)"""
    info, llrs = qam_llrs(code, 6.0, LANES + 8, seed=8)
    for decoder in ("flooding", "layered"):
        bits, ok = code.decode(llrs, decoder)
        alone = [code.decode(llrs[i : i + 1], decoder) for i in range(len(llrs))]
        alone_bits, alone_ok = np.concatenate([a[0] for a in alone]), np.concatenate([a[1] for a in alone])
        assert np.array_equal(ok, alone_ok)
        assert np.array_equal(bits[ok], alone_bits[ok])
        assert not ok.all() and ok.any()  # both kinds of outcome were exercised


def test_iterations_are_bounded_by_the_config():
    short = Ldpc5GCode(CodeConfig(rate=0.5, codeword_bits=1500, bp_iterations=3), bits_per_symbol=K_BITS)
    _, llrs = qam_llrs(short, 6.0, 10, seed=9)
    short.decode(llrs, "flooding")
    assert short.iterations.max() == 3


def test_flooding_agrees_with_the_ldpc_package_at_the_operating_point(code):
    """64-QAM + Gray + APP at 6.3 dB (the baseline's lower point: more errors than 6.5 dB to
    compare): the default decoder loses the same codewords as the ldpc package's sum-product;
    the layered schedule loses fewer."""
    assert DEFAULT_DECODER == "flooding"
    info, llrs = qam_llrs(code, 6.3, 400, seed=10)
    ref_bits, ref_ok = code.decode(llrs, "ldpc")
    ref_wrong = np.any(ref_bits != info, axis=1)
    bits, ok = code.decode(llrs, "flooding")
    wrong = np.any(bits != info, axis=1)
    assert ref_wrong.sum() >= 4  # the point has errors to compare
    assert np.count_nonzero(wrong != ref_wrong) <= 2
    assert np.mean(np.all(bits == ref_bits, axis=1)) >= 0.97  # bit-identical, failures included
    assert np.mean(ok == ref_ok) >= 0.97
    layered, _ = code.decode(llrs, "layered")
    assert np.any(layered != info, axis=1).sum() <= wrong.sum()
