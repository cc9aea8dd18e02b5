"""classify@<dataset>-<backbone>: SVM/PCA grid per cut layer on cached features, softmax head, pixel baseline.

Inputs:  data/features/<dataset>-<backbone> (the feature cache; the network never runs here),
         data/prepared/<dataset> (its pixels, for the raw-pixel SVM baseline only)
Outputs: metrics/classify/<dataset>-<backbone>.json (nested test/CV accuracy per
         layer/kernel/C/PCA, the C CV picked, best row, softmax head; `dvc metrics diff` reads it),
         metrics/classify-rows/<dataset>-<backbone>.json (every table row with times, the
         classification report and confusion matrix of the best row; the report reads it),
         reports/figures/classify/<dataset>-<backbone>_confusion.png (best row by CV)
Params:  base (seed), backbones.<backbone>.layers (the cut layers), classify
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from transferlab.config import BaseParams, get_path, load_section, read_params
from transferlab.data.prepared import load_prepared
from transferlab.errors import UserError, exit_on_user_error, unknown_name
from transferlab.feature_cache import load_features
from transferlab.figures import save_figure
from transferlab.metrics import write_metrics
from transferlab.seeding import seed_everything
from transferlab.transfer.classify import check_layers, confusion_figure, run
from transferlab.transfer.params import ClassifyParams


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=Path, required=True, help="feature cache directory")
    parser.add_argument("--prepared", type=Path, default=None, help="prepared dataset (pixel baseline)")
    parser.add_argument("--backbone", required=True, help="name of a backbones: entry in params.yaml")
    parser.add_argument("--metrics", type=Path, required=True, help="metrics JSON to write")
    parser.add_argument("--rows", type=Path, required=True, help="full rows JSON to write")
    parser.add_argument("--figure", type=Path, required=True, help="confusion-matrix PNG to write")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    return parser


def backbone_layers(params_file: Path, backbone: str) -> tuple[str, ...]:
    """``backbones.<backbone>.layers`` alone (classify depends on no other backbone key)."""
    entries = get_path(read_params(params_file), "backbones")
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
    return np.asarray(ds.images)


@exit_on_user_error
def main(argv: Sequence[str] | None = None) -> None:
    args = get_args_parser().parse_args(argv)
    base = load_section(BaseParams, "base", args.params)
    params = load_section(ClassifyParams, "classify", args.params)
    layers = backbone_layers(args.params, args.backbone)
    seed_everything(base.seed, with_torch=False)  # classify itself runs no torch code
    features = load_features(args.features, mmap=True)
    check_layers(layers, features.meta, str(args.features), args.backbone)
    if params.pixels and args.prepared is None:
        raise UserError("classify.pixels is true but no --prepared dataset was given")
    pixels = load_pixels(args.prepared, features.labels) if params.pixels else None
    with threadpool_limits(limits=params.threads):
        result = run(features, layers, params, base.seed, pixels=pixels, backbone=args.backbone)
    best = result.rows[result.best_index]
    title = (
        f"{result.metrics['dataset']} / {args.backbone}: best by CV = {best['layer']} {best['kernel']} "
        f"{best['C_label']} {best['pca']} (test acc {best['test_acc']:.3f})"
    )
    save_figure(confusion_figure(result.details["confusion_matrix"], result.classes, title), args.figure)
    write_metrics(args.rows, result.details, seed=base.seed, device="cpu", records_stage=False)
    write_metrics(args.metrics, result.metrics, seed=base.seed, device="cpu")
    print(
        f"classify {args.backbone} on {result.metrics['dataset']}: {len(result.rows)} grid rows; "
        f"best by CV {best['layer']}/{best['kernel']}/{best['C_label']}/{best['pca']} "
        f"cv={best['cv_acc']:.4f} test={best['test_acc']:.4f}; {result.metrics['seconds']:.1f}s"
    )


if __name__ == "__main__":
    main()
