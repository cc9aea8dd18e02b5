"""Sample sheets: the fixed latent grid rendered as one image, one row per class if conditional.

``sample_sheet`` draws one checkpoint; ``progress_sheet`` puts the sheets of every checkpoint
side by side (the same latents at each iteration), the figure the report shows per variant.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from matplotlib.axes import Axes
from torchvision.utils import make_grid

from transferlab.figures import save_figure

PAD = 2


def _draw(
    ax: Axes, samples: torch.Tensor, n_cols: int, row_labels: Sequence[str] | None, title: str
) -> None:
    """One sheet of uint8 (N, C, H, W) ``samples`` on ``ax`` (row labels on the left if given)."""
    grid = make_grid(samples, nrow=n_cols, padding=PAD, pad_value=255)  # (3, H', W') uint8
    n_rows = -(-len(samples) // n_cols)
    cell = samples.shape[-2] + PAD
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


def _size(n: int, n_cols: int, row_labels: Sequence[str] | None) -> tuple[float, float]:
    n_rows = -(-n // n_cols)
    return 0.55 * n_cols + (1.2 if row_labels else 0.2), 0.55 * n_rows + 0.4


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
    fig, ax = plt.subplots(figsize=_size(len(samples), n_cols, row_labels))
    _draw(ax, samples, n_cols, row_labels, title)
    save_figure(fig, path)


def progress_sheet(
    sheets: Sequence[tuple[int, torch.Tensor]],
    path: str | Path,
    *,
    n_cols: int = 10,
    row_labels: Sequence[str] | None = None,
    title: str = "",
) -> None:
    """Save the sheets of several iterations side by side, ``(iteration, samples)`` in order."""
    if not sheets:
        raise ValueError("progress_sheet needs at least one (iteration, samples) sheet")
    w, h = _size(len(sheets[0][1]), n_cols, None)
    fig, axes = plt.subplots(
        1, len(sheets), figsize=(w * len(sheets) + (1.2 if row_labels else 0), h), squeeze=False
    )
    for i, (ax, (it, samples)) in enumerate(zip(axes[0], sheets, strict=True)):
        _draw(ax, samples, n_cols, row_labels if i == 0 else None, f"iteration {it}")
    if title:
        fig.suptitle(title, fontsize=10)
    save_figure(fig, path)
