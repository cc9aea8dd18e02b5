"""Report building blocks: a section is a title plus text, tables and figures.

Sections are rendered to both Markdown and HTML by :mod:`transferlab.report.render`,
so a section module only decides *what* to show.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
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


# the output paths of the current study (resolved), set by :func:`only_study`; None = every file
_STUDY: ContextVar[frozenset[Path] | None] = ContextVar("transferlab_report_study", default=None)


@contextlib.contextmanager
def only_study(outputs: Iterable[Path] | None) -> Iterator[None]:
    """Within the block the readers below see only files at or under ``outputs`` (None: all).

    The report passes the outputs dvc.yaml's stages declare with today's params
    (:func:`transferlab.report.study.study_outputs`), so the metrics of a target or variant
    dropped from the study, still on disk, are not shown.
    """
    token = _STUDY.set(None if outputs is None else frozenset(Path(p).resolve() for p in outputs))
    try:
        yield
    finally:
        _STUDY.reset(token)


def in_study(path: Path) -> bool:
    """Whether ``path`` is (inside) an output of the current study (always, outside :func:`only_study`)."""
    outputs = _STUDY.get()
    if outputs is None:
        return True
    path = Path(path).resolve()
    return path in outputs or any(parent in outputs for parent in path.parents)


def metrics_files(folder: Path, *, recursive: bool = False) -> list[Path]:
    """The ``*.json`` metrics files of the current study in ``folder`` (or below it), sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = folder.rglob("*.json") if recursive else folder.glob("*.json")
    return sorted(p for p in found if p.is_file() and in_study(p))


def read_metrics_file(path: Path) -> dict | None:
    """One metrics file with its timings merged back, or None if absent or not of the current study."""
    path = Path(path)
    return read_metrics(path) if path.is_file() and in_study(path) else None


def read_metrics_dir(metrics_dir: Path, stage: str) -> dict[str, dict]:
    """The current study's ``metrics/<stage>/<item>.json`` files as {item: metrics}, sorted by item.

    Each is read with :func:`transferlab.metrics.read_metrics`: its wall-clock times
    (``timings/``) merged back in.
    """
    return {p.stem: read_metrics(p) for p in metrics_files(Path(metrics_dir) / stage)}
