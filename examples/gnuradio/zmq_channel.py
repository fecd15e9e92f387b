#!/usr/bin/env python3
"""A GNU Radio flowgraph as the channel between ``aeradio tx`` and ``aeradio rx`` over ZMQ.

    zeromq.pull_source -> throttle -> channels.channel_model -> zeromq.pub_sink

Both ZMQ blocks use ``pass_tags=True``, the gr-zeromq tag header that aeradio's sample
streams carry (docs/contracts.md, "ZMQ sample streams"). GNU Radio's PULL source connects
and its PUB sink binds, so the transmitter binds (``?bind=1``) and the receiver connects::

    /usr/bin/python3 examples/gnuradio/zmq_channel.py --tx tcp://127.0.0.1:5555 \\
        --rx tcp://127.0.0.1:5556 --model MODEL_DIR --ebn0-db 10 --sample-rate-hz 1e6
    aeradio rx --model MODEL_DIR --device zmq:tcp://127.0.0.1:5556 --sample-rate-hz 1e6 --frames 100
    aeradio tx --model MODEL_DIR --device 'zmq:tcp://127.0.0.1:5555?bind=1' --sample-rate-hz 1e6 --frames 100

Run it with GNU Radio's Python (``/usr/bin/python3``) and the checkout on ``PYTHONPATH``.
The noise follows aeradio's energy convention, as ``aeradio channel --ebn0-db`` does: the
frame's samples have power ``1 / sps`` (unit-energy RRC taps), and complex noise of power
``N = 1 / (R Eb/N0)`` per sample, ``R = k / n``, becomes noise of power N per symbol after
the matched filter (``noise_voltage = sqrt(N)``, :func:`aeradio.gnuradio.model.noise_voltage`).
``--cfo-hz`` sets the channel model's frequency offset. The throttle paces the stream at
``--sample-rate-hz`` as a radio would (0: as fast as the receiver side allows; a slow
receiver then loses samples, as on PUB/SUB it should).

It prints ``zmq_channel: PULL <tx> PUB <rx> ...`` on stderr once both sockets are set up,
and runs until SIGINT or SIGTERM (exit 0). Messages stay within aeradio's
``MAX_MESSAGE_SAMPLES`` (``max_noutput_items``).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from gnuradio import blocks, channels, gr, zeromq

from aeradio.core.errors import AeradioError, ConfigError, check_range
from aeradio.core.model_dir import load_link_config
from aeradio.gnuradio.model import noise_voltage
from aeradio.radio.zmq_stream import MAX_MESSAGE_SAMPLES, PUB_SUB_HWM, PUSH_PULL_HWM, zmq_address

#: ZMQ receive timeout of the PULL source (ms): how often it checks for stop.
PULL_TIMEOUT_MS = 100


class ZmqChannel(gr.top_block):
    """PULL (connects to ``tx_address``) -> throttle -> channel model -> PUB (binds ``rx_address``)."""

    def __init__(
        self, tx_address: str, rx_address: str, noise_voltage_rms: float, freq_offset_cps: float,
        sample_rate_hz: float, seed: int,
    ) -> None:
        gr.top_block.__init__(self, "aeradio ZMQ channel", catch_exceptions=True)
        item = gr.sizeof_gr_complex
        self.source = zeromq.pull_source(item, 1, tx_address, PULL_TIMEOUT_MS, True, PUSH_PULL_HWM)
        self.channel = channels.channel_model(
            noise_voltage=noise_voltage_rms, frequency_offset=freq_offset_cps, epsilon=1.0, taps=[1.0],
            noise_seed=seed, block_tags=False,
        )
        self.sink = zeromq.pub_sink(item, 1, rx_address, 100, True, PUB_SUB_HWM)
        chain = [self.source]
        if sample_rate_hz > 0:
            self.throttle = blocks.throttle(item, sample_rate_hz, True)
            chain.append(self.throttle)
        self.connect(*chain, self.channel, self.sink)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tx", required=True, help="address aeradio tx binds (?bind=1), e.g. tcp://127.0.0.1:5555")
    parser.add_argument("--rx", required=True, help="address to bind the PUB on, e.g. tcp://127.0.0.1:5556")
    parser.add_argument("--model", required=True, help="model directory (its code rate sets the noise)")
    parser.add_argument("--ebn0-db", type=float, default=None, help="Eb/N0 in dB (default: no noise)")
    parser.add_argument("--cfo-hz", type=float, default=0.0, help="frequency offset in Hz (default 0)")
    parser.add_argument("--sample-rate-hz", type=float, default=1e6, help="pace, samples/s (0: unpaced)")
    parser.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    try:
        tx, rx = zmq_address(args.tx), zmq_address(args.rx)
        rate = load_link_config(args.model).model.rate
        check_range("--sample-rate-hz", args.sample_rate_hz, 0.0, 1e9, unit="S/s")
        if args.cfo_hz and not args.sample_rate_hz:
            raise ConfigError("--cfo-hz needs --sample-rate-hz > 0 (the offset in cycles per sample)")
        voltage = 0.0 if args.ebn0_db is None else noise_voltage(args.ebn0_db, rate)
        cfo_cps = args.cfo_hz / args.sample_rate_hz if args.cfo_hz else 0.0
        tb = ZmqChannel(tx, rx, voltage, cfo_cps, args.sample_rate_hz, args.seed)
    except AeradioError as exc:
        print(f"zmq_channel: {exc}", file=sys.stderr)
        return 2
    stopped = threading.Event()

    def stop(signum: int, frame: object) -> None:
        stopped.set()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    tb.start(MAX_MESSAGE_SAMPLES)
    print(f"zmq_channel: PULL {tx} PUB {rx} noise_voltage {voltage:.6g} cfo {args.cfo_hz:g} Hz "
          f"rate {args.sample_rate_hz:g} S/s", file=sys.stderr, flush=True)
    while not stopped.wait(0.5):
        pass
    tb.stop()
    tb.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
