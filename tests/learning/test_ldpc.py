"""The compiled sum-product decoders of aeradio.learning.ldpc against the ldpc package's."""

import hashlib
import json
from pathlib import Path

import numba
import numpy as np
import pytest

from aeradio.core.config import CodeConfig
from aeradio.learning.bitwise import app_llrs, bits_to_messages, qam_gray_lut
from aeradio.learning.ldpc import DEFAULT_DECODER, LANE_GROUP, LANES, Ldpc5GCode, _exp, _log, _negative_bits

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


def _decode_each(code: Ldpc5GCode, llrs: np.ndarray, decoder: str) -> tuple[np.ndarray, ...]:
    """Every codeword decoded alone: (bits, parity_ok, iterations)."""
    alone = []
    for i in range(len(llrs)):
        bits, ok = code.decode(llrs[i : i + 1], decoder)
        alone.append((bits[0], ok[0], code.iterations[0]))
    return tuple(np.array([a[k] for a in alone]) for k in range(3))


def test_batch_decodes_as_one_codeword_at_a_time(code):
    """More codewords than lanes, converging after different numbers of iterations (clean
    ones in one, noisy ones later, some never): lanes take new codewords as theirs finish,
    the tail moves busy lanes down, and nothing of a lane's previous codeword leaks into
    the next. Every lane runs in the vectorized loops (a multiple of LANE_GROUP of them are
    computed), so each codeword's bits, verdict and iteration count are exactly those of
    decoding it alone."""
    info, llrs = qam_llrs(code, 6.0, LANES + 13, seed=8)  # not a multiple of LANES nor of LANE_GROUP
    clean = np.where(code.encode(info[:6]) == 1, 2.0, -2.0).astype(np.float32)
    llrs = np.concatenate([llrs[:10], clean, llrs[10:]])  # 0 or 1 iteration among the noisy ones
    assert len(llrs) % LANES and len(llrs) % LANE_GROUP
    for decoder in ("flooding", "layered"):
        bits, ok = code.decode(llrs, decoder)
        iterations = code.iterations.copy()
        alone_bits, alone_ok, alone_iterations = _decode_each(code, llrs, decoder)
        assert np.array_equal(bits, alone_bits) and np.array_equal(ok, alone_ok)
        assert np.array_equal(iterations, alone_iterations)
        assert not ok.all() and ok.any()  # both kinds of outcome were exercised
        assert iterations.min() <= 1 and iterations.max() == TUTORIAL_CODE.bp_iterations
        assert len(np.unique(iterations)) >= 6  # lanes finish at many different iterations
        order = np.random.default_rng(3).permutation(len(llrs))  # other lanes, other neighbours
        shuffled_bits, shuffled_ok = code.decode(llrs[order], decoder)
        assert np.array_equal(shuffled_bits, bits[order]) and np.array_equal(shuffled_ok, ok[order])
        assert np.array_equal(code.iterations, iterations[order])


@pytest.mark.parametrize("count", [1, 3, LANE_GROUP + 1])
def test_short_batches_decode_as_within_a_full_one(code, count):
    """Fewer codewords than lanes (the idle lanes of the last group hold zeros): the same
    bits, verdicts and iterations as those codewords decoded among LANES + 8 others."""
    _, llrs = qam_llrs(code, 6.0, LANES + 8 + count, seed=20 + count)
    full_bits, full_ok = code.decode(llrs)
    full_iterations = code.iterations[-count:].copy()
    bits, ok = code.decode(llrs[-count:])
    assert np.array_equal(bits, full_bits[-count:]) and np.array_equal(ok, full_ok[-count:])
    assert np.array_equal(code.iterations, full_iterations)
    assert full_iterations.min() >= 1  # noisy codewords: BP ran on every one


def test_negative_bits_is_the_mask_of_a_vector_compare():
    rng = np.random.default_rng(2)
    values = rng.normal(size=(5, 4 * LANE_GROUP)).astype(np.float32)
    values[0, :4] = [0.0, -0.0, 1e-38, -1e-38]  # -0.0 is not negative (as in `x < 0`)

    @numba.njit
    def masks(values):
        out = np.empty((values.shape[0], values.shape[1] // LANE_GROUP), np.uint64)
        for j in range(values.shape[0]):
            for g in range(out.shape[1]):
                out[j, g] = _negative_bits(values, j, g * LANE_GROUP)
        return out

    expected = [[sum(1 << k for k in range(LANE_GROUP) if values[j, g * LANE_GROUP + k] < 0)
                 for g in range(4)] for j in range(5)]
    assert masks(values).tolist() == expected


#: Per-codeword digests of the flooding decoder's output before it was restructured (the
#: kernel of commit 8050094: 32 lanes, a syndrome pass per lane and check, q beside each
#: message), on the draws of :func:`qam_llrs`; made on x86-64 with AVX-512 (256-bit vectors).
REFERENCE = Path(__file__).parent / "data" / "ldpc_flooding_reference.json"


def _digests(bits: np.ndarray, ok: np.ndarray, iterations: np.ndarray) -> list[str]:
    return [hashlib.sha256(np.packbits(b).tobytes() + bytes([int(o), int(i)])).hexdigest()[:8]
            for b, o, i in zip(bits, ok, iterations, strict=True)]


@pytest.mark.parametrize("ebn0_db", ["6.3", "6.5"])
def test_flooding_decodes_as_before(code, ebn0_db):
    """The default decoder's bits, parity verdict and iteration count of every codeword at
    the operating point, against the kernel before it was restructured: identical here.
    (The vectorized division is an approximate reciprocal refined by a Newton step, whose
    rounding may differ on another instruction set: up to one codeword in a thousand may
    then differ, as in the ldpc package's comparison.)"""
    ref = json.loads(REFERENCE.read_text())[ebn0_db]
    info, llrs = qam_llrs(code, float(ebn0_db), ref["codewords"], seed=ref["seed"])
    bits, ok = code.decode(llrs)
    same = np.array(_digests(bits, ok, code.iterations)) == np.array(ref["digests"].split())
    assert same.mean() >= 0.999
    assert np.any(bits != info, axis=1).sum() == ref["wrong"] and (~ok).sum() == ref["failed"]


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
