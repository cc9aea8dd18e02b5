"""Features for every requested cut layer from ONE forward pass, and their on-disk cache.

:func:`extract_features` wraps the backbone with torchvision's
``create_feature_extractor`` so all layers come out of a single pass per batch (eval
mode, no grad; mixed precision and channels_last on CUDA via ``transferlab.device``).
Conv maps can be pooled spatially (adaptive avg/max to ``pool_size`` x ``pool_size``)
before flattening; every layer is stored as float16 (N, D).

The cache (``save_features``/``load_features``) is a directory::

    <layer>.npy   float16 (N, D), one per layer
    labels.npy    int64 (N,)
    is_test.npy   bool (N,)
    meta.json     layers -> {file, dim, shape (C, H, W before pooling/flattening), node}, plus caller meta

so classifier sweeps and t-SNE never run the network again.
"""

from __future__ import annotations

import re
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.models.feature_extraction import create_feature_extractor
from tqdm.auto import tqdm

from transferlab.data.prepared import to_nchw_uint8
from transferlab.device import autocast, prepare_batch, prepare_model
from transferlab.errors import UserError, unknown_name
from transferlab.io import read_json, write_json
from transferlab.models.backbone import Backbone
from transferlab.models.cutpoints import resolve_layers

POOL_CHOICES = ("none", "avg", "max")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_RESERVED = {"labels", "is_test", "meta"}


def pool_map(x: torch.Tensor, pool: str, pool_size: int) -> torch.Tensor:
    """Spatially pool a (N, C, H, W) map to (N, C, pool_size, pool_size); other shapes pass through."""
    if x.ndim != 4 or pool == "none":
        return x
    if pool == "avg":
        return F.adaptive_avg_pool2d(x, pool_size)
    return F.adaptive_max_pool2d(x, pool_size)


def extract_features(
    backbone: Backbone,
    images: np.ndarray,
    layers: Sequence[str],
    *,
    batch_size: int = 128,
    device: torch.device,
    pool: str = "none",
    pool_size: int = 1,
    progress: bool = True,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Features of ``images`` (uint8 N,H,W,C) at every cut point in ``layers``, one pass per batch.

    Returns ``{layer: float16 (N, D)}`` and stats: images, seconds, images_per_second,
    device, and per layer its FX node, shape before pooling (C, H, W) and dim D. The
    backbone's model is moved to ``device`` and left there.
    """
    layers = resolve_layers(backbone, layers)
    if pool not in POOL_CHOICES:
        raise UserError(f"unknown pool {pool!r}; use one of {', '.join(POOL_CHOICES)}")
    if pool_size < 1 or batch_size < 1:
        raise UserError(f"pool_size and batch_size must be >= 1, got {pool_size} and {batch_size}")
    if images.ndim != 4 or images.dtype != np.uint8 or images.shape[3] not in (1, 3):
        raise ValueError(f"images must be uint8 (N, H, W, 1|3), got {images.dtype} {images.shape}")
    n = len(images)
    if n == 0:
        raise UserError("no images to extract features from; check the prepared dataset")

    model = backbone.model
    was_training = model.training
    model.eval()
    nodes = {backbone.cut_points[layer]: layer for layer in layers}
    extractor = prepare_model(create_feature_extractor(model, return_nodes=nodes).eval(), device)

    feats: dict[str, np.ndarray] = {}
    shapes: dict[str, list[int]] = {}
    start = time.perf_counter()
    try:
        with torch.inference_mode(), autocast(device), tqdm(
            total=n, unit="img", desc=f"extract {backbone.name}", disable=not progress, leave=False
        ) as bar:
            for lo in range(0, n, batch_size):
                hi = min(n, lo + batch_size)
                x = to_nchw_uint8(images[lo:hi]).to(device, non_blocking=True)
                x = prepare_batch(backbone.preprocess(x), device)
                out = extractor(x)
                for layer in layers:
                    y = out[layer]
                    if layer not in feats:
                        shapes[layer] = list(y.shape[1:])
                    y = pool_map(y.float(), pool, pool_size).flatten(1)
                    if layer not in feats:
                        feats[layer] = np.empty((n, y.shape[1]), dtype=np.float16)
                    feats[layer][lo:hi] = y.to(torch.float16).cpu().numpy()
                bar.update(hi - lo)
    finally:
        model.train(was_training)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    for layer, arr in feats.items():
        bad = int(np.count_nonzero(~np.isfinite(arr)))
        if bad:
            warnings.warn(f"layer {layer}: {bad} feature values overflow float16", stacklevel=2)
    stats = {
        "images": n,
        "seconds": seconds,
        "images_per_second": n / seconds if seconds > 0 else float("inf"),
        "device": str(device),
        "batch_size": batch_size,
        "pool": pool,
        "pool_size": pool_size,
        "layers": {
            layer: {"node": backbone.cut_points[layer], "shape": shapes[layer], "dim": int(feats[layer].shape[1])}
            for layer in layers
        },
    }
    return feats, stats


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
