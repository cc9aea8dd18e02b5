"""What the inside-the-network stages share: the backbone and dataset their section names, and
the body of featuremaps and fcn (one run into a fresh figures folder, then its metrics)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from transferlab.data.prepared import PreparedDataset, load_prepared
from transferlab.io import atomic_dir
from transferlab.models.backbone import Backbone
from transferlab.models.registry import load_backbone
from transferlab.stage import Job


def section_inputs(job: Job[Any], *, mmap: bool) -> tuple[Backbone, PreparedDataset | None]:
    """Backbone ``<section>.backbone`` under ``--models-root`` and dataset ``<section>.dataset``
    under ``--prepared-root`` (``None`` when the section sets it to null)."""
    args, cfg = job.args, job.params
    backbone = load_backbone(args.models_root / cfg.backbone, cfg.backbone)
    ds = None if cfg.dataset is None else load_prepared(args.prepared_root / cfg.dataset, mmap=mmap)
    return backbone, ds


def figures_stage(job: Job[Any], run: Callable[[Backbone, PreparedDataset, Path], dict[str, Any]]) -> None:
    """``run(backbone, dataset, folder)`` drawing into a fresh ``--figures`` folder (swapped in
    atomically), then its metrics with the run's wall time; these stages compute on the CPU."""
    backbone, ds = section_inputs(job, mmap=True)
    start = time.perf_counter()
    with atomic_dir(job.args.figures) as tmp:
        metrics = run(backbone, ds, tmp)
    metrics["seconds"] = round(time.perf_counter() - start, 3)
    job.write_metrics(job.args.metrics, metrics, device="cpu")
