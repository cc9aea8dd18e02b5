"""Rows of the feature cache, read block by block on demand instead of held in memory.

``classify`` passes :class:`Rows` wherever the grid and the softmax head take a feature
matrix. Indexing one (a slice, an index array, a boolean mask) selects rows without
reading anything and gives another ``Rows``; ``np.asarray`` reads the selected rows (the
grid and the head only ever do that a row block at a time). So the train and test splits,
and the cross-validation folds drawn from them, are index arrays, not float16 copies of
the cache: the splits interleave in a real cache (rows sorted by class, train drawn per
class), so they are no slices of it either.

When the source is a whole ``.npy`` memory map (``load_features(..., mmap=True)``), rows are
read from the file with ``readinto`` rather than through the mapping: pages read through
a mapping stay in the process's resident set (up to the whole file once every block has
been visited), while a read leaves them in the kernel's page cache only, which is shared
and reclaimable. Any other array (e.g. in tests) is indexed in memory.

``divide`` reads the rows as ``float64(rows) / divide``: the raw-pixel baseline passes the
prepared uint8 images (flattened, still mapped) with ``divide=255``, so its [0, 1] float64
matrix, 8x the images' size, never exists whole, only a block at a time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from transferlab.transfer.feature_cache import mapped_file


def _file_rows(x: np.ndarray) -> tuple[Path, int] | None:
    """(file, data offset) when ``x`` is a whole C-ordered 2-D memory-mapped file, else None."""
    return mapped_file(x) if x.ndim == 2 else None


class Rows:
    """A selection of rows (``index``) of a 2-D array ``source``; read only by ``np.asarray``."""

    def __init__(self, source: np.ndarray, index: np.ndarray | None = None, *, divide: float | None = None) -> None:
        if source.ndim != 2:
            raise ValueError(f"Rows needs a 2-D array, got shape {source.shape}")
        self.source = source
        self.index = np.arange(len(source)) if index is None else np.asarray(index, dtype=np.intp)
        self.divide = divide  # rows read as float64(source) / divide (uint8 pixels -> [0, 1]); None = as stored
        self._file = _file_rows(source)

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.index), self.source.shape[1]

    @property
    def dtype(self) -> np.dtype:
        return self.source.dtype if self.divide is None else np.dtype(np.float64)

    @property
    def ndim(self) -> int:
        return 2

    @property
    def size(self) -> int:
        return self.shape[0] * self.shape[1]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, key: Any) -> Rows:
        """The rows ``key`` selects (slice, integer index array or boolean mask), still unread."""
        if not isinstance(key, slice):
            key = np.asarray(key)
            if key.ndim != 1 or not (key.dtype == bool or np.issubdtype(key.dtype, np.integer)):
                raise TypeError(f"Rows take a slice, an index array or a boolean mask, not {key!r}")
        sub = Rows.__new__(Rows)
        sub.source, sub.index, sub.divide, sub._file = self.source, self.index[key], self.divide, self._file
        return sub

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        if copy is False:
            raise ValueError("Rows are read from their source: that always makes a new array")
        rows = self._read()
        if self.divide is not None:
            rows = np.asarray(rows, dtype=np.float64) / self.divide
        return rows if dtype is None else rows.astype(dtype, copy=False)

    def _read(self) -> np.ndarray:
        if self._file is None:
            return np.asarray(self.source[self.index])
        out = np.empty(self.shape, dtype=self.source.dtype)
        if not len(out):
            return out
        path, offset = self._file
        row_bytes = self.shape[1] * self.source.dtype.itemsize
        # runs of consecutive rows: one seek + read each
        bounds = [0, *(np.flatnonzero(np.diff(self.index) != 1) + 1).tolist(), len(self.index)]
        with open(path, "rb", buffering=0) as f:
            for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
                f.seek(offset + int(self.index[lo]) * row_bytes)
                view = memoryview(out[lo:hi]).cast("B")
                got = 0
                while got < len(view):
                    n = f.readinto(view[got:])
                    if not n:
                        raise OSError(f"{path}: file shorter than its .npy header says")
                    got += n
        return out
