"""The benchmark harness behind ``aeradio bench``.

Benchmarks live in the source checkout as ``benchmarks/bench_*.py``; each module exposes
``BENCHMARKS: dict[str, Callable[[BenchContext], dict]]``. A benchmark returns
``{"figures": [figure(...), ...]}`` (plus anything else worth saving in the JSON); each
figure has a name, a value, a unit and optionally a target with pass/fail.

>>> figure("train time", 12.3, "s", target="< 60", passed=True)["status"]
'PASS'
"""

from __future__ import annotations

import argparse
import importlib.util
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aeradio.core.errors import ConfigError
from aeradio.core.paths import checkout_path

Benchmark = Callable[["BenchContext"], dict[str, Any]]


@dataclass
class BenchContext:
    """What a benchmark gets: a scratch directory and a memo shared by one run's benchmarks."""

    work_dir: Path
    #: Results shared between benchmarks of one run (e.g. a trained model reused).
    memo: dict[str, Any] = field(default_factory=dict)

    def log(self, message: str) -> None:
        _say(f"  .. {message}")


def _say(line: str) -> None:
    """A line on stdout that leaves the progress bar (stderr) intact."""
    from tqdm import tqdm

    tqdm.write(line, file=sys.stdout)
    sys.stdout.flush()


def figure(
    name: str, value: float | None, unit: str, *, target: str | None = None, passed: bool | None = None
) -> dict[str, Any]:
    """One measured figure; ``passed`` None means informational (no target)."""
    status = "-" if passed is None else ("PASS" if passed else "FAIL")
    return {"name": name, "value": value, "unit": unit, "target": target, "status": status}


def discover(directory: Path | None = None) -> dict[str, Benchmark]:
    """Every benchmark of ``benchmarks/bench_*.py``, by name, in file then dict order."""
    directory = directory or checkout_path("benchmarks")
    found: dict[str, Benchmark] = {}
    for path in sorted(directory.glob("bench_*.py")):
        spec = importlib.util.spec_from_file_location(f"aeradio_benchmarks_{path.stem}", path)
        if spec is None or spec.loader is None:
            continue
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        for name, func in getattr(module, "BENCHMARKS", {}).items():
            if name in found:
                raise ConfigError(f"benchmark {name!r} is defined twice ({path.name})")
            found[name] = func
    return found


def select(benchmarks: dict[str, Benchmark], only: str | None) -> dict[str, Benchmark]:
    """The benchmarks named in ``only`` (comma-separated; a name or a prefix ending in '.')."""
    if not only:
        return benchmarks
    chosen: dict[str, Benchmark] = {}
    for want in (w.strip() for w in only.split(",") if w.strip()):
        hits = {
            k: v for k, v in benchmarks.items() if k == want or (want.endswith(".") and k.startswith(want))
        }
        if not hits:
            raise ConfigError(f"--only: unknown benchmark {want!r}; known: {', '.join(benchmarks)}")
        chosen.update(hits)
    return chosen


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1e4 else f"{value:.4g}"
    return "-" if value is None else str(value)


def format_results(results: dict[str, dict[str, Any]]) -> str:
    """The table printed at the end of a run."""
    rows = [["benchmark", "figure", "value", "unit", "target", "status"]]
    for bench, res in results.items():
        if "error" in res:
            rows.append([bench, "error", res["error"], "", "", "ERROR"])
        for f in res.get("figures", []):
            rows.append(
                [bench, f["name"], _format_value(f["value"]), f["unit"], f["target"] or "", f["status"]]
            )
    widths = [max(len(str(r[c])) for r in rows) for c in range(len(rows[0]))]
    return "\n".join(
        "  ".join(str(cell).ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )


def run_benchmarks(
    benchmarks: dict[str, Benchmark], work_dir: Path, *, progress: bool = False
) -> dict[str, dict[str, Any]]:
    """Run each benchmark; an exception is recorded as that benchmark's error.

    ``progress``: a bar on stderr (benchmarks done, the one running, failures so far), shown
    only when stderr is a terminal.
    """
    from tqdm import tqdm

    ctx = BenchContext(work_dir=work_dir)
    results: dict[str, dict[str, Any]] = {}
    failed = 0
    with tqdm(total=len(benchmarks), desc="bench", unit="benchmark", leave=False, dynamic_ncols=True,
              disable=None if progress else True) as bar:
        for name, func in benchmarks.items():
            _say(f"[bench] {name}")
            bar.set_postfix_str(f"{name} (failed so far: {failed})")
            start = time.perf_counter()
            try:
                res = dict(func(ctx))
            except Exception as exc:  # a failing benchmark must not hide the others
                res = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
            res["wall_seconds"] = round(time.perf_counter() - start, 3)
            results[name] = res
            failed += "error" in res or any(f["status"] == "FAIL" for f in res.get("figures", []))
            bar.update(1)
    return results


def cmd_bench(args: argparse.Namespace) -> int:
    """``aeradio bench [--json FILE] [--only NAMES]``: exit 1 if a target fails."""
    from aeradio.apps.train import write_json_atomic
    from aeradio.core.paths import check_file_output

    if args.json is not None:  # before the benchmarks, which may run for an hour
        check_file_output(args.json, "--json")
    benchmarks = select(discover(), args.only)
    with tempfile.TemporaryDirectory(prefix="aeradio-bench-") as tmp:
        results = run_benchmarks(benchmarks, Path(tmp), progress=not getattr(args, "quiet", False))
    print()
    print(format_results(results))
    if args.json:
        write_json_atomic(
            args.json,
            {
                "machine": {"platform": platform.platform(), "python": platform.python_version()},
                "results": results,
            },
        )
    failed = any(
        "error" in r or any(f["status"] == "FAIL" for f in r.get("figures", [])) for r in results.values()
    )
    return 1 if failed else 0
