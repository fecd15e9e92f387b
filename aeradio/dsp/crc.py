"""CRC-16 (header) and CRC-32 (data payloads).

CRC-16/CCITT-FALSE: polynomial 0x1021, initial value 0xFFFF, no reflection, no final XOR.
CRC-32 is zlib's (IEEE 802.3).

>>> hex(crc16(b"123456789"))
'0x29b1'
>>> hex(crc32(b"123456789"))
'0xcbf43926'
"""

from __future__ import annotations

import zlib

import numpy as np

try:  # compiled where numba is installed (not in GNU Radio's own Python; see conv_code)
    import numba
except ImportError:  # pragma: no cover - exercised by GNU Radio's Python
    numba = None


def _crc16_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return tuple(table)


_CRC16_TABLE = _crc16_table()


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE of ``data`` (an int in [0, 65535])."""
    crc = 0xFFFF
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC16_TABLE[((crc >> 8) ^ byte) & 0xFF]
    return crc


_CRC16_TABLE_ARRAY = np.array(_CRC16_TABLE, np.int64)


def _crc16_rows(data: np.ndarray, table: np.ndarray, out: np.ndarray) -> None:
    """:func:`crc16` of each row of ``data`` into ``out`` (compiled when numba is installed)."""
    for f in range(data.shape[0]):
        crc = 0xFFFF
        for i in range(data.shape[1]):
            crc = ((crc << 8) & 0xFFFF) ^ table[((crc >> 8) ^ data[f, i]) & 0xFF]
        out[f] = crc


_crc16_rows_kernel = numba.njit(nogil=True, cache=True)(_crc16_rows) if numba is not None else _crc16_rows


def crc16_rows(data: np.ndarray) -> np.ndarray:
    """CRC-16/CCITT-FALSE of each row of ``data`` ([F, nbytes] uint8) -> [F] int64.

    Compiled (the RX chain checks every detected frame's header: a numpy loop over the
    bytes cost tens of microseconds per call); :func:`crc16` is its model.
    """
    out = np.empty(data.shape[0], np.int64)
    _crc16_rows_kernel(np.ascontiguousarray(data, np.uint8), _CRC16_TABLE_ARRAY, out)
    return out


def crc32(data: bytes) -> int:
    """CRC-32 (zlib / IEEE 802.3) of ``data`` (an int in [0, 2**32))."""
    return zlib.crc32(data) & 0xFFFFFFFF
