"""classify: the SVM/PCA grid per cut layer, the softmax head and the raw-pixel baseline.

Reads only cached features (and, for the baseline, the prepared pixels): the network
never runs here, so a C or kernel sweep costs only the classifier fits. The best row
is chosen by cross-validation accuracy on the train split (never by test accuracy);
its classification report and confusion matrix describe the test split.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.metrics import classification_report, confusion_matrix

from transferlab.config import to_dict
from transferlab.errors import UserError
from transferlab.transfer.feature_cache import Features
from transferlab.transfer.grid import Preprocessing, row_blocks, run_grid
from transferlab.transfer.heads import softmax_head
from transferlab.transfer.params import ClassifyParams
from transferlab.transfer.rows import Rows

PIXELS = "pixels"  # the layer name of the raw-pixel baseline rows


def check_layers(layers: Sequence[str], meta: Mapping[str, Any], cache: str, backbone: str) -> None:
    """Every requested layer must be in the feature cache (checked from meta.json, before any work)."""
    if not layers:
        raise UserError(f"backbones.{backbone}.layers is empty; list the cut layers to classify")
    have = list(meta.get("layers", {}))
    for layer in layers:
        if layer == PIXELS:
            raise UserError(f"layer name {PIXELS!r} is reserved for the raw-pixel baseline; rename it")
        if layer not in have:
            raise UserError(
                f"layer {layer!r} (backbones.{backbone}.layers) was not extracted into {cache} "
                f"(it has {', '.join(have) or 'no layers'}); re-run `dvc repro extract` or drop the layer"
            )


def check_finite(x: np.ndarray | Rows, name: str) -> np.ndarray | Rows:
    """``x`` itself (e.g. the float16 cache's Rows), after checking it block by block for NaN/inf (float16 overflow)."""
    for rows in row_blocks(len(x), x.shape[1] if x.ndim == 2 else 1):
        if not np.isfinite(x[rows]).all():
            raise UserError(
                f"features of {name!r} contain NaN/inf (float16 overflow at extraction); "
                "set extract.pool: avg or use a smaller layer"
            )
    return x


def best_softmax_head(metrics: Mapping[str, Any]) -> float | None:
    """The softmax head's test accuracy at its best layer (the report's side-by-side figure)."""
    heads = metrics.get("softmax_head") or {}
    return max((h["test_acc"] for h in heads.values()), default=None)


def pixel_matrix(images: np.ndarray) -> Rows:
    """uint8 (N, H, W, C) prepared images -> (N, H*W*C) rows of floats in [0, 1], read a block at a time.

    Materialising them (float64, then divided: two N x D float64 arrays, 16x the uint8
    images) made the pixel baseline classify's peak on a real folder (issue 20.7); the
    values are the same, so are the results.
    """
    return Rows(images.reshape(len(images), -1), divide=255.0)


@dataclasses.dataclass
class ClassifyResult:
    """Everything the stage writes: rows, metrics, and the best row's test-set diagnosis."""

    rows: list[dict[str, Any]]
    head_rows: list[dict[str, Any]]
    best_index: int
    best_pred: np.ndarray
    y_test: np.ndarray
    classes: list[str]
    preprocessors: dict[tuple[str, str], Preprocessing]
    metrics: dict[str, Any]
    details: dict[str, Any]


def _nested(rows: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """{layer: {kernel: {C=..: {pca=..: row[key]}}}} (DVC flattens it to one column per point)."""
    tree: dict[str, Any] = {}
    for r in rows:
        tree.setdefault(r["layer"], {}).setdefault(r["kernel"], {}).setdefault(r["C_label"], {})[r["pca"]] = r[key]
    return tree


def _summary(row: dict[str, Any]) -> dict[str, Any]:
    keys = ("layer", "kernel", "C", "pca", "pca_components", "estimator", "cv_acc", "test_acc")
    return {k: row[k] for k in keys}


def _best_of(rows: list[dict[str, Any]], layer: str) -> dict[str, Any]:
    mine = [r for r in rows if r["layer"] == layer]
    return mine[best_row(mine)]


def best_row(rows: list[dict[str, Any]]) -> int:
    """Index of the highest CV accuracy (first in grid order on ties); test accuracy plays no part."""
    return max(range(len(rows)), key=lambda i: (rows[i]["cv_acc"], -i))


def run(
    features: Features,
    layers: Sequence[str],
    params: ClassifyParams,
    seed: int,
    *,
    pixels: np.ndarray | None = None,
    backbone: str = "",
) -> ClassifyResult:
    """The grid on every layer (+ softmax head), the pixel baseline, the best row by CV."""
    start = time.perf_counter()
    labels = np.asarray(features.labels)
    is_test = np.asarray(features.is_test, dtype=bool)
    y, yt = labels[~is_test], labels[is_test]
    if len(np.unique(y)) < 2 or len(yt) == 0:
        raise UserError("classify needs a train split with >= 2 classes and a non-empty test split")
    counts = np.bincount(y)
    if counts[counts > 0].min() < params.cv_folds:
        raise UserError(f"classify.cv_folds={params.cv_folds} exceeds the smallest class's train count; lower cv_folds")
    classes = list(features.meta.get("classes") or [str(c) for c in np.unique(labels)])

    rows: list[dict[str, Any]] = []
    preds: list[np.ndarray] = []
    preps: dict[tuple[str, str], Any] = {}
    head_rows: list[dict[str, Any]] = []
    for layer in layers:
        # Rows: the splits (and CV folds) are row indices into the float16 cache, whose rows
        # are read a block at a time where used, never copied or made resident whole
        X = check_finite(Rows(features.feats[layer]), layer)
        train, test = X[~is_test], X[is_test]
        grid = run_grid(layer, (train, y), (test, yt), params, seed)
        rows += grid.rows
        preds += grid.predictions
        preps.update({(layer, k): v for k, v in grid.preprocessors.items()})
        head_rows.append(
            softmax_head(
                layer, (train, y), (test, yt),
                C=params.head_C, max_iter=params.head_max_iter, scale=params.scale, seed=seed,
            )
        )
    n_feature_rows = len(rows)
    if pixels is not None:
        P = pixel_matrix(pixels)
        grid = run_grid(PIXELS, (P[~is_test], y), (P[is_test], yt), params, seed, source="pixels")
        rows += grid.rows
        preds += grid.predictions
        preps.update({(PIXELS, k): v for k, v in grid.preprocessors.items()})

    best = best_row(rows[:n_feature_rows])
    best_pred = preds[best]
    report = classification_report(
        yt, best_pred, labels=list(range(len(classes))), target_names=classes, output_dict=True, zero_division=0
    )
    cm = confusion_matrix(yt, best_pred, labels=list(range(len(classes))))
    feature_rows = rows[:n_feature_rows]
    metrics: dict[str, Any] = {
        "dataset": features.meta.get("dataset", ""),
        "backbone": backbone or features.meta.get("backbone", ""),
        "train_size": int(len(y)),
        "test_size": int(len(yt)),
        "grid_points": len(rows),
        "test_acc": _nested(rows, "test_acc"),
        "picked_C": {
            layer: {
                kernel: {r["pca"]: r["C"] for r in rows if r["layer"] == layer and r["kernel"] == kernel and r["cv_picked"]}
                for kernel in params.kernels
            }
            for layer in [*layers, *([PIXELS] if pixels is not None else [])]
        },
        "best": _summary(rows[best]),
        "best_by_layer": {  # the CV-picked row of each layer, slim (the rows file has the rest)
            layer: {k: _best_of(feature_rows, layer)[k] for k in ("kernel", "C", "pca", "cv_acc", "test_acc")}
            for layer in layers
        },
        "softmax_head": {h["layer"]: {"test_acc": h["test_acc"], "train_acc": h["train_acc"]} for h in head_rows},
        "seconds": time.perf_counter() - start,
    }
    if pixels is not None:
        metrics["pixels_best"] = _summary(rows[n_feature_rows + best_row(rows[n_feature_rows:])])
    details = {
        "dataset": metrics["dataset"],
        "backbone": metrics["backbone"],
        "classes": classes,
        "selection": "best row = highest cross-validation accuracy on the train split (not test accuracy)",
        "best_index": best,
        "rows": rows,
        "softmax_head": head_rows,
        "classification_report": report,
        "confusion_matrix": cm.tolist(),
        "params": to_dict(params),
        "seed": seed,
    }
    return ClassifyResult(rows, head_rows, best, best_pred, yt, classes, preps, metrics, details)


def confusion_figure(cm: np.ndarray | list, classes: Sequence[str], title: str):
    """A confusion-matrix figure (counts) for the best row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    n = len(classes)
    fig, ax = plt.subplots(figsize=(max(4.0, 0.45 * n + 2), max(3.5, 0.45 * n + 1.5)))
    ConfusionMatrixDisplay(np.asarray(cm), display_labels=list(classes)).plot(
        ax=ax, colorbar=False, xticks_rotation=45 if n > 6 else "horizontal", values_format="d"
    )
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig
