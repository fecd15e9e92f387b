"""Reading ``.npy`` headers before any array data: what a file claims, checked first.

numpy's own ``np.load`` allocates whatever shape a header declares; a forged header can ask
for terabytes. :func:`read_npy_header` reads only the header (bounded), so callers check
dtype and shape against what they expect before loading anything.

>>> import io
>>> buf = io.BytesIO(); np.save(buf, np.zeros((3, 2), np.complex64)); _ = buf.seek(0)
>>> read_npy_header(buf)
((3, 2), False, dtype('complex64'))
"""

from __future__ import annotations

import tokenize
from typing import IO

import numpy as np

#: Bytes of an .npy header at most (numpy's own default limit).
MAX_NPY_HEADER_BYTES = 10_000


def read_npy_header(f: IO[bytes]) -> tuple[tuple[int, ...], bool, np.dtype]:
    """``(shape, fortran_order, dtype)`` of the .npy stream ``f``, left at the array's data.

    Raises ValueError (with a one-line reason) for anything that is not a version 1.0 or
    2.0 .npy header.
    """
    fmt = np.lib.format
    try:
        version = fmt.read_magic(f)
        if version == (1, 0):
            shape, fortran_order, dtype = fmt.read_array_header_1_0(f, max_header_size=MAX_NPY_HEADER_BYTES)
        elif version == (2, 0):
            shape, fortran_order, dtype = fmt.read_array_header_2_0(f, max_header_size=MAX_NPY_HEADER_BYTES)
        else:
            raise ValueError(f".npy format version must be 1.0 or 2.0, got {version}")
    except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError, tokenize.TokenError) as exc:
        # numpy parses the header with ast.literal_eval (and a tokenizer-based fallback):
        # these are what a malformed header raises there.
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise ValueError(f"not a numpy array file: {reason}") from None
    return tuple(int(s) for s in shape), bool(fortran_order), dtype
