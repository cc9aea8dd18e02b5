"""Report section: the backbones, how they were obtained, and the pretraining accuracy."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from transferlab.report.model import Section, Table, Text, read_metrics_dir


def build(metrics_dir: Path, reports_dir: Path) -> Section | None:
    runs = read_metrics_dir(metrics_dir, "pretrain")
    if not runs:
        return None
    rows = [
        {
            "backbone": name,
            "arch": m.get("arch"),
            "weights": m.get("weights"),
            "parameters": m.get("parameters"),
            "pretrained on": m.get("source_dataset", ""),
            "epochs": m.get("epochs"),
            "test acc": m.get("test_acc"),
            "seconds": m.get("seconds"),
        }
        for name, m in runs.items()
    ]
    return Section(
        "Backbones",
        [
            Text(
                "`pretrain` weights are trained by the pipeline itself (the offline stand-in for "
                "ImageNet); `none` is the seeded random init kept as the control; `imagenet` are "
                "torchvision's weights."
            ),
            Table(pd.DataFrame(rows), "Backbones and their accuracy on the pretraining dataset's test split."),
        ],
    )
