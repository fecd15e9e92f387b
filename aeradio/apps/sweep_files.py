"""The output directory of ``aeradio sweep --out DIR``: what it holds and how a re-run reads it.

``DIR/sweep.json``: ``format``, ``format_version``, ``parameters`` (what defines the sweep:
configs with their full link configuration, seeds, Eb/N0 points, channel, target errors,
max blocks, evaluation seed, chunk plan, baselines), ``status`` (``running``, ``complete``,
``interrupted``, ``failed``), ``rows`` (one per finished point, in plan order, keys
:data:`ROW_FIELDS`), ``runs`` (one entry per invocation: start time, workers, address,
wall time, blocks simulated, seconds the workers spent simulating). Rewritten atomically
as points finish (every 2 s at most) and at the end: Ctrl-C, SIGTERM or a failed task
lose only the points in progress, a crash of the driver at most the points of its last 2 s.
``DIR/sweep.csv``: the rows, one line each, columns :data:`ROW_FIELDS`.
``DIR/bler.png``: every BLER curve with its 95 % intervals, the baselines' Monte Carlo
curves and their exact formulas.
``DIR/models/<config>-seed<N>/``: the trained model directories.

A re-run with the same DIR reads sweep.json (bounded, validated) and keeps its rows only if
its parameters are those of the new command; otherwise it stops with one line and writes
nothing (:func:`load_state`).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from aeradio.core.atomic import write_json_atomic, write_text_atomic
from aeradio.core.config import parse_json, read_bounded
from aeradio.core.errors import ConfigError, short_repr
from aeradio.learning.evaluate import wilson_interval

SWEEP_JSON = "sweep.json"
SWEEP_CSV = "sweep.csv"
SWEEP_PNG = "bler.png"
MODELS_DIR = "models"
FORMAT = "aeradio sweep"
FORMAT_VERSION = 1
#: Size of sweep.json at most (100 000 rows take about 50 MB).
MAX_SWEEP_JSON_BYTES = 64 << 20
#: Columns of a row, in sweep.json and sweep.csv.
ROW_FIELDS = (
    "kind", "config", "seed", "ebn0_db", "blocks", "errors", "bler", "ci_low", "ci_high",
    "stopped_by", "chunks", "channel", "target_errors", "max_blocks", "eval_seed", "model_dir",
)  # fmt: skip
#: ``(kind, config, seed, ebn0_db)``: which point a row measures.
PointId = tuple[str, str, int | None, float]


def point_id(row: dict[str, Any]) -> PointId:
    return (row["kind"], row["config"], row["seed"], row["ebn0_db"])


def make_row(
    point: PointId,
    blocks: int,
    errors: int,
    chunks: int,
    reached_target: bool,
    parameters: dict[str, Any],
    model_dir: str | None,
) -> dict[str, Any]:
    """A row of sweep.json / sweep.csv (BLER and its 95 % Wilson interval from the counts)."""
    kind, config, seed, ebn0_db = point
    lo, hi = wilson_interval(errors, blocks)
    return {
        "kind": kind,
        "config": config,
        "seed": seed,
        "ebn0_db": ebn0_db,
        "blocks": blocks,
        "errors": errors,
        "bler": errors / blocks,
        "ci_low": lo,
        "ci_high": hi,
        "stopped_by": "target_errors" if reached_target else "max_blocks",
        "chunks": chunks,
        "channel": parameters["channel"],
        "target_errors": parameters["target_errors"],
        "max_blocks": parameters["max_blocks"],
        "eval_seed": parameters["eval_seed"],
        "model_dir": model_dir,
    }


def _key_text(key: Any) -> str:
    """A key of a stored file as error messages show it: as is when short and printable, else
    its short repr (a key read from a file may hold a newline or be 4 MB long)."""
    return key if isinstance(key, str) and key.isprintable() and len(key) <= 40 else short_repr(key)


def _first_difference(old: Any, new: Any, where: str = "") -> str | None:
    """Where two JSON values first differ (``"target_errors: 100 vs 200"``), or None."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new), key=str):
            if key not in old or key not in new:
                return f"{where}{_key_text(key)}: present in only one"
            diff = _first_difference(old[key], new[key], f"{where}{_key_text(key)}.")
            if diff:
                return diff
        return None
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            diff = _first_difference(a, b, f"{where}{i}.")
            if diff:
                return diff
        return None
    if old == new and type(old) is type(new):
        return None
    return f"{where.rstrip('.')}: {short_repr(old)} there, {short_repr(new)} now"


def _check_row(row: Any, i: int, planned: dict[PointId, str | None], parameters: dict[str, Any]) -> PointId:
    """Validate row ``i`` of a stored sweep.json; returns its point id."""
    where = f"rows[{i}]"
    if not isinstance(row, dict):
        raise ValueError(f"{where} must be an object")
    for key in ("kind", "config", "seed", "ebn0_db", "blocks", "errors", "chunks", "stopped_by"):
        if key not in row:
            raise ValueError(f"{where} has no {key}")
    pid = point_id(row)
    if any(isinstance(v, dict | list) for v in pid) or pid not in planned:
        raise ValueError(f"{where} is not a point of this sweep: {short_repr(pid)}")
    blocks, errors, chunks = row["blocks"], row["errors"], row["chunks"]
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (blocks, errors, chunks)):
        raise ValueError(f"{where}: blocks, errors and chunks must be integers")
    if not 1 <= blocks <= parameters["max_blocks"] or not 0 <= errors <= blocks or chunks < 1:
        raise ValueError(
            f"{where}: needs 1 <= blocks <= max_blocks, 0 <= errors <= blocks, chunks >= 1; "
            f"got blocks {blocks}, errors {errors}, chunks {chunks}"
        )
    reached = errors >= parameters["target_errors"]
    if row["stopped_by"] != ("target_errors" if reached else "max_blocks"):
        raise ValueError(f"{where}: stopped_by {short_repr(row['stopped_by'])} does not fit its counts")
    return pid


def load_state(
    out_dir: Path, parameters: dict[str, Any], planned: dict[PointId, str | None]
) -> tuple[dict[PointId, dict], list[Any]]:
    """The finished rows and the ``runs`` of a previous run of this sweep in ``out_dir``
    (both empty for a new DIR).

    ``planned``: every point of the sweep -> its model directory (relative, or None).
    Raises :class:`ConfigError` (one line, nothing written) when ``out_dir`` is a file, a
    non-empty directory without sweep.json, a sweep of other parameters, or a sweep.json
    that is not valid. Stored rows are checked (their point, consistent counts) and rebuilt
    from their counts, so BLER and intervals are always recomputed.
    """
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"--out {out_dir} exists and is not a directory")
    path = out_dir / SWEEP_JSON
    if not path.exists():
        if out_dir.is_dir() and any(out_dir.iterdir()):
            raise ConfigError(
                f"--out {out_dir} is a non-empty directory without {SWEEP_JSON}, not a sweep's; "
                "refusing to write into it"
            )
        return {}, []
    doc = parse_json(read_bounded(path, MAX_SWEEP_JSON_BYTES, what="sweep file"), what=str(path))
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ConfigError(f"{path} is not an aeradio sweep file")
    if doc.get("format_version") != FORMAT_VERSION:
        raise ConfigError(
            f"{path}: format_version must be {FORMAT_VERSION}, got {short_repr(doc.get('format_version'))}"
        )
    diff = _first_difference(doc.get("parameters"), parameters)
    if diff:
        raise ConfigError(
            f"--out {out_dir} holds another sweep ({diff}); re-run with its parameters or choose "
            "another --out"
        )
    rows = doc.get("rows")
    if not isinstance(rows, list) or len(rows) > len(planned):
        raise ConfigError(f"{path}: rows must be a list of at most {len(planned)} points")
    state: dict[PointId, dict] = {}
    for i, row in enumerate(rows):
        try:
            pid = _check_row(row, i, planned, parameters)
        except ValueError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        if pid in state:
            raise ConfigError(f"{path}: rows[{i}] repeats the point {short_repr(pid)}")
        state[pid] = make_row(
            pid, row["blocks"], row["errors"], row["chunks"],
            row["errors"] >= parameters["target_errors"], parameters, planned[pid],
        )  # fmt: skip
    runs = doc.get("runs")
    return state, [r for r in runs if isinstance(r, dict)] if isinstance(runs, list) else []


def write_document(
    out_dir: Path, parameters: dict[str, Any], rows: Sequence[dict], status: str, runs: list[Any]
) -> Path:
    """Write ``DIR/sweep.json`` atomically."""
    from aeradio.core.version import __version__

    doc = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "aeradio_version": __version__,
        "status": status,
        "parameters": parameters,
        "rows": list(rows),
        "runs": runs,
    }
    return write_json_atomic(out_dir / SWEEP_JSON, doc)


def write_csv(out_dir: Path, rows: Iterable[dict]) -> Path:
    """Write ``DIR/sweep.csv`` atomically: a header of :data:`ROW_FIELDS`, then the rows."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=ROW_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row[k] is None else row[k] for k in ROW_FIELDS})
    return write_text_atomic(out_dir / SWEEP_CSV, buf.getvalue())


def curve_label(row: dict[str, Any]) -> str:
    """``ae-n7-k8 seed 0`` for a model, ``QPSK (ML, Monte Carlo)`` for a baseline."""
    if row["seed"] is None:
        return f"{row['config']} (ML, Monte Carlo)"
    return f"{row['config']} seed {row['seed']}"


def plot_sweep(out_dir: Path, rows: Sequence[dict], analytic: dict[str, tuple[list[float], list[float]]],
               title: str) -> Path:
    """``DIR/bler.png``: each (config, seed) and Monte Carlo baseline with 95 % error bars
    (points without errors have no place on a log scale and are left out), the exact
    baseline formulas as lines."""
    from aeradio.learning.plots import BlerCurve, plot_bler

    points: dict[str, list[tuple[float, float, float, float]]] = {}
    for row in rows:
        if row["errors"] == 0:
            continue
        points.setdefault(curve_label(row), []).append(
            (row["ebn0_db"], row["bler"], row["ci_low"], row["ci_high"])
        )
    curves = [
        BlerCurve(name, [p[0] for p in pts], [p[1] for p in pts], [(p[2], p[3]) for p in pts])
        for name, pts in ((n, sorted(v)) for n, v in points.items())
    ]
    for name, (x, y) in analytic.items():
        exact = [(a, b) for a, b in zip(x, y, strict=True) if b > 0 and math.isfinite(b)]
        if exact:
            curves.append(BlerCurve(name, [a for a, _ in exact], [b for _, b in exact], analytic=True))
    return plot_bler(curves, out_dir / SWEEP_PNG, title=title)
