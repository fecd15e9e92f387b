"""Monte Carlo block error rate with confidence intervals, genie-synchronized.

Blocks of random messages go through the LUT and a channel (the torch modules of
:mod:`aeradio.learning.channels`, so evaluation uses exactly the training noise model),
then through one or more decoders, until every decoder has seen ``target_errors`` block
errors or ``max_blocks`` blocks were sent.

>>> lo, hi = wilson_interval(10, 1000)
>>> round(lo, 4), round(hi, 4)
(0.0054, 0.0183)
>>> ebn0_at_bler([4.0, 5.0, 6.0], [1e-2, 1e-3, 1e-4], 1e-3)
5.0
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from aeradio.core.config import LinkConfig, TrainingConfig, parse_channel_spec
from aeradio.core.defaults import DEFAULT_EVAL_MAX_BLOCKS, DEFAULT_EVAL_SEED, DEFAULT_EVAL_TARGET_ERRORS
from aeradio.core.errors import ConfigError
from aeradio.core.units import noise_var_per_real
from aeradio.dsp.detection import ml_detect
from aeradio.learning.channels import build_channel

if TYPE_CHECKING:
    from aeradio.learning.bitwise import BitwiseRuntime
    from aeradio.learning.inference import ReceiverRuntime

#: A decoder: ``(y [B, n] complex64, noise_var float) -> [B] int64`` messages.
Decoder = Callable[[np.ndarray, float], np.ndarray]
#: Called after each batch of a simulation: ``(blocks so far, fewest errors of any decoder)``.
BatchCallback = Callable[[int, int], None]
#: Blocks simulated per batch.
BATCH_BLOCKS = 32768


def wilson_interval(errors: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of an error probability (95 % for z = 1.96)."""
    if trials <= 0:
        return 0.0, 1.0
    p = errors / trials
    denom = 1.0 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def ratio_interval(errors_a: int, trials_a: int, errors_b: int, trials_b: int, z: float = 1.96, *,
                   dispersion_a: float = 1.0, dispersion_b: float = 1.0) -> tuple[float, float, float] | None:
    """The ratio of two error probabilities ``(e_a / n_a) / (e_b / n_b)`` and its interval
    (95 % for z = 1.96; the log of the ratio taken as normal, standard error
    ``sqrt(D_a/e_a - 1/n_a + D_b/e_b - 1/n_b)``: Katz's interval of a risk ratio); None when
    either count has no error. ``D``: the variance of the error count over its mean (1 for
    independent trials; errors clustered in frames, a frame lost to synchronization, make it
    larger: measure it, e.g. over batches of frames, and pass it; values below 1 count as 1).

    >>> r, lo, hi = ratio_interval(400, 51200, 600, 51200)
    >>> round(r, 3), round(lo, 3), round(hi, 3)
    (0.667, 0.588, 0.756)
    >>> _, lo, hi = ratio_interval(400, 51200, 600, 51200, dispersion_a=4.0, dispersion_b=4.0)
    >>> round(lo, 3), round(hi, 3)
    (0.518, 0.858)
    """
    if errors_a <= 0 or errors_b <= 0 or trials_a <= 0 or trials_b <= 0:
        return None
    ratio = (errors_a / trials_a) / (errors_b / trials_b)
    se = math.sqrt(max(1.0, dispersion_a) / errors_a - 1 / trials_a
                   + max(1.0, dispersion_b) / errors_b - 1 / trials_b)
    return ratio, ratio * math.exp(-z * se), ratio * math.exp(z * se)


def _popcount(a: np.ndarray) -> np.ndarray:
    a = a.astype(np.uint64)
    count = np.zeros(a.shape, dtype=np.int64)
    while np.any(a):
        count += (a & np.uint64(1)).astype(np.int64)
        a >>= np.uint64(1)
    return count


def simulate_lut(
    lut: np.ndarray,
    decoders: dict[str, Decoder],
    ebn0_db: float,
    rate: float,
    *,
    channel: str = "awgn",
    channel_params: TrainingConfig | None = None,
    target_errors: int = DEFAULT_EVAL_TARGET_ERRORS,
    max_blocks: int = DEFAULT_EVAL_MAX_BLOCKS,
    generator: torch.Generator,
    batch_blocks: int = BATCH_BLOCKS,
    on_batch: BatchCallback | None = None,
) -> dict[str, dict[str, Any]]:
    """Send random rows of ``lut [M, n]`` through ``channel`` at ``ebn0_db``; score each decoder.

    ``rate``: bits per complex channel use (sets the noise per the convention of docs/contracts.md).
    Returns ``{decoder: {blocks, errors, bler, bler_ci, bit_errors, ber}}``; BLER is also
    the symbol error rate of the M-ary alphabet.
    """
    if "awgn" not in parse_channel_spec(channel):
        # Without the noise component the Eb/N0 argument would be silently ignored.
        raise ConfigError(f"evaluation channel must include 'awgn' (the noise set by Eb/N0), got {channel!r}")
    M = lut.shape[0]
    k = int(round(math.log2(M)))
    noise_var = noise_var_per_real(ebn0_db, rate)
    ch = build_channel(channel, channel_params or TrainingConfig())
    lut_t = torch.from_numpy(np.ascontiguousarray(lut, dtype=np.complex64))
    counts = {name: [0, 0] for name in decoders}  # block errors, bit errors
    blocks = 0
    while blocks < max_blocks and min(c[0] for c in counts.values()) < target_errors:
        batch = min(batch_blocks, max_blocks - blocks)
        labels = torch.randint(0, M, (batch,), generator=generator)
        with torch.no_grad():
            y = ch(lut_t[labels], torch.full((batch,), noise_var), generator).numpy()
        truth = labels.numpy()
        for name, decode in decoders.items():
            diff = decode(y, noise_var) ^ truth
            counts[name][0] += int(np.count_nonzero(diff))
            counts[name][1] += int(_popcount(diff[diff != 0]).sum())
        blocks += batch
        if on_batch is not None:
            on_batch(blocks, min(c[0] for c in counts.values()))
    out = {}
    for name, (errors, bit_errors) in counts.items():
        out[name] = {
            "blocks": blocks,
            "errors": errors,
            "bler": errors / blocks,
            "bler_ci": list(wilson_interval(errors, blocks)),
            "bit_errors": bit_errors,
            "ber": bit_errors / (blocks * k) if k else 0.0,
        }
    return out


class SweepProgress:
    """A progress bar on stderr over the points of a simulation, its postfix the blocks and
    errors of the point running; silent when disabled or when stderr is not a terminal.

    Use as a context manager; pass ``bar.point(label)`` as ``on_batch`` of each point.
    """

    def __init__(self, desc: str, points: int, target_errors: int, *, enabled: bool) -> None:
        from tqdm import tqdm

        self.target_errors = target_errors
        self.bar = tqdm(total=points, desc=desc, unit="point", leave=False, dynamic_ncols=True,
                        disable=None if enabled else True)  # None: off unless stderr is a terminal
        self._started = False

    def point(self, label: str) -> BatchCallback:
        """The ``on_batch`` callback of the next point (the previous one counts as done)."""
        if self._started:
            self.bar.update(1)
        self._started = True
        self.bar.set_postfix_str(label, refresh=False)

        def on_batch(blocks: int, errors: int) -> None:
            self.bar.set_postfix_str(f"{label}: {blocks:,} blocks, {errors}/{self.target_errors} errors")

        return on_batch

    def __enter__(self) -> SweepProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._started:
            self.bar.update(1)
        self.bar.close()


def ml_decoder(lut: np.ndarray) -> Decoder:
    """Minimum-distance detection of ``lut`` as a :data:`Decoder`."""
    return lambda y, noise_var: ml_detect(y, lut)


def neural_decoder(runtime: ReceiverRuntime | BitwiseRuntime) -> Decoder:
    """A loaded model's neural receiver as a :data:`Decoder` (fed the noise variance if it
    takes it; a bit-wise receiver decides the message whose bits are its LLRs' signs)."""
    return lambda y, noise_var: runtime.decide(y, noise_var if runtime.receiver.noise_input else None)


def load_block_runtime(model_dir: str | Path) -> ReceiverRuntime | BitwiseRuntime:
    """The verified receiver of an uncoded model, message-wise or bit-wise (its block
    decisions are what :func:`neural_decoder` scores); a coded model is evaluated per
    codeword (:mod:`aeradio.learning.coded`)."""
    from aeradio.core.model_dir import load_link_config, require_message_receiver
    from aeradio.learning.bitwise import BitwiseRuntime
    from aeradio.learning.inference import ReceiverRuntime

    config = load_link_config(model_dir)
    if config.code is not None:  # one line: a block-error figure of a coded model would mislead
        require_message_receiver(config, model_dir, "block-error evaluation")
    if config.model.bitwise:
        return BitwiseRuntime.load(model_dir)
    return ReceiverRuntime.load(model_dir)


def simulate_bler(
    model_dir: str | Path,
    ebn0_db: float,
    channel: str = "awgn",
    *,
    target_errors: int = DEFAULT_EVAL_TARGET_ERRORS,
    max_blocks: int = DEFAULT_EVAL_MAX_BLOCKS,
    seed: int = 0,
    ml: bool = True,
) -> dict[str, Any]:
    """BLER of a model directory's LUT + neural receiver at one Eb/N0, genie-synchronized.

    Returns ``{ebn0_db, channel, neural: {...}, ml: {...} | None}`` (see :func:`simulate_lut`).
    ML (minimum distance) detection is run only on ``channel == "awgn"``.
    """
    from aeradio.core.model_dir import load_lut

    runtime = load_block_runtime(model_dir)
    lut = load_lut(model_dir)
    return _simulate_model(
        runtime,
        lut,
        runtime.config,
        ebn0_db,
        channel,
        target_errors,
        max_blocks,
        torch.Generator().manual_seed(seed),
        ml,
    )


def _simulate_model(
    runtime: ReceiverRuntime | BitwiseRuntime,
    lut: np.ndarray,
    config: LinkConfig,
    ebn0_db: float,
    channel: str,
    target_errors: int,
    max_blocks: int,
    generator: torch.Generator,
    ml: bool,
    on_batch: BatchCallback | None = None,
) -> dict[str, Any]:
    """One Eb/N0 point of a loaded model: neural receiver and (on AWGN) ML detection."""
    decoders: dict[str, Decoder] = {"neural": neural_decoder(runtime)}
    with_ml = ml and channel == "awgn"
    if with_ml:
        decoders["ml"] = ml_decoder(lut)
    res = simulate_lut(
        lut,
        decoders,
        ebn0_db,
        config.model.rate,
        channel=channel,
        channel_params=config.training,
        target_errors=target_errors,
        max_blocks=max_blocks,
        generator=generator,
        on_batch=on_batch,
    )
    return {"ebn0_db": ebn0_db, "channel": channel, "neural": res["neural"], "ml": res.get("ml")}


def sweep_model(
    model_dir: str | Path,
    ebn0_db: Sequence[float],
    channel: str = "awgn",
    *,
    target_errors: int = DEFAULT_EVAL_TARGET_ERRORS,
    max_blocks: int = DEFAULT_EVAL_MAX_BLOCKS,
    seed: int = DEFAULT_EVAL_SEED,
    progress: bool = False,
) -> dict[str, Any]:
    """BLER curve of a model: the ``aeradio eval --json`` document (docs/contracts.md).

    ``progress``: a bar on stderr (points, and the blocks and errors of the point running),
    shown only when stderr is a terminal.
    """
    from aeradio.core.model_dir import load_lut

    runtime = load_block_runtime(model_dir)
    lut = load_lut(model_dir)
    generator = torch.Generator().manual_seed(seed)
    with SweepProgress(f"eval {runtime.config.name}", len(ebn0_db), target_errors, enabled=progress) as bar:
        points = [
            _simulate_model(
                runtime, lut, runtime.config, float(e), channel, target_errors, max_blocks, generator,
                ml=True, on_batch=bar.point(f"{float(e):g} dB"),
            )
            for e in ebn0_db
        ]
    return curve_document(runtime.config, channel, points)


def curve_document(config: LinkConfig, channel: str, points: list[dict[str, Any]]) -> dict[str, Any]:
    """Columns per docs/contracts.md: ebn0_db, bler, ml_bler, blocks, errors (+ CIs, SER, BER)."""

    def col(key: str, field: str) -> list[Any]:
        return [p[key][field] if p[key] is not None else None for p in points]

    return {
        "model": config.name,
        "k": config.model.k,
        "n": config.model.n,
        "channel": channel,
        "ebn0_db": [p["ebn0_db"] for p in points],
        "bler": col("neural", "bler"),
        "bler_ci": col("neural", "bler_ci"),
        "ser": col("neural", "bler"),
        "ber": col("neural", "ber"),
        "blocks": col("neural", "blocks"),
        "errors": col("neural", "errors"),
        "ml_bler": col("ml", "bler"),
        "ml_bler_ci": col("ml", "bler_ci"),
        "ml_errors": col("ml", "errors"),
    }


def few_errors_note(document: dict[str, Any], target_errors: int, limit_flag: str) -> str | None:
    """One line naming the points of an eval ``document`` that stopped at ``limit_flag``
    (the block or codeword bound) before ``target_errors`` errors, or None when none did:
    their BLER rests on fewer errors than asked for (its 95 % interval is in the document)."""
    points = zip(document["ebn0_db"], document["errors"], strict=True)
    short = [(e, n) for e, n in points if n < target_errors]
    if not short:
        return None
    named = ", ".join(f"{e:g} dB ({n})" for e, n in short)
    return (f"note: {len(short)} of {len(document['ebn0_db'])} points stopped at {limit_flag} short of "
            f"--target-errors {target_errors}: {named} errors of the neural receiver; their BLER rests on "
            "those (wider 95 % intervals), and the other columns' on as few or fewer")


def ebn0_at_bler(
    ebn0_db: Sequence[float], bler: Sequence[float | None], target: float = 1e-3
) -> float | None:
    """Eb/N0 (dB) where the curve crosses ``target``, by linear interpolation of log10(BLER).

    None when the curve does not cross the target. Points with BLER 0 are ignored.
    """
    pts = [(e, math.log10(b)) for e, b in zip(ebn0_db, bler, strict=True) if b]
    t = math.log10(target)
    for (e0, b0), (e1, b1) in zip(pts, pts[1:], strict=False):
        if b0 >= t >= b1 and b0 != b1:
            return e0 + (b0 - t) * (e1 - e0) / (b0 - b1)
    return None


#: Eb/N0 values a simulation takes (dB): past 30 dB no block error is ever seen, below -20 dB
#: every block errs (the channel simulator takes [-30, 100] for its own SNR).
EBN0_DB_RANGE = (-20.0, 30.0)


def parse_ebn0_range(spec: str) -> list[float]:
    """``"START:STOP:STEP"`` (inclusive of STOP) or a single value -> Eb/N0 list in dB.

    >>> parse_ebn0_range("0:2:0.5")
    [0.0, 0.5, 1.0, 1.5, 2.0]
    """
    parts = spec.split(":")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise ConfigError(f"--ebn0-db must be START:STOP:STEP in dB, got {spec!r}") from None
    if len(values) not in (1, 3):
        raise ConfigError(f"--ebn0-db must be START:STOP:STEP in dB, got {spec!r}")
    if not all(math.isfinite(v) for v in values):
        raise ConfigError(f"--ebn0-db must be finite numbers in dB, got {spec!r}")
    low, high = EBN0_DB_RANGE
    if not all(low <= v <= high for v in values):
        raise ConfigError(f"--ebn0-db values must be in [{low:g}, {high:g}] dB, got {spec!r}")
    if len(values) == 1:
        return values
    start, stop, step = values
    if step <= 0:
        raise ConfigError(f"--ebn0-db STEP must be > 0, got {spec!r}")
    if stop < start:
        raise ConfigError(f"--ebn0-db range is inverted (STOP < START): {spec!r}")
    count = int(math.floor((stop - start) / step + 1e-9)) + 1
    if count > 1000:
        raise ConfigError(f"--ebn0-db must give at most 1000 points, got {count} from {spec!r}")
    return [round(start + i * step, 10) for i in range(count)]
