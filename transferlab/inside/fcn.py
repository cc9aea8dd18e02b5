"""Fully-connected layers rewritten as convolutions: a classifier that returns a score map.

A VGG-style net (``features`` -> ``avgpool`` -> ``classifier`` of Linear layers) is
rewritten so it runs on any input at least as large as its training size: the first
Linear layer becomes a ``k x k`` convolution over the ``C x k x k`` feature map it used
to flatten (VGG16 fc6: 7x7 over 512 channels; vgg_mini fc6: 3x3 over 64), later
Linear layers become 1x1 convolutions, weights reshaped, not retrained. The adaptive
average pool is dropped (at the standard size it is the identity). On the standard
input the converted net returns the original scores exactly (up to float rounding);
on a larger input it returns one score vector per position, a map of class scores.

Offline demonstration: canvases tiling ``grid x grid`` held-out Fashion-MNIST items.
Each output position looks at the input around its receptive-field centre (geometry
from :mod:`transferlab.inside.convarith`); a tile's region is the positions centred in the
tile's central half, their softmax scores are summed, and the region is right when that
sum's argmax is the tile's true class (``tile_region_acc``). ``position_acc`` is the
stricter per-position figure: every position inside the canvas against the tile under
its centre, including the positions that straddle two tiles.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torchvision.transforms.v2 import functional as TF

from transferlab.data.prepared import PreparedDataset, to_nchw_uint8
from transferlab.errors import UserError
from transferlab.inside.convarith import ReceptiveField
from transferlab.inside.inspect import POOLS
from transferlab.inside.params import FcnParams
from transferlab.models.backbone import Backbone


def to_fully_convolutional(backbone: Backbone) -> nn.Sequential:
    """``features`` followed by the classifier with every Linear layer as a convolution."""
    model = backbone.model
    features, classifier = getattr(model, "features", None), getattr(model, "classifier", None)
    if not isinstance(features, nn.Sequential) or not isinstance(classifier, nn.Sequential) or not any(
        isinstance(m, nn.Linear) for m in classifier
    ):
        raise UserError(
            f"fcn: backbone {backbone.name!r} ({backbone.arch}) has no features -> classifier of Linear layers; "
            "use a vgg16, alexnet or vgg_mini backbone"
        )
    convs = [m for m in features.modules() if isinstance(m, nn.Conv2d)]
    channels = convs[-1].out_channels
    layers: list[nn.Module] = []
    first = True
    for m in classifier:
        if isinstance(m, nn.Linear):
            if first:
                k = math.isqrt(m.in_features // channels)
                if k * k * channels != m.in_features:
                    raise UserError(
                        f"fcn: {backbone.name}'s first FC layer takes {m.in_features} inputs, not {channels} x k x k"
                    )
            else:
                k, channels = 1, m.in_features
            conv = nn.Conv2d(channels, m.out_features, kernel_size=k)
            with torch.no_grad():  # flatten order is (C, H, W): a plain reshape
                conv.weight.copy_(m.weight.reshape(m.out_features, channels, k, k))
                conv.bias.copy_(m.bias)
            layers.append(conv)
            channels, first = m.out_features, False
        else:
            layers.append(m)
    return nn.Sequential(features, nn.Sequential(*layers)).eval()


def output_field(net: nn.Module) -> ReceptiveField:
    """Receptive field, jump and first centre of the output of a purely sequential conv net."""
    field = ReceptiveField()
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            field = field.step(m.kernel_size[0], m.stride[0], m.padding[0], m.dilation[0])
        elif isinstance(m, POOLS):
            k = m.kernel_size if isinstance(m.kernel_size, int) else m.kernel_size[0]
            s = m.stride if m.stride is not None else m.kernel_size
            s = s if isinstance(s, int) else s[0]
            p = m.padding if isinstance(m.padding, int) else m.padding[0]
            field = field.step(k, s, p)
    return field


def normalise(backbone: Backbone, x: torch.Tensor) -> torch.Tensor:
    """uint8 (N, C, H, W) -> the backbone's normalised float input, at any size (no resize/crop)."""
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    x = TF.to_dtype(x, torch.float32, scale=True)
    return TF.normalize(x, list(backbone.mean), list(backbone.std))


def make_canvases(
    images: np.ndarray, labels: np.ndarray, grid: int, n: int, tile: int, seed: int
) -> tuple[torch.Tensor, np.ndarray]:
    """(uint8 (n, C, grid*tile, grid*tile) canvases, (n, grid, grid) tile classes): seeded draw."""
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(images), n * grid * grid, replace=len(images) < n * grid * grid)
    x = to_nchw_uint8(images[pick], images.shape[3])
    if x.shape[-1] != tile:
        x = TF.resize(x, [tile, tile], antialias=True)
    c = x.shape[1]
    x = x.reshape(n, grid, grid, c, tile, tile).permute(0, 3, 1, 4, 2, 5).reshape(n, c, grid * tile, grid * tile)
    return x.contiguous(), labels[pick].reshape(n, grid, grid)


def tile_regions(scores: torch.Tensor, grid: int, tile: int, field: ReceptiveField) -> tuple[np.ndarray, np.ndarray]:
    """Per tile of one canvas: (argmax of the summed softmax scores of its region, positions used).

    ``scores`` is (K, h, w). Position (i, j) looks at the input around the centre of its
    receptive field, ``start + index * jump`` (pixel p spans [p, p + 1)). A tile's region
    is the positions centred in the tile's central half (within ``tile / 4`` of its
    centre on both axes), i.e. the positions that look mostly at this tile and not at
    its neighbours; where none is, the one nearest the tile's centre.
    """
    probs = torch.softmax(scores.float(), dim=0)
    k, h, w = probs.shape
    centres_y = field.start + np.arange(h) * field.jump
    centres_x = field.start + np.arange(w) * field.jump
    region = np.zeros((grid, grid), dtype=int)
    counts = np.zeros((grid, grid), dtype=int)
    for r in range(grid):
        dy = np.abs(centres_y - (r + 0.5) * tile)
        rows = np.flatnonzero(dy <= tile / 4) if (dy <= tile / 4).any() else np.array([dy.argmin()])
        for c in range(grid):
            dx = np.abs(centres_x - (c + 0.5) * tile)
            cols = np.flatnonzero(dx <= tile / 4) if (dx <= tile / 4).any() else np.array([dx.argmin()])
            block = probs[:, rows][:, :, cols]
            region[r, c] = int(block.sum(dim=(1, 2)).argmax())
            counts[r, c] = len(rows) * len(cols)
    return region, counts


def region_accuracy(regions: np.ndarray, classes: np.ndarray) -> float:
    """Fraction of tiles whose region argmax is the tile's class."""
    return float((np.asarray(regions) == np.asarray(classes)).mean())


def position_accuracy(scores: torch.Tensor, classes: np.ndarray, tile: int, field: ReceptiveField) -> tuple[int, int]:
    """(positions whose argmax is the class of the tile holding their centre, positions inside the canvas)."""
    grid = classes.shape[0]
    arg = scores.argmax(0).numpy()
    h, w = arg.shape
    rows = np.floor((field.start + np.arange(h) * field.jump) / tile).astype(int)
    cols = np.floor((field.start + np.arange(w) * field.jump) / tile).astype(int)
    hit = total = 0
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            if 0 <= r < grid and 0 <= c < grid:
                total += 1
                hit += int(arg[i, j] == classes[r, c])
    return hit, total


def draw(canvas: torch.Tensor, scores: torch.Tensor, classes: np.ndarray, names: tuple[str, ...], field: ReceptiveField, tile: int):
    """The canvas with true classes, and the argmax map placed at its receptive-field centres."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    img = canvas.permute(1, 2, 0).numpy()
    side = img.shape[0]
    arg = scores.argmax(0).numpy()
    h, w = arg.shape
    half = field.jump / 2
    extent = (field.start - half, field.start + (w - 1) * field.jump + half,
              field.start + (h - 1) * field.jump + half, field.start - half)
    cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    fig, axes = plt.subplots(1, 2, figsize=(8, 4.4))
    for ax in axes:
        ax.imshow(img[:, :, 0] if img.shape[2] == 1 else img, cmap="gray", extent=(0, side, side, 0))
        for t in range(1, classes.shape[0]):
            ax.axhline(t * tile, color="white", lw=0.5)
            ax.axvline(t * tile, color="white", lw=0.5)
        ax.set_xlim(0, side)
        ax.set_ylim(side, 0)
        ax.axis("off")
    for r in range(classes.shape[0]):
        for c in range(classes.shape[1]):
            axes[0].text(c * tile + 1, r * tile + 1, names[classes[r, c]], color="yellow", fontsize=6, va="top")
    axes[0].set_title("canvas (true class per tile)", fontsize=8)
    axes[1].imshow(arg, cmap=cmap, vmin=-0.5, vmax=cmap.N - 0.5, alpha=0.55, extent=extent, interpolation="nearest")
    axes[1].set_title(f"argmax of the {h}x{w} score map (cells at receptive-field centres)", fontsize=8)
    present = sorted(set(arg.ravel().tolist()) | set(classes.ravel().tolist()))
    axes[1].legend(handles=[Patch(color=cmap(i), label=names[i]) for i in present], fontsize=6,
                   loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig


@torch.no_grad()
def run_fcn(backbone: Backbone, ds: PreparedDataset, cfg: FcnParams, seed: int, figures_dir: Path) -> dict[str, Any]:
    """Convert, check equivalence, score the canvases and draw ``figures_dir/canvas_<i>.png``."""
    from transferlab.figures import save_figure

    fcn = to_fully_convolutional(backbone)
    n_out = [m for m in fcn.modules() if isinstance(m, nn.Conv2d)][-1].out_channels
    if n_out != len(ds.classes):
        raise UserError(
            f"fcn: backbone {backbone.name!r} predicts {n_out} classes but dataset {ds.name!r} has "
            f"{len(ds.classes)}; set fcn.dataset to the dataset the backbone was trained on"
        )
    tile = backbone.input_size
    images, labels = ds.split("test")
    canvases, classes = make_canvases(images, labels, cfg.grid, cfg.canvases, tile, seed)
    names = tuple(ds.classes)
    # the converted net equals the original on standard-size inputs: the first canvas's tiles
    tiles = canvases[:1].unfold(2, tile, tile).unfold(3, tile, tile)  # (1, C, g, g, tile, tile)
    tiles = tiles.permute(0, 2, 3, 1, 4, 5).reshape(-1, canvases.shape[1], tile, tile)
    x_tiles = normalise(backbone, tiles)
    diff = (fcn(x_tiles).flatten(1) - backbone.model.eval()(x_tiles)).abs().max().item()
    field = output_field(fcn)
    region_hits, pos_hits, pos_total = [], 0, 0
    map_shape: list[int] = []
    for n in range(cfg.canvases):
        scores = fcn(normalise(backbone, canvases[n : n + 1]))[0]
        map_shape = list(scores.shape[1:])
        regions, _ = tile_regions(scores, cfg.grid, tile, field)
        region_hits.append(regions == classes[n])
        hit, total = position_accuracy(scores, classes[n], tile, field)
        pos_hits, pos_total = pos_hits + hit, pos_total + total
        if n < cfg.shown:
            save_figure(draw(canvases[n], scores, classes[n], names, field, tile), figures_dir / f"canvas_{n}.png")
    return {
        "backbone": backbone.name,
        "canvas_size": int(canvases.shape[-1]),
        "tile_size": tile,
        "tiles": int(cfg.canvases * cfg.grid * cfg.grid),
        "map_size": map_shape,
        "map_jump": field.jump,
        "map_receptive_field": field.size,
        "max_abs_diff_standard": diff,
        "tile_region_acc": round(float(np.mean(region_hits)), 6),
        "position_acc": round(pos_hits / max(pos_total, 1), 6),
    }
