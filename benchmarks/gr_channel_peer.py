"""GNU Radio doing the channel simulator's job: the peer of ``channel.throughput``.

Run by GNU Radio's own Python (``/usr/bin/python3``), not the project's: it imports only
gnuradio and numpy. The flowgraph, one per repeat::

    vector_source_c (the signal, repeated) -> head (--samples)
    -> mmse_resampler_cc (resamp_ratio = 1 + sco_ppm 1e-6, the clock offset)
    -> rotator_cc (2 pi cfo_cps per sample, the CFO)
    -> add_cc <- fastnoise_source_c (Gaussian, amplitude sqrt(noise_power), its pool)
    -> null_sink (or, with --out FILE, a file sink: what the tests check)

Prints one JSON object: the samples in per repeat and the wall and CPU (all threads)
seconds of ``top_block.run()`` alone (the flowgraph is built before the clock starts).
GNU Radio runs a thread per block: on a machine with several cores it can use them all.

    /usr/bin/python3 benchmarks/gr_channel_peer.py --signal SIG.npy --samples 16777216 \\
        --repeats 5 --cfo-cps 0.002 --sco-ppm 20 --noise-power 0.05
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import time

import numpy as np
from gnuradio import analog, blocks, filter, gr


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread of the flowgraph
    return usage.ru_utime + usage.ru_stime


def run_once(signal: list[complex], samples: int, cfo_cps: float, sco_ppm: float, noise_power: float,
             seed: int, out_path: str | None = None) -> dict[str, float]:
    tb = gr.top_block()
    source = blocks.vector_source_c(signal, True)
    head = blocks.head(gr.sizeof_gr_complex, samples)
    resampler = filter.mmse_resampler_cc(0.0, 1.0 + sco_ppm * 1e-6)
    rotator = blocks.rotator_cc(2 * math.pi * cfo_cps)
    noise = analog.fastnoise_source_c(analog.GR_GAUSSIAN, math.sqrt(noise_power), seed)
    add = blocks.add_cc()
    sink = (blocks.null_sink(gr.sizeof_gr_complex) if out_path is None
            else blocks.file_sink(gr.sizeof_gr_complex, out_path, False))
    tb.connect(source, head, resampler, rotator, (add, 0))
    tb.connect(noise, (add, 1))
    tb.connect(add, sink)
    wall0, cpu0 = time.perf_counter(), _cpu_s()
    tb.run()
    return {"samples": samples, "wall_s": time.perf_counter() - wall0, "cpu_s": _cpu_s() - cpu0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--signal", required=True, help="a .npy of complex64 samples, repeated")
    parser.add_argument("--samples", type=int, required=True)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--cfo-cps", type=float, default=0.0)
    parser.add_argument("--sco-ppm", type=float, default=0.0)
    parser.add_argument("--noise-power", type=float, default=0.0)
    parser.add_argument("--out", default=None, help="write the last repeat's output here (raw complex64)")
    args = parser.parse_args()
    signal = np.load(args.signal, allow_pickle=False).astype(np.complex64).tolist()
    runs = [run_once(signal, args.samples, args.cfo_cps, args.sco_ppm, args.noise_power, seed=i + 1,
                     out_path=args.out if i == args.repeats - 1 else None)
            for i in range(args.repeats)]
    print(json.dumps({"gnuradio": gr.version(), "runs": runs}), flush=True)


if __name__ == "__main__":
    main()
