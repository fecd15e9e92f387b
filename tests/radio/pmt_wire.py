"""A PMT serializer for the tests, and gr-zeromq messages with stream tags.

Written from GNU Radio's ``pmt_serialize.cc`` (type byte, then big-endian fields) and
gr-zeromq's ``tag_headers.cc`` (header, then per tag: little-endian uint64 offset, key,
value, srcid). It is checked byte for byte against ``pmt.serialize_str`` output and against
a message of GNU Radio's own PUB sink (the fixtures below), so the messages the tests build
are the ones GNU Radio sends.

A PMT is written as plain Python: ``True``, ``False``, ``None`` (nil), or a tuple
``(type, ...)``: ``("symbol", str)``, ``("int32", int)``, ``("int64", int)``,
``("uint64", int)``, ``("double", float)``, ``("complex", complex)``, ``("pair", car, cdr)``,
``("dict", [(key, value), ...])`` (in serialized order), ``("vector", [items])``,
``("tuple", [items])``, ``("uvector", subtype, [values])`` with subtype one of
``UVECTOR_FORMATS``.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

from aeradio.radio.zmq_stream import HEADER, HEADER_MAGIC, HEADER_VERSION

#: Uniform vector subtypes: (subtype byte, struct format of one element, big-endian).
UVECTOR_FORMATS = {
    "u8": (0x00, "B"), "s8": (0x01, "b"), "u16": (0x02, "H"), "s16": (0x03, "h"),
    "u32": (0x04, "I"), "s32": (0x05, "i"), "u64": (0x06, "Q"), "s64": (0x07, "q"),
    "f32": (0x08, "f"), "f64": (0x09, "d"), "c32": (0x0A, "ff"), "c64": (0x0B, "dd"),
}


def serialize(p: Any) -> bytes:
    """The bytes ``pmt::serialize`` writes for ``p`` (see the module docstring)."""
    if p is True:
        return b"\x00"
    if p is False:
        return b"\x01"
    if p is None:
        return b"\x06"
    kind = p[0]
    if kind == "symbol":
        raw = p[1].encode()
        return b"\x02" + struct.pack(">H", len(raw)) + raw
    if kind == "int32":
        return b"\x03" + struct.pack(">i", p[1])
    if kind == "double":
        return b"\x04" + struct.pack(">d", p[1])
    if kind == "complex":
        return b"\x05" + struct.pack(">dd", p[1].real, p[1].imag)
    if kind == "pair":
        return b"\x07" + serialize(p[1]) + serialize(p[2])
    if kind == "dict":
        return b"".join(b"\x09" + serialize(("pair", k, v)) for k, v in p[1]) + b"\x06"
    if kind in ("vector", "tuple"):
        head = b"\x08" if kind == "vector" else b"\x0c"
        return head + struct.pack(">I", len(p[1])) + b"".join(serialize(item) for item in p[1])
    if kind == "uvector":
        subtype, fmt = UVECTOR_FORMATS[p[1]]
        values = p[2]
        body = b"".join(
            struct.pack(">" + fmt, *((v.real, v.imag) if len(fmt) == 2 else (v,))) for v in values
        )
        return b"\x0a" + bytes([subtype]) + struct.pack(">I", len(values)) + b"\x01\x00" + body
    if kind == "uint64":
        return b"\x0b" + struct.pack(">Q", p[1])
    if kind == "int64":
        return b"\x0d" + struct.pack(">q", p[1])
    raise ValueError(f"unknown PMT kind {kind!r}")


def symbol(name: str) -> tuple[str, str]:
    return ("symbol", name)


def tagged_message(offset: int, samples: np.ndarray, tags: list[tuple[int, Any, Any, Any]],
                   *, version: int = HEADER_VERSION) -> bytes:
    """A gr-zeromq message: header, ``tags`` as (offset, key, value, srcid), then ``samples``."""
    out = HEADER.pack(HEADER_MAGIC, version, offset, len(tags))
    for tag_offset, key, value, srcid in tags:
        out += struct.pack("<Q", tag_offset) + serialize(key) + serialize(value) + serialize(srcid)
    return out + np.asarray(samples, "<c8").tobytes()


#: ``pmt.serialize_str(...).hex()`` of GNU Radio 3.10.5.1 (Debian's libgnuradio-pmt), with
#: the PMT of this serializer's notation that describes the same value.
PMT_FIXTURES: dict[str, tuple[Any, str]] = {
    "PMT_T": (True, "00"),
    "PMT_F": (False, "01"),
    "PMT_NIL": (None, "06"),
    "intern('rx_time')": (symbol("rx_time"), "02000772785f74696d65"),
    "from_long(-5)": (("int32", -5), "03fffffffb"),
    "from_long(1 << 40)": (("int64", 1 << 40), "0d0000010000000000"),
    "from_uint64(1700000000)": (("uint64", 1700000000), "0b000000006553f100"),
    "from_double(0.25)": (("double", 0.25), "043fd0000000000000"),
    "from_complex(1.5-2j)": (("complex", 1.5 - 2j), "053ff8000000000000c000000000000000"),
    "cons(intern('a'), from_long(1))": (("pair", symbol("a"), ("int32", 1)), "07020001610300000001"),
    "list3(from_long(1), intern('b'), PMT_T)": (
        ("pair", ("int32", 1), ("pair", symbol("b"), ("pair", True, None))),
        "0703000000010702000162070006",
    ),
    "dict_add(dict_add(make_dict(), k1, 1.0), k2, 'v')": (
        ("dict", [(symbol("k2"), symbol("v")), (symbol("k1"), ("double", 1.0))]),
        "09070200026b320200017609070200026b31043ff000000000000006",
    ),
    "vector [from_long(7), intern('x')]": (
        ("vector", [("int32", 7), symbol("x")]), "0800000002030000000702000178"
    ),
    "make_tuple(from_uint64(1700000000), from_double(0.125))": (
        ("tuple", [("uint64", 1700000000), ("double", 0.125)]),
        "0c000000020b000000006553f100043fc0000000000000",
    ),
    "init_u8vector(3, [1, 2, 255])": (("uvector", "u8", [1, 2, 255]), "0a000000000301000102ff"),
    "init_s16vector(2, [-1, 300])": (("uvector", "s16", [-1, 300]), "0a03000000020100ffff012c"),
    "init_f32vector(2, [0.5, -1.0])": (("uvector", "f32", [0.5, -1.0]), "0a080000000201003f000000bf800000"),
    "init_c32vector(2, [1+1j, -0.5j])": (
        ("uvector", "c32", [1 + 1j, -0.5j]), "0a0a0000000201003f8000003f80000080000000bf000000"
    ),
    "init_c64vector(1, [2-3j])": (
        ("uvector", "c64", [2 - 3j]), "0a0b0000000101004000000000000000c008000000000000"
    ),
    "init_u64vector(2, [1, 1 << 60])": (
        ("uvector", "u64", [1, 1 << 60]), "0a0600000002010000000000000000011000000000000000"
    ),
}

#: One message of GNU Radio 3.10.5.1's ``zeromq.pub_sink(gr.sizeof_gr_complex, 1, ADDR, 100,
#: pass_tags=True)`` fed by ``blocks.vector_source_c`` with the 8 samples and 5 tags of
#: ``GR_PUB_SAMPLES`` and ``GR_PUB_TAGS``, as received by a SUB socket.
GR_PUB_MESSAGE = bytes.fromhex(
    "f05f0100000000000000000500000000000000000000000000000002000772785f74696d650c000000020b000000"
    "006553f100043fc000000000000002000c757372705f736f7572636531000000000000000002000772785f726174"
    "6504412e84800000000002000c757372705f736f7572636531000000000000000002000772785f66726571044"
    "1cb44e56000000002000c757372705f736f75726365310500000000000000020005627572737409070200036c65"
    "6e030000000306020004746573740600000000000000020004746170730a0a0000000201003f8000003f8000008"
    "0000000bf00000002000474657374000000000000e0400000803f0000c040000000400000a04000004040000080"
    "4000008040000040400000a040000000400000c0400000803f0000e04000000000"
)
GR_PUB_SAMPLES = (np.arange(8) + 1j * np.arange(8)[::-1]).astype(np.complex64)
_USRP = symbol("usrp_source1")
GR_PUB_TAGS = [
    (0, symbol("rx_time"), ("tuple", [("uint64", 1700000000), ("double", 0.125)]), _USRP),
    (0, symbol("rx_rate"), ("double", 1e6), _USRP),
    (0, symbol("rx_freq"), ("double", 915e6), _USRP),
    (5, symbol("burst"), ("dict", [(symbol("len"), ("int32", 3))]), symbol("test")),
    (6, symbol("taps"), ("uvector", "c32", [1 + 1j, -0.5j]), symbol("test")),
]
