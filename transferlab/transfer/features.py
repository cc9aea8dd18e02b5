"""Features for every requested cut layer from ONE forward pass, and their on-disk cache.

:func:`extract_features` wraps the backbone with torchvision's
``create_extractor`` so all layers come out of a single pass per batch (eval
mode, inference mode; channels_last on CPU and CUDA, mixed precision on CUDA, via
``transferlab.device``). Conv maps can be pooled spatially (adaptive avg/max to
``pool_size`` x ``pool_size``) before flattening; every layer is stored as float16 (N, D),
written batch by batch (a single copy converts dtype and memory layout), and checked for
float16 overflow on the batch just written. The extract stage streams each batch's rows
straight into the layer's ``.npy`` file (``out_dir``) instead of filling an N x D array
(page faults), scanning it for overflow and saving it afterwards: three passes over all
the features that cost vgg_mini at 28 px about a third of its forward time on 2 cores.
Where the images need no resizing, the input is normalised by a table lookup
(:func:`network_input`), the same values as ``Backbone.preprocess`` at a fraction of the cost.

The on-disk cache (``Features``, ``save_features``, ``load_features``) lives in
:mod:`transferlab.transfer.feature_cache`, which needs no torch, and is re-exported here.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.transforms.v2 import functional as TF
from tqdm.auto import tqdm

from transferlab.data.prepared import to_nchw_uint8
from transferlab.device import autocast, prepare_batch, prepare_model
from transferlab.errors import UserError
from transferlab.models.backbone import Backbone
from transferlab.models.cutpoints import create_extractor, resolve_layers
from transferlab.transfer.feature_cache import Features as Features
from transferlab.transfer.feature_cache import RowWriter
from transferlab.transfer.feature_cache import load_features as load_features
from transferlab.transfer.feature_cache import save_features as save_features

POOL_CHOICES = ("none", "avg", "max")


def pool_map(x: torch.Tensor, pool: str, pool_size: int) -> torch.Tensor:
    """Spatially pool a (N, C, H, W) map to (N, C, pool_size, pool_size); other shapes pass through."""
    if x.ndim != 4 or pool == "none":
        return x
    if pool == "avg":
        return F.adaptive_avg_pool2d(x, pool_size)
    return F.adaptive_max_pool2d(x, pool_size)


def feature_extractor(backbone: Backbone, layers: Sequence[str], device: torch.device) -> nn.Module:
    """The backbone as a graph returning ``{layer: map}`` for ``layers``, pruned after the deepest.

    ``create_extractor`` (torchvision's FX feature extraction) keeps only the ops the requested nodes need,
    so a single shallow layer costs only the network up to it. Eval mode, on ``device``, in
    the inference memory format (channels_last on CPU and CUDA). The modules are shared with
    ``backbone.model``; :func:`extract_features` restores the model's format afterwards.
    """
    model = backbone.model.eval()
    nodes = {backbone.cut_points[layer]: layer for layer in layers}
    return prepare_model(create_extractor(model, nodes).eval(), device, inference=True)


def pixel_table(backbone: Backbone) -> torch.Tensor:
    """(256, 3) float32: the value ``backbone.preprocess`` gives each uint8 level, per channel.

    Computed by the backbone's own ``preprocess`` on a 16 x 16 probe holding every level
    (sizes set so nothing is resized), so a lookup in it equals ``preprocess`` exactly.
    """
    probe = dataclasses.replace(backbone, input_size=16, resize_size=16)
    levels = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16).expand(1, 3, 16, 16)
    return probe.preprocess(levels)[0].reshape(3, 256).T.contiguous()


def network_input(
    backbone: Backbone, images: np.ndarray, device: torch.device, table: torch.Tensor | None = None
) -> torch.Tensor:
    """uint8 (B, H, W, C) images -> the network's normalised float input, in the inference format.

    The values are ``backbone.preprocess``'s. On the CPU, when the images need no resizing
    (shorter side = the backbone's resize size, e.g. Fashion-MNIST for vgg_mini), the
    centre crop is a slice of the uint8 images and normalising is one ``index_select`` per
    pixel from ``table`` (:func:`pixel_table`), written straight in channels_last order: one
    pass instead of five over the float batch (about 10x less time for vgg_mini's input).
    torch's gather runs on its intra-op threads: on 2 cores it took 20 ms per 8192 28 px
    grayscale images where ``np.take`` took 35, and 89 against 137 ms for 32 px RGB.
    Otherwise (and on GPUs, which do it fast) the uint8 batch goes through ``preprocess`` on
    ``device``.
    """
    x = to_nchw_uint8(images, channels=images.shape[3])
    if device.type != "cpu" or min(x.shape[-2:]) != backbone.resize_size:
        return prepare_batch(backbone.preprocess(x.to(device, non_blocking=True)), device, inference=True)
    table = pixel_table(backbone) if table is None else table
    side = backbone.input_size
    crop = TF.center_crop(x, [side, side]).permute(0, 2, 3, 1)  # a view: (B, H, W, C) levels
    levels = crop.to(torch.int32, memory_format=torch.contiguous_format)
    if crop.shape[3] == 1:  # grayscale: each level's row of 3 channel values
        nhwc = table.index_select(0, levels.view(-1))
    else:  # RGB: entry (level, channel) of the flattened table
        nhwc = table.view(-1).index_select(0, (levels * 3 + torch.arange(3, dtype=torch.int32)).view(-1))
    return nhwc.view(*crop.shape[:3], 3).permute(0, 3, 1, 2)


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
    out_dir: str | Path | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Features of ``images`` (uint8 N,H,W,C) at every cut point in ``layers``, one pass per batch.

    Returns ``{layer: float16 (N, D)}`` and stats: images, seconds, images_per_second,
    device, and per layer its FX node, shape before pooling (C, H, W) and dim D. The
    backbone's model is moved to ``device`` and left there, in the train/eval mode it came
    in and the contiguous memory format.

    With ``out_dir``, each layer is written batch by batch into ``out_dir/<layer>.npy``
    (the file ``save_features`` would write, byte for byte) and returned as a read-only
    memmap of it, so memory holds one batch of rows per layer instead of N; if anything
    fails part-way, the layer files begun here are removed. Values that overflow float16
    (inf/NaN) are counted as they are written and reported in one warning per layer.
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
    stores: dict[str, _LayerStore] = {}
    shapes: dict[str, list[int]] = {}
    nonfinite = dict.fromkeys(layers, 0)
    folder = None if out_dir is None else Path(out_dir)
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
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
                    if layer not in stores:
                        shapes[layer] = list(y.shape[1:])
                    if pool != "none":  # pooled in float32 (CUDA maps are float16 under autocast)
                        y = pool_map(y.float(), pool, pool_size)
                    if layer not in stores:
                        path = None if folder is None else folder / f"{layer}.npy"
                        stores[layer] = _LayerStore(n, int(np.prod(y.shape[1:])), batch_size, path)
                    nonfinite[layer] += stores[layer].put(lo, y)
                bar.update(hi - lo)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        feats = {layer: store.finish() for layer, store in stores.items()}
    except BaseException:
        for store in stores.values():
            store.discard()
        raise
    finally:
        model.train(was_training)
        model.to(memory_format=torch.contiguous_format)
    seconds = time.perf_counter() - start
    for layer, bad in nonfinite.items():
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


class _LayerStore:
    """Where one layer's float16 (N, D) rows go: an array in memory, or a ``.npy`` file written batch by batch."""

    def __init__(self, n: int, dim: int, batch_size: int, path: Path | None) -> None:
        self.array = np.empty((n, dim), dtype=np.float16) if path is None else None
        self.file = None if path is None else RowWriter(path, n, dim)
        self.batch = None if path is None else np.empty((min(n, batch_size), dim), dtype=np.float16)

    def put(self, lo: int, y: torch.Tensor) -> int:
        """Store the (B, ...) map ``y`` as rows ``lo:lo + B``; return how many values overflow float16."""
        rows = self.batch[: len(y)] if self.batch is not None else self.array[lo : lo + len(y)]
        _write(rows, y)
        if self.file is not None:
            self.file.write(rows)
        return count_nonfinite(rows)

    def finish(self) -> np.ndarray:
        return self.file.close() if self.file is not None else self.array

    def discard(self) -> None:
        if self.file is not None:
            self.file.discard()


def count_nonfinite(arr: np.ndarray) -> int:
    """How many values of a float16 array are inf or NaN (all exponent bits set).

    Works on the integer view: NumPy's float16 ``isfinite`` has no vectorised loop and
    took as long as the whole forward pass of small networks; a max over the bits says
    in one fast pass whether there is anything to count. Non-negative arrays (no sign bit)
    need only that one pass; arrays with negative values take a second, over the
    magnitudes.
    """
    bits = arr.view(np.uint16)
    if bits.size == 0 or bits.max() < 0x7C00:  # no sign bit and no all-ones exponent: all finite, >= 0
        return 0  # one pass, no temporary: the common case, cut layers after a ReLU or a max pool
    return int(np.count_nonzero((bits & 0x7FFF) >= 0x7C00))


def _write(rows: np.ndarray, y: torch.Tensor) -> None:
    """Store one batch's (B, ...) map as float16 (B, D) rows in C, H, W order, in one copy.

    ``copy_`` converts dtype and memory layout (channels_last -> C, H, W) together; on a
    GPU the map is cast to float16 first so half the bytes cross the bus.
    """
    if y.device.type != "cpu":
        y = y.to(torch.float16)
    torch.from_numpy(rows).view(y.shape).copy_(y)
