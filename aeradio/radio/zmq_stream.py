"""ZMQ sample streams in the GNU Radio gr-zeromq wire format, and the ZMQ devices.

Wire format (docs/contracts.md, gr-zeromq ``lib/tag_headers.cc``): each message is one part,
the tag header, then ``ntags`` stream tags, then raw interleaved little-endian float32 I/Q samples::

    offset 0  uint16  magic 0x5FF0
    offset 2  uint8   version 1
    offset 3  uint64  absolute offset of the message's first sample
    offset 11 uint64  number of tags, ntags
    offset 19 ntags x (uint64 tag offset, then key, value and srcid as serialized PMTs)
    then      float32 I0, Q0, I1, Q1, ...

header fields packed, little-endian (GNU Radio writes them in host order, little-endian on
every platform it ships on). A GNU Radio flowgraph interoperates with its ZMQ
PUSH/PULL/PUB/SUB blocks with ``pass_tags=True`` (otherwise they send and expect bare
samples); its PUB sink then sends tags whenever its stream carries some (a USRP source's
``rx_time``, ``rx_rate``, ``rx_freq``). Tags are parsed far enough to skip them
(:func:`skip_pmt`) and are otherwise ignored; this side always sends ``ntags = 0``.
Headers of version 2 (GNU Radio 4's development branch) are accepted without tags only:
their tags are serialized differently.

Everything that arrives is validated before anything is allocated from it: a message is at
most :data:`MAX_MESSAGE_BYTES` (also set as the sockets' ZMQ_MAXMSGSIZE, so a larger one
never reaches memory: ZMQ drops the connection that carried it, and the peer reconnects),
its tags fit in :data:`MAX_TAG_BYTES`, its sample offset is below :data:`MAX_OFFSET`.
A message that fails a check is *malformed*: a reader counts it (``stats.malformed`` and
an event of kind "malformed") and goes on, never stops.

Topology of the loopback (``aeradio channel --tx ADDR_A --rx ADDR_B``): the channel *binds*
both sockets, a PULL on ``ADDR_A`` and a PUB on ``ADDR_B``; the radio processes *connect*:

- ``aeradio tx --device zmq:ADDR_A`` opens :class:`ZmqTxDevice`, a PUSH socket: back-pressure,
  nothing dropped (bounded high-water marks: a full queue blocks the writer). TX fails
  (:class:`StreamError`) when no peer completes the ZMQ handshake within its connect
  timeout, when the peer disconnects while TX streams, and when the samples still queued
  at close do not leave within the drain time: samples are never silently lost.
- ``aeradio rx --device zmq:ADDR_B`` opens :class:`ZmqRxDevice`, a SUB socket: a slow
  receiver overflows as on hardware, and the offsets tell it how many samples it lost
  (``stats.samples_dropped``).

``zmq:tcp://HOST:PORT?bind=1`` makes a radio process bind instead (GNU Radio's PULL and SUB
sources connect); a binding TX waits for its peer to connect, with the same timeout.

Either side can restart at any time: ZMQ reconnects by itself; a sample offset that goes
backwards is logged as a restart of the stream, not as a loss, and so is a jump forward
larger than what could have been lost (:class:`OffsetTracker`). Sockets default to
127.0.0.1 in every recipe.
"""

from __future__ import annotations

import itertools
import math
import socket
import struct
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from aeradio.core.constants import SAMPLE_DTYPE
from aeradio.core.defaults import DEFAULT_CONNECT_TIMEOUT_S, DEFAULT_WRITE_TIMEOUT_S
from aeradio.core.errors import DeviceError, StreamError, check_range
from aeradio.radio.base import Device, DeviceSettings, Direction

#: gr-zeromq tag header: magic, version, first-sample offset, tag count (packed, LE).
HEADER = struct.Struct("<HBQQ")
HEADER_MAGIC = 0x5FF0
HEADER_VERSION = 1
#: Versions whose tag-free header has the layout above (GNU Radio 3.7-3.10, and 4.0-dev).
ACCEPTED_VERSIONS = (1, 2)
#: Samples per message this side sends, at most (64 KiB of I/Q).
MAX_MESSAGE_SAMPLES = 8192
#: Bytes per received message at most (ZMQ_MAXMSGSIZE): 131,069 tag-free samples, far
#: above what GNU Radio's sinks send per call (a few thousand items); bounds the memory a
#: queue of RCVHWM messages can take.
MAX_MESSAGE_BYTES = 1 << 20
#: Bytes the stream tags of one message may take (real tags take tens of bytes each).
MAX_TAG_BYTES = 1 << 16
#: Offsets from here on are not sample counts (2**62 samples: 146 years at 1 GS/s).
MAX_OFFSET = 1 << 62
#: Samples a stream may lose in one gap without the receiver having fallen behind: this
#: many seconds at the stream's rate (queues and TCP buffers hold well under a second).
MAX_GAP_S = 10.0
#: Samples per second no ZMQ sender exceeds (8 GB/s): bounds what can be lost while the
#: receiver is behind (see :class:`OffsetTracker`).
MAX_SENDER_SPS = 1e9
#: Messages a PUSH/PULL pair queues on each side before the writer blocks: with the
#: kernel's TCP buffers, how far TX may run ahead of the channel, so a TX process held off
#: the CPU for a moment does not leave the channel without samples (it then sends idle and
#: cuts a frame). 64 (4 MiB each side, 52 ms at 10 MS/s): the whole loop at 10 MS/s on 2
#: cores lost a frame to TX running late in 1 of 3 one-minute runs with 8, in 0 of 3 with 64.
PUSH_PULL_HWM = 64
#: The slowest peer a closing TX waits for, in times real time: ``aeradio channel --speed``'s
#: smallest pace.
SLOWEST_PEER_SPEED = 1e-3
#: A closing TX waits at least this long for its last samples to leave.
MIN_DRAIN_S = 10.0
#: Messages a PUB/SUB pair queues on each side before new ones are dropped.
PUB_SUB_HWM = 64
#: How long a closing socket may still try to deliver queued messages (ms).
LINGER_MS = 200


def write_timeout_for(sample_rate_hz: float, speed: float) -> float:
    """Seconds a TX write should allow a live peer that takes samples at ``speed`` times
    ``sample_rate_hz`` (``aeradio channel --speed``): at least DEFAULT_WRITE_TIMEOUT_S, and
    four times the time that peer takes to read half a PUSH/PULL queue.

    A full queue opens again only once its reader has taken half of it (ZMQ's low-water
    mark): measured on this socket pair, a reader taking a message every 20 ms held the
    writer 0.67 s every 32 messages. A channel paced at 0.05x of 1 MS/s takes 32 messages
    in 5.2 s, beyond the default 5 s, which failed a paced file transfer with "did not
    accept samples within 5.0 s".
    """
    check_range("sample rate", sample_rate_hz, 1.0, 1e12, unit="Hz")
    check_range("speed", speed, 1e-6, 1e6)
    half_queue_s = (PUSH_PULL_HWM // 2) * MAX_MESSAGE_SAMPLES / (sample_rate_hz * speed)
    return max(DEFAULT_WRITE_TIMEOUT_S, 4.0 * half_queue_s)


# PMT serialization type bytes (GNU Radio pmt_serial_tags.h) and what follows each.
_PST_SYMBOL = 0x02
_PST_PAIR = 0x07
_PST_VECTOR = 0x08
_PST_DICT = 0x09
_PST_UNIFORM_VECTOR = 0x0A
_PST_TUPLE = 0x0C
#: Bytes after the type byte of the fixed-size PMTs: true, false, int32, double, complex,
#: null, uint64, int64.
_PMT_FIXED_BYTES = {0x00: 0, 0x01: 0, 0x03: 4, 0x04: 8, 0x05: 16, 0x06: 0, 0x0B: 8, 0x0D: 8}
#: Bytes per element of the uniform vectors, by subtype: u8, s8, u16, s16, u32, s32, u64,
#: s64, f32, f64, c32, c64.
_UVECTOR_ITEM_BYTES = (1, 1, 2, 2, 4, 4, 8, 8, 4, 8, 8, 16)
#: pmt::deserialize refuses longer symbols ("very long symbol").
_MAX_SYMBOL_BYTES = 1024
#: A tag's offset and three PMTs of one byte at least.
_MIN_TAG_BYTES = 8 + 3
_MONITOR_IDS = itertools.count()
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")


def _malformed(what: str) -> StreamError:
    return StreamError(f"malformed ZMQ message: {what}")


def _need(pos: int, end: int) -> None:
    if pos > end:
        raise _malformed(f"stream tag PMT runs past byte {end}")


def skip_pmt(buf: bytes | memoryview, pos: int, end: int) -> int:
    """Position just past the serialized PMT at ``buf[pos]`` (GNU Radio ``pmt::serialize``).

    Reads type bytes and lengths only (big-endian, as ``pmt_serialize.cc`` writes them);
    raises :class:`StreamError` for an unknown type, a symbol longer than 1024 bytes
    (``pmt::deserialize`` refuses those too) or anything reaching past ``end``.
    No recursion: a container adds its items to the count of PMTs still to skip, so deep
    nesting cannot exhaust the stack, and every PMT takes a byte at least, so the work is
    bounded by ``end - pos``.

    >>> skip_pmt(bytes.fromhex("02000772785f74696d65"), 0, 10)  # the symbol 'rx_time'
    10
    """
    pending = 1
    while pending:
        if pending > end - pos:
            raise _malformed(f"stream tag PMTs need more than the {end - pos} bytes left at byte {pos}")
        pending -= 1
        kind = buf[pos]
        pos += 1
        fixed = _PMT_FIXED_BYTES.get(kind)
        if fixed is not None:
            pos += fixed
        elif kind == _PST_SYMBOL:
            _need(pos + 2, end)
            (length,) = _U16.unpack_from(buf, pos)
            if length > _MAX_SYMBOL_BYTES:
                raise _malformed(f"PMT symbol of {length} bytes at byte {pos} (at most {_MAX_SYMBOL_BYTES})")
            pos += 2 + length
        elif kind in (_PST_PAIR, _PST_DICT):
            pending += 2  # car and cdr
        elif kind in (_PST_VECTOR, _PST_TUPLE):
            _need(pos + 4, end)
            pending += _U32.unpack_from(buf, pos)[0]
            pos += 4
        elif kind == _PST_UNIFORM_VECTOR:
            _need(pos + 6, end)  # subtype, count, padding length
            subtype = buf[pos]
            if subtype >= len(_UVECTOR_ITEM_BYTES):
                raise _malformed(f"PMT uniform vector of unknown subtype 0x{subtype:02x} at byte {pos}")
            (count,) = _U32.unpack_from(buf, pos + 1)
            pos += 6 + buf[pos + 5] + count * _UVECTOR_ITEM_BYTES[subtype]
        else:
            raise _malformed(f"unknown PMT type 0x{kind:02x} at byte {pos - 1}")
        _need(pos, end)
    return pos


def skip_tags(buf: bytes | memoryview, pos: int, ntags: int) -> int:
    """Position just past ``ntags`` stream tags from ``buf[pos]``; :class:`StreamError` if malformed.

    Each tag: a uint64 offset (little-endian), then key, value and srcid PMTs
    (:func:`skip_pmt`). The tags must end within :data:`MAX_TAG_BYTES`.
    """
    end = min(len(buf), pos + MAX_TAG_BYTES)
    if ntags > (end - pos) // _MIN_TAG_BYTES:
        raise _malformed(
            f"{ntags} stream tags cannot fit in {end - pos} bytes (at most {MAX_TAG_BYTES} bytes of tags)"
        )
    for _ in range(ntags):
        pos += 8  # the tag's offset: tags are not used
        for _ in range(3):  # key, value, srcid
            pos = skip_pmt(buf, pos, end)
    return pos


def pack_message(offset: int, samples: np.ndarray) -> bytes:
    """One wire message: the tag header for ``offset`` and ``samples`` ([n] complex64), no tags."""
    body = np.ascontiguousarray(samples, dtype=SAMPLE_DTYPE).astype("<c8", copy=False)
    return HEADER.pack(HEADER_MAGIC, HEADER_VERSION, offset, 0) + body.tobytes()


def unpack_message(message: bytes | memoryview) -> tuple[int, np.ndarray]:
    """``(offset, samples)`` of one wire message; samples are ``[n] complex64`` (a copy).

    Stream tags are skipped. Raises :class:`StreamError` (and nothing else, whatever the
    bytes) for anything that is not a valid gr-zeromq message within the limits above.
    """
    size = len(message)
    if size > MAX_MESSAGE_BYTES:
        raise _malformed(f"{size} bytes, more than the {MAX_MESSAGE_BYTES} allowed")
    if size < HEADER.size:
        raise _malformed(
            f"{size} bytes is shorter than the {HEADER.size}-byte gr-zeromq tag header "
            "(is the sender using pass_tags=True?)"
        )
    magic, version, offset, ntags = HEADER.unpack_from(message)
    if magic != HEADER_MAGIC or version not in ACCEPTED_VERSIONS:
        raise _malformed(
            f"header has magic 0x{magic:04X} version {version}; expected magic "
            f"0x{HEADER_MAGIC:04X}, version in {ACCEPTED_VERSIONS} (gr-zeromq with pass_tags=True)"
        )
    if offset >= MAX_OFFSET:
        raise _malformed(f"sample offset {offset} is not below 2**62")
    pos = HEADER.size
    if ntags:
        if version != HEADER_VERSION:
            raise _malformed(
                f"{ntags} stream tags in a version {version} header (only version 1 tags are read)"
            )
        pos = skip_tags(message, pos, ntags)
    payload = size - pos
    if payload % 8:
        raise _malformed(f"payload of {payload} bytes is not whole float32 I/Q pairs")
    samples = np.frombuffer(message, dtype="<c8", offset=pos).astype(SAMPLE_DTYPE)
    return int(offset), samples


def parse_zmq_uri(uri: str) -> tuple[str, bool]:
    """``(endpoint, bind)`` of ``zmq:tcp://HOST:PORT`` (or of a bare ``tcp://HOST:PORT``).

    A ``?bind=1`` suffix asks the radio process to bind instead of connecting.

    >>> parse_zmq_uri("zmq:tcp://127.0.0.1:5555?bind=1")
    ('tcp://127.0.0.1:5555', True)
    """
    address, sep, query = (uri[4:] if uri.startswith("zmq:") else uri).partition("?")
    if not address.startswith(("tcp://", "ipc://", "inproc://")) or address.endswith("//"):
        raise DeviceError(
            f"ZMQ address must look like zmq:tcp://HOST:PORT (e.g. zmq:tcp://127.0.0.1:5555), got {uri!r}"
        )
    if sep and query not in ("bind=0", "bind=1"):
        raise DeviceError(f"ZMQ address options: only ?bind=0 or ?bind=1, got {query!r} in {uri!r}")
    if address.startswith("tcp://"):
        port = address.rpartition(":")[2]
        if port != "*" and not (port.isdigit() and 1 <= int(port) <= 65535):
            raise DeviceError(f"ZMQ address port must be in [1, 65535], got {port[:20]!r} in {uri!r}")
    return address, query == "bind=1"


def zmq_address(uri: str) -> str:
    """The ZMQ endpoint of ``zmq:tcp://HOST:PORT``, for a socket that always binds (the channel)."""
    address, _ = parse_zmq_uri(uri)
    if "?" in uri:
        raise DeviceError(f"this ZMQ address always binds: give it without options, got {uri!r}")
    return address


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


def _new_socket(kind: str, hwm: int, context: Any) -> Any:
    zmq = _import_zmq()
    ctx = zmq.Context.instance() if context is None else context
    sock = ctx.socket(getattr(zmq, kind))
    sock.setsockopt(zmq.LINGER, LINGER_MS)
    sock.setsockopt(zmq.SNDHWM, hwm)
    sock.setsockopt(zmq.RCVHWM, hwm)
    sock.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
    if kind == "SUB":
        sock.setsockopt(zmq.SUBSCRIBE, b"")
    return sock


def _attach(sock: Any, kind: str, address: str, *, bind: bool, role: str) -> None:
    zmq = _import_zmq()
    try:
        if bind:
            sock.bind(address)
        else:
            sock.connect(address)
    except zmq.ZMQError as exc:
        sock.close(linger=0)
        verb = "bind" if bind else "connect"
        raise DeviceError(f"cannot {verb} {role} ZMQ {kind} socket to {address}: {exc}") from None


def open_socket(kind: str, address: str, *, bind: bool, hwm: int, role: str, context: Any = None) -> Any:
    """A ZMQ socket of ``kind`` ("PUSH", "PULL", "PUB", "SUB") bound or connected to ``address``.

    ``role`` names the socket in errors (e.g. "--tx"). High-water marks bound every queue;
    messages over :data:`MAX_MESSAGE_BYTES` are refused (ZMQ_MAXMSGSIZE: ZMQ drops the
    connection that carried one). ``context``: the ZMQ context (default: the process's).
    """
    sock = _new_socket(kind, hwm, context)
    _attach(sock, kind, address, bind=bind, role=role)
    return sock


def open_monitored_socket(
    kind: str, address: str, *, bind: bool, hwm: int, role: str, context: Any = None
) -> tuple[Any, PeerMonitor]:
    """:func:`open_socket` with a :class:`PeerMonitor` attached before it binds or connects
    (so it sees the first connection's events too)."""
    sock = _new_socket(kind, hwm, context)
    monitor = PeerMonitor(sock)
    try:
        _attach(sock, kind, address, bind=bind, role=role)
    except DeviceError:
        monitor.close()
        raise
    return sock, monitor


class PeerMonitor:
    """Who is connected to a socket, from its ZMQ socket monitor events.

    A *peer* is a connection that completed the ZMQ handshake; ``peer_disconnects`` counts
    the peers that went away (closed, crashed, or dropped by ZMQ for a message over
    :data:`MAX_MESSAGE_BYTES`). Connections that never complete the handshake (a port
    scan, a non-ZMQ client) are not peers. The handshake event names no connection, so it
    is given to the newest connection still in its handshake (a ZMQ peer completes its
    handshake within milliseconds of connecting; a stray connection waits): only a stray
    connection opened during those milliseconds can be taken for the peer. Call
    :meth:`poll` to take in the events; :meth:`close` before the socket's context is
    terminated.
    """

    def __init__(self, sock: Any) -> None:
        zmq = _import_zmq()
        self._zmq = zmq
        self._sock = sock
        events = (zmq.EVENT_CONNECTED | zmq.EVENT_ACCEPTED | zmq.EVENT_HANDSHAKE_SUCCEEDED
                  | zmq.EVENT_DISCONNECTED)
        # An address of its own: pyzmq's default names it after the socket's fd, which a new
        # socket can reuse while the closed one's monitor endpoint is not yet released.
        self._monitor = sock.get_monitor_socket(events, f"inproc://aeradio-monitor-{next(_MONITOR_IDS)}")
        self._connecting: list[int] = []  # connections not yet through the handshake (fds)
        self._peers: set[int] = set()
        self.peer_disconnects = 0

    @property
    def connected(self) -> bool:
        """Whether a peer is connected now (as of the last :meth:`poll`)."""
        return bool(self._peers)

    def poll(self, timeout_s: float = 0.0) -> None:
        """Take in the pending events, waiting up to ``timeout_s`` for the first one."""
        from zmq.utils.monitor import recv_monitor_message

        zmq = self._zmq
        timeout_ms = max(0, math.ceil(timeout_s * 1000))
        while self._monitor.poll(timeout_ms):
            timeout_ms = 0
            event = recv_monitor_message(self._monitor)
            kind, fd = event["event"], int(event["value"])
            if kind in (zmq.EVENT_CONNECTED, zmq.EVENT_ACCEPTED):
                self._connecting.append(fd)
            elif kind == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                if self._connecting:  # the event carries no fd: the newest connection's
                    self._peers.add(self._connecting.pop())
            elif kind == zmq.EVENT_DISCONNECTED:
                if fd in self._peers:
                    self._peers.discard(fd)
                    self.peer_disconnects += 1
                elif fd in self._connecting:
                    self._connecting.remove(fd)

    def close(self) -> None:
        try:
            self._sock.disable_monitor()
        except self._zmq.ZMQError:  # the socket is already closed
            pass
        self._monitor.close(linger=0)


class MessageSender:
    """Sends complex64 blocks as wire messages, numbering samples from offset 0."""

    def __init__(self, sock: Any) -> None:
        self.sock = sock
        self.offset = 0

    def send(
        self, samples: np.ndarray, *, timeout_s: float | None, check: Callable[[], None] | None = None
    ) -> None:
        """Send ``samples`` ([n] complex64) in messages of at most MAX_MESSAGE_SAMPLES.

        On a PUSH socket, blocks up to ``timeout_s`` per message (None: forever) while the
        queue is full and raises :class:`StreamError` after it. A PUB socket never blocks:
        ZMQ drops what a slow subscriber cannot take, and the subscriber sees the gap in
        the offsets. ``check`` runs before each message (it raises to stop the stream).
        """
        zmq = _import_zmq()
        timeout_ms = None if timeout_s is None else max(0, int(timeout_s * 1000))
        for start in range(0, len(samples), MAX_MESSAGE_SAMPLES):
            chunk = samples[start : start + MAX_MESSAGE_SAMPLES]
            if check is not None:
                check()
            if not self.sock.poll(timeout_ms, zmq.POLLOUT):
                raise StreamError(
                    f"ZMQ peer did not accept samples within {timeout_s} s (is `aeradio channel` "
                    "running? one paced below real time takes them in bursts: raise tx --write-timeout-s)"
                )
            # copy=True: the message is a fresh bytes object just above pyzmq's zero-copy
            # threshold (64 KiB), and a zero-copy send hands each one to pyzmq's garbage
            # thread: measured 2.5x the CPU of copying it (25 against 9 us per message).
            self.sock.send(pack_message(self.offset, chunk), copy=True)
            self.offset += len(chunk)


class ZmqTxDevice(Device):
    """TX on a ZMQ PUSH socket that connects to the channel's PULL (see module docstring).

    The first :meth:`write` waits up to ``connect_timeout_s`` for a peer to complete the
    ZMQ handshake; writes fail when that peer disconnects; :meth:`close` fails when the
    queued samples did not leave within :meth:`drain_time_s`. All three raise
    :class:`StreamError` (close after releasing everything).
    """

    direction: Direction = "tx"

    def __init__(
        self,
        uri: str,
        settings: DeviceSettings,
        *,
        bind: bool | None = None,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
    ) -> None:
        super().__init__()
        check_range("ZMQ connect timeout", connect_timeout_s, 0.01, 3600.0, unit="s")
        self.address, uri_bind = parse_zmq_uri(uri)
        self.bind = uri_bind if bind is None else bind
        self.sample_rate_hz = settings.sample_rate_hz
        self.connect_timeout_s = connect_timeout_s
        # A context of its own: closing it (zmq_ctx_term) is what waits for the queued
        # messages to leave, within the linger time. Without it, samples still queued when
        # the process exits are lost (seen: the last 13 frames of a 500-frame burst).
        self._ctx = _import_zmq().Context()
        try:
            sock, self._monitor = open_monitored_socket(
                "PUSH", self.address, bind=self.bind, hwm=PUSH_PULL_HWM, role="TX", context=self._ctx
            )
        except DeviceError:
            self._ctx.term()
            raise
        self._sender = MessageSender(sock)
        self._closed = False
        self._failed = False
        self._streaming = False  # a peer took part since the first write
        self._disconnects_before = 0
        self._first_write_s: float | None = None  # monotonic time the peer took part

    def _wait_for_peer(self) -> None:
        deadline = time.monotonic() + self.connect_timeout_s
        self._monitor.poll()
        while not self._monitor.connected:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                where = f"connected to {self.address} (bound)" if self.bind else f"at {self.address}"
                raise StreamError(
                    f"no ZMQ peer {where} within {self.connect_timeout_s:g} s (--connect-timeout-s): "
                    "is `aeradio channel` (or the GNU Radio flowgraph) running?"
                )
            self._monitor.poll(remaining)
        self._disconnects_before = self._monitor.peer_disconnects

    def _check_peer(self) -> None:
        self._monitor.poll()
        if self._monitor.peer_disconnects > self._disconnects_before:
            raise StreamError(
                f"the ZMQ peer at {self.address} disconnected after {self.stats.samples} samples were "
                "written: any samples it had not yet taken are lost (did `aeradio channel` stop?)"
            )

    def read(self, max_samples: int, timeout_s: float = 1.0) -> np.ndarray | None:
        raise StreamError("a ZMQ TX device cannot read; open it with direction 'rx'")

    def write(
        self, samples: np.ndarray, *, end_burst: bool = False, timeout_s: float = DEFAULT_WRITE_TIMEOUT_S
    ) -> None:
        """Push ``samples`` ([n] complex64); bursts need no marker: idle air is silence."""
        if self._closed:
            raise StreamError("write on a closed ZMQ TX device")
        try:
            if not self._streaming:
                self._wait_for_peer()
                self._streaming = True
                self._first_write_s = time.monotonic()
            self._sender.send(np.asarray(samples, dtype=SAMPLE_DTYPE), timeout_s=timeout_s,
                              check=self._check_peer)
        except StreamError:
            self._failed = True
            raise
        self.stats.samples += len(samples)

    def drain_time_s(self) -> float:
        """Upper bound on the time the peer needs to take what is still queued.

        Both ends of the PUSH/PULL pair queue PUSH_PULL_HWM messages (what the kernel's TCP
        buffers hold is delivered after close; TX's queue moves into them as the peer takes
        as much). The peer takes samples at the rate it has so far (this stream's samples
        over the time since the first write: the peer's own rate when it held TX back,
        faster when the buffers absorbed it all), at most the sample rate and at least
        :data:`SLOWEST_PEER_SPEED` times it; twice that time plus a second, and never less
        than :data:`MIN_DRAIN_S`. So a channel paced below real time (``aeradio channel
        --speed 0.05``) gets the time it needs (a bound at the sample rate cut its last
        samples off), and a stalled one holds TX at most that long.
        """
        queued = 2 * PUSH_PULL_HWM * MAX_MESSAGE_SAMPLES
        rate = self.sample_rate_hz
        if self._first_write_s is not None:
            elapsed = time.monotonic() - self._first_write_s
            if elapsed > 0:
                rate = min(rate, self.stats.samples / elapsed)
        rate = max(rate, SLOWEST_PEER_SPEED * self.sample_rate_hz)
        return max(MIN_DRAIN_S, 1.0 + 2.0 * queued / rate)

    def close(self) -> None:
        """Close after the last samples reached the peer (bounded by :meth:`drain_time_s`).

        Raises :class:`StreamError`, once everything is released, when the peer disconnected
        since the last write or did not take the queued samples within the drain time.
        """
        if self._closed:
            return
        self._closed = True
        error = None
        if self._streaming and not self._failed:
            try:
                self._check_peer()
            except StreamError as exc:
                error, self._failed = exc, True
        linger_s = 0.0 if self._failed or not self._streaming else self.drain_time_s()
        self._monitor.close()
        self._sender.sock.close(linger=int(linger_s * 1000))
        started = time.monotonic()
        self._ctx.term()  # returns once the queue reached the peer, or the linger passed
        if error is not None:
            raise error
        if linger_s and time.monotonic() - started >= 0.95 * linger_s:
            raise StreamError(
                f"the last samples did not reach the ZMQ peer at {self.address} within "
                f"{linger_s:.2f} s of closing: they are lost (did `aeradio channel` stop?)"
            )

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None:  # already failing (or interrupted): no drain, no second error
            self._failed = True
        self.close()

    def describe(self) -> dict[str, object]:
        return {"sample_rate_hz": self.sample_rate_hz, "device": device_uri(self.address, self.bind),
                "socket": "PUSH", "bind": self.bind}


class OffsetTracker:
    """Counts samples lost between messages from their absolute offsets.

    An offset behind the expected one is a restart of the stream. An offset ahead of it is a
    loss only when the loss is plausible: at most :data:`MAX_GAP_S` of samples at the
    stream's rate, plus what the fastest sender (:data:`MAX_SENDER_SPS`) can have sent since
    the reader was last caught up (:meth:`caught_up`: its queue was empty). A larger jump
    (a forged or corrupted offset, a sender restarted further on) is counted in ``jumps``
    and taken as a new stream, not as lost samples.
    """

    def __init__(self, sample_rate_hz: float) -> None:
        self.max_gap_samples = sample_rate_hz * MAX_GAP_S
        self.expected: int | None = None
        self.dropped = 0
        self.restarts = 0
        self.jumps = 0
        self.caught_up_at = time.monotonic()

    def caught_up(self, now: float | None = None) -> None:
        """The reader has taken everything that had arrived, at ``now`` (monotonic s)."""
        self.caught_up_at = time.monotonic() if now is None else now

    def update(self, offset: int, count: int, now: float | None = None) -> int:
        """Account for a message of ``count`` samples at ``offset``; returns samples lost before it."""
        lost = 0
        if self.expected is not None:
            if offset > self.expected:
                behind_s = (time.monotonic() if now is None else now) - self.caught_up_at
                if offset - self.expected <= self.max_gap_samples + MAX_SENDER_SPS * max(0.0, behind_s):
                    lost = offset - self.expected
                    self.dropped += lost
                else:
                    self.jumps += 1
            elif offset < self.expected:
                self.restarts += 1
        self.expected = offset + count
        return lost


class ZmqRxDevice(Device):
    """RX on a ZMQ SUB socket that connects to the channel's PUB (see module docstring).

    A ZMQ stream carries no sample rate: ``settings.sample_rate_hz`` must be the channel's.
    Connecting never fails when nothing listens yet: reads time out until it does.
    Malformed messages are counted (``stats.malformed``, events of kind "malformed") and
    skipped; restarts, implausible offset jumps and lost connections are events too.
    """

    direction: Direction = "rx"

    def __init__(self, uri: str, settings: DeviceSettings, *, bind: bool | None = None) -> None:
        super().__init__()
        self.address, uri_bind = parse_zmq_uri(uri)
        self.bind = uri_bind if bind is None else bind
        self.sample_rate_hz = settings.sample_rate_hz
        self._sock, self._monitor = open_monitored_socket(
            "SUB", self.address, bind=self.bind, hwm=PUB_SUB_HWM, role="RX"
        )
        self._disconnects_seen = 0
        self._tracker = OffsetTracker(self.sample_rate_hz)
        # Received messages not yet read, joined once per read (not once per message).
        self._pending: list[np.ndarray] = []
        self._pending_samples = 0
        self._closed = False

    def _receive(self, timeout_s: float) -> bool:
        """Receive one message into the pending buffer; False on timeout."""
        zmq = _import_zmq()
        if not self._sock.poll(0, zmq.POLLIN):
            self._tracker.caught_up()
            if timeout_s <= 0 or not self._sock.poll(max(1, int(timeout_s * 1000)), zmq.POLLIN):
                return False
        try:
            offset, samples = unpack_message(self._sock.recv(copy=False).buffer)
        except StreamError as exc:
            self.stats.malformed += 1
            self.stats.events.append(str(exc), kind="malformed")
            return True
        tracker = self._tracker
        restarts, jumps, previous_end = tracker.restarts, tracker.jumps, tracker.expected
        lost = tracker.update(offset, len(samples))
        if lost:
            self.stats.samples_dropped += lost
            self.stats.overflows += 1
        if tracker.restarts != restarts:
            # A restarted sender (channel): how long it was away is unknown from the
            # stream itself; the reader sees it as read timeouts.
            self.stats.events.append(
                f"stream restarted at offset {offset} (the previous one ended at offset {previous_end})",
                kind="restart",
            )
        elif tracker.jumps != jumps:
            self.stats.events.append(
                f"stream offset jumped from {previous_end} to {offset}, more than can have been lost: "
                "taken as a new stream, not counted as dropped samples",
                kind="jump",
            )
        if len(samples):
            self._pending.append(samples)
            self._pending_samples += len(samples)
        return True

    def _note_disconnects(self) -> None:
        self._monitor.poll()
        if self._disconnects_seen == self._monitor.peer_disconnects:
            return
        while self._disconnects_seen < self._monitor.peer_disconnects:
            self._disconnects_seen += 1
            self.stats.events.append(
                f"connection to {self.address} lost (the sender stopped or restarted, or sent a "
                f"message over {MAX_MESSAGE_BYTES} bytes)",
                kind="disconnected",
            )
        if not self.bind:
            # ZMQ reconnects by itself after a closed connection, but not after one it dropped
            # for a protocol error (a message over ZMQ_MAXMSGSIZE): connect again, always.
            zmq = _import_zmq()
            try:
                self._sock.disconnect(self.address)
            except zmq.ZMQError:  # already gone
                pass
            self._sock.connect(self.address)

    def read(self, max_samples: int, timeout_s: float = 1.0) -> np.ndarray | None:
        """Up to ``max_samples`` samples ([n] complex64); empty when nothing came in ``timeout_s``."""
        if self._closed:
            raise StreamError("read on a closed ZMQ RX device")
        deadline = time.monotonic() + timeout_s
        received = self._pending_samples or self._receive(timeout_s)
        self._note_disconnects()
        if not received:
            self.stats.timeouts += 1
            return np.zeros(0, dtype=SAMPLE_DTYPE)
        # Take what is already queued, without waiting, up to max_samples.
        while self._pending_samples < max_samples and time.monotonic() < deadline and self._receive(0.0):
            pass
        if not self._pending:  # only empty or malformed messages came
            return np.zeros(0, dtype=SAMPLE_DTYPE)
        joined = self._pending[0] if len(self._pending) == 1 else np.concatenate(self._pending)
        out, rest = joined[:max_samples], joined[max_samples:]
        self._pending = [rest] if len(rest) else []
        self._pending_samples = len(rest)
        self.stats.samples += len(out)
        return out

    def write(
        self, samples: np.ndarray, *, end_burst: bool = False, timeout_s: float = DEFAULT_WRITE_TIMEOUT_S
    ) -> None:
        raise StreamError("a ZMQ RX device cannot write; open it with direction 'tx'")

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._monitor.close()
            self._sock.close(linger=0)

    def describe(self) -> dict[str, object]:
        return {"sample_rate_hz": self.sample_rate_hz, "device": device_uri(self.address, self.bind),
                "socket": "SUB", "bind": self.bind}
