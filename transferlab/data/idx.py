"""Read IDX files (the MNIST / Fashion-MNIST format), gzipped or plain, with NumPy.

Format: 2 zero bytes, a type code, the number of dimensions, one big-endian uint32 per
dimension, then the data in C order.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from transferlab.errors import UserError

_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx_bytes(data: bytes, where: str = "idx data") -> np.ndarray:
    """Parse the bytes of one IDX file into an array."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _TYPES:
        raise UserError(f"{where}: not an IDX file (bad header); re-download or reinstall it")
    ndim = data[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_TYPES[data[2]])
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(data) != expected:
        raise UserError(
            f"{where}: IDX file is {len(data)} bytes, header says {expected}; "
            "the file is truncated or corrupt, re-download or reinstall it"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=False)


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file; ``.gz`` (or any gzip-magic file) is decompressed first."""
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise UserError(
                f"{path}: corrupt gzip file ({err}); re-download or reinstall it"
            ) from None
    return read_idx_bytes(raw, where=str(path))
