"""The live web page of ``aeradio rx --monitor [HOST:]PORT``.

The page shows, updated four times a second over server-sent events: the constellation of
the synchronized payload symbols of the last decoded frames against the model's LUT points
(per channel use, or all uses overlaid) or their error vectors to the codewords the
receiver decided (the noise and distortion that a code with many points per use hides),
BLER, SNR and CFO over time, the spectrum of the received stream, the frame, block and
sample counters, and the run's configuration. It works offline: its plotting library is
served with it (uPlot 1.6.32, MIT: the npm package ``uplot``'s ``dist/uPlot.iife.min.js``,
``dist/uPlot.min.css`` and ``LICENSE``, vendored unchanged in ``monitor_static/``; the
page's own code is ``monitor_static/monitor.js``).

Two threads share the work, so the receiver does not wait for the page:

- the RX loop calls :meth:`LiveMonitor.feed` after each read. It keeps references to the
  last decoded frames' payloads and decisions (a bounded deque) and, at most every
  :data:`MONITOR_INTERVAL_S`, publishes a :class:`Snapshot` (the report counters, the last
  :data:`MONITOR_SYMBOLS` symbols with their decisions and the newest
  :data:`SPECTRUM_SLICE_SAMPLES` samples, copied) by replacing one reference: a one-slot
  mailbox, newest wins, no lock, no queue to grow;
- the server thread (aiohttp on its own event loop) picks the newest snapshot up at the
  same period, derives what the page plots (interval BLER, SNR and CFO; the error vectors;
  the Welch spectrum of the slice, averaged over updates) and sends one JSON event to
  every page.

The server binds when the monitor starts, before anything is received: an address in use
or not of this machine is a :class:`~aeradio.core.errors.ConfigError` (one line, exit 2).
It binds 127.0.0.1 unless told otherwise; the page has no authentication, so another host
exposes it to whoever reaches that address (rx says so). Requests whose ``Host`` is not the
bound loopback address are refused (a DNS-rebinding page cannot read it), at most
:data:`MAX_CLIENTS` pages stream at once, and only the page's own files are served.

>>> parse_monitor_address("8080"), parse_monitor_address("0.0.0.0:8080"), parse_monitor_address("[::1]:80")
(('127.0.0.1', 8080), ('0.0.0.0', 8080), ('::1', 80))
"""

from __future__ import annotations

import asyncio
import base64
import errno
import ipaddress
import json
import math
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np

from aeradio.core.errors import ConfigError, short_repr
from aeradio.dsp.spectrum import welch_psd

#: Host the page binds to when ``--monitor`` names a port only.
DEFAULT_MONITOR_HOST = "127.0.0.1"
#: Seconds between two snapshots of the RX loop, and between two events to the pages (4/s).
MONITOR_INTERVAL_S = 0.25
#: Synchronized payload symbols shown (the newest; whole blocks).
MONITOR_SYMBOLS = 2048
#: Newest samples of a read whose spectrum is shown, and the Welch segment length.
SPECTRUM_SLICE_SAMPLES = 8192
SPECTRUM_SEGMENT_SAMPLES = 512
#: Weight of the newest spectrum in the displayed average (exponential, on power).
SPECTRUM_AVERAGING = 0.3
#: Points of the BLER / SNR / CFO history kept (10 minutes at 4 points a second).
HISTORY_POINTS = 2400
#: Pages streaming at once; more are answered 503.
MAX_CLIENTS = 8
#: Seconds between keep-alive comments on an idle event stream.
KEEPALIVE_S = 10.0
#: Seconds the server waits for its thread to start or stop.
SERVER_TIMEOUT_S = 5.0
#: Counters of the ``rx --json`` report the page shows.
REPORT_COUNTERS = (
    "frames_detected", "frames_decoded", "header_crc_failures", "model_mismatches",
    "frames_truncated", "false_detections", "blocks", "block_errors", "data_crc_failures",
    "samples", "nonfinite_samples",
)
#: The page's files: name -> content type. Nothing else is served.
STATIC_FILES = {
    "index.html": "text/html",
    "monitor.js": "text/javascript",
    "monitor.css": "text/css",
    "uPlot.iife.min.js": "text/javascript",
    "uPlot.min.css": "text/css",
    "uPlot.LICENSE": "text/plain",
}
#: The page loads its own files only.
_CSP = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:"


def parse_monitor_address(spec: str) -> tuple[str, int]:
    """``[HOST:]PORT`` -> ``(host, port)``; HOST an IP address (IPv6 in brackets) or
    ``localhost``, 127.0.0.1 when absent; PORT in [0, 65535] (0: any free port)."""
    text = spec.strip()
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host = DEFAULT_MONITOR_HOST
    elif host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ConfigError(f"--monitor: an IPv6 host goes in brackets ([::1]:PORT), got {short_repr(spec)}")
    if host == "localhost":
        host = DEFAULT_MONITOR_HOST
    try:
        port = int(port_text, 10)
    except ValueError:
        raise ConfigError(
            f"--monitor must be [HOST:]PORT with PORT in [0, 65535], got {short_repr(spec)}"
        ) from None
    if not 0 <= port <= 65535:
        raise ConfigError(f"--monitor PORT must be in [0, 65535], got {port}")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ConfigError(
            f"--monitor HOST must be an IP address (e.g. 127.0.0.1, 0.0.0.0, [::1]) or localhost, "
            f"got {short_repr(host)}"
        ) from None
    return host, port


def bind_monitor_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``(host, port)``; :class:`ConfigError` when it cannot bind."""
    family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    where = f"[{host}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}"
    try:
        # SO_REUSEADDR (the default here on POSIX) lets a restarted rx take a port still in
        # TIME_WAIT; it does not let two servers share one.
        return socket.create_server((host, port), family=family, backlog=16)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            why = "address already in use (another aeradio rx --monitor? choose another port)"
        elif exc.errno == errno.EADDRNOTAVAIL:
            why = "not an address of this machine"
        elif exc.errno == errno.EACCES:
            why = "permission denied (ports below 1024 need root)"
        else:
            why = exc.strerror or str(exc)
        raise ConfigError(f"--monitor {where}: cannot listen: {why}") from None


@dataclass(frozen=True)
class Snapshot:
    """What the RX loop hands to the server: immutable, its arrays copies."""

    #: Seconds since the monitor started.
    time_s: float
    #: Counters (``rx --json`` keys) plus ``snr_db``/``cfo_hz`` means and device counters.
    counters: dict[str, Any]
    #: Newest payload symbols ``[B, n]`` complex64, whole blocks, oldest first.
    symbols: np.ndarray
    #: The receiver's decision (message index) of each of those blocks ``[B]`` int64.
    decisions: np.ndarray
    #: Newest received samples ``[S]`` complex64, or None when the last read was empty.
    samples: np.ndarray | None
    #: Sample rate of the device (S/s).
    sample_rate_hz: float


def snapshot_of(
    rx: Any, dev: Any, frames: Sequence[tuple[np.ndarray, np.ndarray]], block: np.ndarray, time_s: float,
    n: int,
) -> Snapshot:
    """A :class:`Snapshot` of an RX chain ``rx`` reading ``dev`` (its report and stats),
    the decoded ``frames`` (each ``(payload [blocks, n], decisions [blocks])``) and the
    newest read ``block``."""
    rate = float(dev.sample_rate_hz)
    report = rx.report(rate)
    counters = {key: report[key] for key in REPORT_COUNTERS}
    counters.update(
        snr_db=_finite_or_none(report["snr_db"]), cfo_hz=_finite_or_none(report["cfo_hz"]),
        samples_dropped=int(dev.stats.samples_dropped), malformed_messages=int(dev.stats.malformed),
        device_faults=int(dev.stats.faults.count),
    )
    blocks = MONITOR_SYMBOLS // n
    if frames:
        symbols = np.concatenate([np.asarray(p).reshape(-1, n) for p, _ in frames])[-blocks:]
        decisions = np.concatenate([np.asarray(d).reshape(-1) for _, d in frames])[-blocks:]
    else:
        symbols, decisions = np.zeros((0, n), np.complex64), np.zeros(0, np.int64)
    samples = np.array(block[-SPECTRUM_SLICE_SAMPLES:], np.complex64) if len(block) else None
    return Snapshot(
        time_s, counters, np.array(symbols, np.complex64), np.array(decisions, np.int64), samples, rate
    )


def monitor_config(cfg: Any, run_info: dict[str, Any]) -> dict[str, Any]:
    """The run's configuration as the page shows it: ``run_info`` (what ``rx --json``
    records to reproduce the run) and the link ``cfg`` (a :class:`~aeradio.core.config.LinkConfig`)."""
    settings = run_info.get("device_settings") or {}
    tr = cfg.training
    return {
        **{k: v for k, v in run_info.items() if k != "device_settings"},
        "k": cfg.model.k, "n": cfg.model.n, "M": cfg.model.M, "rate": round(cfg.model.rate, 4),
        "samples_per_symbol": cfg.radio.samples_per_symbol, "rolloff": cfg.radio.rolloff,
        "blocks_per_frame": cfg.frame.blocks_per_frame,
        "sample_rate_hz": settings.get("sample_rate_hz"), "center_freq_hz": settings.get("freq_hz"),
        "gain_db": settings.get("gain_db"),
        "training": f"{tr.channel}, Eb/N0 {tr.ebn0_db_min:g} to {tr.ebn0_db_max:g} dB",
    }


class _PageState:
    """What the pages are sent, derived from snapshots (server thread only)."""

    def __init__(self, config: dict[str, Any], lut: np.ndarray) -> None:
        self.lut = np.asarray(lut, np.complex64)
        self.config_event = json.dumps({**config, "lut": _complex_lists(lut)})
        self.history: deque[dict[str, Any]] = deque(maxlen=HISTORY_POINTS)
        self.previous: Snapshot | None = None
        self.psd: np.ndarray | None = None
        self.message: str | None = None
        self.version = 0

    def update(self, snap: Snapshot, finished: dict[str, Any] | None) -> None:
        point = _history_point(self.previous, snap)
        self.history.append(point)
        spectrum = self._spectrum(snap)
        self.previous = snap
        self.message = json.dumps({
            "counters": snap.counters,
            "point": point,
            "symbols": _complex_lists(snap.symbols),
            "errors": _complex_lists(self._errors(snap)),
            "spectrum": spectrum,
            "finished": finished,
        }, allow_nan=False)
        self.version += 1

    def _errors(self, snap: Snapshot) -> np.ndarray:
        """``[B, n]``: each block minus the LUT row the receiver decided on (error vectors)."""
        if snap.symbols.shape[1:] != self.lut.shape[1:] or len(snap.decisions) != len(snap.symbols):
            return np.zeros((0, self.lut.shape[1]), np.complex64)
        return snap.symbols - self.lut[np.clip(snap.decisions, 0, len(self.lut) - 1)]

    def _spectrum(self, snap: Snapshot) -> dict[str, Any] | None:
        rate = snap.sample_rate_hz
        if snap.samples is not None and len(snap.samples) >= SPECTRUM_SEGMENT_SAMPLES:
            _, pxx = welch_psd(snap.samples, rate, SPECTRUM_SEGMENT_SAMPLES)
            fresh = self.psd is None or self.psd.shape != pxx.shape
            self.psd = pxx if fresh else self.psd + SPECTRUM_AVERAGING * (pxx - self.psd)
        if self.psd is None:
            return None
        bins = len(self.psd)
        return {
            "start_hz": -rate / 2,
            "step_hz": rate / bins,
            "psd_db": _float32_base64(10 * np.log10(np.maximum(self.psd, 1e-30))),
        }


def _float32_base64(x: np.ndarray) -> str:
    """Real ``x`` as base64 of little-endian float32 (non-finite values as 0): the page
    decodes it into a Float32Array, and no per-number Python object is made here."""
    values = np.nan_to_num(np.asarray(x, "<f4"), nan=0.0, posinf=0.0, neginf=0.0)
    return base64.b64encode(values.tobytes()).decode()


def _complex_lists(x: np.ndarray) -> dict[str, Any]:
    """``[B, n]`` complex -> ``{"n": n, "re": base64, "im": base64}`` (row-major float32)."""
    x = np.asarray(x)
    flat = x.reshape(-1)
    return {"n": int(x.shape[-1]) if x.ndim == 2 else 1, "re": _float32_base64(flat.real),
            "im": _float32_base64(flat.imag)}


def _finite_or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _history_point(before: Snapshot | None, now: Snapshot) -> dict[str, Any]:
    """BLER, SNR and CFO over the interval since ``before`` (None: nothing new in it), and
    the run's cumulative BLER.

    >>> c = dict(blocks=0, block_errors=0, frames_decoded=0, snr_db=None, cfo_hz=None, samples=0)
    >>> a = Snapshot(0.0, c, np.zeros((0, 1)), np.zeros(0), None, 1e6)
    >>> c2 = dict(blocks=100, block_errors=2, frames_decoded=4, snr_db=10.0, cfo_hz=50.0, samples=10**6)
    >>> p = _history_point(a, Snapshot(0.5, c2, np.zeros((0, 1)), np.zeros(0), None, 1e6))
    >>> p["bler"], p["bler_total"], p["snr_db"], p["cfo_hz"], p["frames_per_s"], p["rate_msps"]
    (0.02, 0.02, 10.0, 50.0, 8.0, 2.0)
    """
    c = now.counters
    zero = {"blocks": 0, "block_errors": 0, "frames_decoded": 0, "snr_db": None, "cfo_hz": None, "samples": 0}
    b = before.counters if before is not None else zero
    dt = now.time_s - (before.time_s if before is not None else 0.0)
    blocks = c["blocks"] - b["blocks"]
    frames = c["frames_decoded"] - b["frames_decoded"]

    def interval_mean(key: str) -> float | None:
        if frames <= 0 or c[key] is None:
            return None
        total = c[key] * c["frames_decoded"] - (b[key] or 0.0) * b["frames_decoded"]
        return _finite_or_none(round(total / frames, 4))

    return {
        "t_s": round(now.time_s, 3),
        "bler": (c["block_errors"] - b["block_errors"]) / blocks if blocks > 0 else None,
        "bler_total": c["block_errors"] / c["blocks"] if c["blocks"] else None,
        "snr_db": interval_mean("snr_db"),
        "cfo_hz": interval_mean("cfo_hz"),
        "frames_per_s": round(frames / dt, 3) if dt > 0 else None,
        "rate_msps": round((c["samples"] - b["samples"]) / dt / 1e6, 4) if dt > 0 else None,
    }


class LiveMonitor:
    """The page's server (a thread of its own) and the RX loop's side of the handoff.

    Args:
        address: ``(host, port)`` from :func:`parse_monitor_address`.
        config: the run's configuration as shown on the page (JSON-able).
        lut: the model's LUT ``[M, n]`` complex64 (the reference points).

    Use as a context manager, or :meth:`start` then :meth:`close`.
    """

    def __init__(self, address: tuple[str, int], config: dict[str, Any], lut: np.ndarray) -> None:
        self.n = int(lut.shape[1])
        self._sock = bind_monitor_socket(*address)
        host, port = self._sock.getsockname()[:2]
        self.host, self.port = host, int(port)
        self._state = _PageState(config, lut)
        self._latest: Snapshot | None = None  # the mailbox: replaced whole, never mutated
        self._finished: dict[str, Any] | None = None
        self._frames: deque[tuple[np.ndarray, np.ndarray]] = deque(maxlen=1)  # (payload, decisions)
        self._t0 = time.monotonic()
        self._next_s = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: Any = None
        self._ticker_task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._sent: dict[int, int] = {}  # page stream -> version of the last event sent to it
        self._errors = 0
        self._closing = False
        self._final_sent = threading.Event()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    @property
    def exposed(self) -> bool:
        """Whether the page is reachable from other hosts (not bound to loopback)."""
        return not ipaddress.ip_address(self.host).is_loopback

    # ---- the RX loop's side ------------------------------------------------------------
    def feed(self, results: Sequence[Any], block: np.ndarray, rx: Any, dev: Any) -> None:
        """After each read: keep the decoded frames' payloads; publish a snapshot when due."""
        for r in results:
            if r.decisions is not None and r.payload is not None:
                if self._frames.maxlen == 1 and r.payload.size:
                    self._frames = deque(self._frames, maxlen=-(-MONITOR_SYMBOLS // r.payload.size) + 1)
                self._frames.append((r.payload, r.decisions))
        now = time.monotonic()
        if now < self._next_s:
            return
        self._next_s = now + MONITOR_INTERVAL_S
        self._latest = snapshot_of(rx, dev, list(self._frames), block, now - self._t0, self.n)

    def finish(self, rx: Any, dev: Any, stopped_by: str | None) -> None:
        """The run is over: publish its last counters, sent with how it stopped on close."""
        self._latest = snapshot_of(
            rx, dev, list(self._frames), np.zeros(0, np.complex64), time.monotonic() - self._t0, self.n
        )
        self._finished = {"stopped_by": stopped_by}

    # ---- lifecycle -----------------------------------------------------------------------
    def start(self) -> LiveMonitor:
        """Start serving (returns once the server accepts connections; once only)."""
        if self._thread is not None:
            return self
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._serve())
            except BaseException as exc:  # reported to start(), which raises it
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, name="aeradio-monitor", daemon=True)
        self._thread.start()
        if not ready.wait(SERVER_TIMEOUT_S) or failure:
            self._sock.close()
            why = failure[0] if failure else "timeout"
            raise ConfigError(f"--monitor: the page server did not start ({why})")
        return self

    def close(self, finished: dict[str, Any] | None = None) -> None:
        """Send the last snapshot (with ``finished``, e.g. how the run stopped) and stop."""
        if self._thread is None or self._loop is None:
            self._sock.close()
            return
        if finished is not None or self._finished is None:
            self._finished = finished if finished is not None else {"stopped_by": None}
        self._final_sent.wait(4 * MONITOR_INTERVAL_S)
        loop = self._loop
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(SERVER_TIMEOUT_S)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            self._thread.join(SERVER_TIMEOUT_S)
            self._thread = None

    def __enter__(self) -> LiveMonitor:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        self.close({"stopped_by": "an error"} if exc_type is not None and self._finished is None else None)

    # ---- the server thread -----------------------------------------------------------------
    async def _serve(self) -> None:
        from aiohttp import web

        self._wake = asyncio.Event()
        app = web.Application(middlewares=[self._make_guard()])
        app.router.add_get("/", self._index)
        app.router.add_get("/events", self._events)
        app.router.add_get("/snapshot.json", self._snapshot)
        app.router.add_get("/static/{name}", self._static)
        # handler_cancellation: a page that goes away frees its stream at once, not at the
        # next write.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0, handler_cancellation=True)
        await self._runner.setup()
        await web.SockSite(self._runner, self._sock).start()
        self._ticker_task = asyncio.get_running_loop().create_task(self._ticker())

    async def _shutdown(self) -> None:
        # Let every page receive the last event (how the run stopped) before closing.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 4 * MONITOR_INTERVAL_S
        while any(v != self._state.version for v in self._sent.values()) and loop.time() < deadline:
            await asyncio.sleep(0.02)
        self._closing = True
        if self._ticker_task is not None:
            self._ticker_task.cancel()
        if self._wake is not None:
            self._wake.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _ticker(self) -> None:
        """Turn the newest snapshot into the pages' next event, every interval."""
        seen: Snapshot | None = None
        while not self._closing:
            await asyncio.sleep(MONITOR_INTERVAL_S)
            snap, finished = self._latest, self._finished
            if snap is not None and (snap is not seen or finished is not None):
                seen = snap
                try:
                    self._state.update(snap, finished)
                except Exception as exc:  # the page must never stop the receiver
                    self._errors += 1
                    if self._errors == 1:
                        print(f"aeradio rx: monitor: cannot update the page: {exc!r}", file=sys.stderr)
                    continue
                assert self._wake is not None
                self._wake.set()
                self._wake = asyncio.Event()
            if finished is not None:
                self._final_sent.set()

    def _allowed_host(self, host_header: str | None) -> bool:
        if self.exposed:
            return True
        names = {f"{h}:{self.port}" for h in ("127.0.0.1", "localhost", "[::1]", f"[{self.host}]", self.host)}
        return host_header in names

    def _make_guard(self) -> Any:
        """Middleware: refuse foreign ``Host`` headers, add the security headers."""
        from aiohttp import web

        @web.middleware
        async def guard(request: web.Request, handler: Any) -> web.StreamResponse:
            if not self._allowed_host(request.headers.get("Host")):
                return web.Response(status=403, text="Host not allowed\n")
            response = await handler(request)
            response.headers["Content-Security-Policy"] = _CSP
            response.headers["X-Content-Type-Options"] = "nosniff"
            return response

        return guard

    async def _index(self, request: Any) -> Any:
        return self._file_response("index.html")

    async def _static(self, request: Any) -> Any:
        return self._file_response(request.match_info["name"])

    def _file_response(self, name: str) -> Any:
        from aiohttp import web

        if name not in STATIC_FILES:
            raise web.HTTPNotFound()
        body = resources.files("aeradio.apps").joinpath("monitor_static", name).read_bytes()
        return web.Response(body=body, content_type=STATIC_FILES[name], headers={"Cache-Control": "no-cache"})

    async def _snapshot(self, request: Any) -> Any:
        from aiohttp import web

        return web.Response(text=self._state.message or "null", content_type="application/json")

    async def _events(self, request: Any) -> Any:
        """The event stream: ``config`` and ``history`` once, then one message per update."""
        from aiohttp import web

        if len(self._sent) >= MAX_CLIENTS:
            return web.Response(status=503, text=f"at most {MAX_CLIENTS} pages at once\n")
        key = id(request)
        self._sent[key] = -1
        try:
            response = web.StreamResponse(headers={
                "Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                "Content-Security-Policy": _CSP,
            })
            await response.prepare(request)
            state = self._state
            history = json.dumps(list(state.history))
            await response.write(
                f"event: config\ndata: {state.config_event}\n\nevent: history\ndata: {history}\n\n".encode()
            )
            version = state.version
            if state.message is not None:
                await response.write(f"data: {state.message}\n\n".encode())
            self._sent[key] = version
            while not self._closing:
                wake = self._wake
                assert wake is not None
                try:
                    await asyncio.wait_for(wake.wait(), KEEPALIVE_S)
                except TimeoutError:
                    await response.write(b": keep-alive\n\n")
                    continue
                if state.version != version and state.message is not None:
                    version = state.version
                    await response.write(f"data: {state.message}\n\n".encode())
                    self._sent[key] = version
            return response
        except ConnectionResetError:  # the page went away
            return response
        finally:
            del self._sent[key]
