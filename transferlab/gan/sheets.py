"""Sample sheets: the fixed latent grid rendered as one image, one row per class if conditional."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from torchvision.utils import make_grid

from transferlab.figures import save_figure

PAD = 2


def sample_sheet(
    samples: torch.Tensor,
    path: str | Path,
    *,
    n_cols: int = 10,
    row_labels: Sequence[str] | None = None,
    title: str = "",
) -> None:
    """Save uint8 (N, C, H, W) ``samples`` as a sheet of ``n_cols`` columns at ``path`` (PNG).

    ``row_labels`` (e.g. class names of a conditional grid) are written left of each row.
    """
    grid = make_grid(samples, nrow=n_cols, padding=PAD, pad_value=255)  # (3, H', W') uint8
    n_rows = -(-len(samples) // n_cols)
    cell = samples.shape[-2] + PAD
    fig, ax = plt.subplots(
        figsize=(0.55 * n_cols + (1.2 if row_labels else 0.2), 0.55 * n_rows + 0.4)
    )
    ax.imshow(grid.permute(1, 2, 0).numpy(), interpolation="nearest")
    ax.set_xticks([])
    if row_labels:
        ax.set_yticks([PAD + cell * r + (cell - PAD) / 2 for r in range(n_rows)])
        ax.set_yticklabels(list(row_labels)[:n_rows], fontsize=8)
        ax.tick_params(length=0)
        for side in ax.spines.values():
            side.set_visible(False)
    else:
        ax.axis("off")
    if title:
        ax.set_title(title, fontsize=9)
    save_figure(fig, path)
