"""Read IDX files (the MNIST / Fashion-MNIST format), gzipped or plain, with NumPy.

Format: a 4-byte magic number (2 zero bytes, a type code, the number of dimensions), one
big-endian uint32 per dimension, then the data in C order. A wrong magic number, a file
shorter or longer than its header says, or an images file and a labels file that disagree
are one-line errors naming the file and how to get a good copy.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from transferlab.errors import UserError

_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
REINSTALL = "`apt-get install --reinstall dataset-fashion-mnist`"
FIX = f"reinstall it ({REINSTALL}) or delete it and download it again"
FIX_PAIR = f"reinstall them ({REINSTALL}) or delete both and download them again"


def read_idx_bytes(data: bytes, where: str = "idx data") -> np.ndarray:
    """Parse the bytes of one IDX file into an array."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _TYPES:
        raise UserError(
            f"{where}: not an IDX file (magic number 0x{data[:4].hex() or 'empty'}, expected "
            f"0x0000 followed by a type code 08..0e and the number of dimensions); {FIX}"
        )
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise UserError(f"{where}: IDX header cut short ({len(data)} bytes); {FIX}")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_TYPES[data[2]])
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(data) != expected:
        raise UserError(
            f"{where}: IDX file is {len(data)} bytes but its header {shape} says {expected} "
            f"(truncated or corrupt); {FIX}"
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
            raise UserError(f"{path}: corrupt gzip file ({err}); {FIX}") from None
    return read_idx_bytes(raw, where=str(path))


def read_idx_pair(images_path: str | Path, labels_path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 images (N, H, W), labels (N,)) from a matching pair of IDX files."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise UserError(
            f"{images_path}: expected uint8 images (N, H, W), got {images.dtype} {images.shape}; {FIX}"
        )
    if labels.ndim != 1:
        raise UserError(f"{labels_path}: expected labels (N,), got shape {labels.shape}; {FIX}")
    if len(images) != len(labels):
        raise UserError(
            f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} "
            f"labels, so they do not belong together; {FIX_PAIR}"
        )
    return images, labels
