#!/usr/bin/env python3
"""A classical GNU Radio receive chain on a cf32 recording, timed: the peer that aeradio's
RX chain is measured against (``aeradio bench --only rx.vs_gnuradio``, docs/throughput.md).

    file_source (cf32) -> fir_filter_ccf (RRC matched filter) -> symbol_sync_cc (clock
    recovery: ML timing error detector, 8-tap MMSE interpolator) -> costas_loop_cc
    (order 4) -> constellation_decoder_cb (QPSK) -> null_sink (or --out FILE)

Run it with GNU Radio's Python (``/usr/bin/python3``)::

    /usr/bin/python3 examples/gnuradio/classical_rx.py --input REC.cf32 --sps 4 --rolloff 0.35

It reads the recording once, as fast as the flowgraph goes (no throttle), and prints one
JSON line: ``samples`` read, ``symbols`` decoded, ``seconds`` (the flowgraph's run, start
to end of stream, without Python's start-up), ``cpu_seconds`` (the CPU time of all its
threads over that run) and ``samples_per_s``. With ``--out FILE`` the
decided QPSK symbols (one byte each, GNU Radio's ``constellation_qpsk`` numbering) are
written to FILE. GNU Radio runs each block in its own thread (its default scheduler), so
the chain may use several cores.

Exit 0 on success, 2 for a bad argument (one line on stderr).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

from gnuradio import blocks, digital, filter, gr
from gnuradio.filter import firdes

#: Loop bandwidths (normalized, rad/sample) of the GNU Radio tutorials' QPSK receiver.
DEFAULT_TIMING_LOOP_BW = 2 * math.pi * 0.01
DEFAULT_COSTAS_LOOP_BW = 2 * math.pi * 0.01


class ClassicalRx(gr.top_block):
    """file -> RRC matched filter -> symbol_sync -> Costas loop -> QPSK decisions -> sink."""

    def __init__(self, path: str, sps: int, rolloff: float, span_symbols: int, out: str | None,
                 timing_loop_bw: float = DEFAULT_TIMING_LOOP_BW,
                 costas_loop_bw: float = DEFAULT_COSTAS_LOOP_BW) -> None:
        gr.top_block.__init__(self, "aeradio classical RX peer", catch_exceptions=True)
        taps = firdes.root_raised_cosine(1.0, float(sps), 1.0, rolloff, span_symbols * sps + 1)
        norm = math.sqrt(sum(t * t for t in taps))  # unit energy, as aeradio's rrc_taps
        qpsk = digital.constellation_qpsk().base()
        self.source = blocks.file_source(gr.sizeof_gr_complex, path, False)
        self.matched = filter.fir_filter_ccf(1, [t / norm for t in taps])
        self.clock = digital.symbol_sync_cc(
            digital.TED_SIGNAL_TIMES_SLOPE_ML, float(sps), timing_loop_bw, 1.0, 1.0, 1.5, 1, qpsk,
            digital.IR_MMSE_8TAP,
        )
        self.costas = digital.costas_loop_cc(costas_loop_bw, 4)
        self.decoder = digital.constellation_decoder_cb(qpsk)
        if out is None:
            self.sink = blocks.null_sink(gr.sizeof_char)
        else:
            self.sink = blocks.file_sink(gr.sizeof_char, out, False)
            self.sink.set_unbuffered(False)
        self.connect(self.source, self.matched, self.clock, self.costas, self.decoder, self.sink)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--input", required=True, help="recording: interleaved float32 I/Q (cf32_le)")
    p.add_argument("--sps", type=int, default=4, help="samples per symbol (2..64) [default: 4]")
    p.add_argument("--rolloff", type=float, default=0.35, help="RRC roll-off (0.01..1) [default: 0.35]")
    p.add_argument("--span-symbols", type=int, default=8, help="RRC span in symbols (2..64) [default: 8]")
    p.add_argument("--out", help="write the decided symbols (uint8) to this file")
    return p.parse_args(argv)


def check(args: argparse.Namespace) -> str | None:
    """The first bad argument, as one line, or None."""
    if not 2 <= args.sps <= 64:
        return f"--sps must be in [2, 64], got {args.sps}"
    if not 0.01 <= args.rolloff <= 1.0:
        return f"--rolloff must be in [0.01, 1], got {args.rolloff}"
    if not 2 <= args.span_symbols <= 64:
        return f"--span-symbols must be in [2, 64], got {args.span_symbols}"
    if not os.path.isfile(args.input):
        return f"--input {args.input}: no such file"
    if os.path.getsize(args.input) % 8:
        return f"--input {args.input}: size {os.path.getsize(args.input)} is not a multiple of 8 bytes (cf32)"
    return None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    problem = check(args)
    if problem:
        print(f"classical_rx: {problem}", file=sys.stderr)
        return 2
    tb = ClassicalRx(args.input, args.sps, args.rolloff, args.span_symbols, args.out)
    start, cpu_start = time.perf_counter(), time.process_time()
    tb.run()
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    samples = os.path.getsize(args.input) // 8
    print(json.dumps({
        "samples": samples,
        "symbols": int(tb.sink.nitems_read(0)),
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "samples_per_s": samples / seconds if seconds > 0 else None,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
