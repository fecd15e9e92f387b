"""``aeradio channel``: the loopback channel simulator's command.

The simulator itself (impairment stages, pacing, sockets) is
:mod:`aeradio.flowgraphs.channel_sim`; this module turns command-line arguments into its
:class:`~aeradio.flowgraphs.channel_sim.ChannelSettings` and runs it until Ctrl-C,
SIGTERM or ``--duration-s``.
"""

from __future__ import annotations

import argparse
import math
import sys

import numpy as np

from aeradio.apps.processes import StopOnSignal
from aeradio.core.config import RadioConfig
from aeradio.core.defaults import DEFAULT_RAPP_BACKOFF_DB, DEFAULT_RAPP_P
from aeradio.core.errors import ConfigError, check_range
from aeradio.core.model_dir import load_link_config
from aeradio.core.units import hz_to_cps
from aeradio.dsp import impairments as imp
from aeradio.flowgraphs.channel_sim import (
    ChannelModel,
    ChannelSettings,
    ChannelSimulator,
    snr_db_from_ebn0_db,
)
from aeradio.radio.zmq_stream import SLOWEST_PEER_SPEED, zmq_address


def parse_complex(name: str, text: str) -> complex:
    """A complex number from the command line (``0.01+0.02j``), or :class:`ConfigError`."""
    try:
        value = complex(text.replace(" ", ""))
    except ValueError:
        raise ConfigError(f"{name} must be a complex number such as 0.01+0.02j, got {text!r}") from None
    if not (math.isfinite(value.real) and math.isfinite(value.imag)):
        raise ConfigError(f"{name} must be finite, got {text!r}")
    return value


def settings_from_args(args: argparse.Namespace) -> ChannelSettings:
    """Validated :class:`ChannelSettings` from ``aeradio channel`` arguments."""
    fs = args.sample_rate_hz
    check_range("--sample-rate-hz", fs, 1e3, 1e9, unit="Hz")
    cfg = None
    if args.model is not None:
        if args.samples_per_symbol is not None:
            raise ConfigError("give --model DIR or --samples-per-symbol, not both")
        cfg = load_link_config(args.model)
        sps = cfg.radio.samples_per_symbol
        if abs(fs - cfg.radio.sample_rate_hz) > 1e-6 * cfg.radio.sample_rate_hz:
            raise ConfigError(
                f"--sample-rate-hz {fs:g} differs from the model's {cfg.radio.sample_rate_hz:g} S/s "
                "(tx and rx run at the model's rate; CFO and timing would be off by the ratio)"
            )
    else:
        sps = args.samples_per_symbol or RadioConfig().samples_per_symbol
        check_range("--samples-per-symbol", sps, 1, 64)
    signal_power = 1.0 / sps
    noise_power = 0.0
    if args.ebn0_db is not None:
        if cfg is None:
            raise ConfigError("--ebn0-db needs --model DIR (the code rate and samples per symbol)")
        check_range("--ebn0-db", args.ebn0_db, -30.0, 100.0, unit="dB")
        snr_db = snr_db_from_ebn0_db(args.ebn0_db, cfg.info_rate, sps)
        noise_power = signal_power * 10.0 ** (-snr_db / 10.0)
    elif args.snr_db is not None:
        check_range("--snr-db", args.snr_db, -30.0, 100.0, unit="dB")
        noise_power = signal_power * 10.0 ** (-args.snr_db / 10.0)
    check_range("--cfo-hz", args.cfo_hz, -fs / 2, fs / 2, unit="Hz")
    taps: tuple[complex, ...] = ()
    if args.multipath:
        taps = tuple(parse_complex("--multipath tap", t) for t in args.multipath.split(","))
    phase_noise_std = 0.0
    if args.phase_noise_dbc is not None:
        check_range("--phase-noise-dbc", args.phase_noise_dbc, -200.0, 0.0, unit="dBc/Hz")
        offset_hz = args.phase_noise_offset_hz
        check_range("--phase-noise-offset-hz", offset_hz, 1.0, fs / 2, unit="Hz")
        phase_noise_std = imp.phase_noise_std_per_sample(args.phase_noise_dbc, offset_hz, fs)
    use_pa = args.pa_rapp_p is not None or args.pa_backoff_db is not None
    return ChannelSettings(
        signal_power=signal_power,
        noise_power=noise_power,
        cfo_cps=hz_to_cps(args.cfo_hz, fs),
        sco_ppm=args.sco_ppm,
        delay_samples=args.delay_samples,
        multipath_taps=taps,
        iq_gain_db=args.iq_imbalance_db,
        iq_phase_deg=args.iq_imbalance_deg,
        dc_offset=parse_complex("--dc-offset", args.dc_offset) if args.dc_offset else 0j,
        phase_noise_std_rad=phase_noise_std,
        pa_rapp_p=(args.pa_rapp_p if args.pa_rapp_p is not None else DEFAULT_RAPP_P) if use_pa else None,
        pa_backoff_db=args.pa_backoff_db if args.pa_backoff_db is not None else DEFAULT_RAPP_BACKOFF_DB,
    )


def cmd_channel(args: argparse.Namespace) -> int:
    """``aeradio channel``: run the loopback channel simulator until Ctrl-C, SIGTERM or --duration-s."""
    settings = settings_from_args(args)
    if args.speed is not None:
        check_range("--speed", args.speed, SLOWEST_PEER_SPEED, 1e3)
    speed = 1.0 if args.realtime else args.speed
    if args.duration_s is not None:
        check_range("--duration-s", args.duration_s, 0.0, 1e7, unit="s")
    check_range("--stats-interval-s", args.stats_interval_s, 0.1, 1e6, unit="s")
    check_range("--seed", args.seed, 0, 2**63 - 1)
    tx_address, rx_address = zmq_address(args.tx), zmq_address(args.rx)

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    rng = np.random.default_rng(args.seed)
    sim = ChannelSimulator(
        ChannelModel(settings, rng), tx_address, rx_address, args.sample_rate_hz, speed=speed, log=log
    )
    if speed is None:
        pace = ("as fast as possible while TX sends, idle noise in real time (an RX slower than TX "
                "loses samples, counted from the offsets)")
    else:
        pace = f"{speed:g}x real time"
    log(
        f"channel: PULL {tx_address} -> PUB {rx_address}, {args.sample_rate_hz / 1e6:g} MS/s, {pace}, "
        f"blocks of {sim.block}, seed {args.seed}; impairments: {settings.describe(args.sample_rate_hz)}"
    )
    try:
        with StopOnSignal() as stop:
            sim.run(
                lambda: stop.requested,
                duration_s=args.duration_s,
                stats_interval_s=args.stats_interval_s,
                noise_power=settings.noise_power,
            )
    finally:
        sim.close()
    return 0
