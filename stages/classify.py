"""classify@<dataset>-<backbone>: SVM/PCA grid per cut layer on cached features, softmax head, pixel baseline.

Inputs:  data/features/<dataset>-<backbone> (the feature cache; the network never runs here),
         data/prepared/<dataset> (its pixels, for the raw-pixel SVM baseline only)
Outputs: metrics/classify/<dataset>-<backbone>.json (nested test/CV accuracy per
         layer/kernel/C/PCA, the C CV picked, best row, per-layer best, softmax head;
         `dvc metrics diff --targets metrics/classify -R` compares it), and its headline
         metrics/headline/classify/<dataset>-<backbone>.json (svm: the best row's test
         accuracy; softmax: the softmax head's at its best layer; the DVC metric),
         metrics/classify-rows/<dataset>-<backbone>.json (every table row with times, the
         classification report and confusion matrix of the best row; the report reads it),
         reports/figures/classify/<dataset>-<backbone>_confusion.png (best row by CV)
Params:  base (seed), backbones.<backbone>.layers (the cut layers), classify
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from transferlab.config import get_path
from transferlab.data.prepared import load_prepared
from transferlab.errors import UserError, unknown_name
from transferlab.figures import save_figure
from transferlab.stage import BACKBONE, FEATURES, METRICS, Job, Stage, path
from transferlab.transfer.classify import best_softmax_head, check_layers, confusion_figure, run
from transferlab.transfer.feature_cache import load_features
from transferlab.transfer.params import ClassifyParams

STAGE = Stage(
    __doc__, FEATURES, path("--prepared", "prepared dataset (pixel baseline)", optional=True), BACKBONE, METRICS,
    path("--rows", "full rows JSON to write"), path("--figure", "confusion-matrix PNG to write"),
    section=(ClassifyParams, "classify"), seed_torch=False,  # classify itself runs no torch code
    headline={"svm": "best.test_acc", "softmax": best_softmax_head},  # per-layer rows: the detail file
)  # fmt: skip


def backbone_layers(params: Mapping[str, Any], backbone: str) -> tuple[str, ...]:
    """``backbones.<backbone>.layers`` alone (classify depends on no other backbone key)."""
    entries = get_path(params, "backbones")
    if not isinstance(entries, dict) or backbone not in entries:
        raise unknown_name("backbone", backbone, entries if isinstance(entries, dict) else ())
    layers = get_path(entries, f"{backbone}.layers")
    if not isinstance(layers, list) or not all(isinstance(x, str) for x in layers):
        raise UserError(f"params.yaml: backbones.{backbone}.layers: expected a list of layer names, got {layers!r}")
    return tuple(layers)


def load_pixels(prepared: Path, labels: np.ndarray) -> np.ndarray:
    """Prepared images in feature-cache order (checked by the labels)."""
    ds = load_prepared(prepared, mmap=True)
    if len(ds.labels) != len(labels) or not np.array_equal(ds.labels, labels):
        raise UserError(
            f"prepared dataset {str(prepared)!r} does not match the feature cache (labels differ); "
            "re-run `dvc repro extract`"
        )
    return ds.images  # still memory-mapped: classify reads it a row block at a time


@STAGE.main
def main(job: Job[ClassifyParams]) -> None:
    args, params, seed = job.args, job.params, job.seed
    layers = backbone_layers(job.file, args.backbone)
    features = load_features(args.features, mmap=True)
    check_layers(layers, features.meta, str(args.features), args.backbone)
    if params.pixels and args.prepared is None:
        raise UserError("classify.pixels is true but no --prepared dataset was given")
    pixels = load_pixels(args.prepared, features.labels) if params.pixels else None
    with threadpool_limits(limits=params.threads):
        result = run(features, layers, params, seed, pixels=pixels, backbone=args.backbone)
    best = result.rows[result.best_index]
    title = (
        f"{result.metrics['dataset']} / {args.backbone}: best by CV = {best['layer']} {best['kernel']} "
        f"{best['C_label']} {best['pca']} (test acc {best['test_acc']:.3f})"
    )
    save_figure(confusion_figure(result.details["confusion_matrix"], result.classes, title), args.figure)
    job.write_metrics(args.rows, result.details, device="cpu", records_stage=False, headline=False)
    job.write_metrics(args.metrics, result.metrics, device="cpu")
    print(
        f"classify {args.backbone} on {result.metrics['dataset']}: {len(result.rows)} grid rows; "
        f"best by CV {best['layer']}/{best['kernel']}/{best['C_label']}/{best['pca']} "
        f"cv={best['cv_acc']:.4f} test={best['test_acc']:.4f}; {result.metrics['seconds']:.1f}s"
    )


if __name__ == "__main__":
    main()
