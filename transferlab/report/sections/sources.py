"""Report section: the prepared datasets and where they came from."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from transferlab.report.model import Section, Table, Text, read_metrics_dir


def build(metrics_dir: Path, reports_dir: Path) -> Section | None:
    runs = read_metrics_dir(metrics_dir, "prepare")
    if not runs:
        return None
    rows = []
    for name, m in runs.items():
        rows.append(
            {
                "dataset": name,
                "source": m.get("source", ""),
                "classes": m.get("classes"),
                "train": m.get("train"),
                "test": m.get("test"),
                "image": "x".join(str(s) for s in m.get("image_shape", [])),
                "skipped": m.get("skipped", 0),
            }
        )
    return Section(
        "Datasets",
        [
            Text("Every dataset is prepared once into the same format (uint8 images, labels, standard split)."),
            Table(pd.DataFrame(rows), "Prepared datasets: counts per split, image shape, files skipped."),
        ],
    )
