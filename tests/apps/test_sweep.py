"""``aeradio sweep``: bad inputs (one line, exit 2, nothing written) without Ray; then, on one
local Ray for the module (2 workers), the same counts as a serial run, a worker killed
mid-sweep, resume, workers running this checkout's code, nothing listening beyond
127.0.0.1; and one run of the command as a user runs it (its own Ray, started and stopped)."""

import dataclasses
import functools
import ipaddress
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aeradio.apps import sweep_files as files
from aeradio.apps.sweep import SweepSpec, point_key, resolve_config, run_sweep
from aeradio.cli import main
from aeradio.core.errors import ConfigError
from aeradio.learning.montecarlo import (
    baseline_simulator,
    model_simulator,
    point_seed_sequence,
    run_point,
)
from aeradio.learning.training import torch_threads

ROOT = Path(__file__).resolve().parents[2]

TINY = """
[model]
k = 2
n = 1
hidden_width = 8
hidden_layers = 1

[training]
steps = 100
batch_size = 256
tx_lr_scale = 10.0
"""


@pytest.fixture(scope="module")
def tiny_toml(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cfg") / "tiny.toml"
    path.write_text(TINY)
    return path


def _spec(tiny_toml: Path, **kw) -> SweepSpec:
    args = {"ebn0_db": (0.0, 4.0, 8.0), "target_errors": 40, "max_blocks": 150_000}
    return SweepSpec(configs=(resolve_config(str(tiny_toml)),), **{**args, **kw})


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _one_line_error(capsys, argv, expected):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    assert expected in err, err


# ---- bad inputs: refused before Ray starts or anything is written ------------------------


def test_bad_inputs_are_one_line_and_write_nothing(tmp_path, capsys, tiny_toml):
    out = tmp_path / "out"
    base = ["sweep", "--configs", str(tiny_toml), "--ebn0-db", "0:4:2", "--out", str(out)]
    cases = [
        (["sweep", "--configs", "ae-n7-k9", "--ebn0-db", "0:4:2", "--out", str(out)],
         "unknown config 'ae-n7-k9'"),
        (["sweep", "--configs", str(tmp_path / "no.toml"), "--ebn0-db", "0:4:2", "--out", str(out)],
         "does not exist"),
        (["sweep", "--configs", " , ", "--ebn0-db", "0:4:2", "--out", str(out)], "at least one config"),
        (["sweep", "--configs", f"{tiny_toml},{tiny_toml}", "--ebn0-db", "0:4:2", "--out", str(out)],
         "distinct configs"),
        (["sweep", "--configs", f"{tiny_toml},ae-n1-k6-ldpc", "--ebn0-db", "0:4:2", "--out", str(out)],
         "ae-n1-k6-ldpc is a bit-wise model with an outer code"),
        (["sweep", "--configs", f"{tiny_toml},ae-n7-k8-ldpc", "--ebn0-db", "0:4:2", "--out", str(out)],
         "ae-n7-k8-ldpc is a message model with an outer code"),
        (["sweep", "--configs", str(tiny_toml), "--ebn0-db", "4:0:1", "--out", str(out)], "inverted"),
        (["sweep", "--configs", str(tiny_toml), "--ebn0-db", "", "--out", str(out)], "--ebn0-db"),
        ([*base, "--seeds", "0"], "--seeds must be in [1, 1000]"),
        ([*base, "--target-errors", "0"], "--target-errors"),
        ([*base, "--max-blocks", "0"], "--max-blocks"),
        ([*base, "--seed", "-1"], "--seed"),
        ([*base, "--workers", "0"], "--workers"),
        ([*base, "--channel", "warp"], "warp"),
        ([*base, "--address", f"127.0.0.1:{_closed_port()}"], "cannot reach a Ray cluster there"),
        ([*base, "--address", "not an address"], "--address must be HOST:PORT"),
    ]  # fmt: skip
    for argv, expected in cases:
        _one_line_error(capsys, argv, expected)
    assert not out.exists()


def test_a_dir_of_another_sweep_is_refused_untouched(tmp_path, capsys, tiny_toml):
    out = tmp_path / "out"
    other = _spec(tiny_toml, target_errors=41)
    files.write_document(out, other.parameters(), [], "running", [])
    before = (out / files.SWEEP_JSON).read_bytes()
    argv = ["sweep", "--configs", str(tiny_toml), "--ebn0-db", "0:8:4", "--target-errors", "40",
            "--max-blocks", "150000", "--out", str(out)]  # fmt: skip
    _one_line_error(capsys, argv, "holds another sweep (target_errors: 41 there, 40 now)")
    wider = [*argv[:-2], "--ebn0-db", "0:8:2", "--out", str(out)]
    _one_line_error(capsys, wider, "holds another sweep (ebn0_db")
    assert (out / files.SWEEP_JSON).read_bytes() == before and sorted(os.listdir(out)) == [files.SWEEP_JSON]
    stranger = tmp_path / "stranger"
    stranger.mkdir()
    (stranger / "notes.txt").write_text("mine")
    _one_line_error(capsys, [*argv[:-1], str(stranger)], "not a sweep's; refusing to write into it")
    assert sorted(os.listdir(stranger)) == ["notes.txt"]


def _valid_doc(spec: SweepSpec) -> dict:
    subject = spec.subjects()[0]
    row = files.make_row(point_key(subject, 4.0), 16384, 41, 1, True, spec.parameters(), subject.model_dir)
    return {"format": files.FORMAT, "format_version": 1, "parameters": spec.parameters(), "status": "running",
            "rows": [row], "runs": []}  # fmt: skip


def _planned(spec: SweepSpec) -> dict:
    return {point_key(s, e): s.model_dir for s, e in spec.points()}


def test_stored_rows_are_checked(tmp_path, tiny_toml):
    spec = _spec(tiny_toml)
    out = tmp_path / "out"
    out.mkdir()
    doc = _valid_doc(spec)
    (out / files.SWEEP_JSON).write_text(json.dumps(doc))
    state, _ = files.load_state(out, spec.parameters(), _planned(spec))
    assert [r["errors"] for r in state.values()] == [41]
    bad = [
        ({"errors": 20000}, "errors <= blocks"),
        ({"ebn0_db": 5.0}, "not a point of this sweep"),
        ({"stopped_by": "max_blocks"}, "does not fit its counts"),
        ({"blocks": 1.5}, "must be integers"),
        ({"seed": [1]}, "not a point of this sweep"),
    ]
    for change, expected in bad:
        broken = {**doc, "rows": [{**doc["rows"][0], **change}]}
        (out / files.SWEEP_JSON).write_text(json.dumps(broken))
        with pytest.raises(ConfigError, match=expected):
            files.load_state(out, spec.parameters(), _planned(spec))
    (out / files.SWEEP_JSON).write_text(json.dumps({**doc, "rows": doc["rows"] * 2}))
    with pytest.raises(ConfigError, match="repeats the point"):
        files.load_state(out, spec.parameters(), _planned(spec))


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(["format", "format_version", "parameters", "rows", "runs", "status"]), value=_json,
       row_key=st.sampled_from(files.ROW_FIELDS), row_value=_json)  # fmt: skip
def test_fuzzed_sweep_files_load_or_fail_in_one_line(tmp_path, tiny_toml, key, value, row_key, row_value):
    spec = _spec(tiny_toml)
    doc = _valid_doc(spec)
    for mutated in ({**doc, key: value}, {**doc, "rows": [{**doc["rows"][0], row_key: row_value}]}):
        (tmp_path / files.SWEEP_JSON).write_text(json.dumps(mutated))
        try:
            state, runs = files.load_state(tmp_path, spec.parameters(), _planned(spec))
        except ConfigError as exc:
            assert "\n" not in str(exc)
        else:
            assert all(0 <= r["errors"] <= r["blocks"] for r in state.values()) and isinstance(runs, list)


def test_a_stored_parameter_key_with_a_newline_is_one_line(tmp_path, tiny_toml):
    """Regression (found by the fuzz test above): a key of the stored parameters holding a
    newline was echoed as is, making the 'another sweep' message two lines."""
    spec = _spec(tiny_toml)
    doc = _valid_doc(spec)
    (tmp_path / files.SWEEP_JSON).write_text(json.dumps({**doc, "parameters": {"\n": None}}))
    with pytest.raises(ConfigError, match="another sweep") as info:
        files.load_state(tmp_path, spec.parameters(), _planned(spec))
    assert "\n" not in str(info.value) and "'\\n'" in str(info.value)


# ---- on Ray -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory):
    """One local Ray (2 workers) for the module. Started without PYTHONPATH and from another
    directory (Ray adds the driver's to the workers' path), so the workers can import this
    checkout (and tests/apps/sweep_faults.py) only through what ray_session gives them."""
    from aeradio.apps.ray_session import ray_session

    saved, cwd = os.environ.pop("PYTHONPATH", None), os.getcwd()
    # A user's OMP_NUM_THREADS, which Ray leaves as it is: the workers must still run 1 thread.
    saved_omp = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = "3"
    os.chdir(tmp_path_factory.mktemp("driver"))
    try:
        with ray_session(None, 2, extra_modules=[ROOT / "tests"]) as slots:
            yield slots
    finally:
        os.chdir(cwd)
        if saved is not None:
            os.environ["PYTHONPATH"] = saved
        if saved_omp is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = saved_omp


def _serial_counts(spec: SweepSpec, out_dir: Path) -> dict:
    """Every point simulated chunk after chunk in this process, from the library alone."""
    counts = {}
    with torch_threads(1):  # as in a Ray worker
        for subject, ebn0 in spec.points():
            if subject.kind == "model":
                sim = model_simulator(out_dir / subject.model_dir)
            else:
                sim = baseline_simulator(subject.name, subject.k, subject.n)
            point = point_seed_sequence(spec.eval_seed, subject.key, ebn0)
            res = run_point(
                lambda i, sim=sim, ebn0=ebn0, point=point: sim.chunk(ebn0, spec.channel, spec.plan, point, i),
                spec.plan,
                spec.target_errors,
            )
            counts[point_key(subject, ebn0)] = (res.blocks, res.errors, res.chunks)
    return counts


def _counts(rows) -> dict:
    return {files.point_id(r): (r["blocks"], r["errors"], r["chunks"]) for r in rows}


@pytest.fixture(scope="module")
def first_sweep(local_ray, tiny_toml, tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "a"
    spec = _spec(tiny_toml)
    return spec, out, run_sweep(spec, out)


@pytest.mark.slow
def test_ray_sweep_gives_the_serial_counts(first_sweep):
    spec, out, outcome = first_sweep
    assert outcome.status == "complete" and outcome.exit_code == 0 and outcome.trained == 1
    assert [r["config"] for r in outcome.rows] == ["tiny"] * 3 + ["QPSK"] * 3  # model, then its baseline
    assert _counts(outcome.rows) == _serial_counts(spec, out)
    # The 8 dB points need several chunks (the merge is exercised), the 0 dB ones one.
    by_ebn0 = {r["ebn0_db"]: r for r in outcome.rows if r["kind"] == "model"}
    assert by_ebn0[0.0]["chunks"] == 1 and by_ebn0[8.0]["chunks"] > 1
    doc = json.loads((out / files.SWEEP_JSON).read_text())
    assert doc["status"] == "complete" and doc["rows"] == outcome.rows
    lines = (out / files.SWEEP_CSV).read_text().splitlines()
    assert lines[0].split(",") == list(files.ROW_FIELDS) and len(lines) == 1 + len(outcome.rows)
    assert (out / files.SWEEP_PNG).stat().st_size > 10_000
    assert (out / "models" / "tiny-seed0" / "model.json").is_file()


@pytest.mark.slow
def test_a_killed_worker_is_retried_and_the_counts_stay_exact(first_sweep, tmp_path):
    from tests.apps.sweep_faults import crash_once

    spec, first_out, first = first_sweep
    out = tmp_path / "b"
    shutil.copytree(first_out / "models", out / "models")  # trained already: only the points run
    files.write_document(out, spec.parameters(), [], "running", [])
    marker = tmp_path / "crashed.pid"
    outcome = run_sweep(spec, out, chunk_fn=functools.partial(crash_once, str(marker)))
    pid = int(marker.read_text())
    assert not _running(pid)  # that worker process is gone
    assert outcome.status == "complete" and outcome.trained == 0 and not outcome.failures
    assert _counts(outcome.rows) == _counts(first.rows)


@pytest.mark.slow
def test_workers_simulate_on_one_torch_thread_each(first_sweep, tmp_path):
    """Regression: workers ran as many torch threads as the user's OMP_NUM_THREADS (3 here,
    see local_ray), so 2 workers on 2 cores oversubscribed them."""
    from tests.apps.sweep_faults import reports_threads

    spec, first_out, _ = first_sweep
    spec = dataclasses.replace(spec, target_errors=1)
    out = tmp_path / "threads"
    shutil.copytree(first_out / "models", out / "models")
    files.write_document(out, spec.parameters(), [], "running", [])
    outcome = run_sweep(spec, out, chunk_fn=reports_threads)
    assert outcome.status == "complete" and len(outcome.rows) == 6
    assert {r["errors"] for r in outcome.rows} == {1}
    # Every chunk's simulation time is counted, and the run's slots are those of the Ray.
    assert outcome.slots == 2 and 0 < outcome.busy_s < outcome.slots * outcome.elapsed_s
    # Both workers warmed up at the start (torch imported), before the run ended.
    assert 0 < outcome.startup_s < outcome.elapsed_s
    assert 0 <= outcome.startup_blocks <= outcome.blocks_simulated


@pytest.mark.slow
def test_resume_runs_only_what_is_missing(first_sweep, tmp_path, capsys, tiny_toml):
    spec, first_out, first = first_sweep
    out = tmp_path / "c"
    shutil.copytree(first_out, out)
    model_json = out / "models" / "tiny-seed0" / "model.json"
    before = model_json.stat().st_mtime_ns
    doc = json.loads((out / files.SWEEP_JSON).read_text())
    doc.update(status="interrupted", rows=doc["rows"][:2])
    (out / files.SWEEP_JSON).write_text(json.dumps(doc))
    argv = ["sweep", "--configs", str(tiny_toml), "--ebn0-db", "0:8:4", "--target-errors", "40",
            "--max-blocks", "150000", "--quiet", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    summary = capsys.readouterr().out
    assert "sweep complete: 6 of 6 points (2 from earlier runs), 0 models trained" in summary
    assert model_json.stat().st_mtime_ns == before
    resumed = json.loads((out / files.SWEEP_JSON).read_text())
    assert _counts(resumed["rows"]) == _counts(first.rows) and len(resumed["runs"]) == 2
    # Everything finished: a third run does nothing (and needs no Ray).
    again = run_sweep(spec, out)
    assert again.points_run == 0 and again.trained == 0 and again.status == "complete"


@pytest.mark.slow
def test_a_failing_point_is_reported_and_the_rest_kept(first_sweep, tmp_path, capsys):
    from aeradio.apps.sweep import summary_lines
    from tests.apps.sweep_faults import fails_at

    spec, first_out, first = first_sweep
    out = tmp_path / "d"
    shutil.copytree(first_out / "models", out / "models")
    files.write_document(out, spec.parameters(), [], "running", [])
    outcome = run_sweep(spec, out, chunk_fn=functools.partial(fails_at, 8.0))
    assert outcome.status == "failed" and outcome.exit_code == 1 and len(outcome.failures) == 2
    assert [r["ebn0_db"] for r in outcome.rows] == [0.0, 4.0, 0.0, 4.0]
    failed = summary_lines(spec, outcome, out)[-1]
    assert failed.startswith("FAILED: ") and "\n" not in failed
    assert "RuntimeError: no chunk at 8.0 dB" in failed
    assert json.loads((out / files.SWEEP_JSON).read_text())["status"] == "failed"
    retried = run_sweep(spec, out)  # the same sweep again: only the failed points run
    assert retried.points_run == 2 and retried.status == "complete"
    assert _counts(retried.rows) == _counts(first.rows)


@pytest.mark.slow
def test_workers_run_this_checkout_and_listen_on_loopback_only(local_ray):
    import ray

    from tests.apps.sweep_faults import source_digest

    # The driver's code, from the same files, not another installed copy (PYTHONPATH was
    # dropped and the driver's directory is not the checkout: only ray_session tells them).
    assert ray.get(ray.remote(source_digest).remote()) == source_digest()
    listening = _listening_addresses(_descendants(os.getpid()))
    assert listening, "no Ray server found listening"
    assert all(addr.is_loopback for addr in listening), listening


@pytest.mark.slow
def test_the_command_starts_and_stops_its_own_ray(tmp_path, tiny_toml):
    """As a user runs it, from the venv's python, in another directory, with no PYTHONPATH."""
    out = tmp_path / "cli"
    code = f"import sys; sys.path.insert(0, {str(ROOT)!r}); from aeradio.cli import main; sys.exit(main())"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    argv = ["sweep", "--configs", str(tiny_toml), "--ebn0-db", "0:4:4", "--target-errors", "20",
            "--max-blocks", "20000", "--no-baselines", "--workers", "1", "--quiet",
            "--out", str(out)]  # fmt: skip
    with subprocess.Popen([sys.executable, "-c", code, *argv], cwd=tmp_path, env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:  # fmt: skip
        stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr[-2000:]
    assert "sweep complete: 2 of 2 points" in stdout
    assert {p.name for p in out.iterdir()} == {"sweep.json", "sweep.csv", "bler.png", "models"}
    assert _ray_processes_of(proc.pid) == []


def _running(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie waiting to be reaped."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _descendants(pid: int) -> set[int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, ppid in parents.items() if ppid in frontier} - found
        found |= frontier
    return found


def _ray_processes_of(pid: int) -> list[int]:
    """Processes (anywhere) whose command line names the Ray session of process ``pid``:
    a Ray left behind by a command after it exited."""
    leftovers = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if f"_{pid}/".encode() in cmdline and b"session_" in cmdline:
                leftovers.append(int(entry.name))
    return leftovers


def _listening_addresses(pids: set[int]) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """Local addresses of the TCP sockets in LISTEN state owned by ``pids`` (Linux /proc)."""
    inodes = set()
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:["):
                    inodes.add(link[8:-1])
        except OSError:
            continue
    out = []
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                out.append(_decode_address(fields[1].split(":")[0]))
    return out


def _decode_address(hex_ip: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """A /proc/net/tcp{,6} address (32-bit words in host order); IPv4-mapped as IPv4."""
    raw = b"".join(bytes.fromhex(hex_ip)[i : i + 4][::-1] for i in range(0, len(hex_ip) // 2, 4))
    addr = ipaddress.ip_address(raw)
    return getattr(addr, "ipv4_mapped", None) or addr
