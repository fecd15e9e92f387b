"""Ray for ``aeradio sweep``: a local Ray started on demand, or an existing cluster.

Local (no ``--address``): :func:`ray_session` starts Ray with ``num_cpus`` = the number of
workers, no dashboard, quiet logging, no usage statistics, and every Ray process bound to
127.0.0.1; it stops Ray when the sweep ends. Ray on Linux replaces a loopback node address
(``_node_ip_address="127.0.0.1"``) by the machine's external address, so the servers of a
"local" Ray listen on every interface; ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` (Ray's own
switch, see ``ray._private.services.get_node_ip_address``) makes the node address loopback,
and then every Ray server binds to 127.0.0.1 (tests/apps/test_sweep.py checks it).

Cluster (``--address HOST:PORT``, ``ray://HOST:PORT`` or ``auto``): the address is checked
to answer first (a TCP connection within :data:`CONNECT_TIMEOUT_S`), since ``ray.init``
retries an unreachable address for minutes. A loopback address (a cluster started on this
machine) gets the same switch, else Ray would try the external address instead. A cluster
that requires Ray's token authentication (``ray start --head`` on one machine did, with
this Ray) needs ``RAY_AUTH_MODE=token`` and its token in this process's environment, as on
its nodes; the one-line error says so. ``ray://`` (Ray Client) needs ``ray[client]`` installed. A Ray
cluster runs the code it is sent: use one you trust. Its nodes need the same Python, Ray,
numpy and torch versions as this one.

Either way the workers import aeradio from this checkout, not whatever copy a node has
installed: a local Ray's workers inherit PYTHONPATH with the checkout first
(:func:`local_environment`); a cluster's get the ``aeradio`` package directory shipped as
a ``runtime_env`` ``py_modules`` entry (uploaded once, unpacked on every node).
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import socket
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from aeradio.core.errors import ConfigError

#: Environment of a local Ray (set before ray is imported: Ray reads it at import).
LOCAL_RAY_ENV = {
    # The node address stays 127.0.0.1, so every Ray server binds to loopback (see above).
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    # No usage report sent anywhere.
    "RAY_USAGE_STATS_ENABLED": "0",
}
#: Times Ray reruns a task whose worker process died (``max_retries`` of ``ray.remote``).
TASK_MAX_RETRIES = 3
#: Seconds to wait for a cluster's address to accept a TCP connection.
CONNECT_TIMEOUT_S = 5.0
#: Object store of a local Ray (bytes): models are ~100 kB, chunk results a few bytes.
LOCAL_OBJECT_STORE_BYTES = 256 << 20


def package_dir() -> Path:
    """The directory of the ``aeradio`` package this process runs."""
    return Path(__file__).resolve().parents[1]


def runtime_env(extra_modules: Sequence[str | Path] = ()) -> dict[str, object]:
    """The workers' ``runtime_env``: this checkout's aeradio (and ``extra_modules``) as py_modules."""
    return {
        "py_modules": [str(package_dir()), *(str(Path(m).resolve()) for m in extra_modules)],
        "excludes": ["__pycache__", "*.pyc"],
    }


def parse_address(address: str) -> tuple[str, int] | None:
    """``HOST:PORT`` or ``ray://HOST:PORT`` -> (host, port); ``auto`` -> None (Ray looks it up).

    >>> parse_address("ray://10.0.0.5:10001"), parse_address("auto")
    (('10.0.0.5', 10001), None)
    """
    if address == "auto":
        return None
    rest = address.removeprefix("ray://")
    host, sep, port = rest.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"--address must be HOST:PORT, ray://HOST:PORT or auto, got {address!r}")
    return host, int(port)


def check_reachable(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Raise :class:`ConfigError` unless ``address`` accepts a TCP connection within ``timeout_s``."""
    target = parse_address(address)
    if target is None:
        return
    try:
        with socket.create_connection(target, timeout=timeout_s):
            pass
    except OSError as exc:
        reason = f"no answer within {timeout_s:g} s" if isinstance(exc, TimeoutError) else exc.strerror or exc
        raise ConfigError(
            f"--address {address}: cannot reach a Ray cluster there ({reason}); "
            "start one with `ray start --head` or leave --address out for a local Ray"
        ) from None


def _is_loopback(address: str) -> bool:
    """Whether a cluster address names this machine's loopback (127.0.0.0/8, ::1, localhost)."""
    target = parse_address(address)
    if target is None:
        return False
    try:
        return ipaddress.ip_address(target[0]).is_loopback
    except ValueError:  # a host name
        try:
            return ipaddress.ip_address(socket.gethostbyname(target[0])).is_loopback
        except OSError:
            return False


def _cluster_cpus(ray: object) -> int:
    return max(1, int(ray.cluster_resources().get("CPU", 1)))  # type: ignore[attr-defined]


@contextlib.contextmanager
def _environment(updates: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the body (Ray's processes inherit them), then restore."""
    saved = {k: os.environ.get(k) for k in updates}
    os.environ.update(updates)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def local_environment(extra_modules: Sequence[str | Path] = ()) -> dict[str, str]:
    """The environment of a local Ray: :data:`LOCAL_RAY_ENV`, and PYTHONPATH with the
    directories holding this aeradio (and ``extra_modules``) first, so the workers, which
    inherit it, import the driver's code whichever way the driver found it."""
    roots = [str(package_dir().parent), *(str(Path(m).resolve().parent) for m in extra_modules)]
    old = os.environ.get("PYTHONPATH")
    return {**LOCAL_RAY_ENV, "PYTHONPATH": os.pathsep.join(dict.fromkeys([*roots, *([old] if old else [])]))}


@contextlib.contextmanager
def ray_session(
    address: str | None, workers: int | None, extra_modules: Sequence[str | Path] = ()
) -> Iterator[int]:
    """Connect to Ray for the body; yields the number of tasks to keep running at once.

    ``address`` None: a local Ray with ``workers`` CPUs (default: this machine's), stopped
    on exit. Otherwise the cluster at ``address`` (left running), ``workers`` (default: its
    CPUs) capping the tasks in flight. A Ray this process already started is reused as is
    (and left running). ``extra_modules``: package directories the workers need too.
    """
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    if address is None:
        env = local_environment(extra_modules)
    else:
        check_reachable(address)
        # A cluster on this machine, reached at 127.0.0.1: without the switch Ray would
        # replace that address by the machine's external one, where it may not listen.
        env = dict(LOCAL_RAY_ENV) if _is_loopback(address) else {}
    with _environment(env):
        import ray

        if ray.is_initialized():
            yield workers or _cluster_cpus(ray)
            return
        quiet = {"logging_level": logging.ERROR, "log_to_driver": False}
        try:
            if address is None:
                _check_loopback_switch()
                ray.init(
                    address="local",
                    num_cpus=workers or os.cpu_count() or 1,
                    include_dashboard=False,
                    _node_ip_address="127.0.0.1",
                    object_store_memory=LOCAL_OBJECT_STORE_BYTES,
                    **quiet,
                )
            else:
                with _stderr_captured() as said:
                    ray.init(address=address, runtime_env=runtime_env(extra_modules), **quiet)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = f"--address {address}" if address else "a local Ray"
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
            if address is not None and "InvalidAuthToken" in said.text:
                first += (
                    " (the cluster wants its authentication token: set RAY_AUTH_MODE=token, and "
                    "RAY_AUTH_TOKEN or the token file, as on the cluster's nodes)"
                )
            raise ConfigError(f"cannot start {where}: {first}") from None
        try:
            yield workers or _cluster_cpus(ray)
        finally:
            ray.shutdown()


class _Captured:
    text = ""


@contextlib.contextmanager
def _stderr_captured() -> Iterator[_Captured]:
    """Hold back what Ray's C++ core writes to file descriptor 2 while it connects (a retry
    loop of warnings when a cluster refuses it): its reason goes into the one-line error."""
    said = _Captured()
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield said
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            said.text = held.read(1 << 20).decode("utf-8", "replace")


def _check_loopback_switch() -> None:
    """Refuse to start a local Ray that would listen beyond 127.0.0.1: Ray reads the switch of
    :data:`LOCAL_RAY_ENV` when it is first imported, so it must not have been imported before."""
    try:
        from ray._private import ray_constants
    except ImportError:  # another Ray than the pinned one: the test of the binding will tell
        return
    if getattr(ray_constants, "ENABLE_RAY_CLUSTER", False):
        raise ConfigError(
            "a local Ray would listen on every interface: ray was imported in this process before "
            "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 was set; start it with aeradio.apps.ray_session first"
        )
