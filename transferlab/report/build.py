"""Assemble the report from metrics JSON only (so it always tells the truth of the last run).

Only the current study's metrics are read (those dvc.yaml's stages produce with today's
params, :mod:`transferlab.report.study`), not every file left under ``metrics/``.

Each part of the study contributes one module in ``transferlab.report.sections`` with
``build(metrics_dir, reports_dir) -> Section | None`` (None when its metrics are absent).
To add a part, add its module name to :data:`SECTIONS`.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from pathlib import Path

from transferlab.io import atomic_file
from transferlab.report.model import Section, only_study
from transferlab.report.render import to_html, to_markdown

TITLE = "transferlab report"

SECTIONS: tuple[str, ...] = (  # in the order of the study (DESIGN.md)
    "sources",
    "backbones",
    "inside",
    "extract",
    "transfer",
    "explain",
    "scratch",
    "gans",
    "timing",
)


def collect_sections(metrics_dir: Path, reports_dir: Path) -> list[Section]:
    """Run every section builder; skip the parts whose metrics are absent."""
    sections = []
    for name in SECTIONS:
        module = importlib.import_module(f"transferlab.report.sections.{name}")
        section = module.build(Path(metrics_dir), Path(reports_dir))
        if section is not None:
            sections.append(section)
    return sections


def write_report(metrics_dir: Path, reports_dir: Path, study: Iterable[Path] | None = None) -> tuple[Path, Path]:
    """Write ``report.md`` and the self-contained ``report.html`` into ``reports_dir``.

    ``study``: the output paths of the current study (:func:`~transferlab.report.study.study_outputs`);
    metrics files outside them are not shown. None shows every file under ``metrics_dir``.
    """
    reports_dir = Path(reports_dir)
    with only_study(study):
        sections = collect_sections(metrics_dir, reports_dir)
    md_path, html_path = reports_dir / "report.md", reports_dir / "report.html"
    with atomic_file(md_path) as fh:
        fh.write(to_markdown(TITLE, sections))
    with atomic_file(html_path) as fh:
        fh.write(to_html(TITLE, sections, reports_dir))
    return md_path, html_path
