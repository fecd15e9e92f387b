"""The ``aeradio`` command.

The parser lists every subcommand of the contract (docs/contracts.md); each handler
lives next to the code it drives and is imported only when its subcommand runs, so
``aeradio tx`` never imports torch and ``aeradio --help`` is instant.

Defaults are not typed here: they are the constants of :mod:`aeradio.core.defaults`, which
the library uses too, and :class:`DefaultsHelpFormatter` appends them to every option's help.

Errors a user can cause are :class:`~aeradio.core.errors.AeradioError`: they become one line
on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from collections.abc import Callable, Sequence

from aeradio.core import defaults as d
from aeradio.core.errors import AeradioError

#: Exit code of every user error (bad argument, bad file, absent device), as argparse's.
EXIT_USAGE = 2
#: Exit code after Ctrl-C (128 + SIGINT).
EXIT_INTERRUPTED = 130


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """Appends each option's default to its help text (gr-digital's ``[default=%default]``).

    As :class:`argparse.ArgumentDefaultsHelpFormatter`, but options with nothing to default
    to (None, flags) say nothing, floats print as ``%g``, and a help text that places
    ``%(default)`` itself is left alone.
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        nothing = default is None or default is False or default is argparse.SUPPRESS
        if nothing or not action.option_strings or "%(default)" in text:
            return text
        shown = "%(default)g" if isinstance(default, float) else "%(default)s"
        return f"{text} (default {shown})" if text else f"default {shown}"


def _command(sub: argparse._SubParsersAction, name: str, help_text: str) -> argparse.ArgumentParser:
    """A subcommand's parser, its help showing the defaults."""
    return sub.add_parser(name, help=help_text, formatter_class=DefaultsHelpFormatter)


def _handler(spec: str) -> Callable[[argparse.Namespace], int | None]:
    """Resolve ``"module:function"`` lazily, when the subcommand runs."""

    def run(args: argparse.Namespace) -> int | None:
        module, func = spec.split(":")
        return getattr(importlib.import_module(module), func)(args)

    return run


def _add_device_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--device",
        required=True,
        metavar="URI",
        help="soapy:driver=...,  zmq:tcp://HOST:PORT  or  file:PATH.sigmf-meta",
    )
    p.add_argument("--freq-hz", type=float, default=None, help="center frequency (Hz)")
    p.add_argument("--sample-rate-hz", type=float, default=None, help="sample rate (S/s)")
    p.add_argument("--gain-db", type=float, default=None, help="device gain (dB)")
    p.add_argument("--bandwidth-hz", type=float, default=None, help="analog bandwidth (Hz)")
    p.add_argument("--antenna", default=None, help="antenna port name")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aeradio",
        description="A learned communication link (channel autoencoder) on real radios.",
    )
    from aeradio.core.version import __version__

    parser.add_argument("--version", action="version", version=f"aeradio {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_train(sub)
    _add_eval(sub)
    _add_sweep(sub)
    _add_channel(sub)
    _add_tx(sub)
    _add_rx(sub)
    _add_finetune(sub)
    _add_channel_model(sub)
    _add_train_ota(sub)
    _add_calibrate(sub)
    _add_devices(sub)
    _add_demo(sub)
    _add_bench(sub)
    return parser


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = _command(sub, "train", "train an autoencoder and write a model directory")
    p.add_argument("--config", required=True, metavar="FILE", help="link config (TOML)")
    p.add_argument("--out", required=True, metavar="DIR", help="model directory to write")
    p.add_argument("--seed", type=int, default=None, help="overrides training.seed")
    p.add_argument("--steps", type=int, default=None, help="overrides training.steps")
    p.add_argument("--plots", action="store_true", help="also write PNG plots into DIR")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--overwrite", action="store_true", help="replace an existing model directory DIR")
    p.set_defaults(handler=_handler("aeradio.apps.train:cmd_train"))


def _add_eval(sub: argparse._SubParsersAction) -> None:
    p = _command(sub, "eval", "Monte Carlo BLER of a model against ML detection (coded: codeword BLER)")
    p.add_argument("--model", required=True, metavar="DIR")
    p.add_argument("--ebn0-db", required=True, metavar="START:STOP:STEP")
    p.add_argument("--channel", default="awgn", help="evaluation channel")
    p.add_argument("--json", default=None, metavar="FILE")
    p.add_argument("--target-errors", type=int, default=d.DEFAULT_EVAL_TARGET_ERRORS,
                   help="simulate each point until this many block errors (coded model: codeword errors)")
    p.add_argument("--max-blocks", type=int, default=d.DEFAULT_EVAL_MAX_BLOCKS,
                   help="... or this many blocks (codewords for a coded model)")
    p.add_argument("--seed", type=int, default=d.DEFAULT_EVAL_SEED, help="seed of the simulation")
    p.add_argument("--plots", default=None, metavar="DIR", help="write PNG plots here")
    p.add_argument("--quiet", action="store_true",
                   help="no progress bars (they show only when stderr is a terminal)")
    p.set_defaults(handler=_handler("aeradio.apps.train:cmd_eval"))


def _add_sweep(sub: argparse._SubParsersAction) -> None:
    p = _command(sub, "sweep", "train and evaluate many models on Ray, on this machine or a cluster")
    p.add_argument("--configs", required=True, metavar="A,B,...",
                   help="comma-separated config names of configs/ (e.g. ae-n7-k8) or TOML paths")
    p.add_argument("--ebn0-db", required=True, metavar="START:STOP:STEP")
    p.add_argument("--seeds", type=int, default=d.DEFAULT_SWEEP_SEEDS,
                   help="models per config, trained with seeds S, S+1, ... (S: the config's training.seed)")
    p.add_argument("--target-errors", type=int, default=d.DEFAULT_SWEEP_TARGET_ERRORS,
                   help="simulate each point until this many block errors")
    p.add_argument("--max-blocks", type=int, default=d.DEFAULT_SWEEP_MAX_BLOCKS,
                   help="... or this many blocks")
    p.add_argument("--channel", default="awgn", help="evaluation channel (baselines on awgn only)")
    p.add_argument("--seed", type=int, default=d.DEFAULT_EVAL_SEED, help="seed of the Monte Carlo streams")
    p.add_argument("--no-baselines", action="store_true",
                   help="no Monte Carlo of the classical schemes (their exact formulas are still plotted)")
    p.add_argument("--address", default=None, metavar="ADDR",
                   help="an existing Ray cluster: HOST:PORT, ray://HOST:PORT or auto "
                   "(default: a local Ray on 127.0.0.1, stopped at the end)")
    p.add_argument("--workers", type=int, default=None,
                   help="local Ray: its worker processes (default: the CPU count); "
                   "with --address: tasks in flight at most (default: the cluster's CPUs)")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="sweep.json, sweep.csv, bler.png, models/; the same DIR resumes")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=_handler("aeradio.apps.sweep:cmd_sweep"))


def _add_channel(sub: argparse._SubParsersAction) -> None:
    p = _command(sub, "channel", "the ZMQ loopback channel simulator")
    p.set_defaults(handler=_handler("aeradio.apps.channel:cmd_channel"))
    _add_channel_args(p)


def _add_tx(sub: argparse._SubParsersAction) -> None:
    p = _command(sub, "tx", "transmit frames (test pattern or a file)")
    p.add_argument("--model", required=True, metavar="DIR")
    _add_device_args(p)
    what = p.add_mutually_exclusive_group()
    what.add_argument("--frames", type=int, default=d.DEFAULT_TX_FRAMES, help="test-pattern frames to send")
    what.add_argument("--file", default=None, metavar="PATH", help="send this file's bytes")
    p.add_argument("--seed", type=int, default=0,
                   help="test-pattern seed, 0 to 4095 (the frames carry it: receivers need no seed)")
    p.add_argument("--pattern", choices=d.TX_PATTERNS, default=d.TX_PATTERNS[0],
                   help="known payload of the --frames: test (LUT rows of a test pattern) or probe "
                   "(i.i.d. symbols over the amplitude range, for channel-model fit)")
    p.add_argument("--calibration", default=None, metavar="FILE", help="calibrate rx output to apply")
    p.add_argument("--overwrite", action="store_true", help="replace an existing file: recording")
    p.add_argument("--connect-timeout-s", type=float, default=d.DEFAULT_CONNECT_TIMEOUT_S, metavar="T",
                   help="zmq: fail when no peer connects within T seconds")
    p.add_argument("--write-timeout-s", type=float, default=d.DEFAULT_WRITE_TIMEOUT_S, metavar="T",
                   help="fail when the device or the zmq peer takes no samples for T seconds (a channel "
                   "paced far below real time takes them in bursts: allow more)")
    p.set_defaults(handler=_handler("aeradio.apps.tx:cmd_tx"))


def _add_rx(sub: argparse._SubParsersAction) -> None:
    p = _command(sub, "rx", "receive and decode frames")
    p.add_argument("--model", required=True, metavar="DIR")
    _add_device_args(p)
    p.add_argument("--frames", type=int, default=None,
                   help="stop after N frames (with --out: the transfer's frame count)")
    p.add_argument("--duration-s", type=float, default=None,
                   help="stop after T seconds of wall clock (with --frames: whichever comes first)")
    p.add_argument("--json", default=None, metavar="FILE", help="write the report here")
    p.add_argument("--capture", default=None, metavar="DIR",
                   help="record SigMF here: each detected frame with one frame length before and after "
                   "(idle noise is not recorded)")
    p.add_argument("--capture-all", action="store_true",
                   help="with --capture: record every sample, idle noise included (8 bytes per sample: "
                   "8 MB/s, 29 GB/hour at 1 MS/s)")
    p.add_argument("--out", default=None, metavar="PATH",
                   help="write the received file here if complete (else PATH.partial and PATH.partial.json)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    p.add_argument("--calibration", default=None, metavar="FILE", help="calibrate rx output to apply")
    p.add_argument("--dump-dir", default=None, metavar="DIR", help="write every RX stage's output here")
    p.add_argument("--threads", type=int, default=d.DEFAULT_RX_THREADS,
                   help="torch threads of the neural receiver (with --pipeline the DSP takes a second "
                   "core; more threads pay on a host with cores to spare)")
    p.add_argument("--pipeline", choices=("auto", "on", "off"), default="auto",
                   help="run the DSP (detection, synchronization) of each read on a second thread beside "
                   "the neural receiver of the read before; auto: on with 2 cores or more, but off from a "
                   "zmq: device (the loopback's channel and TX need the second core) "
                   "(same frames and decisions either way; --dump-dir runs one thread)")
    p.add_argument("--constellation", default=None, metavar="FILE.npy",
                   help="save synchronized payload symbols (complex64 .npy) for plotting")
    p.add_argument("--monitor", default=None, metavar="[HOST:]PORT",
                   help="serve a live web page (constellation, BLER, SNR, CFO, spectrum, counters) "
                   "at http://HOST:PORT/; HOST 127.0.0.1 unless given, PORT 0 picks a free port")
    p.set_defaults(handler=_handler("aeradio.apps.rx:cmd_rx"))


def _add_finetune(sub: argparse._SubParsersAction) -> None:
    p = _command(sub, "finetune", "fine-tune the receiver on captured frames")
    p.add_argument("--model", required=True, metavar="DIR")
    p.add_argument("--captures", required=True, metavar="DIR",
                   help="capture directory (rx --capture), or a dataset .npz from --save-dataset")
    p.add_argument("--save-dataset", default=None, metavar="FILE", help="write the frame dataset (.npz)")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the training/validation split and the batches")
    p.add_argument("--json", default=None, metavar="FILE", help="write the report here")
    p.add_argument("--eval-captures", default=None, metavar="DIR",
                   help="a separate capture to report BLER before/after on")
    p.add_argument("--max-epochs", type=int, default=d.DEFAULT_FINETUNE_MAX_EPOCHS, help="epochs at most")
    p.add_argument("--learning-rate", type=float, default=d.DEFAULT_FINETUNE_LEARNING_RATE,
                   help="Adam learning rate")
    p.add_argument("--validation-fraction", type=float, default=d.DEFAULT_VALIDATION_FRACTION,
                   help="share of frames for validation")
    p.add_argument("--overwrite", action="store_true", help="replace an existing model directory --out")
    p.add_argument("--keep-unimproved", action="store_true",
                   help="write the model even when fine-tuning did not lower the validation BLER "
                   "(otherwise: exit 1, nothing written)")
    p.add_argument("--channel-model", default=None, metavar="CM",
                   help="with --end-to-end: the channel model (channel-model fit) to train through")
    p.add_argument("--end-to-end", action="store_true",
                   help="train the LUT and the receiver through --channel-model (a new LUT: a new "
                   "model hash)")
    p.add_argument("--steps", type=int, default=d.DEFAULT_END_TO_END_STEPS,
                   help="with --end-to-end: gradient steps at most")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=_handler("aeradio.apps.finetune:cmd_finetune"))


def _add_channel_model(sub: argparse._SubParsersAction) -> None:
    p = _command(sub, "channel-model", "learn the real channel from captures (a conditional VAE), check it")
    cm = p.add_subparsers(dest="channel_model_command", metavar="fit|check", required=True)
    f = _command(cm, "fit", "fit a channel model on captures of test-pattern and probe frames")
    f.add_argument("--model", required=True, metavar="DIR", help="the model whose transmitter was captured")
    f.add_argument("--captures", required=True, metavar="DIR", help="capture directory (rx --capture)")
    f.add_argument("--out", required=True, metavar="CM", help="channel-model directory to write")
    f.add_argument("--steps", type=int, default=d.DEFAULT_CHANNEL_MODEL_STEPS, help="gradient steps")
    f.add_argument("--seed", type=int, default=0, help="seed of the held-out split and the training")
    f.add_argument("--json", default=None, metavar="FILE", help="write the report here")
    f.add_argument("--quiet", action="store_true", help="no progress bar")
    c = _command(cm, "check", "fidelity of a channel model on other captures")
    c.add_argument("--channel-model", required=True, metavar="CM")
    c.add_argument("--model", required=True, metavar="DIR")
    c.add_argument("--captures", required=True, metavar="DIR")
    c.add_argument("--seed", type=int, default=0, help="seed of the generated samples")
    c.add_argument("--json", default=None, metavar="FILE", help="write the figures here")
    c.add_argument("--plots", default=None, metavar="DIR",
                   help="write clouds.png (captured vs generated) here")
    p.set_defaults(handler=_handler("aeradio.apps.channel_model:cmd_channel_model"))
def _add_train_ota(sub: argparse._SubParsersAction) -> None:
    p = _command(sub, "train-ota", "model-free training of the transmitter through a real link")
    p.add_argument("--model", required=True, metavar="DIR",
                   help="the model to start from (with --from-scratch: its config only)")
    p.add_argument("--tx-device", required=True, metavar="URI", help="where frames are sent")
    p.add_argument("--rx-device", required=True, metavar="URI", help="where they are received")
    p.add_argument("--out", required=True, metavar="DIR", help="the trained model (checkpoints too)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing model directory --out")
    p.add_argument("--from-scratch", action="store_true", help="start from a random LUT and receiver")
    p.add_argument("--receiver-only", action="store_true",
                   help="train the receiver only (the LUT stays the model's): the baseline")
    p.add_argument("--iterations", type=int, default=d.DEFAULT_OTA_ITERATIONS,
                   help="receiver + transmitter batches")
    p.add_argument("--frames-per-step", type=int, default=d.DEFAULT_OTA_FRAMES_PER_STEP,
                   help="frames per receiver batch and per transmitter batch")
    p.add_argument("--perturbation-std", type=float, default=d.DEFAULT_OTA_PERTURBATION_STD,
                   help="std of the complex Gaussian perturbation of transmitted symbols")
    p.add_argument("--rx-learning-rate", type=float, default=d.DEFAULT_OTA_RX_LEARNING_RATE,
                   help="Adam learning rate of the receiver")
    p.add_argument("--transmitter", choices=("lut", "compander", "compander+lut"), default=None,
                   help="what the transmitter learns: every LUT point (lut, the default with "
                   "--from-scratch), one amplitude compander shared by the model's points (compander), "
                   "or both (compander+lut, the default from a model)")
    p.add_argument("--tx-learning-rate", type=float, default=None,
                   help="Adam learning rate of the LUT points (default "
                   f"{d.DEFAULT_OTA_TX_LEARNING_RATE:g} with --from-scratch, else "
                   f"{d.DEFAULT_OTA_TX_LEARNING_RATE_FINETUNE:g})")
    p.add_argument("--compander-learning-rate", type=float, default=d.DEFAULT_OTA_COMPANDER_LEARNING_RATE,
                   help="Adam learning rate of the compander")
    p.add_argument("--tx-lr-decay-iterations", type=int, default=None, metavar="T",
                   help="the transmitter's learning rates fall as 1 / (1 + t / T) after t iterations; 0: "
                   f"constant (default {d.DEFAULT_OTA_TX_LR_DECAY_ITERATIONS_SCRATCH} with --from-scratch, "
                   "else 0)")
    p.add_argument("--rx-steps", type=int, default=d.DEFAULT_OTA_RX_STEPS,
                   help="receiver gradient steps per receiver batch")
    p.add_argument("--antithetic", action="store_true",
                   help="perturb in antithetic pairs (w and -w on one message; each block's baseline "
                   "the pair's mean loss)")
    p.add_argument("--polish-iterations", type=int, default=0, metavar="N",
                   help="after --iterations, N receiver batches with the transmitter frozen")
    p.add_argument("--final-model", choices=("best", "last"), default="best",
                   help="what --out holds: the lowest BLER pooled over the last 5 receiver batches "
                   "(best), or the model as it stands (last: at each checkpoint and at the end)")
    p.add_argument("--checkpoint-every", type=int, default=d.DEFAULT_OTA_CHECKPOINT_EVERY, metavar="N",
                   help="write the model --final-model selects (best or last) to --out every N iterations")
    p.add_argument("--stall-timeout-s", type=float, default=d.DEFAULT_OTA_STALL_TIMEOUT_S, metavar="T",
                   help="fail (exit 2) when no frame is detected for T seconds")
    p.add_argument("--connect-timeout-s", type=float, default=d.DEFAULT_CONNECT_TIMEOUT_S, metavar="T",
                   help="zmq: fail when no peer connects to --tx-device within T seconds")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the initial model, the perturbations and the test pattern (0 to 4095)")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--freq-hz", type=float, default=None, help="center frequency (Hz)")
    p.add_argument("--sample-rate-hz", type=float, default=None, help="sample rate of both devices (S/s)")
    p.add_argument("--gain-db", type=float, default=None, help="device gain (dB)")
    p.add_argument("--bandwidth-hz", type=float, default=None, help="analog bandwidth (Hz)")
    p.add_argument("--antenna", default=None, help="antenna port name")
    p.set_defaults(handler=_handler("aeradio.apps.train_ota:cmd_train_ota"))


def _add_calibrate(sub: argparse._SubParsersAction) -> None:
    p = _command(sub, "calibrate", "measure and correct the hardware")
    cal = p.add_subparsers(dest="calibrate_command", metavar="tx|rx", required=True)
    c = _command(cal, "tx", "send calibration bursts")
    _add_device_args(c)
    c.add_argument("--bursts", type=int, default=d.DEFAULT_CALIBRATE_TX_BURSTS, help="bursts to send")
    c.add_argument("--overwrite", action="store_true", help="replace an existing file: recording")
    c.add_argument("--connect-timeout-s", type=float, default=d.DEFAULT_CONNECT_TIMEOUT_S, metavar="T",
                   help="zmq: fail when no peer connects within T seconds")
    c.set_defaults(handler=_handler("aeradio.apps.calibrate:cmd_calibrate_tx"))
    c = _command(cal, "rx", "measure calibration bursts")
    _add_device_args(c)
    c.add_argument("--json", required=True, metavar="FILE", help="calibration file to write")
    until = c.add_mutually_exclusive_group()
    until.add_argument("--bursts", type=int, default=d.DEFAULT_CALIBRATE_RX_BURSTS, help="bursts to capture")
    until.add_argument("--duration-s", type=float, default=None, help="seconds of samples to capture")
    c.add_argument("--timeout-s", type=float, default=d.DEFAULT_CALIBRATE_TIMEOUT_S,
                   help="give up after this long without samples")
    c.add_argument("--target-snr-db", type=float, default=d.DEFAULT_TARGET_SNR_DB,
                   help="SNR to recommend gains for")
    c.add_argument("--target-level-dbfs", type=float, default=d.DEFAULT_TARGET_LEVEL_DBFS,
                   help="RMS level to set RX gain for")
    c.add_argument("--tx-gain-db", type=float, default=None, help="TX gain calibrate tx used")
    c.add_argument("--tx-gain-range-db", default=None, metavar="LO:HI", help="TX gain range")
    c.add_argument("--rx-gain-range-db", default=None, metavar="LO:HI", help="RX gain range")
    c.add_argument("--threshold", type=float, default=d.DEFAULT_DETECTION_THRESHOLD,
                   help="burst detection threshold (0-1)")
    c.add_argument("--overwrite", action="store_true", help="replace an existing --json calibration file")
    c.set_defaults(handler=_handler("aeradio.apps.calibrate:cmd_calibrate_rx"))


def _add_devices(sub: argparse._SubParsersAction) -> None:
    p = _command(sub, "devices", "list the radios SoapySDR finds")
    p.set_defaults(handler=_handler("aeradio.apps.devices:cmd_devices"))


def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = _command(sub, "demo", "the whole link on the loopback simulator")
    p.add_argument("--out", default="demo-out", metavar="DIR", help="plots and reports")
    p.set_defaults(handler=_handler("aeradio.apps.demo:cmd_demo"))


def _add_bench(sub: argparse._SubParsersAction) -> None:
    p = _command(sub, "bench", "the benchmark harness")
    p.add_argument("--json", default=None, metavar="FILE")
    p.add_argument("--only", default=None, help="comma-separated benchmark names")
    p.add_argument("--quiet", action="store_true",
                   help="no progress bar (it shows only when stderr is a terminal)")
    p.set_defaults(handler=_handler("aeradio.apps.bench:cmd_bench"))


def _add_channel_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tx", required=True, metavar="URI", help="where TX pushes (we PULL)")
    p.add_argument("--rx", required=True, metavar="URI", help="where RX subscribes (we PUB)")
    p.add_argument("--sample-rate-hz", type=float, required=True, help="sample rate (S/s)")
    snr = p.add_mutually_exclusive_group()
    snr.add_argument("--snr-db", type=float, default=None,
                     help="frame power (1/sps) over noise power per sample, full band")
    snr.add_argument("--ebn0-db", type=float, default=None,
                     help="Eb/N0 per information bit of the --model (k / n, times a coded model's code rate)")
    p.add_argument("--model", default=None, metavar="DIR",
                   help="code rate (for --ebn0-db) and samples per symbol of the link")
    p.add_argument("--samples-per-symbol", type=int, default=None, metavar="SPS",
                   help="without --model: TX samples have power 1/SPS during frames")
    p.add_argument("--cfo-hz", type=float, default=0.0, help="carrier frequency offset (Hz)")
    p.add_argument("--sco-ppm", type=float, default=0.0, help="sample-clock offset (ppm, resampling)")
    p.add_argument("--delay-samples", type=float, default=0.0, help="delay (samples, fractional)")
    p.add_argument("--multipath", default=None, metavar="TAPS", help="complex taps a,b,...")
    p.add_argument("--iq-imbalance-db", type=float, default=0.0, help="receiver IQ gain imbalance (dB)")
    p.add_argument("--iq-imbalance-deg", type=float, default=0.0, help="receiver IQ phase imbalance (deg)")
    p.add_argument("--dc-offset", default=None, metavar="C", help="complex, e.g. 0.01+0.02j")
    p.add_argument("--phase-noise-dbc", type=float, default=None, metavar="DBC",
                   help="Wiener phase noise level (dBc/Hz) at --phase-noise-offset-hz")
    p.add_argument("--phase-noise-offset-hz", type=float, default=d.DEFAULT_PHASE_NOISE_OFFSET_HZ,
                   metavar="HZ", help="offset of --phase-noise-dbc")
    # None: no PA. Either option turns the PA on; the other then takes its default.
    p.add_argument("--pa-rapp-p", type=float, default=None,
                   help=f"Rapp PA smoothness (default {d.DEFAULT_RAPP_P:g} when the PA is on)")
    p.add_argument("--pa-backoff-db", type=float, default=None,
                   help="PA saturation above the frames' RMS amplitude "
                   f"(default {d.DEFAULT_RAPP_BACKOFF_DB:g} when the PA is on)")
    pace = p.add_mutually_exclusive_group()
    pace.add_argument("--realtime", action="store_true", help="pace at the sample rate")
    pace.add_argument("--speed", type=float, default=None, help="pace at X times real time")
    p.add_argument("--seed", type=int, default=0, help="seed of the noise")
    p.add_argument("--duration-s", type=float, default=None, help="stop after T seconds")
    p.add_argument("--stats-interval-s", type=float, default=d.DEFAULT_STATS_INTERVAL_S,
                   help="status log period")


#: A negative range or list value (``-3:0:1``, ``-2,4``): argparse takes a token starting
#: with '-' for an option unless it is a plain negative number.
_NEGATIVE_VALUE = re.compile(r"^-\d*\.?\d+([:,]-?\d*\.?\d+)+$")


def _join_negative_values(argv: list[str]) -> list[str]:
    """``--opt -3:0:1`` as ``--opt=-3:0:1``, so a negative Eb/N0 range parses as typed
    (argparse's own message for it, "expected one argument", named no cause)."""
    out: list[str] = []
    for token in argv:
        if out and out[-1].startswith("--") and "=" not in out[-1] and _NEGATIVE_VALUE.match(token):
            out[-1] = f"{out[-1]}={token}"
        else:
            out.append(token)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    given = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(_join_negative_values(given))
    args.argv = given  # reports record their command line
    try:
        return int(args.handler(args) or 0)
    except AeradioError as exc:
        print(f"aeradio {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"aeradio {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
