"""Report building blocks: a section is a title plus text, tables and figures.

Sections are rendered to both Markdown and HTML by :mod:`transferlab.report.render`,
so a section module only decides *what* to show.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd

from transferlab.metrics import read_metrics


@dataclasses.dataclass
class Text:
    """A paragraph of Markdown (inline code, emphasis and links only)."""

    markdown: str


@dataclasses.dataclass
class Table:
    """A table; ``highlight`` marks row positions (e.g. the best row) in bold."""

    frame: pd.DataFrame
    caption: str = ""
    highlight: tuple[int, ...] = ()


@dataclasses.dataclass
class Figure:
    """An image file; ``path`` is relative to the reports directory."""

    path: str
    caption: str = ""


Block = Text | Table | Figure


@dataclasses.dataclass
class Section:
    title: str
    blocks: list[Block]


def backbone_order(name: str) -> tuple[int, str, bool]:
    """Report order of backbones: the ImageNet net first, then the pipeline-pretrained ones; each
    untrained copy after its own."""
    return (0 if name.startswith("efficientnet") else 1, name.removesuffix("_untrained"), name.endswith("_untrained"))


def read_metrics_dir(metrics_dir: Path, stage: str) -> dict[str, dict]:
    """All ``metrics/<stage>/<item>.json`` files as {item: metrics}, sorted by item.

    Each is read with :func:`transferlab.metrics.read_metrics`: its wall-clock times
    (``timings/``) merged back in.
    """
    folder = Path(metrics_dir) / stage
    if not folder.is_dir():
        return {}
    return {p.stem: read_metrics(p) for p in sorted(folder.glob("*.json"))}
