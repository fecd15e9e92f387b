"""ZMQ sample streams in the GNU Radio gr-zeromq wire format, and the ZMQ devices.

Wire format (docs/contracts.md, gr-zeromq ``lib/tag_headers.cc``): each message is one part, the
tag header followed by raw interleaved little-endian float32 I/Q samples::

    offset 0  uint16  magic 0x5FF0
    offset 2  uint8   version 1
    offset 3  uint64  absolute offset of the message's first sample
    offset 11 uint64  number of tags (always 0 here)
    offset 19 float32 I0, Q0, I1, Q1, ...

packed, little-endian (GNU Radio writes it in host order, little-endian on every platform
it ships on). A GNU Radio flowgraph interoperates with its ZMQ PUSH/PULL/PUB/SUB blocks with
``pass_tags=True`` (otherwise they send and expect bare samples). Headers of version 2
(newer GNU Radio) with no tags are accepted too; tagged messages are refused.

Topology of the loopback (``aeradio channel --tx ADDR_A --rx ADDR_B``): the channel *binds*
both sockets, a PULL on ``ADDR_A`` and a PUB on ``ADDR_B``; the radio processes *connect*:

- ``aeradio tx --device zmq:ADDR_A`` opens :class:`ZmqTxDevice`, a PUSH socket: back-pressure,
  nothing dropped (bounded high-water marks: a full queue blocks the writer);
- ``aeradio rx --device zmq:ADDR_B`` opens :class:`ZmqRxDevice`, a SUB socket: a slow
  receiver overflows as on hardware, and the offsets tell it how many samples it lost
  (``stats.samples_dropped``).

A radio process binds instead of connecting with ``?bind=1`` (``zmq:tcp://HOST:PORT?bind=1``,
:func:`parse_zmq_uri`): GNU Radio's ZMQ PULL and SUB sources connect, so ``aeradio tx`` feeding
a GNU Radio flowgraph binds its PUSH socket (README.md, "GNU Radio").

Either side can restart at any time: ZMQ reconnects by itself; a sample offset that goes
backwards is logged as a restart of the stream, not as a loss. Sockets default to
127.0.0.1 in every recipe.
"""

from __future__ import annotations

import socket
import struct
import time
from typing import Any

import numpy as np

from aeradio.core.constants import SAMPLE_DTYPE
from aeradio.core.errors import DeviceError, StreamError
from aeradio.radio.base import Device, DeviceSettings, Direction

#: gr-zeromq tag header: magic, version, first-sample offset, tag count (packed, LE).
HEADER = struct.Struct("<HBQQ")
HEADER_MAGIC = 0x5FF0
HEADER_VERSION = 1
#: Versions whose tag-free header has the layout above (GNU Radio 3.8-3.10 and 3.11+).
ACCEPTED_VERSIONS = (1, 2)
#: Samples per message at most (64 KiB of I/Q): bounded memory per queued message.
MAX_MESSAGE_SAMPLES = 8192
#: Messages a PUSH/PULL pair queues on each side before the writer blocks.
PUSH_PULL_HWM = 8
#: Messages a PUB/SUB pair queues on each side before new ones are dropped.
PUB_SUB_HWM = 64
#: How long a closing socket may still try to deliver queued messages (ms).
LINGER_MS = 200


def pack_message(offset: int, samples: np.ndarray) -> bytes:
    """One wire message: the tag header for ``offset`` and ``samples`` ([n] complex64)."""
    body = np.ascontiguousarray(samples, dtype=SAMPLE_DTYPE).astype("<c8", copy=False)
    return HEADER.pack(HEADER_MAGIC, HEADER_VERSION, offset, 0) + body.tobytes()


def unpack_message(message: bytes | memoryview) -> tuple[int, np.ndarray]:
    """``(offset, samples)`` of one wire message; samples are ``[n] complex64`` (a copy).

    Raises :class:`StreamError` for anything that is not a tag-free gr-zeromq message.
    """
    if len(message) < HEADER.size:
        raise StreamError(
            f"ZMQ message of {len(message)} bytes is shorter than the {HEADER.size}-byte "
            "gr-zeromq tag header (is the sender using pass_tags=True?)"
        )
    magic, version, offset, ntags = HEADER.unpack_from(message)
    if magic != HEADER_MAGIC or version not in ACCEPTED_VERSIONS:
        raise StreamError(
            f"ZMQ message header has magic 0x{magic:04X} version {version}; expected magic "
            f"0x{HEADER_MAGIC:04X}, version in {ACCEPTED_VERSIONS} (gr-zeromq with pass_tags=True)"
        )
    if ntags != 0:
        raise StreamError(f"ZMQ message carries {ntags} stream tags; only tag-free messages are read")
    payload = len(message) - HEADER.size
    if payload % 8:
        raise StreamError(f"ZMQ message payload of {payload} bytes is not whole float32 I/Q pairs")
    samples = np.frombuffer(message, dtype="<c8", offset=HEADER.size).astype(SAMPLE_DTYPE)
    return int(offset), samples


def zmq_address(uri: str) -> str:
    """The ZMQ endpoint of ``zmq:tcp://HOST:PORT`` (or of a bare ``tcp://HOST:PORT``)."""
    address = uri[4:] if uri.startswith("zmq:") else uri
    if not address.startswith(("tcp://", "ipc://", "inproc://")) or address.endswith("//") or "?" in address:
        raise DeviceError(
            f"ZMQ address must look like zmq:tcp://HOST:PORT (e.g. zmq:tcp://127.0.0.1:5555), got {uri!r}"
        )
    return address


#: The options a ZMQ device URI may carry after ``?`` (one, exactly as written).
BIND_OPTIONS = {"bind=0": False, "bind=1": True}


def parse_zmq_uri(uri: str) -> tuple[str, bool]:
    """``(endpoint, bind)`` of a ZMQ device URI ``zmq:tcp://HOST:PORT[?bind=0|1]``.

    ``?bind=1`` makes the device bind its socket instead of connecting it (GNU Radio's ZMQ
    PULL and SUB sources connect, so a transmitter feeding one must bind).

    >>> parse_zmq_uri("zmq:tcp://127.0.0.1:5555?bind=1")
    ('tcp://127.0.0.1:5555', True)
    """
    address, sep, query = uri.partition("?")
    if sep and query not in BIND_OPTIONS:
        raise DeviceError(f"ZMQ device URI option must be bind=0 or bind=1, got {query!r} in {uri!r}")
    return zmq_address(address), BIND_OPTIONS.get(query, False)


def device_uri(address: str, bind: bool) -> str:
    """The device URI of a ZMQ endpoint: ``zmq:ADDRESS``, with ``?bind=1`` when it binds."""
    return f"zmq:{address}{'?bind=1' if bind else ''}"


def free_endpoint(host: str = "127.0.0.1") -> str:
    """``tcp://HOST:PORT`` with a port nothing listens on right now (for tests and the demo)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return f"tcp://{host}:{sock.getsockname()[1]}"


def _import_zmq() -> Any:
    try:
        import zmq
    except ImportError:  # pragma: no cover - pyzmq is a dependency
        raise DeviceError("pyzmq is not installed (pip install pyzmq)") from None
    return zmq


def open_socket(kind: str, address: str, *, bind: bool, hwm: int, role: str, context: Any = None) -> Any:
    """A ZMQ socket of ``kind`` ("PUSH", "PULL", "PUB", "SUB") bound or connected to ``address``.

    ``role`` names the socket in errors (e.g. "--tx"). High-water marks bound every queue.
    ``context``: the ZMQ context (default: the process's shared one).
    """
    zmq = _import_zmq()
    ctx = zmq.Context.instance() if context is None else context
    sock = ctx.socket(getattr(zmq, kind))
    sock.setsockopt(zmq.LINGER, LINGER_MS)
    sock.setsockopt(zmq.SNDHWM, hwm)
    sock.setsockopt(zmq.RCVHWM, hwm)
    if kind == "SUB":
        sock.setsockopt(zmq.SUBSCRIBE, b"")
    try:
        if bind:
            sock.bind(address)
        else:
            sock.connect(address)
    except zmq.ZMQError as exc:
        sock.close(linger=0)
        verb = "bind" if bind else "connect"
        raise DeviceError(f"cannot {verb} {role} ZMQ {kind} socket to {address}: {exc}") from None
    return sock


class MessageSender:
    """Sends complex64 blocks as wire messages, numbering samples from offset 0."""

    def __init__(self, sock: Any) -> None:
        self.sock = sock
        self.offset = 0

    def send(self, samples: np.ndarray, *, timeout_s: float | None) -> None:
        """Send ``samples`` ([n] complex64) in messages of at most MAX_MESSAGE_SAMPLES.

        On a PUSH socket, blocks up to ``timeout_s`` per message (None: forever) while the
        queue is full and raises :class:`StreamError` after it. A PUB socket never blocks:
        ZMQ drops what a slow subscriber cannot take, and the subscriber sees the gap in
        the offsets.
        """
        zmq = _import_zmq()
        timeout_ms = None if timeout_s is None else max(0, int(timeout_s * 1000))
        for start in range(0, len(samples), MAX_MESSAGE_SAMPLES):
            chunk = samples[start : start + MAX_MESSAGE_SAMPLES]
            if not self.sock.poll(timeout_ms, zmq.POLLOUT):
                raise StreamError(
                    f"ZMQ peer did not accept samples within {timeout_s} s "
                    "(is `aeradio channel` running?)"
                )
            self.sock.send(pack_message(self.offset, chunk), copy=False)
            self.offset += len(chunk)


class ZmqTxDevice(Device):
    """TX on a ZMQ PUSH socket that connects to the channel's PULL (see module docstring)."""

    direction: Direction = "tx"

    def __init__(self, uri: str, settings: DeviceSettings, *, bind: bool = False) -> None:
        super().__init__()
        self.address, uri_bind = parse_zmq_uri(uri)
        self.bind = bind or uri_bind
        self.sample_rate_hz = settings.sample_rate_hz
        # A context of its own: closing it (zmq_ctx_term) is what waits for the queued
        # messages to leave, within the linger time. Without it, samples still queued when
        # the process exits are lost (seen: the last 13 frames of a 500-frame burst).
        self._ctx = _import_zmq().Context()
        try:
            sock = open_socket("PUSH", self.address, bind=self.bind, hwm=PUSH_PULL_HWM, role="TX",
                               context=self._ctx)
        except DeviceError:
            self._ctx.term()
            raise
        self._sender = MessageSender(sock)
        self._closed = False
        self._failed = False

    def read(self, max_samples: int, timeout_s: float = 1.0) -> np.ndarray | None:
        raise StreamError("a ZMQ TX device cannot read; open it with direction 'rx'")

    def write(self, samples: np.ndarray, *, end_burst: bool = False, timeout_s: float = 5.0) -> None:
        """Push ``samples`` ([n] complex64); bursts need no marker: idle air is silence."""
        if self._closed:
            raise StreamError("write on a closed ZMQ TX device")
        try:
            self._sender.send(np.asarray(samples, dtype=SAMPLE_DTYPE), timeout_s=timeout_s)
        except StreamError:
            self._failed = True
            raise
        self.stats.samples += len(samples)

    def drain_time_s(self) -> float:
        """Upper bound on the time the channel needs to take what is still queued.

        Both ends of the PUSH/PULL pair queue PUSH_PULL_HWM messages, consumed at the
        sample rate (twice, for a channel running at half speed), plus a second of margin.
        """
        queued = 2 * PUSH_PULL_HWM * MAX_MESSAGE_SAMPLES
        return 1.0 + 2.0 * queued / self.sample_rate_hz

    def close(self) -> None:
        """Close after the last samples reached the channel (bounded by :meth:`drain_time_s`)."""
        if not self._closed:
            self._closed = True
            linger_ms = 0 if self._failed else int(self.drain_time_s() * 1000)
            self._sender.sock.close(linger=linger_ms)
            self._ctx.term()  # returns once the queue reached the channel, or linger passed

    def describe(self) -> dict[str, object]:
        return {"sample_rate_hz": self.sample_rate_hz, "device": device_uri(self.address, self.bind),
                "socket": "PUSH"}


class OffsetTracker:
    """Counts samples lost between messages from their absolute offsets."""

    def __init__(self) -> None:
        self.expected: int | None = None
        self.dropped = 0
        self.restarts = 0

    def update(self, offset: int, count: int) -> int:
        """Account for a message of ``count`` samples at ``offset``; returns samples lost before it."""
        lost = 0
        if self.expected is not None:
            if offset > self.expected:
                lost = offset - self.expected
                self.dropped += lost
            elif offset < self.expected:
                self.restarts += 1
        self.expected = offset + count
        return lost


class ZmqRxDevice(Device):
    """RX on a ZMQ SUB socket that connects to the channel's PUB (see module docstring).

    A ZMQ stream carries no sample rate: ``settings.sample_rate_hz`` must be the channel's.
    Connecting never fails when nothing listens yet: reads time out until it does.
    """

    direction: Direction = "rx"

    def __init__(self, uri: str, settings: DeviceSettings, *, bind: bool = False) -> None:
        super().__init__()
        self.address, uri_bind = parse_zmq_uri(uri)
        self.bind = bind or uri_bind
        self.sample_rate_hz = settings.sample_rate_hz
        self._sock = open_socket("SUB", self.address, bind=self.bind, hwm=PUB_SUB_HWM, role="RX")
        self._tracker = OffsetTracker()
        # Received messages not yet read, joined once per read (not once per message).
        self._pending: list[np.ndarray] = []
        self._pending_samples = 0
        self._closed = False

    def _receive(self, timeout_s: float) -> bool:
        """Receive one message into the pending buffer; False on timeout."""
        zmq = _import_zmq()
        if not self._sock.poll(max(0, int(timeout_s * 1000)), zmq.POLLIN):
            return False
        offset, samples = unpack_message(self._sock.recv(copy=False).buffer)
        restarts, previous_end = self._tracker.restarts, self._tracker.expected
        lost = self._tracker.update(offset, len(samples))
        if lost:
            self.stats.samples_dropped += lost
            self.stats.overflows += 1
        if self._tracker.restarts != restarts:
            # A restarted sender (channel): how long it was away is unknown from the
            # stream itself; the reader sees it as read timeouts.
            self.stats.events.append(
                f"stream restarted at offset {offset} (the previous one ended at offset {previous_end})"
            )
        if len(samples):
            self._pending.append(samples)
            self._pending_samples += len(samples)
        return True

    def read(self, max_samples: int, timeout_s: float = 1.0) -> np.ndarray | None:
        """Up to ``max_samples`` samples ([n] complex64); empty when nothing came in ``timeout_s``."""
        if self._closed:
            raise StreamError("read on a closed ZMQ RX device")
        deadline = time.monotonic() + timeout_s
        if not self._pending_samples and not self._receive(timeout_s):
            self.stats.timeouts += 1
            return np.zeros(0, dtype=SAMPLE_DTYPE)
        # Take what is already queued, without waiting, up to max_samples.
        while self._pending_samples < max_samples and time.monotonic() < deadline and self._receive(0.0):
            pass
        if not self._pending:  # only empty messages came
            return np.zeros(0, dtype=SAMPLE_DTYPE)
        joined = self._pending[0] if len(self._pending) == 1 else np.concatenate(self._pending)
        out, rest = joined[:max_samples], joined[max_samples:]
        self._pending = [rest] if len(rest) else []
        self._pending_samples = len(rest)
        self.stats.samples += len(out)
        return out

    def write(self, samples: np.ndarray, *, end_burst: bool = False, timeout_s: float = 5.0) -> None:
        raise StreamError("a ZMQ RX device cannot write; open it with direction 'tx'")

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._sock.close(linger=0)

    def describe(self) -> dict[str, object]:
        return {"sample_rate_hz": self.sample_rate_hz, "device": device_uri(self.address, self.bind),
                "socket": "SUB"}
