"""The feature cache on disk: what extract writes and classify / t-SNE read, without torch.

A directory::

    <layer>.npy   float16 (N, D), one per layer
    labels.npy    int64 (N,)
    is_test.npy   bool (N,)
    meta.json     layers -> {file, dim, shape (C, H, W before pooling/flattening), node}, plus caller meta

so classifier sweeps and t-SNE never run the network again. A layer's file can be
written batch by batch as it is computed (:class:`RowWriter`), with the bytes ``np.save``
writes for the whole array. Kept apart from
:mod:`transferlab.transfer.features` (the extraction) so the stages that only read features do not
import torch (about 650 MB of RSS and seconds of start-up per stage).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from transferlab.errors import UserError, unknown_name
from transferlab.io import read_json, write_json

_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_RESERVED = {"labels", "is_test", "meta"}


class RowWriter:
    """A float16 (n, d) ``.npy`` file written block of rows by block of rows, in order.

    The file ends up byte for byte what ``np.save`` writes for the whole array (same
    header), without the array ever being in memory. :meth:`close` checks that all ``n``
    rows came and returns the file as a read-only memmap, which :func:`save_features`
    leaves in place; :meth:`discard` closes and removes an unfinished file.

    An existing file at ``path`` is unlinked first rather than truncated: a reader that
    still maps it keeps its data (truncating under a mapping is a SIGBUS), and ext4 does
    not force the rewritten file to disk on close (``auto_da_alloc``: measured 45-65 ms
    for vgg_mini's 90 MiB on 2 cores, 5-8% of its forward pass, whenever a directory's
    features are rewritten in place as the benchmarks do).
    """

    def __init__(self, path: str | Path, n: int, d: int) -> None:
        self.path = Path(path)
        self.shape = (int(n), int(d))  # Python ints: the header holds their repr
        self.rows = 0
        header = np.lib.format.header_data_from_array_1_0(np.empty((0, self.shape[1]), dtype=np.float16))
        self.path.unlink(missing_ok=True)
        self._fh = self.path.open("xb")
        np.lib.format.write_array_header_1_0(self._fh, {**header, "shape": self.shape})

    def write(self, rows: np.ndarray) -> None:
        """Append ``rows``: float16 (b, d), the next b rows of the array."""
        if rows.dtype != np.float16 or rows.ndim != 2 or rows.shape[1] != self.shape[1]:
            raise ValueError(f"{self.path.name}: rows must be float16 (b, {self.shape[1]}), got {rows.dtype} {rows.shape}")
        if self.rows + len(rows) > self.shape[0]:
            raise ValueError(f"{self.path.name}: more than the {self.shape[0]} rows announced")
        self._fh.write(np.ascontiguousarray(rows).data)
        self.rows += len(rows)

    def close(self) -> np.ndarray:
        """Finish the file; return it as a read-only memmap (float16 (n, d))."""
        self._fh.close()
        if self.rows != self.shape[0]:
            raise ValueError(f"{self.path.name}: {self.rows} of {self.shape[0]} rows written")
        return np.load(self.path, mmap_mode="r")

    def discard(self) -> None:
        """Close and remove the file (after a failure part-way)."""
        self._fh.close()
        self.path.unlink(missing_ok=True)


def mapped_file(arr: np.ndarray) -> tuple[Path, int] | None:
    """(file, data offset) when ``arr`` is a C-ordered memmap of ALL of a file's data, else None."""
    filename = getattr(arr, "filename", None)
    if not isinstance(arr, np.memmap) or filename is None or not arr.flags.c_contiguous:
        return None
    path = Path(filename)
    try:
        whole = path.stat().st_size == arr.offset + arr.nbytes  # a slice of a memmap keeps the file's offset
    except OSError:
        return None
    return (path, int(arr.offset)) if whole else None


def _already_saved(arr: np.ndarray, target: Path) -> bool:
    """Whether ``arr`` is all of the ``.npy`` file ``target``, mapped (e.g. as :meth:`RowWriter.close` returns it).

    Saving it again would truncate the file under its own mapping, and is not needed.
    """
    mapped = mapped_file(arr)
    return mapped is not None and target.is_file() and arr.dtype == np.float16 and os.path.samefile(mapped[0], target)


class Features(NamedTuple):
    """A loaded feature cache; unpacks like the arguments of :func:`save_features`."""

    feats: dict[str, np.ndarray]
    labels: np.ndarray
    is_test: np.ndarray
    meta: dict[str, Any]


def save_features(
    path_dir: str | Path,
    feats: Mapping[str, np.ndarray],
    labels: np.ndarray,
    is_test: np.ndarray,
    meta: Mapping[str, Any],
) -> None:
    """Write the feature cache into ``path_dir`` (use ``transferlab.io.atomic_dir`` around it).

    A layer array that already is its file there (the memmap :class:`RowWriter` returns,
    e.g. from ``extract_features(..., out_dir=path_dir)``) is left as it is.
    ``meta`` is stored as given, except ``layers``: a mapping there (e.g. the ``layers``
    of :func:`extract_features`' stats) is merged into the per-layer records; a list is
    kept as ``layer_order``.
    """
    path_dir = Path(path_dir)
    path_dir.mkdir(parents=True, exist_ok=True)
    n = len(labels)
    if is_test.shape != (n,):
        raise ValueError("labels and is_test must have one entry per image")
    given = meta.get("layers")
    info = given if isinstance(given, Mapping) else {}
    records: dict[str, dict[str, Any]] = {}
    for layer, arr in feats.items():
        if not _SAFE_NAME.match(layer) or layer in _RESERVED:
            raise ValueError(f"layer name {layer!r} cannot be a file name in the feature cache")
        if arr.ndim != 2 or len(arr) != n:
            raise ValueError(f"features of {layer!r} must be (N={n}, D), got {arr.shape}")
        target = path_dir / f"{layer}.npy"
        if not _already_saved(arr, target):
            np.save(target, np.ascontiguousarray(arr, dtype=np.float16))
        records[layer] = {**dict(info.get(layer, {})), "file": f"{layer}.npy", "dim": int(arr.shape[1])}
    np.save(path_dir / "labels.npy", np.asarray(labels, dtype=np.int64))
    np.save(path_dir / "is_test.npy", np.asarray(is_test, dtype=bool))
    out = {k: v for k, v in meta.items() if k != "layers"}
    if isinstance(given, Sequence) and not isinstance(given, str):
        out["layer_order"] = list(given)
    out.update(layers=records, images=n, dtype="float16")
    write_json(path_dir / "meta.json", out)


def load_features(
    path_dir: str | Path, layers: Sequence[str] | None = None, *, mmap: bool = False
) -> Features:
    """Read a feature cache written by :func:`save_features` (all layers, or ``layers``)."""
    path_dir = Path(path_dir)
    if not (path_dir / "meta.json").is_file():
        raise UserError(
            f"feature cache {str(path_dir)!r} not found; run `dvc repro extract@{path_dir.name}` first"
        )
    meta = read_json(path_dir / "meta.json")
    records = meta.get("layers", {})
    wanted = list(records) if layers is None else list(layers)
    for layer in wanted:
        if layer not in records:
            raise unknown_name(f"layer in feature cache {path_dir.name!r}", layer, records)
    mode = "r" if mmap else None
    feats = {layer: np.load(path_dir / records[layer]["file"], mmap_mode=mode) for layer in wanted}
    return Features(
        feats=feats,
        labels=np.load(path_dir / "labels.npy"),
        is_test=np.load(path_dir / "is_test.npy"),
        meta=meta,
    )
