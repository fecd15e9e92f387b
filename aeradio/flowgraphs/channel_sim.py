"""The ZMQ loopback channel simulator: ``aeradio channel``.

Its own process between ``aeradio tx`` and ``aeradio rx``: it binds a PULL socket where TX
pushes and a PUB socket where RX subscribes (:mod:`aeradio.radio.zmq_stream`), and turns
what TX sends into what a receiver would see, block after block:

    Rapp PA -> multipath -> delay and sample-clock offset (resampling) -> CFO
    -> phase noise -> AWGN -> receiver IQ imbalance -> DC offset

(the project's one impairment order, docs/impairments.md).

A loopback on one machine (three terminals)::

    aeradio channel --tx zmq:tcp://127.0.0.1:5555 --rx zmq:tcp://127.0.0.1:5556 \\
        --sample-rate-hz 1e6 --realtime --ebn0-db 8 --model MODEL --cfo-hz 2000
    aeradio rx --model MODEL --device zmq:tcp://127.0.0.1:5556 --sample-rate-hz 1e6
    aeradio tx --model MODEL --device zmq:tcp://127.0.0.1:5555 --sample-rate-hz 1e6 --frames 100

Every stage is a thin class with explicit state and ``process(block)``, continuous across
blocks; the models are those of :mod:`aeradio.dsp.impairments`, so the calibration
and the RX tests agree with the simulator on what each parameter means.

Pacing: ``--realtime`` emits ``sample_rate_hz`` samples per second of wall clock,
``--speed X`` X times that. In both, when TX has nothing queued the channel sends the
impaired silence (noise, DC), so RX sees a continuous stream as from a radio; a TX block
that arrives late is an underflow (zeros), as on hardware. Without either option the
channel runs as fast as possible while TX has samples queued, and emits noise blocks at
the real-time rate while TX is idle (so an idle link neither stalls RX nor floods it). The
PUB socket drops what a subscriber slower than that cannot take; as the stream goes on
after TX stops (idle blocks, offsets still counting), the receiver's offset tracking
reveals a loss even at the very end of a transmission.

What TX sends is checked, never trusted: a malformed message (see
:mod:`aeradio.radio.zmq_stream`) is counted and skipped; TX samples that are not finite,
or beyond ``|x| > MAX_TX_AMPLITUDE``, are replaced by zeros and counted (``zeroed_in`` in
the status line), so the output and the power and SNR figures stay finite. Events (TX
restarts, malformed messages, TX disconnections) are logged at most once per
``NOTICE_INTERVAL_S`` with their counts, never one line per message.

Signal-to-noise ratio. The TX chain (:mod:`aeradio.dsp.pulse`) sends unit-energy
symbols (``E|a|^2 = 1``) through unit-energy RRC taps at ``sps`` samples per symbol, so
while a frame is on the air its samples have mean power ``P = 1 / sps``; the channel takes
that as the signal power (``sps`` from ``--model DIR``, else ``--samples-per-symbol``,
default the link config's). ``--snr-db S`` adds complex white Gaussian noise of power
``N = P 10^(-S/10)`` per sample over the whole simulated band (``fs``): S is the ratio of
the mean power of the active (frame) samples to the noise power per sample. The PA model
runs before the noise (its saturation is ``--pa-backoff-db`` above the RMS amplitude
``sqrt(P)``). The periodic log reports the TX power and the SNR measured from the
non-zero TX samples, which checks the assumption.

``--ebn0-db E`` needs ``--model DIR`` for the code rate ``R = k/n`` bits per complex
channel use (one channel use = one symbol). The matched filter of unit energy turns
per-sample noise of power ``N`` into noise of power ``N`` per symbol, so
``Es/N0 = 1 / N`` and, with the convention of docs/contracts.md, ``Es/N0 = R Eb/N0``:
``N = 1 / (R 10^(E/10))``, i.e. ``SNR_dB = Eb/N0_dB + 10 log10(R) - 10 log10(sps)``
(preamble, header and pilots not counted as information bits).

Randomness (noise, phase noise) comes from one generator seeded by ``--seed``.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from aeradio.core.constants import SAMPLE_DTYPE
from aeradio.core.defaults import DEFAULT_RAPP_BACKOFF_DB, DEFAULT_STATS_INTERVAL_S
from aeradio.core.errors import ConfigError, DeviceError, StreamError, check_range
from aeradio.dsp import impairments as imp
from aeradio.dsp import noise, resample
from aeradio.dsp.noise import GaussianPool
from aeradio.radio.zmq_stream import (  # pyzmq itself is imported when a socket opens
    MAX_MESSAGE_BYTES,
    PUSH_PULL_HWM,
    MessageSender,
    OffsetTracker,
    open_monitored_socket,
    open_socket,
    unpack_message,
)

#: Messages the channel's PUB socket queues for a receiver that is momentarily behind,
#: before it drops (as a radio's host-side receive buffer): 512 of its own 8192-sample
#: messages, 32 MiB, 0.4 s at 10 MS/s. The receiver's SUB side keeps PUB_SUB_HWM (its
#: memory bound for messages of any sender). With 64 here too (about 0.1 s in all at
#: 10 MS/s) an RX that keeps up on average (11.9 MS/s of processing) still lost 6 to 8
#: messages in 2 of 3 one-minute runs of the whole loop at 10 MS/s, when one read of
#: 2^20 samples (about 90 ms of work) met a hiccup of the machine.
CHANNEL_PUB_HWM = 512
#: Wall-clock length of one output block (s); the block is a power of two of samples.
BLOCK_DURATION_S = 0.005
MIN_BLOCK_SAMPLES = 1024
MAX_BLOCK_SAMPLES = 65536
#: A paced channel that falls this far behind the wall clock gives up catching up (s).
MAX_LAG_S = 0.5
#: TX messages taken after an output block's deadline, at most, before it goes out: a
#: flood of (malformed or tiny) messages cannot hold the output back.
MAX_LATE_MESSAGES = 32
#: TX samples beyond this magnitude are replaced by zeros, as non-finite ones are (the TX
#: chain's frames peak near 1; this keeps every stage and statistic finite).
MAX_TX_AMPLITUDE = 1e6
#: Event log lines (restarts, malformed messages, ...) at most once per this many seconds.
NOTICE_INTERVAL_S = 1.0


class Stage(Protocol):
    """One streaming impairment: ``process([n] complex64) -> [m] complex64``."""

    def process(self, x: np.ndarray) -> np.ndarray: ...


# ---------------------------------------------------------------------------------------
# Settings and SNR conversions


@dataclass(frozen=True)
class ChannelSettings:
    """What the channel applies; frequencies already in cycles per sample.

    ``signal_power`` is the mean power of the TX samples during a frame (``1 / sps``),
    ``noise_power`` the noise ``E|n|^2`` per sample (0: noiseless).
    ``phase_noise_std_rad`` is the per-sample Wiener increment std.
    """

    signal_power: float = 1.0
    noise_power: float = 0.0
    cfo_cps: float = 0.0
    sco_ppm: float = 0.0
    delay_samples: float = 0.0
    multipath_taps: tuple[complex, ...] = ()
    iq_gain_db: float = 0.0
    iq_phase_deg: float = 0.0
    dc_offset: complex = 0j
    phase_noise_std_rad: float = 0.0
    pa_rapp_p: float | None = None
    pa_backoff_db: float = DEFAULT_RAPP_BACKOFF_DB

    def __post_init__(self) -> None:
        check_range("signal power", self.signal_power, 1e-6, 1e6)
        check_range("noise power", self.noise_power, 0.0, 1e6)
        check_range("cfo", self.cfo_cps, -0.5, 0.5, unit="cycles/sample")
        check_range("--sco-ppm", self.sco_ppm, -1e4, 1e4, unit="ppm")
        check_range("--delay-samples", self.delay_samples, 0.0, 1e6, unit="samples")
        check_range("--iq-imbalance-db", self.iq_gain_db, -6.0, 6.0, unit="dB")
        check_range("--iq-imbalance-deg", self.iq_phase_deg, -45.0, 45.0, unit="deg")
        check_range("|--dc-offset|", abs(self.dc_offset), 0.0, 10.0)
        check_range("phase noise std", self.phase_noise_std_rad, 0.0, math.pi, unit="rad/sample")
        if self.pa_rapp_p is not None:
            check_range("--pa-rapp-p", self.pa_rapp_p, 0.1, 100.0)
        check_range("--pa-backoff-db", self.pa_backoff_db, -10.0, 40.0, unit="dB")
        if len(self.multipath_taps) > 64:
            raise ConfigError(f"--multipath takes at most 64 taps, got {len(self.multipath_taps)}")
        if self.multipath_taps and not any(self.multipath_taps):
            raise ConfigError("--multipath taps are all zero")

    def describe(self, sample_rate_hz: float) -> str:
        """One line listing what is applied, in physical units."""
        parts = []
        if self.pa_rapp_p is not None:
            parts.append(f"Rapp PA p={self.pa_rapp_p:g} backoff={self.pa_backoff_db:g} dB")
        if self.multipath_taps:
            parts.append("multipath [" + ", ".join(f"{t:.3g}" for t in self.multipath_taps) + "]")
        if self.delay_samples:
            parts.append(f"delay {self.delay_samples:g} samples")
        if self.sco_ppm:
            parts.append(f"clock offset {self.sco_ppm:g} ppm")
        if self.cfo_cps:
            parts.append(f"CFO {self.cfo_cps * sample_rate_hz:g} Hz")
        if self.phase_noise_std_rad:
            parts.append(f"phase noise {self.phase_noise_std_rad:.3g} rad/sample (Wiener)")
        if self.noise_power:
            snr_db = 10 * math.log10(self.signal_power / self.noise_power)
            parts.append(f"AWGN SNR {snr_db:.2f} dB (signal power {self.signal_power:.4g})")
        if self.iq_gain_db or self.iq_phase_deg:
            parts.append(f"IQ imbalance {self.iq_gain_db:g} dB {self.iq_phase_deg:g} deg")
        if self.dc_offset:
            parts.append(f"DC offset {self.dc_offset:g}")
        return ", ".join(parts) if parts else "none (noiseless, ideal)"


def snr_db_from_ebn0_db(ebn0_db: float, rate: float, samples_per_symbol: int) -> float:
    """Per-sample SNR (dB, full band, active TX samples of power 1/sps) for a given Eb/N0.

    >>> round(snr_db_from_ebn0_db(6.0, rate=2.0, samples_per_symbol=4), 4)
    2.9897
    """
    return ebn0_db + 10.0 * math.log10(rate) - 10.0 * math.log10(samples_per_symbol)


# ---------------------------------------------------------------------------------------
# Streaming stages


class RappStage:
    """Rapp PA, saturating ``backoff_db`` above the RMS amplitude of the TX frames."""

    def __init__(self, p: float, backoff_db: float, signal_power: float) -> None:
        self.p = p
        self.saturation_amplitude = math.sqrt(signal_power) * 10.0 ** (backoff_db / 20.0)

    def process(self, x: np.ndarray) -> np.ndarray:
        return imp.apply_rapp(x, self.p, self.saturation_amplitude)


class MultipathStage:
    """FIR channel ``taps``; keeps the last ``len(taps) - 1`` inputs between blocks."""

    def __init__(self, taps: Sequence[complex]) -> None:
        self.taps = np.asarray(taps, dtype=SAMPLE_DTYPE)
        self.history = np.zeros(len(self.taps) - 1, dtype=SAMPLE_DTYPE)

    def process(self, x: np.ndarray) -> np.ndarray:
        z = np.concatenate([self.history, x])
        y = np.convolve(z, self.taps)[len(self.history) : len(z)]
        if len(self.history):
            self.history = z[len(z) - len(self.history) :]
        return y.astype(SAMPLE_DTYPE, copy=False)


class IntegerDelayStage:
    """Delay by a whole number of samples (zeros first); output length = input length."""

    def __init__(self, delay_samples: int) -> None:
        self.pending = np.zeros(delay_samples, dtype=SAMPLE_DTYPE)

    def process(self, x: np.ndarray) -> np.ndarray:
        z = np.concatenate([self.pending, x])
        self.pending = z[len(x) :]
        return z[: len(x)]


class ResampleStage:
    """Fractional delay and sample-clock offset, continuous across blocks.

    Output sample ``m`` is the input (band-limited, windowed-sinc interpolation) at time
    ``m * ratio - delay_samples`` with ``ratio = 1 + sco_ppm 1e-6``, the model of
    :func:`~aeradio.dsp.impairments.apply_sco` plus a delay. Outputs lag the
    inputs by ``INTERP_HALF_TAPS`` samples (the interpolator's look-ahead), so block
    lengths vary slightly. Computed by the compiled polyphase interpolator of
    :mod:`aeradio.dsp.resample` (within 1e-5 of the model for a unit-power signal).
    """

    def __init__(self, sco_ppm: float, delay_samples: float, half_taps: int = imp.INTERP_HALF_TAPS) -> None:
        self.ratio = 1.0 + sco_ppm * 1e-6
        self.half_taps = half_taps
        first_needed = math.floor(-delay_samples) - half_taps + 1
        # The buffer starts at absolute input index first_needed (zeros before input 0).
        self.buffer = np.zeros(max(0, -first_needed), dtype=SAMPLE_DTYPE)
        self.t = -delay_samples - first_needed  # next output time, relative to buffer[0]
        self.table = resample.polyphase_table(half_taps)
        resample.warm_up()  # compile (or load) the kernel now, not in the first block

    def process(self, x: np.ndarray) -> np.ndarray:
        self.buffer = np.concatenate([self.buffer, x])
        # Output time t needs buffer[floor(t) + half_taps]: t < len - half_taps.
        limit = len(self.buffer) - self.half_taps
        count = max(0, math.ceil((limit - self.t) / self.ratio))
        while count and self.t + (count - 1) * self.ratio >= limit:
            count -= 1
        y = resample.resample_into(self.buffer, self.t, self.ratio, np.empty(count, SAMPLE_DTYPE), self.table)
        self.t += count * self.ratio
        drop = max(0, math.floor(self.t) - self.half_taps + 1)
        self.buffer = self.buffer[drop:]
        self.t -= drop
        return y


class CfoStage:
    """Carrier frequency offset with its phase carried between blocks.

    The rotation of a block is a cached ramp ``exp(j 2 pi cfo_cps k)`` (from
    :func:`~aeradio.dsp.impairments.apply_cfo`) times the block's start phasor, so
    a block costs two multiplications instead of a float64 exponential per sample.
    """

    def __init__(self, cfo_cps: float) -> None:
        self.cfo_cps = cfo_cps
        self.phase_rad = 0.0
        self.ramp = np.zeros(0, dtype=SAMPLE_DTYPE)

    def process(self, x: np.ndarray) -> np.ndarray:
        n = len(x)
        if len(self.ramp) < n:
            self.ramp = imp.apply_cfo(np.ones(n, dtype=SAMPLE_DTYPE), self.cfo_cps)
        start = np.complex64(complex(math.cos(self.phase_rad), math.sin(self.phase_rad)))
        y = self.ramp[:n] * start
        y *= x
        self.phase_rad = math.fmod(self.phase_rad + 2 * math.pi * self.cfo_cps * n, 2 * math.pi)
        return y


class PhaseNoiseStage:
    """Wiener phase noise, phase carried between blocks.

    The model of :func:`~aeradio.dsp.impairments.apply_phase_noise`, its N(0, std^2)
    increments drawn from a :class:`~aeradio.dsp.noise.GaussianPool` (the real and
    imaginary parts of its samples, each N(0, 1/2)); the phase is summed in float64.
    """

    def __init__(self, std_rad_per_sample: float, rng: np.random.Generator) -> None:
        self.std = std_rad_per_sample
        self.pool = GaussianPool(rng)
        self.phase_rad = 0.0

    def process(self, x: np.ndarray) -> np.ndarray:
        n = len(x)
        steps = self.pool.draw((n + 1) // 2).view(np.float32)[:n]
        phase = np.cumsum(steps, dtype=np.float64)
        phase *= self.std * math.sqrt(2.0)
        phase += self.phase_rad
        if n:
            self.phase_rad = math.fmod(float(phase[-1]), 2 * math.pi)
        angle = np.mod(phase, 2 * math.pi).astype(np.float32)
        rotation = np.empty(n, SAMPLE_DTYPE)
        rotation.real = np.cos(angle)
        rotation.imag = np.sin(angle)
        rotation *= x
        return rotation


class AwgnStage:
    """Complex white Gaussian noise of power ``noise_power`` per sample, drawn from a
    :class:`~aeradio.dsp.noise.GaussianPool` (the model of
    :func:`~aeradio.dsp.impairments.add_awgn`)."""

    def __init__(self, noise_power: float, rng: np.random.Generator) -> None:
        self.noise_power = noise_power
        self.std = np.float32(math.sqrt(noise_power))
        self.pool = GaussianPool(rng)
        noise.warm_up()  # compile (or load) the kernel now, not in the first block

    def process(self, x: np.ndarray) -> np.ndarray:
        return self.pool.add_scaled(x, self.std)


class IqImbalanceStage:
    """Receiver IQ imbalance (memoryless)."""

    def __init__(self, gain_db: float, phase_deg: float) -> None:
        self.k1, self.k2 = (np.complex64(k) for k in imp.iq_imbalance_coefficients(gain_db, phase_deg))

    def process(self, x: np.ndarray) -> np.ndarray:
        return (self.k1 * x + self.k2 * np.conj(x)).astype(SAMPLE_DTYPE, copy=False)


class DcOffsetStage:
    """Receiver DC offset (memoryless)."""

    def __init__(self, dc: complex) -> None:
        self.dc = dc

    def process(self, x: np.ndarray) -> np.ndarray:
        return imp.apply_dc_offset(x, self.dc)


class ChannelModel:
    """The chain of stages of :class:`ChannelSettings`, in the order of the module docstring."""

    def __init__(self, settings: ChannelSettings, rng: np.random.Generator) -> None:
        s = settings
        stages: list[Stage] = []
        if s.pa_rapp_p is not None:
            stages.append(RappStage(s.pa_rapp_p, s.pa_backoff_db, s.signal_power))
        if s.multipath_taps:
            stages.append(MultipathStage(s.multipath_taps))
        if s.sco_ppm or s.delay_samples != int(s.delay_samples):
            stages.append(ResampleStage(s.sco_ppm, s.delay_samples))
        elif s.delay_samples:
            stages.append(IntegerDelayStage(int(s.delay_samples)))
        if s.cfo_cps:
            stages.append(CfoStage(s.cfo_cps))
        if s.phase_noise_std_rad:
            stages.append(PhaseNoiseStage(s.phase_noise_std_rad, rng))
        if s.noise_power:
            stages.append(AwgnStage(s.noise_power, rng))
        if s.iq_gain_db or s.iq_phase_deg:
            stages.append(IqImbalanceStage(s.iq_gain_db, s.iq_phase_deg))
        if s.dc_offset:
            stages.append(DcOffsetStage(s.dc_offset))
        self.stages = stages

    def process(self, x: np.ndarray) -> np.ndarray:
        """Impair one block ``[n] complex64``; the output may differ in length by resampling."""
        y = np.asarray(x, dtype=SAMPLE_DTYPE)
        for stage in self.stages:
            y = stage.process(y)
        return y


# ---------------------------------------------------------------------------------------
# The process: sockets, pacing, logging


def block_samples_for(sample_rate_hz: float) -> int:
    """Samples per output block: a power of two near BLOCK_DURATION_S of signal."""
    target = sample_rate_hz * BLOCK_DURATION_S
    return int(min(MAX_BLOCK_SAMPLES, max(MIN_BLOCK_SAMPLES, 2 ** round(math.log2(max(target, 1.0))))))


@dataclass
class ChannelStats:
    """Counters logged periodically and at exit."""

    blocks: int = 0
    samples_in: int = 0
    samples_out: int = 0
    active_samples_in: int = 0
    active_energy_in: float = 0.0
    partial_blocks: int = 0
    tx_restarts: int = 0
    late_resyncs: int = 0
    #: TX messages that were not valid wire messages (skipped).
    malformed: int = 0
    #: TX samples that were not finite or beyond MAX_TX_AMPLITUDE (replaced by zeros).
    zeroed_in: int = 0
    #: TX connections that went away (ended, crashed, or dropped by ZMQ: message too large).
    tx_disconnects: int = 0
    #: Paced runs: the most a block went out after its scheduled time (s); a channel that
    #: keeps real time stays below a block's duration, one that does not grows to MAX_LAG_S.
    max_lag_s: float = 0.0
    #: CPU seconds this process used since the run started (every thread).
    cpu_s: float = 0.0


class Notices:
    """Event lines, rate-limited: at most one line per ``interval_s``, with counts.

    The first event after a quiet interval is logged at once; the events that follow within
    the interval are counted per kind and logged together (count, last detail) when it ends.

    >>> lines = []
    >>> notices = Notices(lines.append, interval_s=1.0)
    >>> for i in range(3):
    ...     notices.note("malformed TX message", f"bad {i}", now=10.0 + i / 10)
    >>> notices.flush(now=11.0)
    >>> lines
    ['channel: malformed TX message (bad 0)', 'channel: malformed TX message 2x (last: bad 2)']
    """

    def __init__(self, log: Callable[[str], None], interval_s: float = NOTICE_INTERVAL_S) -> None:
        self.log = log
        self.interval_s = interval_s
        self.counts: dict[str, int] = {}
        self.last: dict[str, str] = {}
        self.next_time = -math.inf

    def note(self, kind: str, detail: str, now: float | None = None) -> None:
        """Count one event of ``kind`` (e.g. "TX stream restarted"); log now if the interval allows."""
        self.counts[kind] = self.counts.get(kind, 0) + 1
        self.last[kind] = detail
        self.flush(now)

    def flush(self, now: float | None = None, *, force: bool = False) -> None:
        """Log the events counted so far, if any, when the interval has passed (or ``force``)."""
        now = time.monotonic() if now is None else now
        if not self.counts or (now < self.next_time and not force):
            return
        parts = [
            f"{kind} ({self.last[kind]})" if n == 1 else f"{kind} {n}x (last: {self.last[kind]})"
            for kind, n in self.counts.items()
        ]
        self.log("channel: " + "; ".join(parts))
        self.counts.clear()
        self.last.clear()
        self.next_time = now + self.interval_s


class InputQueue:
    """TX samples received from the PULL socket, bounded to ``capacity`` samples."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.chunks: deque[np.ndarray] = deque()
        self.size = 0

    def push(self, samples: np.ndarray) -> None:
        if len(samples):
            self.chunks.append(samples)
            self.size += len(samples)

    def take(self, count: int) -> np.ndarray:
        """Up to ``count`` samples from the front."""
        out: list[np.ndarray] = []
        need = count
        while need and self.chunks:
            head = self.chunks[0]
            if len(head) <= need:
                out.append(self.chunks.popleft())
                need -= len(head)
            else:
                out.append(head[:need])
                self.chunks[0] = head[need:]
                need = 0
        taken = np.concatenate(out) if out else np.zeros(0, dtype=SAMPLE_DTYPE)
        self.size -= len(taken)
        return taken


class ChannelSimulator:
    """PULL from TX, impair, PUB to RX, paced (``speed``) or as fast as possible (None)."""

    def __init__(
        self,
        model: ChannelModel,
        tx_address: str,
        rx_address: str,
        sample_rate_hz: float,
        *,
        speed: float | None,
        log: Callable[[str], None],
        block_samples: int | None = None,
    ) -> None:
        self.model = model
        self.sample_rate_hz = sample_rate_hz
        self.speed = speed
        self.log = log
        self.block = block_samples or block_samples_for(sample_rate_hz)
        self.pull, self.monitor = open_monitored_socket(
            "PULL", tx_address, bind=True, hwm=PUSH_PULL_HWM, role="--tx"
        )
        try:
            pub = open_socket("PUB", rx_address, bind=True, hwm=CHANNEL_PUB_HWM, role="--rx")
        except DeviceError:
            self.monitor.close()
            self.pull.close(linger=0)
            raise
        self.sender = MessageSender(pub)
        self.tracker = OffsetTracker(sample_rate_hz)
        self.queue = InputQueue(capacity=4 * self.block)
        self.stats = ChannelStats()
        self.notices = Notices(log)

    def close(self) -> None:
        self.monitor.close()
        self.pull.close(linger=0)
        self.sender.sock.close(linger=0)

    def _receive_one(self, timeout_s: float) -> bool:
        """Pull one TX message into the queue, waiting up to ``timeout_s``; False if none."""
        if not self.pull.poll(max(0, math.ceil(timeout_s * 1000))):  # POLLIN
            return False
        try:
            offset, samples = unpack_message(self.pull.recv(copy=False).buffer)
        except StreamError as exc:  # a bad peer must not stop the channel
            self.stats.malformed += 1
            self.notices.note("ignored a malformed TX message", str(exc))
            return True
        restarts, jumps = self.tracker.restarts, self.tracker.jumps
        self.tracker.update(offset, len(samples))
        if self.tracker.restarts != restarts or self.tracker.jumps != jumps:
            self.stats.tx_restarts += 1
            self.notices.note("TX stream restarted", f"at offset {offset}")
        invalid = ~(np.abs(samples) <= MAX_TX_AMPLITUDE)  # NaN compares False
        if invalid.any():
            count = int(np.count_nonzero(invalid))
            self.stats.zeroed_in += count
            samples[invalid] = 0
            self.notices.note(
                "zeroed non-finite or out-of-range TX samples", f"{count} in the message at offset {offset}"
            )
        self.queue.push(samples)
        self.stats.samples_in += len(samples)
        return True

    def _note_disconnects(self) -> None:
        self.monitor.poll()
        new = self.monitor.peer_disconnects - self.stats.tx_disconnects
        if new:
            self.stats.tx_disconnects += new
            self.notices.note(
                "TX disconnected",
                f"{new} connection(s): TX ended, or sent a message over {MAX_MESSAGE_BYTES} bytes",
            )

    def _fill(self, deadline: float) -> None:
        """Receive TX samples until ``deadline`` (monotonic s) or until a block is ready.

        After the deadline, takes what is already queued, up to MAX_LATE_MESSAGES messages.
        """
        fast = self.speed is None
        late = 0
        while self.queue.size < self.queue.capacity and not (fast and self.queue.size >= self.block):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if late >= MAX_LATE_MESSAGES:
                    break
                late += 1
            if not self._receive_one(max(0.0, remaining)) and remaining <= 0:
                break
        remaining = deadline - time.monotonic()
        if remaining > 0 and not (fast and self.queue.size >= self.block):
            time.sleep(remaining)

    def _emit(self) -> bool:
        """Impair and publish one block; True when it was full of TX samples."""
        x = self.queue.take(self.block)
        # Zeros add no energy: the energy of the block is that of its active samples. Each
        # |x|^2 <= MAX_TX_AMPLITUDE^2 = 1e12, so a float32 sum of a block cannot overflow.
        self.stats.active_samples_in += int(np.count_nonzero(x))
        self.stats.active_energy_in += float(np.vdot(x, x).real)
        full = len(x) == self.block
        if not full:
            if len(x):
                self.stats.partial_blocks += 1
            x = np.concatenate([x, np.zeros(self.block - len(x), dtype=SAMPLE_DTYPE)])
        y = self.model.process(x)
        self.sender.send(y, timeout_s=None)  # PUB: a slow RX loses samples, never stalls us
        self.stats.blocks += 1
        self.stats.samples_out += len(y)
        return full

    def status_line(self, elapsed_s: float, noise_power: float) -> str:
        s = self.stats
        rate = s.samples_out / elapsed_s / 1e6 if elapsed_s > 0 else 0.0
        cpu = s.cpu_s / elapsed_s if elapsed_s > 0 else 0.0
        line = (
            f"channel: t={elapsed_s:.1f}s out={s.samples_out} ({rate:.3f} MS/s) in={s.samples_in} "
            f"partial={s.partial_blocks} "
            f"tx_restarts={s.tx_restarts} late={s.late_resyncs} malformed={s.malformed} "
            f"lag_max={s.max_lag_s * 1e3:.1f}ms cpu={cpu:.0%}"
        )
        if s.zeroed_in:
            line += f" zeroed_in={s.zeroed_in} (non-finite or |x|>{MAX_TX_AMPLITUDE:g} TX samples set to 0)"
        if s.active_samples_in:
            power = s.active_energy_in / s.active_samples_in
            line += f" tx_power={10 * math.log10(power):.2f}dB"
            if noise_power:
                line += f" snr={10 * math.log10(power / noise_power):.2f}dB"
        return line

    def run(
        self,
        should_stop: Callable[[], bool],
        *,
        duration_s: float | None = None,
        stats_interval_s: float = DEFAULT_STATS_INTERVAL_S,
        noise_power: float = 0.0,
    ) -> None:
        """Stream until ``should_stop()`` or ``duration_s`` elapsed."""
        speed = self.speed or 1.0  # fast mode: idle blocks at the real-time rate
        period = self.block / (self.sample_rate_hz * speed)
        start = next_time = time.monotonic()
        cpu_start = time.process_time()
        next_log = start + stats_interval_s
        while not should_stop():
            now = time.monotonic()
            if duration_s is not None and now - start >= duration_s:
                break
            self._fill(next_time)
            full = self._emit()
            now = time.monotonic()
            if self.speed is not None:
                self.stats.max_lag_s = max(self.stats.max_lag_s, now - next_time)
            # Paced: a fixed schedule. Fast: TX blocks go out at once, idle blocks follow the
            # real-time schedule from the last TX block on.
            next_time = now + period if self.speed is None and full else next_time + period
            if next_time < now - MAX_LAG_S:
                self.stats.late_resyncs += 1
                next_time = now
            self._note_disconnects()
            self.notices.flush(now)
            if now >= next_log:
                self.stats.cpu_s = time.process_time() - cpu_start
                self.log(self.status_line(now - start, noise_power))
                next_log += stats_interval_s
        self._note_disconnects()
        self.notices.flush(force=True)
        self.stats.cpu_s = time.process_time() - cpu_start
        self.log(self.status_line(time.monotonic() - start, noise_power))
