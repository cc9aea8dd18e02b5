"""Saving matplotlib figures headlessly, and image galleries with titles.

Every stage that draws uses the Agg backend (no display on a CI box or a server) and
writes PNGs atomically, so a failed run never leaves a half-written figure.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from transferlab.io import atomic_file  # noqa: E402


def save_figure(fig: Figure, path: str | Path, dpi: int = 100) -> None:
    """Write ``fig`` as a PNG at ``path`` atomically, then close it (frees its memory)."""
    try:
        with atomic_file(path, "wb") as fh:
            fig.savefig(fh, format="png", dpi=dpi, bbox_inches="tight")
    finally:
        plt.close(fig)


def image_grid(
    images: np.ndarray,
    titles: list[str] | None = None,
    ncols: int = 8,
    cell_inches: float = 1.6,
    fontsize: int = 7,
    title: str | None = None,
) -> Figure:
    """A grid of uint8 (N, H, W, C) images (C = 1 or 3), each with an optional title,
    and an optional figure ``title`` above the grid."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[3] not in (1, 3):
        raise ValueError(f"images must be (N, H, W, 1|3), got {images.shape}")
    n = len(images)
    ncols = max(1, min(ncols, n)) if n else 1
    nrows = max(1, math.ceil(n / ncols))
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(ncols * cell_inches, nrows * cell_inches * 1.15), squeeze=False
    )
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        img = images[i]
        if img.shape[2] == 1:
            ax.imshow(img[:, :, 0], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        else:
            ax.imshow(img, interpolation="nearest")
        if titles is not None and i < len(titles):
            ax.set_title(titles[i], fontsize=fontsize)
    fig.tight_layout()
    if title:
        fig.suptitle(title, fontsize=fontsize + 2, y=1.0, va="bottom")  # above the grid
    return fig
