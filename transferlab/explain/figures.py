"""Figures for the explain stages: aligned views of the same images, and accuracy curves.

(``transferlab.figures.image_grid`` covers plain galleries; this adds aligned rows of
views -- image / saliency map, original / perturbation / adversarial -- with a colormap
per view, and small curve panels for the report.)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from transferlab.figures import plt


def _show(ax, img: np.ndarray, cmap: str | None) -> None:
    img = np.asarray(img)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim == 2:
        vmax = 255 if img.dtype == np.uint8 else 1.0
        ax.imshow(img, cmap=cmap or "gray", vmin=0, vmax=vmax, interpolation="nearest")
    else:
        ax.imshow(img, interpolation="nearest")
    ax.axis("off")


def views_figure(
    views: Sequence[tuple[str, np.ndarray, str | None]],
    image_titles: Sequence[str] = (),
    cell_inches: float = 1.4,
    max_images: int = 16,
) -> Figure:
    """Aligned views of the same images: one row per view, one column per image.

    ``views`` = (row label, images (N, H, W[, C]), colormap or None); uint8 images use
    [0, 255], float maps [0, 1]; one-channel images take the view's colormap (gray by
    default). ``image_titles`` label the columns. At most ``max_images`` columns are drawn.
    """
    n = max(1, min(min(len(v[1]) for v in views), max_images))
    fig, axes = plt.subplots(
        len(views), n, figsize=(n * cell_inches, len(views) * cell_inches * 1.1), squeeze=False
    )
    for i, (label, images, cmap) in enumerate(views):
        for j in range(n):
            ax = axes[i, j]
            ax.axis("off")
            if j >= len(images):
                continue
            _show(ax, images[j], cmap)
            if i == 0 and j < len(image_titles):
                ax.set_title(image_titles[j], fontsize=6)
        axes[i, 0].text(
            -0.08,
            0.5,
            label,
            transform=axes[i, 0].transAxes,
            rotation=90,
            ha="right",
            va="center",
            fontsize=7,
        )
    fig.tight_layout()
    return fig


def curve_figure(
    panels: Sequence[tuple[str, Sequence[float], Sequence[float]]], ylabel: str = "accuracy"
) -> Figure:
    """Side-by-side line plots, one per (xlabel, x, y) panel, y in [0, 1] (for the report)."""
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 2.8), squeeze=False)
    for ax, (xlabel, xs, ys) in zip(axes[0], panels, strict=True):
        ax.plot(list(xs), list(ys), marker="o")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
