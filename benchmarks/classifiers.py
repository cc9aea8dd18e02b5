"""Classifier cost on the widest cut layer (issue 8, item 4), measured side by side in one run.

Features come from the real prepare + extract code (``transferlab.data.registry`` and
``transferlab.extraction.extract_prepared``) into a temporary directory: digits (the
default study's target, 1797 images) and, when ``/work/shared/data/cifar10-small`` (or
``--clf-cifar``) exists, a subset of cifar10-small, both through ``vgg_mini`` (the
pipeline's pretrained model from ``data/models/vgg_mini`` when present, else its untrained
copy). On the widest layer, with the classify stage's own estimator construction
(``transferlab.transfer.grid``: ``preprocessor`` and ``fit_predict``), one train/test split,
one C, seed 0, the stage's BLAS thread limit (``classify.threads``, 1):

* ``LinearSVC`` vs ``SVC(kernel="linear")``: fit-time ratio and accuracy difference;
* ``SVC(kernel="rbf")`` with vs without ``PCA(n_components=0.95)`` (fit time includes the
  scaler and PCA fits). Target: PCA + RBF >= 4x faster for <= 1 point of accuracy lost.

The stage itself fits every SVC on a precomputed Gram matrix shared across kernels and C;
its PCA-vs-no-PCA cost is reported too (no target: there the SVC's cost does not depend on
the feature width at all).
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

from benchmarks.figures import Figure, at_least, at_most
from transferlab.data.prepared import save_prepared
from transferlab.data.registry import prepare_dataset
from transferlab.device import resolve_device
from transferlab.extraction import ExtractParams, extract_prepared
from transferlab.features import load_features
from transferlab.models.registry import build_backbone, load_backbone
from transferlab.transfer.grid import fit_predict, gram_kernels, preprocessor
from transferlab.transfer.params import ClassifyParams

ROOT = Path(__file__).resolve().parents[1]
SPEEDUP_TARGET = 4.0  # PCA(0.95) + RBF at least this many times faster than RBF alone
POINTS_TARGET = 1.0  # ... for at most this many points of test accuracy lost
CIFAR = Path("/work/shared/data/cifar10-small")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("classifiers")
    group.add_argument("--clf-C", type=float, default=1.0, help="the SVMs' C")
    group.add_argument("--clf-cifar", type=Path, default=CIFAR, help="cifar10-small folder (skipped when absent)")
    group.add_argument("--clf-cifar-train", type=int, default=3000, help="cifar10-small train images used")
    group.add_argument("--clf-cifar-test", type=int, default=1000, help="cifar10-small test images used")


def vgg_mini():
    """The pipeline's pretrained vgg_mini when ``dvc repro`` made it here, else the untrained control."""
    model_dir = ROOT / "data" / "models" / "vgg_mini"
    if (model_dir / "card.json").is_file() or (model_dir / "weights.pt").is_file():
        try:
            return load_backbone(model_dir), "pretrained (data/models/vgg_mini)"
        except Exception as err:  # a stale or partial model dir: fall back, and say so
            return build_backbone("vgg_mini", "none"), f"untrained ({type(err).__name__} loading data/models)"
    return build_backbone("vgg_mini", "none"), "untrained (no data/models/vgg_mini)"


def widest_features(name: str, entry: dict, work: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """Prepare ``entry`` and extract every vgg_mini cut layer; (X float16, labels, is_test, description)."""
    ds = prepare_dataset(name, entry, seed=0, cache_dir=work / "downloads")
    (work / name).mkdir(parents=True)
    save_prepared(ds, work / name)
    backbone, weights = vgg_mini()
    extract_prepared(backbone, work / name, list(backbone.cut_points), ExtractParams(), work / f"{name}-features",
                     device=resolve_device("cpu"), progress=False)
    cache = load_features(work / f"{name}-features")
    layer = max(cache.feats, key=lambda k: cache.feats[k].shape[1])
    X = np.asarray(cache.feats[layer])
    n_test = int(cache.is_test.sum())
    return X, cache.labels, cache.is_test, f"{name} {layer} {len(X) - n_test} train/{n_test} test x {X.shape[1]} dims, vgg_mini {weights}"


def timed_svm(kind: str, kernel: str, n_components: float | None, X, y, Xt, yt, C: float) -> dict[str, float]:
    """Preprocess (scaler [+ PCA], fitted on train) then one SVM, as the stage's non-precomputed path does."""
    params = ClassifyParams(kernels=(kernel,), C=(C,))
    start = time.perf_counter()
    prep = preprocessor(True, n_components, seed=0).fit(X)
    Z, Zt = prep.transform(X), prep.transform(Xt)
    prep_s = time.perf_counter() - start
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pred, fit_s, _ = fit_predict(kind, kernel, C, y, Z, Zt, None, params, seed=0)
    return {"seconds": prep_s + fit_s, "prep": prep_s, "acc": float(np.mean(pred == yt)), "dims": Z.shape[1]}


def timed_precomputed(n_components: float | None, X, y, Xt, yt, C: float) -> dict[str, float]:
    """The stage's own path: blocked Gram (+ Gram PCA), then SVC(kernel='precomputed') rbf."""
    params = ClassifyParams(kernels=("rbf",), C=(C,))
    start = time.perf_counter()
    kernels, info, _ = gram_kernels(X, Xt, True, n_components, "scale")
    prep_s = time.perf_counter() - start
    pred, fit_s, _ = fit_predict("precomputed", "rbf", C, y, None, None, kernels, params, seed=0)  # type: ignore[arg-type]
    return {"seconds": prep_s + fit_s, "acc": float(np.mean(pred == yt)), "dims": info.n_components}


def case_figures(label: str, X16: np.ndarray, labels: np.ndarray, is_test: np.ndarray, C: float) -> list[Figure]:
    """The four fits and the stage's path on one case, as figures."""
    X, Xt = X16[~is_test].astype(np.float64), X16[is_test].astype(np.float64)
    y, yt = labels[~is_test], labels[is_test]
    with threadpool_limits(limits=ClassifyParams().threads):  # the stage's BLAS threads (1 by default)
        lin_svc = timed_svm("linear_svc", "linear", None, X, y, Xt, yt, C)
        svc_lin = timed_svm("svc", "linear", None, X, y, Xt, yt, C)
        rbf = timed_svm("svc", "rbf", None, X, y, Xt, yt, C)
        pca_rbf = timed_svm("svc", "rbf", 0.95, X, y, Xt, yt, C)
        pre = timed_precomputed(None, X16[~is_test], y, X16[is_test], yt, C)
        pre_pca = timed_precomputed(0.95, X16[~is_test], y, X16[is_test], yt, C)
    lost = 100 * (rbf["acc"] - pca_rbf["acc"])
    rbf_detail = (f"{label}, C={C:g}: SVC rbf {rbf['seconds']:.2f} s, acc {rbf['acc']:.4f}; "
                  f"PCA(0.95) -> {pca_rbf['dims']} dims + SVC rbf {pca_rbf['seconds']:.2f} s "
                  f"(PCA fit+transform {pca_rbf['prep']:.2f} s), acc {pca_rbf['acc']:.4f}")
    return [
        at_least(f"RBF / PCA(0.95)+RBF fit time ({label.split()[0]})", rbf["seconds"] / pca_rbf["seconds"],
                 SPEEDUP_TARGET, "x", rbf_detail),
        at_most(f"accuracy lost by PCA(0.95) before RBF ({label.split()[0]})", lost, POINTS_TARGET, " pts", rbf_detail),
        Figure(f"SVC(linear) / LinearSVC fit time ({label.split()[0]})", svc_lin["seconds"] / lin_svc["seconds"], "x",
               "-", None,
               f"SVC linear {svc_lin['seconds']:.2f} s acc {svc_lin['acc']:.4f}; LinearSVC {lin_svc['seconds']:.2f} s "
               f"acc {lin_svc['acc']:.4f} (difference {100 * (lin_svc['acc'] - svc_lin['acc']):+.2f} pts)"),
        Figure(f"stage path (precomputed Gram) rbf / PCA+rbf time ({label.split()[0]})",
               pre["seconds"] / pre_pca["seconds"], "x", "-", None,
               f"no PCA {pre['seconds']:.2f} s acc {pre['acc']:.4f}; PCA(0.95) via Gram eigh {pre_pca['seconds']:.2f} s "
               f"({pre_pca['dims']} components) acc {pre_pca['acc']:.4f}"),
    ]


def run(args: argparse.Namespace) -> list[Figure]:
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="bench-clf-") as tmp:
        work = Path(tmp)
        X, labels, is_test, label = widest_features("digits", {"source": "digits", "test_fraction": 0.25}, work)
        figures += case_figures(label, X, labels, is_test, args.clf_C)
        if args.clf_cifar.is_dir():
            entry = {"source": "folder", "path": str(args.clf_cifar), "image_size": 32, "channels": 3,
                     "max_train": args.clf_cifar_train, "max_test": args.clf_cifar_test}
            X, labels, is_test, label = widest_features("cifar10-small", entry, work)
            figures += case_figures(label, X, labels, is_test, args.clf_C)
        else:
            figures.append(Figure("cifar10-small case", 0, "", "-", None, f"skipped: {args.clf_cifar} not found"))
    return figures
