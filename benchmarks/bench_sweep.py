"""Sweep benchmarks: evaluation on 2 local Ray workers against 1, and a BLER of 1e-6.

``sweep.speedup``: the same point of AE(7,8) (configs/ae-n7-k8.toml, 9 dB, where the
target is never reached, so every run simulates exactly :data:`SPEEDUP_BLOCKS` blocks) on a
local Ray of 1 worker and of 2, :data:`REPEATS` times each, alternated. Timed: the sweep's
own loop (tasks, merge, saving), not Ray's start-up; the workers' first import of torch is
in it. Target: 2 workers >= 1.8x faster (median over the repetitions). On a 2-core machine
shared with other work the spread says how much to trust it: the load average is reported,
and a control runs the same simulation in 1 and 2 plain processes without Ray, which says
what speed-up the machine had to give at the time. Where the time went: the workers'
start-up (until every worker has imported torch, a fixed cost that 2 workers do not halve),
the speed-up of the rest of the run (blocks per second after the start-up), and the share
of the task slots' time spent simulating (``busy_s / (slots * elapsed_s)``; what is not
simulation is Ray, the start-up and the tail).

``sweep.ae-n7-k8.bler_1e-6``: a pilot sweep (6 to 7 dB) gives the curve and the rate in
blocks/s; log10(BLER) is extrapolated to 1e-6 and the time for :data:`LOW_BLER_ERRORS` errors
there estimated. Within :data:`BUDGET_S` the point is measured (target: >= 100 errors);
otherwise the highest Eb/N0 that fits the budget is measured, and the time at 1e-6 is
reported as an estimate, not a measurement.
"""

from __future__ import annotations

import math
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from aeradio.apps import sweep_files
from aeradio.apps.bench import BenchContext, figure
from aeradio.apps.sweep import SweepSpec, resolve_config, run_sweep
from aeradio.apps.train import train_and_save
from aeradio.core.model_dir import read_extra_meta

CONFIG = "ae-n7-k8"
#: Blocks of the speed-up point (~60 s on one worker of a 2-core machine): large enough that
#: the fixed costs 2 workers cannot halve (the workers' start-up, ~2 s, and the last 1M-block
#: chunk, which one worker finishes while the other idles) are a few per cent of the run, as
#: on the long points a sweep is for. At 16M blocks (~15 s) they were a quarter of the
#: 2-worker run's time and held the speed-up to ~1.6x.
SPEEDUP_BLOCKS = 64 * (1 << 20)
SPEEDUP_EBN0_DB = 9.0
#: Blocks of the control measurement (plain processes, no Ray).
CONTROL_BLOCKS = 8 * (1 << 20)
REPEATS = 3
SPEEDUP_TARGET = 1.8
#: Block errors of the low-BLER point.
LOW_BLER_ERRORS = 100
TARGET_BLER = 1e-6
#: Wall-time budget of the low-BLER measurement (s).
BUDGET_S = 20 * 60
PILOT_EBN0_DB = (6.0, 6.5, 7.0)
PILOT_MAX_BLOCKS = 8_000_000
WORKERS = 2


def _model(ctx: BenchContext) -> Path:
    """The trained AE(7,8), shared with the learning benchmarks of the same run."""
    key = f"learning.model.{CONFIG}"
    if key not in ctx.memo:
        ctx.log(f"training {CONFIG}")
        out = train_and_save(resolve_config(CONFIG), ctx.work_dir / CONFIG, progress=False)
        ctx.memo[key] = (out, read_extra_meta(out)["training"]["seconds"])
    return ctx.memo[key][0]


def _sweep_dir(ctx: BenchContext, name: str, spec: SweepSpec) -> Path:
    """A new sweep DIR holding the trained model already, so the sweep only evaluates."""
    out = ctx.work_dir / name
    shutil.rmtree(out, ignore_errors=True)
    sweep_files.write_document(out, spec.parameters(), [], "running", [])
    subject = spec.subjects()[0]
    shutil.copytree(_model(ctx), out / subject.model_dir)
    return out


def _spec(ebn0_db: tuple[float, ...], target_errors: int, max_blocks: int) -> SweepSpec:
    return SweepSpec(
        configs=(resolve_config(CONFIG),),
        ebn0_db=ebn0_db,
        target_errors=target_errors,
        max_blocks=max_blocks,
        baselines=False,
    )


#: One process simulating blocks of the model (the control measurement, without Ray): prints
#: the seconds its simulation took (torch's import and the model's load not counted).
_CONTROL = """
import sys, time, torch
torch.set_num_threads(1)
from aeradio.learning.montecarlo import ChunkPlan, model_simulator, point_seed_sequence
sim = model_simulator(sys.argv[1])
plan = ChunkPlan(int(sys.argv[2]))
point = point_seed_sequence(0, "control", float(sys.argv[3]))
start = time.perf_counter()
for i in range(plan.n_chunks):
    sim.chunk(float(sys.argv[3]), "awgn", plan, point, i)
print(time.perf_counter() - start)
"""


def _control(model_dir: Path, processes: int, blocks: int) -> float:
    """Seconds for ``processes`` plain processes (no Ray) to simulate ``blocks`` blocks
    together, ``blocks / processes`` each: what the machine gives at the moment."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    argv = [sys.executable, "-c", _CONTROL, str(model_dir), str(blocks // processes), str(SPEEDUP_EBN0_DB)]
    procs = [subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, text=True) for _ in range(processes)]
    return max(float(proc.communicate(timeout=600)[0]) for proc in procs)


def bench_speedup(ctx: BenchContext) -> dict[str, Any]:
    spec = _spec((SPEEDUP_EBN0_DB,), 10**7, SPEEDUP_BLOCKS)
    times: dict[int, list[float]] = {1: [], 2: []}
    startup: dict[int, list[float]] = {1: [], 2: []}
    rate_after: dict[int, list[float]] = {1: [], 2: []}
    busy: dict[int, list[float]] = {1: [], 2: []}
    control: dict[int, list[float]] = {1: [], 2: []}
    counts = set()
    load = os.getloadavg()[0]
    for rep in range(REPEATS):
        for processes in (1, 2):
            control[processes].append(_control(_model(ctx), processes, CONTROL_BLOCKS))
        ctx.log(f"control without Ray: 1 process {control[1][-1]:.2f} s, 2 processes {control[2][-1]:.2f} s")
        for workers in (1, 2):
            out = _sweep_dir(ctx, f"speedup-{workers}-{rep}", spec)
            outcome = run_sweep(spec, out, workers=workers)
            assert outcome.status == "complete" and outcome.blocks_simulated == SPEEDUP_BLOCKS
            counts.add((outcome.rows[0]["blocks"], outcome.rows[0]["errors"]))
            times[workers].append(outcome.elapsed_s)
            startup[workers].append(outcome.startup_s)
            rate_after[workers].append(
                (outcome.blocks_simulated - outcome.startup_blocks) / (outcome.elapsed_s - outcome.startup_s)
            )
            busy[workers].append(outcome.busy_s / (outcome.slots * outcome.elapsed_s))
            rate = SPEEDUP_BLOCKS / outcome.elapsed_s / 1e6
            share = busy[workers][-1]
            ctx.log(f"{workers} worker(s): {outcome.elapsed_s:.2f} s ({rate:.2f} M blocks/s), "
                    f"start-up {outcome.startup_s:.2f} s, simulating {share:.0%} of the time")  # fmt: skip
    ratios = [a / b for a, b in zip(times[1], times[2], strict=True)]
    speedup = statistics.median(times[1]) / statistics.median(times[2])
    machine = statistics.median(control[1]) / statistics.median(control[2])
    med = statistics.median
    after = med(rate_after[2]) / med(rate_after[1])
    return {
        "times_s": times,
        "control_times_s": control,
        "startup_s": startup,
        "rate_after_startup": rate_after,
        "busy_fraction": busy,
        "load_average_before": load,
        "load_average_after": os.getloadavg()[0],
        "cpus": os.cpu_count(),
        "figures": [
            figure("control: 2 plain processes vs 1, no Ray (medians)", machine, "x"),
            figure("blocks per run", SPEEDUP_BLOCKS, "blocks"),
            figure("1 worker, median", statistics.median(times[1]), "s"),
            figure("2 workers, median", statistics.median(times[2]), "s"),
            figure("2 workers, rate", SPEEDUP_BLOCKS / statistics.median(times[2]), "blocks/s"),
            figure("workers' start-up (torch imported), 1 worker, median", med(startup[1]), "s"),
            figure("workers' start-up (torch imported), 2 workers, median", med(startup[2]), "s"),
            figure("speed-up after the workers' start-up (median rates)", after, "x"),
            figure("slots simulating, share of the time, 1 worker (median)", med(busy[1]), ""),
            figure("slots simulating, share of the time, 2 workers (median)", med(busy[2]), ""),
            figure("speed-up per repetition, min", min(ratios), "x"),
            figure("speed-up per repetition, max", max(ratios), "x"),
            figure("speed-up (medians)", speedup, "x", target=f">= {SPEEDUP_TARGET:g}",
                   passed=speedup >= SPEEDUP_TARGET),  # fmt: skip
            figure("same counts with 1 and 2 workers", float(len(counts) == 1), "", target="== 1",
                   passed=len(counts) == 1),  # fmt: skip
            figure("load average (1 min) before", load, ""),
            figure("load average (1 min) after", os.getloadavg()[0], ""),
        ],
    }


def _extrapolate(rows: list[dict[str, Any]], bler: float) -> float | None:
    """Eb/N0 (dB) where log10(BLER), fitted over the points with at least 10 errors (a
    parabola through 3 or more, a line through 2), reaches ``bler`` beyond the last one."""
    pts = [(r["ebn0_db"], math.log10(r["bler"])) for r in rows if r["errors"] >= 10]
    if len(pts) < 2:
        return None
    x, y = np.array(pts).T
    poly = np.polynomial.Polynomial.fit(x, y, deg=min(2, len(pts) - 1))
    grid = np.linspace(x[-1], x[-1] + 4.0, 4001)
    below = np.nonzero(poly(grid) <= math.log10(bler))[0]
    return float(grid[below[0]]) if below.size else None


def bench_low_bler(ctx: BenchContext) -> dict[str, Any]:
    pilot_spec = _spec(PILOT_EBN0_DB, LOW_BLER_ERRORS, PILOT_MAX_BLOCKS)
    pilot = run_sweep(pilot_spec, _sweep_dir(ctx, "pilot", pilot_spec), workers=WORKERS)
    rate = pilot.blocks_simulated / pilot.elapsed_s
    ebn0_1e6 = _extrapolate(pilot.rows, TARGET_BLER)
    if ebn0_1e6 is None:
        counts = [(r["ebn0_db"], r["errors"]) for r in pilot.rows]
        raise RuntimeError(f"the pilot curve does not fall: {counts}")
    estimate_s = LOW_BLER_ERRORS / TARGET_BLER / rate
    ctx.log(f"pilot: {rate / 1e6:.2f} M blocks/s; BLER 1e-6 near {ebn0_1e6:.2f} dB; {LOW_BLER_ERRORS} errors "
            f"there take ~{estimate_s:.0f} s")  # fmt: skip
    ebn0 = round(ebn0_1e6, 1)
    if estimate_s > BUDGET_S:  # the highest Eb/N0 whose BLER gives 100 errors within the budget
        reachable = LOW_BLER_ERRORS / (rate * BUDGET_S)
        ebn0 = math.floor(_extrapolate(pilot.rows, reachable) * 10) / 10
    spec = _spec((ebn0,), LOW_BLER_ERRORS, 10**9)
    outcome = run_sweep(spec, _sweep_dir(ctx, "low-bler", spec), workers=WORKERS)
    row = outcome.rows[0]
    measured = estimate_s <= BUDGET_S
    return {
        "pilot": pilot.rows,
        "row": row,
        "figures": [
            figure("pilot rate (2 workers)", rate, "blocks/s"),
            figure("Eb/N0 of BLER 1e-6, extrapolated from the pilot", ebn0_1e6, "dB"),
            figure("time for 100 errors at BLER 1e-6, estimated", estimate_s, "s"),
            figure("Eb/N0 measured", ebn0, "dB"),
            figure("BLER measured", row["bler"], "", target="~1e-6" if measured else None),
            figure("95% interval, low", row["ci_low"], ""),
            figure("95% interval, high", row["ci_high"], ""),
            figure("block errors", row["errors"], "", target=f">= {LOW_BLER_ERRORS}",
                   passed=row["errors"] >= LOW_BLER_ERRORS),  # fmt: skip
            figure("blocks", row["blocks"], ""),
            figure("wall time of the point (measured)", outcome.elapsed_s, "s"),
            figure("rate", outcome.blocks_simulated / outcome.elapsed_s, "blocks/s"),
            figure("BLER 1e-6 measured within the budget", float(measured), "", target="== 1",
                   passed=measured),  # fmt: skip
        ],
    }


BENCHMARKS = {
    "sweep.speedup": bench_speedup,
    f"sweep.{CONFIG}.bler_1e-6": bench_low_bler,
}
