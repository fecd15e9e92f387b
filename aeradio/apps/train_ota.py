"""``aeradio train-ota``: model-free training of the transmitter through the real loop.

One process drives both devices: it sends frames through the real TX chain
(:class:`~aeradio.flowgraphs.tx_chain.TxChain`) to ``--tx-device``, and receives them from
``--rx-device`` through the real RX chain (:class:`~aeradio.flowgraphs.rx_chain.RxChain`,
detection and synchronization included). Between them: the loopback channel simulator
(``aeradio channel``), a full-duplex radio, two radios on one host, or a GNU Radio flowgraph.
The algorithm is :mod:`aeradio.learning.ota` (Aït Aoudia and Hoydis, JSAC 2019). Each
iteration:

1. **receiver batch**: ``--frames-per-step`` test-pattern frames sent with the current LUT;
   the received payload blocks (:attr:`FrameResult.payload`, synchronized, unit gain) of the
   frames that arrived score the current model (BLER on blocks it never trained on: the
   figure on the progress bar and the one "best" refers to), then train the receiver;
2. **transmitter batch**: as many frames whose payload is the perturbed LUT rows of the
   test-pattern messages; the current receiver's per-block losses give the
   policy-gradient step of the transmitter.

Every frame carries a test-pattern header (its sequence number, the run's seed): the trainer
matches each received frame to what it sent by its sequence number; a frame that does not
arrive is left out of its step (counted as lost). ``--receiver-only`` skips the transmitter
batches (receiver fine-tuning through the same loop, the comparison of the benchmark).

``--polish-iterations N`` adds N receiver batches after the iterations, the transmitter
frozen: the receiver adapts to the final LUT.

Output: ``--out`` is an ordinary model directory (LUT, receiver, model.json with a new
model hash: ``tx`` and ``rx`` load it). With ``--final-model best`` it holds the best model
so far (lowest BLER pooled over the last :data:`BEST_WINDOW` receiver batches), written
atomically every ``--checkpoint-every`` iterations when it improved, and at the end; with
``--final-model last`` the model as it stands, at every checkpoint and at the end (the
minimum of noisy windows picks a lucky window, not a better model: docs/train-ota.md).
model.json's ``meta.train_ota`` records the run (samples sent, frames lost, the BLER against
samples sent).

Stopping: SIGTERM or Ctrl-C ends the run after the current exchange; the best model is
written, one line says so, exit code 128 + the signal (143, 130). A device that cannot be
opened, a transmitter whose peer does not take samples, a receiver that ends, no frame
detected for ``--stall-timeout-s``, mismatched sample rates, a model directory of another
format: one line, exit code 2, and ``--out`` keeps the last checkpoint.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aeradio.apps.processes import StopOnSignal
from aeradio.core import defaults as d
from aeradio.core.errors import ConfigError, StreamError, check_range
from aeradio.dsp.framing import MAX_TEST_PATTERN_SEED, Header, pattern_messages
from aeradio.flowgraphs.rx_chain import FrameResult, RxChain
from aeradio.flowgraphs.tx_chain import TxChain
from aeradio.radio.base import Device, DeviceSettings
from aeradio.radio.uri import split_uri

#: Most samples per RX read.
READ_SAMPLES = 1 << 20
#: Longest wait per RX read (s): how quickly a signal or a stall is noticed.
READ_TIMEOUT_S = 0.2
#: After the latest frame of a batch arrived, how long the missing ones are waited for (s)
#: at least (and three batch durations at the sample rate).
SETTLE_S = 1.0
#: Relative difference of the TX and RX sample rates tolerated.
RATE_TOLERANCE = 1e-6
#: Receiver batches whose pooled BLER chooses the best model.
BEST_WINDOW = 5
#: Entries of the BLER-against-samples history kept in model.json.
HISTORY_POINTS = 500
#: Stream spans of reads that lost samples, kept to check the frames that come out later.
DROP_SPANS = 64


def overlaps_drop(start: float, length: int, spans: deque[tuple[int, int]]) -> bool:
    """Whether the frame at ``start`` (stream sample index) of ``length`` samples overlaps
    a span ``[a, b)`` of the stream read right after lost samples (where in the read the
    samples went missing is not known: the whole read is suspect).

    >>> spans = deque([(1000, 2000)])
    >>> overlaps_drop(500.0, 400, spans), overlaps_drop(900.0, 200, spans), overlaps_drop(2000.0, 10, spans)
    (False, True, False)
    """
    return any(start < b and start + length > a for a, b in spans)


def check_sample_rates(tx_rate_hz: float, rx_rate_hz: float) -> None:
    """The TX and RX devices run at one rate (a clock offset is the channel's business, a
    different nominal rate is a setup error).

    >>> check_sample_rates(1e6, 1e6)
    >>> check_sample_rates(1e6, 2e6)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    aeradio.core.errors.ConfigError: the TX and RX devices must run at one sample rate: TX 1e+06 S/s, ...
    """
    if not math.isclose(tx_rate_hz, rx_rate_hz, rel_tol=RATE_TOLERANCE):
        raise ConfigError(f"the TX and RX devices must run at one sample rate: TX {tx_rate_hz:g} S/s, "
                          f"RX {rx_rate_hz:g} S/s")


def _no_decisions(y: np.ndarray, noise_var: np.ndarray) -> np.ndarray:
    """The RX chain's block decoder: none (the trainer scores the payload itself)."""
    return np.zeros(len(y), np.int64)


class OtaLoop:
    """The real loop: frames out through TX chain and device, back through device and RX chain.

    ``stall_timeout_s``: no frame detected for this long is a :class:`StreamError`.
    """

    def __init__(
        self, tx_dev: Device, rx_dev: Device, tx: TxChain, rx: RxChain, *, seed: int, stall_timeout_s: float,
        rx_uri: str, stop: StopOnSignal,
    ) -> None:
        self.tx_dev, self.rx_dev, self.tx, self.rx = tx_dev, rx_dev, tx, rx
        self.seed, self.stall_timeout_s, self.rx_uri, self.stop = seed, stall_timeout_s, rx_uri, stop
        self.next_seq = 0
        self.samples_sent = 0
        self.frames_sent = 0
        self.frames_lost = 0
        #: Frames received across lost samples (a slow reader's dropped messages): their
        #: payload is shifted from the drop on, block errors that are not the channel's.
        #: Left out of their steps, as lost frames.
        self.frames_corrupted = 0
        self.rx_position = 0  # stream samples given to the RX chain
        self.drop_spans: deque[tuple[int, int]] = deque(maxlen=DROP_SPANS)
        self.last_frame_time = time.monotonic()
        lay = tx.layout
        self.blocks, self.M = lay.blocks, lay.M

    def messages(self, seqs: np.ndarray) -> np.ndarray:
        """``[F, blocks]`` the test-pattern messages of these frames."""
        return pattern_messages(self.seed, seqs, self.blocks, self.M)

    def new_seqs(self, frames: int) -> np.ndarray:
        seqs = np.arange(self.next_seq, self.next_seq + frames, dtype=np.int64)
        self.next_seq += frames
        return seqs

    def exchange(self, seqs: np.ndarray, payload: np.ndarray) -> dict[int, FrameResult]:
        """Send frames ``seqs`` with ``payload`` ``[F, blocks, n]``; the ones received, by seq."""
        headers = [Header.test_pattern(int(s), self.seed, self.tx.model_hash16) for s in seqs]
        samples = self.tx.modulate_symbols(headers, payload)
        self._drain()  # what arrived meanwhile (idle noise) is not waited on later
        self.tx_dev.write(samples)
        self.samples_sent += len(samples)
        self.frames_sent += len(seqs)
        got = self._collect(set(int(s) for s in seqs), len(samples))
        self.frames_lost += len(seqs) - len(got)
        return got

    def _read(self, timeout_s: float) -> list[FrameResult] | None:
        """One read through the RX chain: the frames it completed, less those across lost
        samples (counted); None when nothing arrived."""
        dropped = self.rx_dev.stats.samples_dropped
        x = self.rx_dev.read(READ_SAMPLES, timeout_s=timeout_s)
        if x is None:
            raise StreamError(f"{self.rx_uri} ended (end of source): train-ota needs a live stream")
        if not len(x):
            return None
        if self.rx_dev.stats.samples_dropped != dropped:
            self.drop_spans.append((self.rx_position, self.rx_position + len(x)))
        self.rx_position += len(x)
        frames = []
        for r in self.rx.process(x):
            if overlaps_drop(r.start_sample, self.tx.frame_samples, self.drop_spans):
                self.frames_corrupted += r.seq is not None
            else:
                frames.append(r)
        return frames

    def _drain(self) -> None:
        while self._read(0.0) is not None:
            pass

    def _collect(self, want: set[int], samples: int) -> dict[int, FrameResult]:
        got: dict[int, FrameResult] = {}
        last = max(want)
        settle_s = max(SETTLE_S, 3 * samples / self.rx_dev.sample_rate_hz)
        progress = time.monotonic()
        while len(got) < len(want) and not self.stop.requested:
            frames = self._read(READ_TIMEOUT_S)
            now = time.monotonic()
            for r in frames or ():
                self.last_frame_time = now
                if r.seq in want:
                    got[r.seq] = r
                    progress = now
                if r.seq is not None and r.seq >= last:
                    return got  # frames arrive in order: the missing ones are lost
            if now - self.last_frame_time > self.stall_timeout_s:
                raise StreamError(
                    f"no frame detected from {self.rx_uri} for {self.stall_timeout_s:g} s "
                    "(--stall-timeout-s): is the channel running, is the link too noisy?"
                )
            if got and now - progress > settle_s:
                break
        return got


@dataclass
class BestModel:
    """The best model so far and whether it was written since it last changed."""

    bler: float = math.inf
    snapshot: dict[str, Any] | None = None
    iteration: int = 0
    saved: bool = True
    #: Chosen before BEST_WINDOW batches were scored: any later model replaces it.
    provisional: bool = True


@dataclass
class RunRecord:
    """What model.json's ``meta.train_ota`` records."""

    history: list[dict[str, float]] = field(default_factory=list)


def _blocks(results: dict[int, FrameResult], messages_of: dict[int, np.ndarray]) -> tuple[np.ndarray, ...]:
    """``(y [B, n], noise_var [B], labels [B], seqs [F])`` of the received frames."""
    seqs = sorted(results)
    payloads = [np.asarray(results[s].payload) for s in seqs]
    y = np.concatenate(payloads)
    nv = np.concatenate([np.full(len(p), results[s].noise_var, np.float32)
                         for s, p in zip(seqs, payloads, strict=True)])
    labels = np.concatenate([messages_of[s] for s in seqs])
    return y, nv, labels, np.array(seqs, np.int64)


def _pooled(window: deque[tuple[int, int]]) -> float:
    """The BLER pooled over ``(errors, blocks)`` batches (NaN for none)."""
    blocks = sum(b for _, b in window)
    return sum(e for e, _ in window) / blocks if blocks else math.nan


def _open_devices(args: argparse.Namespace, settings: DeviceSettings) -> tuple[Device, Device]:
    from aeradio.radio.uri import open_device

    tx_extra: dict[str, object] = {}
    if args.tx_device.startswith("zmq:"):
        tx_extra["connect_timeout_s"] = args.connect_timeout_s
    rx_dev = open_device(args.rx_device, "rx", settings)
    try:
        tx_dev = open_device(args.tx_device, "tx", settings, **tx_extra)
    except BaseException:
        rx_dev.abort()
        raise
    return tx_dev, rx_dev


def _check_args(args: argparse.Namespace) -> None:
    check_range("--iterations", args.iterations, 1, 10_000_000)
    check_range("--frames-per-step", args.frames_per_step, 1, 4096)
    check_range("--checkpoint-every", args.checkpoint_every, 1, 10_000_000)
    check_range("--stall-timeout-s", args.stall_timeout_s, 0.1, 3600.0, unit="s")
    check_range("--connect-timeout-s", args.connect_timeout_s, 0.01, 3600.0, unit="s")
    check_range("--seed", args.seed, 0, MAX_TEST_PATTERN_SEED)
    check_range("--threads", args.threads, 1, 64)
    check_range("--polish-iterations", args.polish_iterations, 0, 10_000_000)
    if args.from_scratch and args.receiver_only:
        raise ConfigError("--receiver-only keeps the model's LUT: it cannot start --from-scratch")
    if args.antithetic and args.receiver_only:
        raise ConfigError("--antithetic pairs the transmitter's perturbations: --receiver-only has none")
    if args.from_scratch and args.transmitter not in (None, "lut"):
        raise ConfigError(f"--transmitter {args.transmitter} reshapes a trained LUT: it cannot start "
                          "--from-scratch (use --transmitter lut)")
    if split_uri(args.tx_device)[0] == "file":  # a recording sends nothing back: a 15 s stall
        raise ConfigError(f"--tx-device {args.tx_device}: train-ota needs a live loop (a radio or zmq:), "
                          "not a recording")
    if args.tx_device == args.rx_device and split_uri(args.tx_device)[0] == "zmq":
        raise ConfigError(f"--tx-device and --rx-device are both {args.tx_device}: the channel's TX "
                          "(PULL) and RX (PUB) endpoints differ")


def cmd_train_ota(args: argparse.Namespace) -> int:
    """Run model-free training; 0 when the iterations ran, 128 + signal when interrupted."""
    import torch
    from tqdm import tqdm

    from aeradio.apps.device_args import device_settings
    from aeradio.core.model_dir import (
        check_output_dir,
        load_link_config,
        load_lut,
        model_hash32,
        require_message_receiver,
    )
    from aeradio.learning.inference import load_receiver_state
    from aeradio.learning.ota import OtaLearner, OtaSettings

    _check_args(args)
    transmitter = args.transmitter or ("lut" if args.from_scratch else "compander+lut")
    tx_lr = args.tx_learning_rate
    if tx_lr is None:  # a trained LUT takes smaller steps than a random one
        tx_lr = (d.DEFAULT_OTA_TX_LEARNING_RATE if args.from_scratch
                 else d.DEFAULT_OTA_TX_LEARNING_RATE_FINETUNE)
    decay = args.tx_lr_decay_iterations
    if decay is None:
        decay = d.DEFAULT_OTA_TX_LR_DECAY_ITERATIONS_SCRATCH if args.from_scratch else 0
    settings = OtaSettings(perturbation_std=args.perturbation_std, rx_learning_rate=args.rx_learning_rate,
                           tx_learning_rate=tx_lr, rx_steps=args.rx_steps, transmitter=transmitter,
                           compander_learning_rate=args.compander_learning_rate,
                           tx_lr_decay_steps=decay, antithetic=args.antithetic)
    cfg = load_link_config(args.model)  # ModelFormatError: another format, one line, exit 2
    require_message_receiver(cfg, args.model, "train-ota")
    out = check_output_dir(args.out, overwrite=args.overwrite, source=args.model)
    source_hash = model_hash32(args.model)
    torch.set_num_threads(args.threads)
    if args.from_scratch:
        learner = OtaLearner.start(cfg, settings, args.seed)
    else:
        learner = OtaLearner.start(cfg, settings, args.seed, lut=load_lut(args.model),
                                   receiver_state=load_receiver_state(args.model))
    dev_settings = device_settings(argparse.Namespace(
        sample_rate_hz=args.sample_rate_hz, freq_hz=args.freq_hz, gain_db=args.gain_db,
        bandwidth_hz=args.bandwidth_hz, antenna=args.antenna), cfg.radio)
    tx_chain = TxChain(cfg, learner.lut(), source_hash)
    rx_chain = RxChain(cfg, _no_decisions, model_hash=None)
    best, record = BestModel(), RunRecord()
    run_meta = {"source_model": str(args.model), "source_model_hash32": f"{source_hash:08x}",
                "from_scratch": bool(args.from_scratch), "receiver_only": bool(args.receiver_only),
                "transmitter": settings.transmitter,
                "compander_learning_rate": settings.compander_learning_rate,
                "tx_lr_decay_iterations": settings.tx_lr_decay_steps, "antithetic": settings.antithetic,
                "polish_iterations": args.polish_iterations, "final_model": args.final_model,
                "perturbation_std": settings.perturbation_std, "tx_learning_rate": settings.tx_learning_rate,
                "frames_per_step": args.frames_per_step,
                "seed": args.seed, "tx_device": args.tx_device, "rx_device": args.rx_device}

    def save(loop: OtaLoop, iteration: int, *, final: bool = False) -> None:
        """Write the best model when it changed since the last write; ``final``: in any case
        (model.json records the whole run)."""
        from aeradio.apps.train import thin_history
        from aeradio.core.model_dir import save_model

        if best.snapshot is None or (best.saved and not final and args.final_model == "best"):
            return
        meta = {"train_ota": {**run_meta, "iterations": iteration, "best_iteration": best.iteration,
                              "best_bler": best.bler, "last_window_bler": _pooled(window),
                              "samples_sent": loop.samples_sent,
                              "frames_sent": loop.frames_sent, "frames_lost": loop.frames_lost,
                              "frames_corrupted": loop.frames_corrupted,
                              "samples_dropped": loop.rx_dev.stats.samples_dropped,
                              "history": thin_history(record.history, HISTORY_POINTS)}}
        s = best.snapshot if args.final_model == "best" else learner.snapshot()
        save_model(out, cfg, s["lut"], s["receiver_state"], extra_meta=meta, lut_grid=s["lut_grid"],
                   overwrite=True)
        best.saved = True

    frames = args.frames_per_step
    iteration = 0
    window: deque[tuple[int, int]] = deque(maxlen=BEST_WINDOW)

    def holds() -> str:
        """What --out holds, for the progress lines."""
        if args.final_model == "best":
            return f"best BLER {best.bler:.2e} at iteration {best.iteration}"
        return f"the last model (BLER {_pooled(window):.2e} over the last {len(window)} batches)"
    with StopOnSignal() as stop:
        tx_dev, rx_dev = _open_devices(args, dev_settings)
        try:
            check_sample_rates(tx_dev.sample_rate_hz, rx_dev.sample_rate_hz)
            print(f"aeradio train-ota: sending to {args.tx_device}, receiving from {args.rx_device} at "
                  f"{rx_dev.sample_rate_hz / 1e6:g} MS/s", file=sys.stderr, flush=True)
            loop = OtaLoop(tx_dev, rx_dev, tx_chain, rx_chain, seed=args.seed,
                           stall_timeout_s=args.stall_timeout_s, rx_uri=args.rx_device, stop=stop)
            total = args.iterations + args.polish_iterations
            bar = tqdm(total=total, desc="train-ota", disable=None if not args.quiet else True,
                       leave=False, dynamic_ncols=True)
            for iteration in range(1, total + 1):
                if stop.requested:
                    iteration -= 1
                    break
                # Receiver batch: the current LUT, known messages.
                seqs = loop.new_seqs(frames)
                messages = loop.messages(seqs)
                got = loop.exchange(seqs, learner.lut()[messages])
                if stop.requested:
                    iteration -= 1
                    break
                rx_bler, loss = math.nan, math.nan
                if got:
                    y, nv, labels, _ = _blocks(got, dict(zip(seqs.tolist(), messages, strict=True)))
                    scored = learner.snapshot()  # the pair the step's BLER is measured on
                    step = learner.receiver_step(y, nv, labels)
                    rx_bler, loss = step.errors / step.blocks, step.loss
                    window.append((step.errors, step.blocks))
                    # One batch's BLER is noisy (a few hundred blocks): the best model is
                    # chosen on the last BEST_WINDOW batches' (the model moves slowly).
                    window_bler = _pooled(window)
                    # Before the window is full, the latest model stands in (provisional).
                    full = len(window) == BEST_WINDOW
                    if best.provisional or window_bler < best.bler:
                        best.bler, best.snapshot, best.iteration = window_bler, scored, iteration
                        best.saved, best.provisional = False, not full
                # Transmitter batch: perturbed LUT rows, per-block losses of the receiver
                # (none in the polish iterations: the receiver adapts to the final LUT).
                if not args.receiver_only and iteration <= args.iterations:
                    seqs = loop.new_seqs(frames)
                    messages = learner.transmitter_messages(loop.messages(seqs))
                    x_p = learner.perturbed(messages)
                    got = loop.exchange(seqs, x_p)
                    if len(got) and not stop.requested:
                        sent = dict(zip(seqs.tolist(), x_p, strict=True))
                        y, nv, labels, got_seqs = _blocks(
                            got, dict(zip(seqs.tolist(), messages, strict=True)))
                        xs = np.concatenate([sent[int(s)] for s in got_seqs])
                        learner.transmitter_step(y, nv, labels, xs)
                record.history.append({"iteration": iteration, "samples_sent": loop.samples_sent,
                                       "bler": rx_bler, "loss": loss})
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.3f}", bler=f"{rx_bler:.2e}", samples=f"{loop.samples_sent:.3g}")
                if iteration % args.checkpoint_every == 0:
                    save(loop, iteration)
                    print(f"aeradio train-ota: iteration {iteration}, BLER {rx_bler:.2e}, loss {loss:.3f}, "
                          f"{loop.samples_sent} samples sent, {holds()} -> {out}",
                          file=sys.stderr, flush=True)
            bar.close()
            save(loop, iteration, final=True)  # before closing: a device error must not lose it
        except BaseException:
            tx_dev.abort()
            rx_dev.abort()
            raise
        tx_dev.close()
        rx_dev.close()
    if best.snapshot is None:
        raise StreamError(f"no frame came back in {iteration} iterations: nothing to write")
    summary = (f"{iteration} iterations, {loop.samples_sent} samples sent ({loop.frames_sent} frames, "
               f"{loop.frames_lost} lost or left out, {loop.frames_corrupted} received across dropped "
               f"samples), {holds()} -> {out}")
    if stop.requested:
        print(f"aeradio train-ota: interrupted by {stop.reason} after {summary}", file=sys.stderr)
        return stop.exit_code
    print(f"aeradio train-ota: {summary}", file=sys.stderr)
    return 0


def history_of(model_dir: str | Path) -> dict[str, Any]:
    """``meta.train_ota`` of a model directory written by ``train-ota`` (ConfigError if none)."""
    from aeradio.core.model_dir import read_extra_meta

    meta = read_extra_meta(model_dir).get("train_ota")
    if not isinstance(meta, dict):
        raise ConfigError(f"{model_dir} was not written by aeradio train-ota (no meta.train_ota)")
    return meta
