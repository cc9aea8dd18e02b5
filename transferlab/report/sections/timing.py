"""Report section: where the study's wall time goes (every stage run's ``stage_seconds``).

Each stage records its whole process time (Python start-up and imports included) in its
timings file (:func:`transferlab.metrics.write_metrics`); this section lists them, longest
first, with the total and the provenance (seed, device, versions) the metrics carry.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from transferlab.metrics import PROVENANCE, STAGE_SECONDS, read_metrics
from transferlab.report.model import Section, Table, Text, metrics_files


def stage_times(metrics_dir: Path) -> pd.DataFrame:
    """One row per stage run that recorded its time: stage, item, seconds, share; longest first."""
    rows = []
    for path in metrics_files(metrics_dir, recursive=True):
        seconds = read_metrics(path).get(STAGE_SECONDS)
        if seconds is None:
            continue
        rel = path.relative_to(metrics_dir)
        stage, item = (rel.parts[0], path.stem) if len(rel.parts) > 1 else (path.stem, "")
        rows.append({"stage": stage, "item": item, "seconds": round(float(seconds), 1)})
    frame = pd.DataFrame(rows, columns=["stage", "item", "seconds"])
    frame = frame.sort_values("seconds", ascending=False, kind="stable").reset_index(drop=True)
    total = frame["seconds"].sum()
    frame["share"] = [f"{s / total:.1%}" if total > 0 else "" for s in frame["seconds"]]
    return frame


def per_stage(frame: pd.DataFrame) -> pd.DataFrame:
    """The runs of each stage summed: stage, runs, seconds, share; longest first."""
    grouped = frame.groupby("stage", sort=False)["seconds"].agg(runs="count", seconds="sum").reset_index()
    grouped = grouped.sort_values("seconds", ascending=False, kind="stable").reset_index(drop=True)
    total = grouped["seconds"].sum()
    grouped["seconds"] = grouped["seconds"].round(1)
    grouped["share"] = [f"{s / total:.1%}" if total > 0 else "" for s in grouped["seconds"]]
    return grouped


def provenances(metrics_dir: Path) -> dict[str, int]:
    """Each distinct provenance block (as sorted JSON) and how many metrics files carry it."""
    counts: dict[str, int] = {}
    for path in metrics_files(metrics_dir, recursive=True):
        block: Any = read_metrics(path).get(PROVENANCE)
        if block is not None:
            key = json.dumps(block, sort_keys=True)
            counts[key] = counts.get(key, 0) + 1
    return counts


def describe(block: dict[str, Any]) -> str:
    versions = ", ".join(f"{name} {v}" for name, v in block.get("versions", {}).items() if v)
    return f"seed {block.get('seed')} on `{block.get('device')}` ({versions})"


def build(metrics_dir: Path, reports_dir: Path) -> Section | None:
    frame = stage_times(metrics_dir)
    if frame.empty:
        return None
    total = frame["seconds"].sum()
    table = pd.concat(
        [frame, pd.DataFrame([{"stage": "total", "item": "", "seconds": round(total, 1), "share": "100.0%"}])],
        ignore_index=True,
    )
    blocks: list[Text | Table] = [
        Text(
            f"{len(frame)} stage runs took {total:,.1f} s ({total / 60:.1f} min) of process wall time "
            "in all, Python start-up and imports included (the report stage itself not counted). "
            "`dvc repro` runs stages one after another, so this is the study's wall time when "
            "every stage ran. Times live in `timings/`, apart from the deterministic `metrics/`."
        ),
        Table(per_stage(frame), "Wall time per stage (all its runs), longest first."),
        Table(table, "Wall time per stage run, longest first (from timings/<stage>/<item>.json, stage_seconds)."),
    ]
    runs = provenances(metrics_dir)
    if runs:
        lines = [f"- {describe(json.loads(key))}: {n} metrics files" for key, n in runs.items()]
        blocks.append(Text("Every metrics file records how it was computed:\n\n" + "\n".join(lines)))
    return Section("Where the time goes", blocks)
