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


def crc16_rows(data: np.ndarray) -> np.ndarray:
    """CRC-16/CCITT-FALSE of each row of ``data`` ([F, nbytes] uint8) -> [F] int64."""
    table = np.asarray(_CRC16_TABLE, np.int64)
    crc = np.full(data.shape[0], 0xFFFF, np.int64)
    for i in range(data.shape[1]):
        crc = ((crc << 8) & 0xFFFF) ^ table[((crc >> 8) ^ data[:, i]) & 0xFF]
    return crc


def crc32(data: bytes) -> int:
    """CRC-32 (zlib / IEEE 802.3) of ``data`` (an int in [0, 2**32))."""
    return zlib.crc32(data) & 0xFFFFFFFF
