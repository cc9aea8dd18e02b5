"""Features for every requested cut layer from ONE forward pass, and their on-disk cache.

:func:`extract_features` wraps the backbone with torchvision's
``create_feature_extractor`` so all layers come out of a single pass per batch (eval
mode, inference mode; channels_last on CPU and CUDA, mixed precision on CUDA, via
``transferlab.device``). Conv maps can be pooled spatially (adaptive avg/max to
``pool_size`` x ``pool_size``) before flattening; every layer is stored as float16 (N, D),
written batch by batch into one array per layer (a single copy converts dtype and memory
layout). Where the images need no resizing, the input is normalised by a table lookup
(:func:`network_input`), the same values as ``Backbone.preprocess`` at a fraction of the cost.

The cache (``save_features``/``load_features``) is a directory::

    <layer>.npy   float16 (N, D), one per layer
    labels.npy    int64 (N,)
    is_test.npy   bool (N,)
    meta.json     layers -> {file, dim, shape (C, H, W before pooling/flattening), node}, plus caller meta

so classifier sweeps and t-SNE never run the network again.
"""

from __future__ import annotations

import dataclasses
import re
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.feature_extraction import create_feature_extractor
from torchvision.transforms.v2 import functional as TF
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


def feature_extractor(backbone: Backbone, layers: Sequence[str], device: torch.device) -> nn.Module:
    """The backbone as a graph returning ``{layer: map}`` for ``layers``, pruned after the deepest.

    torchvision's ``create_feature_extractor`` keeps only the ops the requested nodes need,
    so a single shallow layer costs only the network up to it. Eval mode, on ``device``, in
    the inference memory format (channels_last on CPU and CUDA). The modules are shared with
    ``backbone.model``; :func:`extract_features` restores the model's format afterwards.
    """
    model = backbone.model.eval()
    nodes = {backbone.cut_points[layer]: layer for layer in layers}
    return prepare_model(create_feature_extractor(model, return_nodes=nodes).eval(), device, inference=True)


def pixel_table(backbone: Backbone) -> np.ndarray:
    """(256, 3) float32: the value ``backbone.preprocess`` gives each uint8 level, per channel.

    Computed by the backbone's own ``preprocess`` on a 16 x 16 probe holding every level
    (sizes set so nothing is resized), so a lookup in it equals ``preprocess`` exactly.
    """
    probe = dataclasses.replace(backbone, input_size=16, resize_size=16)
    levels = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16).expand(1, 3, 16, 16)
    return probe.preprocess(levels)[0].reshape(3, 256).T.contiguous().numpy()


def network_input(
    backbone: Backbone, images: np.ndarray, device: torch.device, table: np.ndarray | None = None
) -> torch.Tensor:
    """uint8 (B, H, W, C) images -> the network's normalised float input, in the inference format.

    The values are ``backbone.preprocess``'s. On the CPU, when the images need no resizing
    (shorter side = the backbone's resize size, e.g. Fashion-MNIST for vgg_mini), the
    centre crop is a slice of the uint8 images and normalising is one lookup per pixel in
    ``table`` (:func:`pixel_table`), written straight in channels_last order: one pass
    instead of five over the float batch. Otherwise (and on GPUs, which do it fast) the
    uint8 batch goes through ``preprocess`` on ``device``.
    """
    x = to_nchw_uint8(images)
    if device.type != "cpu" or min(x.shape[-2:]) != backbone.resize_size:
        return prepare_batch(backbone.preprocess(x.to(device, non_blocking=True)), device, inference=True)
    table = pixel_table(backbone) if table is None else table
    side = backbone.input_size
    crop = TF.center_crop(x, [side, side]).permute(0, 2, 3, 1).numpy()  # a view: (B, H, W, 3) levels
    return torch.from_numpy(table[crop, np.arange(3)]).permute(0, 3, 1, 2)


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
    backbone's model is moved to ``device`` and left there, in the train/eval mode it came
    in and the contiguous memory format.
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
    feats: dict[str, np.ndarray] = {}
    shapes: dict[str, list[int]] = {}
    start = time.perf_counter()
    try:
        extractor = feature_extractor(backbone, layers, device)
        table = pixel_table(backbone)
        with torch.inference_mode(), autocast(device), tqdm(
            total=n, unit="img", desc=f"extract {backbone.name}", disable=not progress, leave=False
        ) as bar:
            for lo in range(0, n, batch_size):
                hi = min(n, lo + batch_size)
                out = extractor(network_input(backbone, images[lo:hi], device, table))
                for layer in layers:
                    y = out[layer]
                    if layer not in feats:
                        shapes[layer] = list(y.shape[1:])
                    if pool != "none":  # pooled in float32 (CUDA maps are float16 under autocast)
                        y = pool_map(y.float(), pool, pool_size)
                    if layer not in feats:
                        feats[layer] = np.empty((n, int(np.prod(y.shape[1:]))), dtype=np.float16)
                    _write(feats[layer][lo:hi], y)
                bar.update(hi - lo)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    finally:
        model.train(was_training)
        model.to(memory_format=torch.contiguous_format)
    seconds = time.perf_counter() - start
    for layer, arr in feats.items():
        bad = count_nonfinite(arr)
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


def count_nonfinite(arr: np.ndarray) -> int:
    """How many values of a float16 array are inf or NaN (all exponent bits set).

    Works on the integer view: NumPy's float16 ``isfinite`` has no vectorised loop and
    took as long as the whole forward pass of small networks; a max over the bits says
    in one fast pass whether there is anything to count.
    """
    bits = arr.view(np.uint16) & 0x7FFF
    return 0 if bits.size == 0 or bits.max() < 0x7C00 else int(np.count_nonzero(bits >= 0x7C00))


def _write(rows: np.ndarray, y: torch.Tensor) -> None:
    """Store one batch's (B, ...) map as float16 (B, D) rows in C, H, W order, in one copy.

    ``copy_`` converts dtype and memory layout (channels_last -> C, H, W) together; on a
    GPU the map is cast to float16 first so half the bytes cross the bus.
    """
    if y.device.type != "cpu":
        y = y.to(torch.float16)
    torch.from_numpy(rows).view(y.shape).copy_(y)


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
