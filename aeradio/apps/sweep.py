"""Handler of ``aeradio sweep`` (see aeradio/cli.py): many models, many Eb/N0 points, on Ray.

Each (config, seed) is trained as one Ray task; each (model, Eb/N0) point is simulated as
chunks of blocks, one Ray task each, with the chunk plan, independent streams and exact
merge of :mod:`aeradio.learning.montecarlo`: the counts of a point depend on the seeds
only, not on the number of workers or the order tasks ran in. With ``--address`` the
same tasks run on a Ray cluster (:mod:`aeradio.apps.ray_session`).

Workers: a task reserves one CPU, and a worker simulates on one torch thread
(:data:`WORKER_TORCH_THREADS`, whatever OMP_NUM_THREADS says). A worker process keeps the
models it loaded (:data:`WORKER_CACHE_SIZE`); at the start of a run one warm-up task per
slot imports torch, so the workers pay that (seconds) at the same time, not one after the
other as the first chunks reach them. :class:`SweepOutcome` tells where the run's time went:
``busy_s`` (the workers' simulation), ``startup_s`` (until every worker was ready).

Tasks whose worker process dies (killed, out of memory, a node lost) are rerun by Ray up
to :data:`~aeradio.apps.ray_session.TASK_MAX_RETRIES` times: a chunk's result does not
depend on the worker, so a rerun gives the same counts. Trained models are written to
``DIR/models/`` as they finish, the finished points to ``DIR/sweep.json`` every
:data:`SAVE_INTERVAL_S` and at the end (:mod:`aeradio.apps.sweep_files`): the same
command resumes an interrupted sweep.

Ray moves task arguments and results with its own serialization (pickle between the
driver and its workers); a sweep sends only plain values (dicts of numbers, strings and
the model files' bytes), and what it writes or reads from disk stays JSON, ``.npy`` and
safetensors, validated on the way in.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from aeradio.apps import sweep_files as files
from aeradio.core import defaults as d
from aeradio.core.config import LinkConfig
from aeradio.core.errors import AeradioError, ConfigError, check_range
from aeradio.learning.montecarlo import (
    MAX_POINT_BLOCKS,
    ChunkCounts,
    ChunkPlan,
    PointProgress,
    PointSimulator,
    point_seed_sequence,
)

#: Configs in one sweep at most.
MAX_CONFIGS = 64
#: Models per config at most (--seeds).
MAX_SEEDS = 1000
#: Points (models and baselines x Eb/N0) in one sweep at most: sweep.json stays < 64 MB.
MAX_POINTS = 100_000
#: --target-errors at most.
MAX_TARGET_ERRORS = 10**7
#: Chunk tasks in flight per task slot (a worker always has the next chunk waiting).
CHUNKS_PER_SLOT = 2
#: Seconds between checks for Ctrl-C / SIGTERM while tasks run.
POLL_S = 0.5
#: Seconds between two saves of sweep.json while points finish (a crash loses at most the
#: points finished since; Ctrl-C, SIGTERM and failures save everything).
SAVE_INTERVAL_S = 2.0
#: Models a worker keeps loaded (a sweep's points come model after model).
WORKER_CACHE_SIZE = 8
#: Torch threads of a worker process: a task reserves one CPU (``num_cpus=1``), and Ray's
#: own ``OMP_NUM_THREADS=1`` is not applied when the user's environment sets it, so without
#: this two workers of a 2-core machine would each run several threads and slow each other.
WORKER_TORCH_THREADS = 1

#: A chunk: ``(simulator, ebn0_db, channel, plan, point stream, chunk index) -> counts``.
ChunkFn = Callable[[PointSimulator, float, str, ChunkPlan, np.random.SeedSequence, int], ChunkCounts]


@dataclass(frozen=True)
class Subject:
    """What the points of one curve simulate: a trained model or a classical baseline."""

    kind: str  # "model" or "baseline"
    name: str
    seed: int | None
    k: int
    n: int
    #: The model's link config, training.seed set to ``seed`` (None for a baseline).
    config: LinkConfig | None = None

    @property
    def key(self) -> str:
        """Stable name: seeds the points' streams, keys the worker's cache."""
        return f"model:{self.name}:seed{self.seed}" if self.kind == "model" else f"baseline:{self.name}"

    @property
    def model_dir(self) -> str | None:
        """The model directory, relative to the sweep's DIR."""
        return f"{files.MODELS_DIR}/{self.name}-seed{self.seed}" if self.kind == "model" else None


@dataclass(frozen=True)
class SweepSpec:
    """Everything that defines a sweep's results (and so whether a DIR holds this sweep)."""

    configs: tuple[LinkConfig, ...]
    ebn0_db: tuple[float, ...]
    seeds: int = d.DEFAULT_SWEEP_SEEDS
    channel: str = "awgn"
    target_errors: int = d.DEFAULT_SWEEP_TARGET_ERRORS
    max_blocks: int = d.DEFAULT_SWEEP_MAX_BLOCKS
    eval_seed: int = d.DEFAULT_EVAL_SEED
    baselines: bool = True

    def __post_init__(self) -> None:
        check_range("--seeds", self.seeds, 1, MAX_SEEDS)
        check_range("--target-errors", self.target_errors, 1, MAX_TARGET_ERRORS)
        check_range("--max-blocks", self.max_blocks, 1, MAX_POINT_BLOCKS)
        check_range("--seed", self.eval_seed, 0, 2**63 - 1)
        check_range("number of configs", len(self.configs), 1, MAX_CONFIGS)
        if not self.ebn0_db:
            raise ConfigError("--ebn0-db gives no point")
        for cfg in self.configs:  # refused before anything trains: its points could not be scored
            if cfg.model.bitwise or cfg.code is not None:
                kind = "a bit-wise model" if cfg.model.bitwise else "a message model"
                coded = " with an outer code ([code])" if cfg.code is not None else ""
                raise ConfigError(
                    f"--configs: {cfg.name} is {kind}{coded}; sweep measures the block error "
                    f"rate of uncoded message-wise models: evaluate it with `aeradio eval`"
                )
        names = [c.name for c in self.configs]
        if len(set(names)) != len(names):
            raise ConfigError(f"--configs must name distinct configs, got {', '.join(names)}")
        check_range("points of the sweep (configs x seeds x Eb/N0)", len(self.points()), 1, MAX_POINTS)

    @property
    def plan(self) -> ChunkPlan:
        return ChunkPlan(self.max_blocks)

    def subjects(self) -> list[Subject]:
        """The models (config order, then seed), then the baselines of their (k, n) on AWGN."""
        from aeradio.learning.baselines import reference_luts

        out = []
        for cfg in self.configs:
            for i in range(self.seeds):
                seed = cfg.training.seed + i
                seeded = cfg.replace(training=dataclasses.replace(cfg.training, seed=seed))
                out.append(Subject("model", cfg.name, seed, cfg.model.k, cfg.model.n, seeded))
        if self.baselines and self.channel == "awgn":
            shapes = dict.fromkeys((c.model.k, c.model.n) for c in self.configs)
            out += [Subject("baseline", name, None, k, n) for k, n in shapes for name in reference_luts(k, n)]
        return out

    def points(self) -> list[tuple[Subject, float]]:
        return [(s, e) for s in self.subjects() for e in self.ebn0_db]

    def parameters(self) -> dict[str, Any]:
        """The JSON of sweep.json's ``parameters`` (compared whole when a DIR is reused)."""
        doc = {
            "configs": [c.to_dict() for c in self.configs],
            "seeds": self.seeds,
            "ebn0_db": list(self.ebn0_db),
            "channel": self.channel,
            "target_errors": self.target_errors,
            "max_blocks": self.max_blocks,
            "eval_seed": self.eval_seed,
            "chunk_plan": self.plan.as_dict(),
            "baselines": [s.name for s in self.subjects() if s.kind == "baseline"],
        }
        return json.loads(json.dumps(doc))  # tuples -> lists: what a re-run reads back


def point_key(subject: Subject, ebn0_db: float) -> files.PointId:
    return (subject.kind, subject.name, subject.seed, ebn0_db)


def ordered_rows(points: Sequence[tuple[Subject, float]], rows: dict[files.PointId, dict]) -> list[dict]:
    """The finished rows in plan order (config, seed, Eb/N0; baselines last)."""
    return [rows[pid] for pid in (point_key(s, e) for s, e in points) if pid in rows]


def resolve_config(spec: str) -> LinkConfig:
    """A ``--configs`` entry: a name of configs/ (``ae-n7-k8``) or the path of a TOML file."""
    from aeradio.core.paths import checkout_path

    path = Path(spec)
    if path.suffix == ".toml" or path.is_file():
        if not path.is_file():
            raise ConfigError(f"--configs: config file {spec} does not exist")
        return LinkConfig.from_toml(path)
    try:
        configs: Path | None = checkout_path("configs")
    except AeradioError:  # an installed copy without its checkout: only paths are known
        configs = None
    if configs is not None and (configs / f"{spec}.toml").is_file() and "/" not in spec:
        return LinkConfig.from_toml(configs / f"{spec}.toml")
    known = ", ".join(sorted(p.stem for p in configs.glob("*.toml"))) if configs is not None else "none"
    raise ConfigError(
        f"--configs: unknown config {spec[:80]!r}: not a TOML file and not in configs/ ({known})"
    )


# ---- the tasks: run in Ray's worker processes ---------------------------------------------

_SIMULATORS: dict[str, PointSimulator] = {}


def _train_task(config_doc: dict[str, Any]) -> dict[str, bytes]:
    """Train one model; its directory's files as bytes (the driver writes them into DIR)."""
    from aeradio.apps.train import train_and_save
    from aeradio.core.model_dir import read_model_files

    cfg = LinkConfig.from_dict(config_doc)
    with tempfile.TemporaryDirectory(prefix="aeradio-sweep-") as tmp:
        return read_model_files(train_and_save(cfg, Path(tmp) / "model", progress=False))


def _worker_setup() -> None:
    """Prepare this worker process for chunks: torch and the simulation code imported (the
    seconds of a first ``import torch``), torch at :data:`WORKER_TORCH_THREADS` thread(s).
    Run before every chunk, and as a warm-up task per slot at the start of a run, so the
    workers import torch at the same time rather than one after another as chunks reach them."""
    import torch

    import aeradio.learning.inference  # noqa: F401  (what a model's simulator imports)

    if torch.get_num_threads() != WORKER_TORCH_THREADS:
        torch.set_num_threads(WORKER_TORCH_THREADS)


def _simulator(payload: dict[str, Any]) -> PointSimulator:
    """The payload's simulator, loaded once per worker process (models verified on load)."""
    from aeradio.core.model_dir import write_model_files
    from aeradio.learning.montecarlo import baseline_simulator, model_simulator

    key = payload["cache_key"]
    if key not in _SIMULATORS:
        if len(_SIMULATORS) >= WORKER_CACHE_SIZE:
            _SIMULATORS.clear()
        if payload["kind"] == "model":
            with tempfile.TemporaryDirectory(prefix="aeradio-sweep-") as tmp:
                _SIMULATORS[key] = model_simulator(write_model_files(Path(tmp) / "model", payload["files"]))
        else:
            _SIMULATORS[key] = baseline_simulator(payload["name"], payload["k"], payload["n"])
    return _SIMULATORS[key]


def _chunk_task(
    chunk_fn: ChunkFn,
    payload: dict[str, Any],
    ebn0_db: float,
    channel: str,
    plan_doc: dict[str, int],
    eval_seed: int,
    index: int,
) -> tuple[int, int, float]:
    """Chunk ``index`` of a point: ``(blocks, errors, seconds)``, the seconds of the
    simulation alone (the worker's share of a run's time, for :attr:`SweepOutcome.busy_s`)."""
    _worker_setup()
    point = point_seed_sequence(eval_seed, payload["subject"], ebn0_db)
    sim = _simulator(payload)
    start = time.perf_counter()
    counts = chunk_fn(sim, ebn0_db, channel, ChunkPlan(**plan_doc), point, index)
    return counts.blocks, counts.errors, time.perf_counter() - start


# ---- the driver ---------------------------------------------------------------------------


@dataclass
class SweepOutcome:
    """What a run did; ``rows`` in plan order (every finished point, earlier runs' included)."""

    rows: list[dict[str, Any]]
    status: str  # "complete", "failed", "interrupted"
    failures: list[str] = field(default_factory=list)
    interrupted_by: str | None = None
    exit_code: int = 0
    trained: int = 0
    points_run: int = 0
    points_before: int = 0
    blocks_simulated: int = 0
    elapsed_s: float = 0.0
    #: Seconds the workers spent simulating chunks (summed over workers): ``busy_s /
    #: (slots * elapsed_s)`` is the share of the run's task slots that did simulation.
    busy_s: float = 0.0
    #: Task slots the run used (Ray CPUs of a local Ray, or --workers).
    slots: int = 0
    #: Seconds from the start until every slot's worker had imported torch (0 if none had
    #: to), and the blocks simulated by then (by the workers that were ready first).
    startup_s: float = 0.0
    startup_blocks: int = 0


def _existing_model(out_dir: Path, subject: Subject) -> dict[str, bytes] | None:
    """The files of a model a previous run trained, checked to be this subject's config."""
    from aeradio.core.model_dir import load_link_config, read_model_files

    assert subject.model_dir is not None and subject.config is not None
    path = out_dir / subject.model_dir
    if not path.exists():
        return None
    try:
        stored = load_link_config(path).to_dict()
        model_files = read_model_files(path)
    except AeradioError as exc:
        raise ConfigError(
            f"--out: {path} is not a valid model directory ({exc}); remove it to retrain"
        ) from None
    if json.loads(json.dumps(stored)) != json.loads(json.dumps(subject.config.to_dict())):
        raise ConfigError(f"--out: {path} holds a model of another configuration; remove it to retrain")
    return model_files


def _failure_line(what: str, exc: BaseException) -> str:
    lines = [ln for ln in str(exc).strip().splitlines() if ln.strip()]
    return f"{what}: {type(exc).__name__}: {lines[-1] if lines else ''}".rstrip(": ")


class _Driver:
    """One run of a sweep on a live Ray: submits tasks, merges chunks, saves progress."""

    def __init__(
        self, spec: SweepSpec, out_dir: Path, slots: int, chunk_fn: ChunkFn, progress: bool, runs: list[Any]
    ) -> None:
        import ray

        from aeradio.apps.ray_session import TASK_MAX_RETRIES

        self.ray = ray
        self.spec, self.out_dir, self.chunk_fn = spec, out_dir, chunk_fn
        self.parameters = spec.parameters()
        self.points = spec.points()
        self.plan_doc = spec.plan.as_dict()
        self.window = CHUNKS_PER_SLOT * slots
        self.train_remote = ray.remote(max_retries=TASK_MAX_RETRIES, num_cpus=1)(_train_task)
        self.chunk_remote = ray.remote(max_retries=TASK_MAX_RETRIES, num_cpus=1)(_chunk_task)
        self.warm_remote = ray.remote(max_retries=0, num_cpus=1)(_worker_setup)
        self.slots = slots
        self.runs = runs
        self.rows: dict[files.PointId, dict] = {}
        self.payloads: dict[str, Any] = {}
        self.failures: list[str] = []
        self.in_flight: dict[Any, tuple] = {}
        self.progress: dict[int, PointProgress] = {}
        self.blocks_simulated = self.trained = self.points_run = 0
        self.busy_s = self.startup_s = 0.0
        self.startup_blocks = 0
        self.started = 0.0  # set when run() starts
        self.show_progress = progress
        self.last_save = 0.0

    def _payload(self, subject: Subject, model_files: dict[str, bytes] | None) -> Any:
        if subject.kind == "baseline":
            return {"kind": "baseline", "subject": subject.key, "cache_key": subject.key,
                    "name": subject.name, "k": subject.k, "n": subject.n}  # fmt: skip
        assert model_files is not None
        digest = hashlib.sha256(model_files["model.json"]).hexdigest()
        key = f"{subject.key}:{digest}"
        return self.ray.put({"kind": "model", "subject": subject.key, "cache_key": key, "files": model_files})

    def save(self, status: str) -> None:
        rows = ordered_rows(self.points, self.rows)
        files.write_document(self.out_dir, self.parameters, rows, status, self.runs)
        self.last_save = time.monotonic()

    def save_progress(self) -> None:
        """Save while running, at most every :data:`SAVE_INTERVAL_S` (sweep.json is rewritten whole)."""
        if time.monotonic() - self.last_save >= SAVE_INTERVAL_S:
            self.save("running")

    def _fill(self) -> None:
        """Hand out chunks, earliest unfinished point first, up to the window."""
        chunks = sum(1 for v in self.in_flight.values() if v[0] == "chunk")
        for idx, prog in self.progress.items():
            if chunks >= self.window:
                return
            subject, ebn0 = self.points[idx]
            if subject.key not in self.payloads:
                continue
            for _ in range(min(prog.wanted(), self.window - chunks)):
                ci = prog.issue()
                ref = self.chunk_remote.remote(
                    self.chunk_fn, self.payloads[subject.key], ebn0, self.spec.channel, self.plan_doc,
                    self.spec.eval_seed, ci,
                )  # fmt: skip
                self.in_flight[ref] = ("chunk", idx, ci)
                chunks += 1

    def _fail_subject(self, subject: Subject, line: str) -> None:
        self.failures.append(line)
        for idx in [i for i in self.progress if self.points[i][0].key == subject.key]:
            del self.progress[idx]

    def _finished(self, ref: Any, bar: Any) -> None:
        from ray.exceptions import RayError

        what = self.in_flight.pop(ref)
        try:
            value = self.ray.get(ref)
        except RayError as exc:
            if what[0] == "warm":  # a chunk on that worker will say what is wrong, if anything
                return
            if what[0] == "train":
                self._fail_subject(what[1], _failure_line(f"training {what[1].key}", exc))
                bar.update(1)
            elif what[1] in self.progress:
                subject, ebn0 = self.points[what[1]]
                self.failures.append(_failure_line(f"{subject.key} at {ebn0:g} dB, chunk {what[2]}", exc))
                del self.progress[what[1]]
                bar.update(1)
            return
        if what[0] == "warm":
            self.startup_s = time.perf_counter() - self.started
            self.startup_blocks = self.blocks_simulated
            return
        if what[0] == "train":
            from aeradio.core.model_dir import write_model_files

            subject = what[1]
            write_model_files(self.out_dir / subject.model_dir, value)
            self.payloads[subject.key] = self._payload(subject, value)
            self.trained += 1
            bar.update(1)
            return
        _, idx, ci = what
        self.blocks_simulated += value[0]
        self.busy_s += value[2]
        prog = self.progress.get(idx)
        if prog is None:  # the point is finished (or failed): a chunk past its count
            return
        prog.record(ci, ChunkCounts(value[0], value[1]))
        result = prog.result()
        if result is None:
            return
        subject, ebn0 = self.points[idx]
        pid = point_key(subject, ebn0)
        self.rows[pid] = files.make_row(
            pid, result.blocks, result.errors, result.chunks, result.reached_target, self.parameters,
            subject.model_dir,
        )  # fmt: skip
        del self.progress[idx]
        self.points_run += 1
        stale = [r for r, v in self.in_flight.items() if v[0] == "chunk" and v[1] == idx]
        for r in stale:  # chunks past the point's count: their results would be discarded
            self.ray.cancel(r)
        self.save_progress()
        bar.update(1)

    def run(
        self, state: dict[files.PointId, dict], models: dict[str, dict[str, bytes] | None], stop: Any
    ) -> None:
        from tqdm import tqdm

        self.rows = dict(state)
        self.started = time.perf_counter()
        for subject in self.spec.subjects():
            if subject.kind == "baseline" or models.get(subject.key) is not None:
                self.payloads[subject.key] = self._payload(subject, models.get(subject.key))
        pending_models = [s for s in self.spec.subjects() if s.key not in self.payloads]
        self.progress = {
            i: PointProgress(self.spec.plan, self.spec.target_errors)
            for i, (s, e) in enumerate(self.points)
            if point_key(s, e) not in self.rows
        }
        self.save("running")
        with tqdm(total=len(pending_models) + len(self.progress), desc="sweep", unit="task",
                  disable=not self.show_progress, file=sys.stderr, mininterval=1.0) as bar:  # fmt: skip
            if self.progress:  # points to simulate: every slot imports torch now, in parallel
                for _ in range(self.slots):
                    self.in_flight[self.warm_remote.remote()] = ("warm",)
            for subject in pending_models:
                assert subject.config is not None
                self.in_flight[self.train_remote.remote(subject.config.to_dict())] = ("train", subject)
            while not stop.requested:
                self._fill()
                if not self.in_flight:
                    break
                ready, _ = self.ray.wait(list(self.in_flight), num_returns=1, timeout=POLL_S)
                for ref in ready:
                    self._finished(ref, bar)
                if ready:
                    bar.set_postfix_str(f"{self.blocks_simulated:.3g} blocks", refresh=False)
        for ref in self.in_flight:
            self.ray.cancel(ref)


def run_sweep(
    spec: SweepSpec,
    out_dir: str | Path,
    *,
    address: str | None = None,
    workers: int | None = None,
    progress: bool = False,
    chunk_fn: ChunkFn = PointSimulator.chunk,
    extra_modules: Sequence[str | Path] = (),
    argv: Sequence[str] = (),
) -> SweepOutcome:
    """Run (or resume) ``spec`` into ``out_dir`` on Ray; returns what happened.

    Everything the user can get wrong (a DIR of another sweep, a broken model in DIR, an
    unreachable ``address``) raises :class:`ConfigError` before anything is written.
    ``chunk_fn`` simulates one chunk in a worker (a module-level function, as Ray ships it
    by reference); ``extra_modules`` are shipped to the workers with aeradio.
    """
    from aeradio.apps.processes import StopOnSignal
    from aeradio.apps.ray_session import ray_session

    if workers is not None:
        check_range("--workers", workers, 1, 4096)
    out_dir = Path(out_dir)
    points = spec.points()
    planned = {point_key(s, e): s.model_dir for s, e in points}
    state, runs = files.load_state(out_dir, spec.parameters(), planned)
    models = {s.key: _existing_model(out_dir, s) for s in spec.subjects() if s.kind == "model"}
    outcome = SweepOutcome(rows=ordered_rows(points, state), status="complete", points_before=len(state))
    if len(state) < len(points) or any(m is None for m in models.values()):
        run_info: dict[str, Any] = {
            "started_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "argv": list(argv),
            "address": address,
            "workers": workers,
        }
        with ray_session(address, workers, extra_modules) as slots, StopOnSignal() as stop:
            run_info["slots"] = slots
            driver = _Driver(spec, out_dir, slots, chunk_fn, progress, [*runs, run_info])
            start = time.perf_counter()
            try:
                driver.run(state, models, stop)
            finally:
                outcome.elapsed_s = time.perf_counter() - start
                run_info["elapsed_s"] = round(outcome.elapsed_s, 3)
                run_info["blocks_simulated"] = driver.blocks_simulated
                run_info["busy_s"] = round(driver.busy_s, 3)
                outcome.busy_s, outcome.slots = driver.busy_s, slots
                outcome.startup_s, outcome.startup_blocks = driver.startup_s, driver.startup_blocks
                if stop.requested:
                    outcome.status = "interrupted"
                elif driver.failures or len(driver.rows) < len(points):
                    outcome.status = "failed"
                driver.save(outcome.status)
        outcome.rows = ordered_rows(points, driver.rows)
        outcome.failures = driver.failures
        outcome.interrupted_by = stop.reason
        outcome.exit_code = stop.exit_code if stop.requested else (1 if outcome.status == "failed" else 0)
        outcome.trained, outcome.points_run = driver.trained, driver.points_run
        outcome.blocks_simulated = driver.blocks_simulated
    else:  # every point finished earlier: only the outputs are written again
        files.write_document(out_dir, spec.parameters(), outcome.rows, "complete", runs)
    files.write_csv(out_dir, outcome.rows)
    files.plot_sweep(out_dir, outcome.rows, _analytic_curves(spec), title=f"BLER on {spec.channel}")
    return outcome


def _analytic_curves(spec: SweepSpec) -> dict[str, tuple[list[float], list[float]]]:
    """The exact BLER formulas of the baselines of the configs' (k, n), on a fine Eb/N0 grid."""
    from aeradio.learning.baselines import analytic_curves

    if spec.channel != "awgn" or not spec.baselines:
        return {}
    lo, hi = min(spec.ebn0_db), max(spec.ebn0_db)
    grid = np.linspace(lo, hi, 50) if hi > lo else np.array([lo])
    out: dict[str, tuple[list[float], list[float]]] = {}
    for k, n in dict.fromkeys((c.model.k, c.model.n) for c in spec.configs):
        for name, curve in analytic_curves(k, n, grid).items():
            out[name] = (grid.tolist(), [float(v) for v in curve])
    return out


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def summary_lines(spec: SweepSpec, outcome: SweepOutcome, out_dir: Path) -> list[str]:
    """The lines printed at the end: a summary, then ``warning:`` or ``FAILED:`` lines."""
    total = len(spec.points())
    lines = [
        f"sweep {outcome.status}: {len(outcome.rows)} of {total} points "
        f"({outcome.points_before} from earlier runs), {_count(outcome.trained, 'model')} trained, "
        f"{outcome.blocks_simulated:.3g} blocks simulated in {outcome.elapsed_s:.1f} s -> {out_dir}"
    ]
    short = [r for r in outcome.rows if r["stopped_by"] == "max_blocks"]
    if short:
        names = ", ".join(f"{files.curve_label(r)} at {r['ebn0_db']:g} dB ({r['errors']})" for r in short[:5])
        more = f" and {len(short) - 5} more" if len(short) > 5 else ""
        lines.append(
            f"warning: {_count(len(short), 'point')} reached --max-blocks {spec.max_blocks} before "
            f"--target-errors {spec.target_errors}, their intervals are wider: {names}{more}"
        )
    if outcome.status == "interrupted":
        lines.append(
            f"interrupted by {outcome.interrupted_by}: {_count(total - len(outcome.rows), 'point')} "
            "not finished; the same command resumes"
        )
    if outcome.failures:
        more = f" (and {len(outcome.failures) - 1} more)" if len(outcome.failures) > 1 else ""
        lines.append(f"FAILED: {outcome.failures[0]}{more}; the same command retries what failed")
    return lines


def build_spec(args: argparse.Namespace) -> SweepSpec:
    """The sweep of the command line, validated (one-line ConfigError otherwise)."""
    from aeradio.apps.train import eval_channel_spec
    from aeradio.learning.evaluate import parse_ebn0_range

    names = [c.strip() for c in args.configs.split(",") if c.strip()]
    if not names:
        raise ConfigError(f"--configs must name at least one config, got {args.configs!r}")
    check_range("number of --configs", len(names), 1, MAX_CONFIGS)
    ebn0 = parse_ebn0_range(args.ebn0_db)
    return SweepSpec(
        configs=tuple(resolve_config(n) for n in names),
        ebn0_db=tuple(ebn0),
        seeds=args.seeds,
        channel=eval_channel_spec(args.channel),
        target_errors=args.target_errors,
        max_blocks=args.max_blocks,
        eval_seed=args.seed,
        baselines=not args.no_baselines,
    )


def cmd_sweep(args: argparse.Namespace) -> int:
    spec = build_spec(args)
    out_dir = Path(args.out)
    outcome = run_sweep(
        spec,
        out_dir,
        address=args.address,
        workers=args.workers,
        progress=not args.quiet,
        argv=getattr(args, "argv", ()),
    )
    for line in summary_lines(spec, outcome, out_dir):
        print(line, file=sys.stderr if line.startswith(("warning", "FAILED", "interrupted")) else sys.stdout)
    return outcome.exit_code


