"""Radio DSP benchmarks (issue 3): detection, false alarms, BLER through the synchronized
chain against the genie-synchronized simulation, overhead, throughput and latency; the RX
chain against a classical GNU Radio receive chain on the same recording (issue 15), pipelined
as ``aeradio rx`` runs it and single-threaded.

Recordings are TX chain output with impairments from ``aeradio.dsp.impairments``:
CFO, sample-clock offset, random delay and phase, AWGN at the payload Eb/N0 (symbol
energy 1, so the per-sample noise power is N0 = 1 / (R Eb/N0)).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np

from aeradio.apps.bench import BenchContext, figure
from aeradio.apps.rx import RX_READ_SAMPLES
from aeradio.core.paths import checkout_path
from aeradio.core.units import noise_var_per_real
from aeradio.dsp import impairments as imp
from aeradio.flowgraphs.rx_chain import RxChain
from aeradio.flowgraphs.tx_chain import TxChain

#: The model of the targets, or the closest config present in the checkout.
MODEL_CONFIGS = ("ae-n7-k8", "ae-n7-k4")
SEED = 11
READ_BLOCK = RX_READ_SAMPLES  # what `aeradio rx` reads at most (a recording: always)
SMALL_READ = 1 << 16
THROUGHPUT_RUNS = 5
DETECTION_FRAMES = 3000
DETECTION_EBN0_DB = 4.0
NOISE_SAMPLES = 10_000_000
#: Target condition of the BLER comparison.
BLER_CFO_CPS = 0.02
BLER_SCO_PPM = 50.0
BLER_TARGETS = (1e-2, 1e-3)
BLER_MAX_LOSS_DB = 0.5
#: Block errors wanted per BLER point (the lowest points get fewer; see MAX_FRAMES).
BLER_TARGET_ERRORS = 200
BLER_MAX_FRAMES = 4000


def _model(ctx: BenchContext) -> tuple[Path, str]:
    """A trained model directory (shared with the learning benchmarks through the memo)."""
    from aeradio.apps.train import load_training_config, train_and_save
    from aeradio.core.model_dir import read_extra_meta

    name = next(n for n in MODEL_CONFIGS if (checkout_path("configs") / f"{n}.toml").exists())
    key = f"learning.model.{name}"
    if key not in ctx.memo:
        cfg = load_training_config(checkout_path("configs") / f"{name}.toml")
        ctx.log(f"training {name}")
        out = train_and_save(cfg, ctx.work_dir / name, progress=False)
        ctx.memo[key] = (out, read_extra_meta(out)["training"]["seconds"])
    return ctx.memo[key][0], name


def _link(model_dir: Path) -> tuple[Any, np.ndarray, int]:
    from aeradio.core.model_dir import load_link_config, load_lut, model_hash32

    return load_link_config(model_dir), load_lut(model_dir), model_hash32(model_dir)


def _impaired(x: np.ndarray, ebn0_db: float, rate: float, rng: np.random.Generator,
              cfo_cps: float, sco_ppm: float, multipath: tuple[complex, ...] = ()) -> np.ndarray:
    """Multipath, random delay and phase, then SCO, CFO and AWGN."""
    x = np.concatenate([np.zeros(int(rng.integers(500, 1500)), np.complex64), x])
    if multipath:
        taps = np.asarray(multipath, np.complex128)
        x = imp.apply_multipath(x, taps / np.sqrt(np.sum(np.abs(taps) ** 2)))
    x = imp.apply_delay(x, float(rng.random()))
    if sco_ppm:
        x = imp.apply_sco(x, sco_ppm)
    x = imp.apply_cfo(x, cfo_cps, phase_rad=float(rng.uniform(-np.pi, np.pi)))
    return imp.add_awgn(x, 2 * noise_var_per_real(ebn0_db, rate), rng)


def _run(rx: RxChain, y: np.ndarray, read: int = READ_BLOCK) -> float:
    """Feed ``y`` in read-sized blocks; returns the processing time (s)."""
    t = time.perf_counter()
    for i in range(0, len(y), read):
        rx.process(y[i : i + read])
    rx.flush()
    return time.perf_counter() - t


def _null_decoder(y: np.ndarray, noise_var: np.ndarray) -> np.ndarray:
    return np.zeros(len(y), np.int64)


def bench_detection(ctx: BenchContext) -> dict[str, Any]:
    """Detection rate at Eb/N0 4 dB with CFO +-0.03 cps, SCO +-100 ppm, random delay/phase;
    false alarms on 10^7 noise samples."""
    model_dir, name = _model(ctx)
    cfg, lut, mhash = _link(model_dir)
    tx = TxChain(cfg, lut, mhash)
    rng = np.random.default_rng(SEED)
    detected = decoded = 0
    chunk = 500
    for start in range(0, DETECTION_FRAMES, chunk):
        cfo = float(rng.uniform(-0.03, 0.03))
        sco = float(rng.uniform(-100, 100))
        y = _impaired(tx.test_pattern(np.arange(start, start + chunk), SEED), DETECTION_EBN0_DB,
                      cfg.model.rate, rng, cfo, sco)
        rx = RxChain(cfg, _null_decoder, model_hash=mhash)
        _run(rx, y)
        detected += rx.stats.frames_detected
        decoded += rx.stats.frames_decoded
    rate = detected / DETECTION_FRAMES
    rx = RxChain(cfg, _null_decoder, model_hash=mhash)
    noise = imp.add_awgn(np.zeros(NOISE_SAMPLES, np.complex64), 1.0, rng)
    seconds = _run(rx, noise)
    false_alarms = rx.stats.frames_detected + rx.stats.false_detections
    return {
        "model": name,
        "figures": [
            figure(f"frames detected at Eb/N0 {DETECTION_EBN0_DB:g} dB ({name}, CFO<=0.03, SCO<=100ppm)",
                   rate, "fraction", target=">= 0.999", passed=rate >= 0.999),
            figure("headers decoded among detected", decoded / max(detected, 1), "fraction"),
            figure("false alarms per 1e7 noise samples", false_alarms * 1e7 / NOISE_SAMPLES, "count",
                   target="<= 1", passed=false_alarms * 1e7 / NOISE_SAMPLES <= 1),
            figure("detector throughput on noise", NOISE_SAMPLES / seconds / 1e6, "MS/s"),
        ],
    }


def _chain_bler(ctx: BenchContext, model_dir: Path, ebn0_db: float, rng: np.random.Generator,
                multipath: tuple[complex, ...] = (), max_frames: int = BLER_MAX_FRAMES) -> float:
    from aeradio.learning.inference import ReceiverRuntime

    cfg, lut, mhash = _link(model_dir)
    runtime = ReceiverRuntime.load(model_dir)
    tx = TxChain(cfg, lut, mhash, gap_symbols=cfg.frame.gap_symbols)
    rx = RxChain(cfg, runtime.decide, model_hash=mhash)
    frames, batch = 0, 250
    while rx.stats.block_errors < BLER_TARGET_ERRORS and frames < max_frames:
        x = tx.test_pattern(np.arange(frames, frames + batch), SEED)
        _run(rx, _impaired(x, ebn0_db, cfg.model.rate, rng, BLER_CFO_CPS, BLER_SCO_PPM, multipath))
        frames += batch
    lost = frames - rx.stats.frames_decoded
    # Frames lost to detection or header failures count as all their blocks in error.
    blocks = rx.stats.blocks + lost * cfg.frame.blocks_per_frame
    return (rx.stats.block_errors + lost * cfg.frame.blocks_per_frame) / blocks


def bench_bler_vs_genie(ctx: BenchContext) -> dict[str, Any]:
    """BLER through the chain (CFO 0.02 cps, 50 ppm, random delay and phase) vs the
    genie-synchronized simulation of the same model, as an Eb/N0 gap at BLER 1e-2, 1e-3."""
    from aeradio.learning.evaluate import ebn0_at_bler, simulate_bler

    model_dir, name = _model(ctx)
    rng = np.random.default_rng(SEED + 1)
    ebn0 = [2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
    genie, chain = [], []
    for e in ebn0:
        genie.append(simulate_bler(model_dir, e, target_errors=BLER_TARGET_ERRORS, seed=3, ml=False)
                     ["neural"]["bler"])
        chain.append(_chain_bler(ctx, model_dir, e, rng))
        ctx.log(f"Eb/N0 {e:g} dB: genie BLER {genie[-1]:.2e}, chain BLER {chain[-1]:.2e}")
    figures = []
    for target in BLER_TARGETS:
        g, c = ebn0_at_bler(ebn0, genie, target), ebn0_at_bler(ebn0, chain, target)
        gap = None if g is None or c is None else c - g
        figures.append(figure(f"sync loss at BLER {target:g} ({name})", gap, "dB",
                              target=f"<= {BLER_MAX_LOSS_DB}",
                              passed=None if gap is None else gap <= BLER_MAX_LOSS_DB))
    return {"model": name, "ebn0_db": ebn0, "genie_bler": genie, "chain_bler": chain, "figures": figures}


def bench_throughput(ctx: BenchContext) -> dict[str, Any]:
    """RX MS/s on a recording with frames half of the time (neural receiver included, one
    thread as `aeradio rx` runs by default), TX MS/s, per-frame latency and the overhead."""
    from aeradio.learning.training import torch_threads

    with torch_threads(1):
        return _throughput(ctx)


def _throughput(ctx: BenchContext) -> dict[str, Any]:
    from aeradio.learning.inference import ReceiverRuntime

    model_dir, name = _model(ctx)
    cfg, lut, mhash = _link(model_dir)
    runtime = ReceiverRuntime.load(model_dir)
    frames = 2000
    layout_symbols = TxChain(cfg, lut, mhash).layout.num_symbols
    tx = TxChain(cfg, lut, mhash, gap_symbols=layout_symbols)  # frames half of the time
    seqs = np.arange(frames)
    tx.test_pattern(seqs[:64], SEED)  # warm-up
    # This machine's speed varies from run to run (shared cores): medians of a few runs.
    tx_rates = []
    for _ in range(THROUGHPUT_RUNS):
        t = time.perf_counter()
        x = tx.test_pattern(seqs, SEED)
        tx_rates.append(len(x) / (time.perf_counter() - t) / 1e6)
    tx_rate = float(np.median(tx_rates))
    rng = np.random.default_rng(SEED + 2)
    y = _impaired(x, 8.0, cfg.model.rate, rng, 0.01, 20.0)
    rx = RxChain(cfg, runtime.decide, model_hash=mhash)
    _run(rx, y[: READ_BLOCK * 2])  # warm-up
    rx_rates, dsp_rates = [], []
    for _ in range(THROUGHPUT_RUNS):
        rx = RxChain(cfg, runtime.decide, model_hash=mhash)
        rx_rates.append(len(y) / _run(rx, y) / 1e6)
        dsp_rates.append(len(y) / _run(RxChain(cfg, _null_decoder, model_hash=mhash), y) / 1e6)
    rx_rate, dsp_rate = float(np.median(rx_rates)), float(np.median(dsp_rates))
    small = RxChain(cfg, runtime.decide, model_hash=mhash)
    small_rate = len(y) / _run(small, y, SMALL_READ) / 1e6
    # Latency: one frame's samples arrive, the frame comes out.
    frame_samples = (layout_symbols * 2) * cfg.radio.samples_per_symbol
    rx1 = RxChain(cfg, runtime.decide, model_hash=mhash)
    lat = []
    for i in range(0, min(len(y), 200 * frame_samples), frame_samples):
        t = time.perf_counter()
        out = rx1.process(y[i : i + frame_samples])
        if out:
            lat.append(time.perf_counter() - t)
    over = rx.layout.overhead
    return {
        "model": name,
        "figures": [
            figure(f"RX throughput (frames half the time, neural receiver, median of {THROUGHPUT_RUNS})",
                   rx_rate, "MS/s", target=">= 20", passed=rx_rate >= 20),
            figure("RX throughput, slowest run", min(rx_rates), "MS/s"),
            figure("RX throughput, DSP only (no receiver), median", dsp_rate, "MS/s"),
            figure(f"RX throughput with {SMALL_READ}-sample reads", small_rate, "MS/s"),
            figure("false detections in throughput run", rx.stats.false_detections, "count"),
            figure(f"TX throughput (median of {THROUGHPUT_RUNS})", tx_rate, "MS/s", target=">= 50",
                   passed=tx_rate >= 50),
            figure("RX frames decoded in throughput run", rx.stats.frames_decoded / frames, "fraction"),
            figure("per-frame latency (median)", 1e3 * float(np.median(lat)) if lat else None, "ms"),
            figure("overhead: preamble", over["preamble"], "fraction of frame symbols"),
            figure("overhead: header", over["header"], "fraction of frame symbols"),
            figure("overhead: pilots", over["pilots"], "fraction of frame symbols"),
            figure("Eb/N0 penalty of the overhead", 10 * math.log10(1 / over["payload"]), "dB"),
        ],
    }


#: A short multipath channel: an echo half a symbol late (taps at sample spacing, sps 4).
MULTIPATH_TAPS = (1.0, 0.0, 0.35j)
MULTIPATH_EBN0_DB = (4.0, 6.0, 8.0)


def bench_multipath(ctx: BenchContext) -> dict[str, Any]:
    """BLER through the chain over a short multipath channel (echo within one symbol) of a
    receiver trained on multipath, against its genie-synchronized BLER on the training
    multipath channel (informational: the two channels are alike, not equal)."""
    import dataclasses

    from aeradio.apps.train import load_training_config, train_and_save
    from aeradio.learning.evaluate import simulate_bler

    _, name = _model(ctx)
    key = f"dsp.multipath_model.{name}"
    if key not in ctx.memo:
        cfg = load_training_config(checkout_path("configs") / f"{name}.toml")
        cfg = cfg.replace(training=dataclasses.replace(cfg.training, channel="awgn+multipath"))
        ctx.log(f"training {name} on awgn+multipath")
        ctx.memo[key] = train_and_save(cfg, ctx.work_dir / f"{name}-multipath", progress=False)
    model_dir = ctx.memo[key]
    rng = np.random.default_rng(SEED + 3)
    figures, rows = [], []
    for e in MULTIPATH_EBN0_DB:
        chain = _chain_bler(ctx, model_dir, e, rng, MULTIPATH_TAPS, max_frames=1500)
        genie = simulate_bler(model_dir, e, "awgn+multipath", target_errors=BLER_TARGET_ERRORS, seed=4,
                              ml=False)["neural"]["bler"]
        rows.append({"ebn0_db": e, "chain_bler": chain, "genie_bler": genie})
        figures.append(figure(f"multipath BLER at Eb/N0 {e:g} dB: chain", chain, "BLER"))
        figures.append(figure(f"multipath BLER at Eb/N0 {e:g} dB: genie (training channel)", genie, "BLER"))
    return {"model": name, "taps": [str(t) for t in MULTIPATH_TAPS], "points": rows, "figures": figures}


#: GNU Radio's Python (Debian's gnuradio package), as the GNU Radio tests use it.
GR_PYTHON = os.environ.get("GR_PYTHON", "/usr/bin/python3")
#: The classical GNU Radio receive chain run on the recording.
GR_PEER = checkout_path("examples") / "gnuradio" / "classical_rx.py"
#: Frames of the side-by-side recording: ~19 M samples with the default frame and gap.
VS_GNURADIO_FRAMES = 6000
#: Runs of each receiver, alternating (the machine's load varies over a run).
VS_GNURADIO_RUNS = 5
VS_GNURADIO_TARGET = 2.0
#: Longest run of the GNU Radio peer (s): a hung flowgraph fails the benchmark.
GR_TIMEOUT_S = 600


def _recording(cfg: Any, lut: np.ndarray, mhash: int, frames: int, path: Path) -> int:
    """Write ``frames`` test-pattern frames (the config's gap between them: frames nearly all
    of the time, the receiver's worst case) with a random lead and phase, CFO 0.01 cps and
    AWGN at Eb/N0 8 dB to ``path`` as cf32; returns the sample count.

    No clock offset: resampling tens of millions of samples costs minutes here, and neither
    receiver's work depends on it (the classical chain tracks timing on every symbol anyway).
    """
    rng = np.random.default_rng(SEED + 4)
    x = TxChain(cfg, lut, mhash, gap_symbols=cfg.frame.gap_symbols).test_pattern(np.arange(frames), SEED)
    x = np.concatenate([np.zeros(int(rng.integers(500, 1500)), np.complex64), x])
    x = imp.apply_cfo(x, 0.01, phase_rad=float(rng.uniform(-np.pi, np.pi)))
    imp.add_awgn(x, 2 * noise_var_per_real(8.0, cfg.model.rate), rng).tofile(path)
    return len(x)


def _sigmf_recording(path: Path, sample_rate_hz: float) -> Path:
    """The SigMF metadata that makes the cf32 file ``path`` (named ``X.sigmf-data``) a
    recording `aeradio rx --device file:X.sigmf-meta` reads; without ``core:sha512``, as a
    recording made by another tool (GNU Radio's file_source checks nothing either): the
    hash costs about 0.5 CPU s per 27.6 M samples (docs/throughput.md)."""
    from aeradio.core.atomic import write_json_atomic
    from aeradio.radio.sigmf_meta import build_metadata, capture_segment

    meta_path = path.with_suffix(".sigmf-meta")
    segment = capture_segment(0, datetime_utc=None, frequency_hz=None)
    meta = build_metadata(sample_rate_hz=sample_rate_hz, hw="aeradio bench", captures=[segment],
                          annotations=[])
    write_json_atomic(meta_path, meta, overwrite=True)
    return meta_path


def _run_file(rx: RxChain, meta_path: Path, sample_rate_hz: float,
              read: int = READ_BLOCK) -> tuple[float, float]:
    """Feed a recording in read-sized blocks through the file device, as `aeradio rx` reads
    it (the next block read ahead on the device's thread), reading included; returns the
    wall-clock and the CPU time (s)."""
    from aeradio.radio.base import DeviceSettings
    from aeradio.radio.uri import open_device

    t, cpu = time.perf_counter(), time.process_time()
    with open_device(f"file:{meta_path}", "rx", DeviceSettings(sample_rate_hz)) as dev:
        while (block := dev.read(read)) is not None:
            rx.process(block)
        if dev.stats.faults.count:
            raise RuntimeError(f"the recording has faults: {dev.stats.faults.to_report()}")
    rx.flush()
    return time.perf_counter() - t, time.process_time() - cpu


def _gnuradio_run(path: Path, cfg: Any) -> dict[str, Any]:
    """One run of the classical GNU Radio chain on ``path``: its JSON line."""
    radio = cfg.radio
    done = subprocess.run(
        [GR_PYTHON, str(GR_PEER), "--input", str(path), "--sps", str(radio.samples_per_symbol),
         "--rolloff", str(radio.rolloff), "--span-symbols", str(radio.rrc_span_symbols)],
        capture_output=True, text=True, timeout=GR_TIMEOUT_S,
    )
    if done.returncode:
        raise RuntimeError(f"{GR_PEER.name} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def gnuradio_missing() -> str | None:
    """Why the GNU Radio peer cannot run here, or None."""
    try:
        done = subprocess.run([GR_PYTHON, "-c", "from gnuradio import gr, digital, filter, blocks"],
                              capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{GR_PYTHON} cannot run: {exc}"
    return f"GNU Radio is not importable by {GR_PYTHON}" if done.returncode else None


def _spread(rates: list[float]) -> float:
    return 100 * (max(rates) - min(rates)) / float(np.median(rates))


def bench_vs_gnuradio(ctx: BenchContext) -> dict[str, Any]:
    """The RX chain (neural receiver included, one torch thread, pipelined as `aeradio rx`
    runs it on two cores: the DSP of read i+1 beside the neural receiver of read i) against
    a classical GNU Radio receive chain (examples/gnuradio/classical_rx.py: RRC matched
    filter, symbol_sync, Costas loop, QPSK decisions) on the same cf32 recording, read from
    the same file (ours through the file device, as `aeradio rx` reads it), run alternately
    with the single-threaded chain (``--pipeline off``, the A/B of the pipeline in the same
    process); medians and spread of samples/s and the ratios."""
    from aeradio.learning.inference import ReceiverRuntime
    from aeradio.learning.training import torch_threads

    missing = gnuradio_missing()
    if missing:
        return {"skipped": missing, "figures": [figure(f"RX / GNU Radio (skipped: {missing})", None, "x")]}
    model_dir, name = _model(ctx)
    cfg, lut, mhash = _link(model_dir)
    runtime = ReceiverRuntime.load(model_dir)
    path = ctx.work_dir / "rx_vs_gnuradio.sigmf-data"
    samples = _recording(cfg, lut, mhash, VS_GNURADIO_FRAMES, path)
    meta_path = _sigmf_recording(path, cfg.radio.sample_rate_hz)
    ctx.log(f"recording: {samples} samples, {VS_GNURADIO_FRAMES} frames")
    theirs, theirs_cpu, symbols = [], [], []
    ours: dict[bool, list[float]] = {True: [], False: []}  # pipelined or not: MS/s
    ours_cpu: dict[bool, list[float]] = {True: [], False: []}
    decoded = []
    with torch_threads(1):
        _run(RxChain(cfg, runtime.decide, model_hash=mhash), np.fromfile(path, np.complex64, READ_BLOCK * 2))
        for i in range(VS_GNURADIO_RUNS):
            gr_out = _gnuradio_run(path, cfg)
            theirs.append(gr_out["samples_per_s"] / 1e6)
            theirs_cpu.append(samples / gr_out["cpu_seconds"] / 1e6)
            symbols.append(gr_out["symbols"])
            for pipelined in (True, False):
                rx = RxChain(cfg, runtime.decide, model_hash=mhash, pipelined=pipelined)
                wall, cpu = _run_file(rx, meta_path, cfg.radio.sample_rate_hz)
                rx.close()
                ours[pipelined].append(samples / wall / 1e6)
                ours_cpu[pipelined].append(samples / cpu / 1e6)
                decoded.append(rx.stats.frames_decoded)
            ctx.log(f"run {i + 1}: GNU Radio {theirs[-1]:.2f} MS/s, aeradio RX {ours[True][-1]:.2f} MS/s "
                    f"(single-threaded {ours[False][-1]:.2f})")
    med = {p: float(np.median(v)) for p, v in ours.items()}
    med_cpu = {p: float(np.median(v)) for p, v in ours_cpu.items()}
    ratio = med[True] / float(np.median(theirs))
    cpu_ratio = med_cpu[True] / float(np.median(theirs_cpu))
    return {
        "model": name,
        "samples": samples,
        "aeradio_ms_per_s": ours[True],
        "aeradio_single_thread_ms_per_s": ours[False],
        "gnuradio_ms_per_s": theirs,
        "aeradio_ms_per_cpu_s": ours_cpu[True],
        "aeradio_single_thread_ms_per_cpu_s": ours_cpu[False],
        "gnuradio_ms_per_cpu_s": theirs_cpu,
        "load_average_1m": round(os.getloadavg()[0], 2),
        "figures": [
            figure(f"RX chain / GNU Radio classical chain (medians of {VS_GNURADIO_RUNS}, {name})", ratio,
                   "x", target=f">= {VS_GNURADIO_TARGET:g}", passed=ratio >= VS_GNURADIO_TARGET),
            figure("RX chain (neural receiver, pipelined: 2 threads), median", med[True], "MS/s"),
            figure("RX chain, spread (max - min) / median", _spread(ours[True]), "%"),
            figure("RX chain single-threaded (--pipeline off), median", med[False], "MS/s"),
            figure("RX chain pipelined / single-threaded (medians, same process, alternated)",
                   med[True] / med[False], "x"),
            figure("GNU Radio classical chain, median", float(np.median(theirs)), "MS/s"),
            figure("GNU Radio classical chain, spread (max - min) / median", _spread(theirs), "%"),
            figure("samples per CPU second, RX chain (pipelined) / GNU Radio (medians; GNU Radio runs a "
                   "thread per block)", cpu_ratio, "x"),
            figure("RX chain per CPU second, median (pipelined; single-threaded)",
                   f"{med_cpu[True]:.2f}; {med_cpu[False]:.2f}", "MS/s"),
            figure("GNU Radio classical chain per CPU second, median", float(np.median(theirs_cpu)), "MS/s"),
            figure("RX frames decoded (every run)", min(decoded) / VS_GNURADIO_FRAMES, "fraction",
                   target="1", passed=min(decoded) == VS_GNURADIO_FRAMES),
            figure("GNU Radio symbols out per sample / sps", min(symbols) * cfg.radio.samples_per_symbol
                   / samples, "fraction"),
            figure("load average (1 min) at the end", round(os.getloadavg()[0], 2),
                   f"on {os.cpu_count()} cores"),
        ],
    }


BENCHMARKS = {
    "dsp.detection": bench_detection,
    "dsp.bler_vs_genie": bench_bler_vs_genie,
    "dsp.throughput": bench_throughput,
    "dsp.multipath": bench_multipath,
    "rx.vs_gnuradio": bench_vs_gnuradio,
}
