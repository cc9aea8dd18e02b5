"""Report section: feature extraction per dataset x backbone (dims per layer, throughput)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from transferlab.report.model import Section, Table, read_metrics_dir


def _throughput(value: float | None) -> float | None:
    """Images per second to 0.1 (a wall-clock figure: more digits are noise)."""
    return None if value is None else round(float(value), 1)


def build(metrics_dir: Path, reports_dir: Path) -> Section | None:
    runs = read_metrics_dir(metrics_dir, "extract")
    if not runs:
        return None
    rows = []
    for m in runs.values():
        row = {
            "dataset": m.get("dataset"),
            "backbone": m.get("backbone"),
            "images": m.get("images"),
            "images/s": _throughput(m.get("images_per_second")),
            "device": m.get("device"),
        }
        dims = m.get("dims", {})
        order = m.get("layers", "").split(",") if m.get("layers") else list(dims)
        row.update({f"dim {layer}": dims[layer] for layer in order if layer in dims})
        rows.append(row)
    return Section(
        "Feature extraction",
        [Table(pd.DataFrame(rows), "All cut layers come from one forward pass; feature dimension per layer.")],
    )
