"""The feature cache on disk: what extract writes and classify / t-SNE read, without torch.

A directory::

    <layer>.npy   float16 (N, D), one per layer
    labels.npy    int64 (N,)
    is_test.npy   bool (N,)
    meta.json     layers -> {file, dim, shape (C, H, W before pooling/flattening), node}, plus caller meta

so classifier sweeps and t-SNE never run the network again. Kept apart from
:mod:`transferlab.features` (the extraction) so the stages that only read features do not
import torch (about 650 MB of RSS and seconds of start-up per stage).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from transferlab.errors import UserError, unknown_name
from transferlab.io import read_json, write_json

_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_RESERVED = {"labels", "is_test", "meta"}


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
        np.save(path_dir / f"{layer}.npy", np.ascontiguousarray(arr, dtype=np.float16))
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
