"""Feature maps: what the first convolution and a deeper block respond to on two images.

The first convolution's maps for N filters are shown before and after the first ReLU
that follows it, side by side (the pre-ReLU maps on a diverging colour scale, so what
ReLU zeroes is visible); ``vgg_mini`` has BatchNorm between the two, so its "with ReLU"
maps are after BatchNorm + ReLU, and EfficientNet-Lite's after timm's fused BatchNorm + ReLU6
(``BatchNormAct2d``, one traced node). A deeper cut point (e.g. ``pool2``) shows the N
channels most active on the first image. Maps are read with torchvision's
``create_extractor`` after switching in-place ReLUs off (an in-place ReLU
would otherwise rectify the stored convolution output too).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from transferlab.data.prepared import PreparedDataset, to_nchw_uint8
from transferlab.errors import UserError
from transferlab.inside.params import FeaturemapsParams
from transferlab.models.backbone import Backbone
from transferlab.models.cutpoints import create_extractor, resolve_layers

ACTIVATIONS = (nn.ReLU, nn.ReLU6)  # the rectifiers whose effect the figure shows


def first_conv_and_relu(model: nn.Module) -> tuple[str, str]:
    """Module paths of the first Conv2d and of the first ReLU (or ReLU6) registered after it."""
    conv = relu = None
    for path, module in model.named_modules():
        if conv is None and isinstance(module, nn.Conv2d):
            conv = path
        elif conv is not None and isinstance(module, ACTIVATIONS):
            relu = path
            break
    if conv is None or relu is None:
        raise UserError("featuremaps: the backbone has no Conv2d followed by a ReLU; use a convolutional backbone")
    return conv, relu


def no_inplace(model: nn.Module) -> None:
    """Make every in-place activation out-of-place, so stored maps are not overwritten."""
    for module in model.modules():
        if getattr(module, "inplace", False):
            module.inplace = False


@torch.no_grad()
def extract_maps(backbone: Backbone, x: torch.Tensor, deep_layer: str) -> tuple[dict[str, torch.Tensor], str, str]:
    """({conv, relu, deep}: (N, C, H, W) maps, conv path, relu path) for preprocessed ``x``."""
    model = backbone.model.eval()
    no_inplace(model)
    conv, relu = first_conv_and_relu(model)
    (layer,) = resolve_layers(backbone, [deep_layer])
    deep = backbone.cut_points[layer]
    try:
        extractor = create_extractor(model, {conv: "conv", relu: "relu", deep: "deep"})
    except ValueError:  # the activation lives inside a traced leaf (timm's BatchNormAct2d): read that leaf
        relu = relu.rpartition(".")[0]
        extractor = create_extractor(model, {conv: "conv", relu: "relu", deep: "deep"})
    return dict(extractor(x)), conv, relu


def check_counts(backbone: Backbone, cfg: FeaturemapsParams, n_deep_channels: int) -> None:
    """n_filters / n_deep within what the layers have (one line naming the limit otherwise)."""
    conv, _ = first_conv_and_relu(backbone.model)
    n_conv = backbone.model.get_submodule(conv).out_channels
    if not 1 <= cfg.n_filters <= n_conv:
        raise UserError(
            f"params.yaml: featuremaps.n_filters: {backbone.name}'s first convolution has {n_conv} filters; "
            f"set n_filters between 1 and {n_conv}, got {cfg.n_filters}"
        )
    if not 1 <= cfg.n_deep <= n_deep_channels:
        raise UserError(
            f"params.yaml: featuremaps.n_deep: {cfg.deep_layer} has {n_deep_channels} channels; "
            f"set n_deep between 1 and {n_deep_channels}, got {cfg.n_deep}"
        )


def _show(ax, img: np.ndarray) -> None:
    if img.shape[2] == 1:
        ax.imshow(img[:, :, 0], cmap="gray", vmin=0, vmax=255)
    else:
        ax.imshow(img)
    ax.axis("off")


def draw_first_conv(images: np.ndarray, maps: dict[str, torch.Tensor], weights: torch.Tensor, n: int, title: str):
    """Rows: inputs, then one row per filter: weights | img1 conv, ReLU | img2 conv, ReLU."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(n + 1, 5, figsize=(5 * 1.5, (n + 1) * 1.5), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for j, col in enumerate((1, 3)):
        _show(axes[0, col], images[j])
        axes[0, col].set_title(f"image {j + 1}", fontsize=7)
    for k in range(n):
        w = weights[k].mean(0).numpy()
        lim = float(np.abs(w).max()) or 1.0
        axes[k + 1, 0].imshow(w, cmap="seismic", vmin=-lim, vmax=lim)
        axes[k + 1, 0].set_title(f"filter {k}", fontsize=6)
        for j in range(2):
            pre, post = maps["conv"][j, k].numpy(), maps["relu"][j, k].numpy()
            lim = float(np.abs(pre).max()) or 1.0
            axes[k + 1, 1 + 2 * j].imshow(pre, cmap="seismic", vmin=-lim, vmax=lim)
            axes[k + 1, 2 + 2 * j].imshow(post, cmap="gray", vmin=0, vmax=float(post.max()) or 1.0)
            if k == 0:
                axes[k + 1, 1 + 2 * j].set_title("conv (red +, blue -)", fontsize=6)
                axes[k + 1, 2 + 2 * j].set_title("with ReLU", fontsize=6)
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    return fig


def draw_deep(images: np.ndarray, deep: torch.Tensor, channels: list[int], title: str):
    """One row per image: the input, then the chosen channels' maps."""
    import matplotlib.pyplot as plt

    n = len(channels)
    fig, axes = plt.subplots(2, n + 1, figsize=((n + 1) * 1.3, 2 * 1.45), squeeze=False)
    for j in range(2):
        _show(axes[j, 0], images[j])
        for i, c in enumerate(channels):
            m = deep[j, c].numpy()
            axes[j, i + 1].imshow(m, cmap="viridis", vmin=0, vmax=float(deep[:, c].max()) or 1.0)
            axes[j, i + 1].axis("off")
            if j == 0:
                axes[j, i + 1].set_title(f"ch {c}", fontsize=6)
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    return fig


def run_featuremaps(backbone: Backbone, ds: PreparedDataset, cfg: FeaturemapsParams, figures_dir: Path) -> dict[str, Any]:
    """Draw ``first_conv.png`` and ``deep.png`` into ``figures_dir``; returns the metrics."""
    from transferlab.figures import save_figure

    test_images, test_labels = ds.split("test")
    bad = [i for i in cfg.images if i >= len(test_images)]
    if bad:
        raise UserError(
            f"params.yaml: featuremaps.images: position {bad[0]} is beyond {ds.name}'s {len(test_images)} test images"
        )
    idx = np.array(cfg.images)
    images = test_images[idx]
    x = backbone.preprocess(to_nchw_uint8(images))
    maps, conv, relu = extract_maps(backbone, x, cfg.deep_layer)
    check_counts(backbone, cfg, int(maps["deep"].shape[1]))
    weights = backbone.model.get_submodule(conv).weight.detach().cpu()
    labels = [ds.classes[int(test_labels[i])] for i in idx]
    save_figure(
        draw_first_conv(images, maps, weights, cfg.n_filters,
                        f"{backbone.name}: first convolution ({conv}) without / with ReLU ({relu}); images: {', '.join(labels)}"),
        figures_dir / "first_conv.png",
    )
    deep = maps["deep"]
    order = torch.argsort(deep[0].mean(dim=(1, 2)), descending=True)[: cfg.n_deep].tolist()
    save_figure(
        draw_deep(images, deep, order, f"{backbone.name}: {cfg.deep_layer} ({tuple(deep.shape[1:])}), most active channels on image 1"),
        figures_dir / "deep.png",
    )
    return {
        "backbone": backbone.name,
        "first_conv": conv,
        "first_relu": relu,
        "first_conv_shape": list(maps["conv"].shape[1:]),
        "deep_layer": cfg.deep_layer,
        "deep_shape": list(deep.shape[1:]),
        "conv_negative_fraction": round(float((maps["conv"] < 0).float().mean()), 6),
        "relu_zero_fraction": round(float((maps["relu"] == 0).float().mean()), 6),
        "deep_zero_fraction": round(float((deep == 0).float().mean()), 6),
        "images": [int(i) for i in idx],
        "image_labels": labels,
    }
