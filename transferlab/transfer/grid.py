"""The SVM grid on one feature matrix: C picked by cross-validation on train, every point scored on test.

For each PCA setting, the preprocessing ``Pipeline`` (StandardScaler?, PCA?) is fitted
on the training folds of a seeded ``StratifiedKFold`` of the TRAIN split only, and every
kernel x C is scored on the held-out fold; the C with the best mean fold accuracy is
the one cross-validation picks (per layer, PCA setting and kernel). Then every grid
point is refitted on the full train split and scored on the test split, so the table
shows what each C would have given; the test split never influences which C is picked.

Speed: ``GridSearchCV`` would recompute the kernel inside every SVC fit and predict,
which dominates on wide layers (pool1 is 3136-d). Here the Gram matrix of each
(fold, preprocessing) is computed once with BLAS and shared by every kernel (linear,
rbf and sigmoid all derive from dot products) and every C, via
``SVC(kernel="precomputed")``: the same SVMs and the same CV splits at a fraction of the
cost. Above ``PRECOMPUTED_MAX_TRAIN`` samples (Gram matrices too big for memory) the
SVC computes its own kernel; with ``linear_impl`` auto, ``LinearSVC`` takes the linear
kernel above ``LINEAR_SVC_ABOVE`` samples. The row says which estimator ran.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, LinearSVC

from transferlab.transfer.params import ClassifyParams, c_label, pca_label

# With linear_impl: auto, LinearSVC (liblinear) replaces SVC's linear kernel (libsvm) above
# this many training samples: libsvm's cost grows ~quadratically with samples, liblinear's
# linearly. Below it SVC was much faster on the default features (liblinear's dual solver
# needs many iterations on standardised high-dimensional features).
LINEAR_SVC_ABOVE = 10_000
# Precomputed Gram matrices up to this many training samples (8000^2 doubles = 512 MB).
PRECOMPUTED_MAX_TRAIN = 8_000


def preprocessor(scale: bool, n_components: float | None, seed: int) -> Pipeline:
    """An unfitted Pipeline: optional standardisation, then optional PCA (variance fraction)."""
    scaler: Any = StandardScaler() if scale else "passthrough"
    if n_components is None:
        pca: Any = "passthrough"
    else:  # svd_solver auto is exact for a fraction (full or covariance_eigh); 1.0 keeps every component
        pca = PCA(n_components=None if n_components >= 1 else n_components, random_state=seed)
    return Pipeline([("scale", scaler), ("pca", pca)])


def resolve_gamma(gamma: float | str, Z: np.ndarray) -> float:
    """SVC's gamma for training matrix ``Z`` ('scale' = 1 / (n_features * Z.var()), 'auto' = 1 / n_features)."""
    if gamma == "scale":
        var = float(Z.var())
        return 1.0 / (Z.shape[1] * var) if var > 0 else 1.0
    if gamma == "auto":
        return 1.0 / Z.shape[1]
    return float(gamma)


class Kernels:
    """Linear / rbf / sigmoid kernel matrices of (fit, eval) sets from ONE Gram product each."""

    def __init__(self, Z: np.ndarray, Ze: np.ndarray, gamma: float | str) -> None:
        start = time.perf_counter()
        self.gamma = resolve_gamma(gamma, Z)
        self.G = Z @ Z.T
        self.n = np.einsum("ij,ij->i", Z, Z)
        self.fit_seconds = time.perf_counter() - start
        start = time.perf_counter()
        self.Ge = Ze @ Z.T
        self.ne = np.einsum("ij,ij->i", Ze, Ze)
        self.eval_seconds = time.perf_counter() - start

    def _make(self, kernel: str, G: np.ndarray, na: np.ndarray) -> np.ndarray:
        if kernel == "linear":
            return G
        if kernel == "rbf":
            return np.exp(-self.gamma * np.maximum(na[:, None] + self.n[None, :] - 2 * G, 0))
        return np.tanh(self.gamma * G)  # sigmoid, coef0 = 0 as in SVC's default

    def get(self, kernel: str) -> tuple[np.ndarray, np.ndarray, float, float]:
        """(K_fit, K_eval, seconds to build K_fit, seconds to build K_eval) for ``kernel``."""
        t0 = time.perf_counter()
        K = self._make(kernel, self.G, self.n)
        t1 = time.perf_counter()
        Ke = self._make(kernel, self.Ge, self.ne)
        t2 = time.perf_counter()
        return K, Ke, self.fit_seconds + t1 - t0, self.eval_seconds + t2 - t1


def estimator_kind(kernel: str, n_train: int, params: ClassifyParams) -> str:
    """``precomputed`` | ``svc`` | ``linear_svc``: how the SVM of ``kernel`` is fitted."""
    if kernel == "linear" and (
        params.linear_impl == "linear_svc" or (params.linear_impl == "auto" and n_train > LINEAR_SVC_ABOVE)
    ):
        return "linear_svc"
    return "precomputed" if n_train <= PRECOMPUTED_MAX_TRAIN else "svc"


ESTIMATOR_NAMES = {"precomputed": "SVC (precomputed kernel)", "svc": "SVC", "linear_svc": "LinearSVC"}


def fit_predict(
    kind: str, kernel: str, C: float, y: np.ndarray, Z: np.ndarray, Ze: np.ndarray,
    kernels: Kernels | None, params: ClassifyParams, seed: int,
) -> tuple[np.ndarray, float, float]:
    """Fit one grid point on (Z, y), predict Ze; (predictions, fit seconds, predict seconds)."""
    if kind == "precomputed":
        assert kernels is not None
        K, Ke, k_fit, k_eval = kernels.get(kernel)
        clf: Any = SVC(kernel="precomputed", C=C, random_state=seed)
        fit_x, pred_x = K, Ke
    else:
        k_fit = k_eval = 0.0
        clf = (
            LinearSVC(C=C, random_state=seed, max_iter=5000)
            if kind == "linear_svc"
            else SVC(kernel=kernel, C=C, gamma=params.gamma, random_state=seed)
        )
        fit_x, pred_x = Z, Ze
    t0 = time.perf_counter()
    clf.fit(fit_x, y)
    t1 = time.perf_counter()
    pred = clf.predict(pred_x)
    t2 = time.perf_counter()
    return pred, k_fit + t1 - t0, k_eval + t2 - t1


@dataclasses.dataclass
class GridResult:
    """Rows (one per n_components x kernel x C), test predictions per row, fitted preprocessors."""

    rows: list[dict[str, Any]]
    predictions: list[np.ndarray]
    preprocessors: dict[str, Pipeline]


def _score_all(
    X: np.ndarray, y: np.ndarray, Xe: np.ndarray, prep: Pipeline, params: ClassifyParams, seed: int,
) -> tuple[Pipeline, dict[tuple[str, float], tuple[np.ndarray, float, float]], float]:
    """Fit ``prep`` on X, then every kernel x C on it, predicting Xe; also the transform seconds."""
    start = time.perf_counter()
    prep = clone(prep).fit(X)
    Z, Ze = prep.transform(X), prep.transform(Xe)
    transform_seconds = time.perf_counter() - start
    kinds = {k: estimator_kind(k, len(X), params) for k in params.kernels}
    kernels = Kernels(Z, Ze, params.gamma) if "precomputed" in kinds.values() else None
    out = {
        (k, C): fit_predict(kinds[k], k, C, y, Z, Ze, kernels, params, seed)
        for k in params.kernels
        for C in params.C
    }
    return prep, out, transform_seconds


def cv_scores(
    X: np.ndarray, y: np.ndarray, prep: Pipeline, params: ClassifyParams, seed: int
) -> dict[tuple[str, float], np.ndarray]:
    """Per (kernel, C): accuracy on each held-out fold of a seeded StratifiedKFold of (X, y)."""
    folds = StratifiedKFold(params.cv_folds, shuffle=True, random_state=seed)
    scores: dict[tuple[str, float], list[float]] = {}
    for fit_idx, val_idx in folds.split(X, y):
        _, out, _ = _score_all(X[fit_idx], y[fit_idx], X[val_idx], prep, params, seed)
        for key, (pred, _, _) in out.items():
            scores.setdefault(key, []).append(float(np.mean(pred == y[val_idx])))
    return {key: np.asarray(v) for key, v in scores.items()}


def run_grid(
    layer: str,
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    params: ClassifyParams,
    seed: int,
    *,
    source: str = "features",
) -> GridResult:
    """The whole n_components x kernel x C grid on one layer's features."""
    X, y = train
    Xt, yt = test
    rows: list[dict[str, Any]] = []
    preds: list[np.ndarray] = []
    preps: dict[str, Pipeline] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # LinearSVC: the achieved accuracy is recorded
        for n_components in params.n_components:
            prep0 = preprocessor(params.scale, n_components, seed)
            scores = cv_scores(X, y, prep0, params, seed)
            prep, out, transform_seconds = _score_all(X, y, Xt, prep0, params, seed)
            preps[pca_label(n_components)] = prep
            pca = prep.named_steps["pca"]
            fitted_pca = pca != "passthrough"
            for kernel in params.kernels:
                means = [float(scores[(kernel, C)].mean()) for C in params.C]
                picked = int(np.argmax(means))  # ties: the first C listed
                kind = estimator_kind(kernel, len(X), params)
                for i, C in enumerate(params.C):
                    pred, fit_s, pred_s = out[(kernel, C)]
                    preds.append(pred)
                    rows.append(
                        {
                            "source": source,
                            "layer": layer,
                            "dim": int(X.shape[1]),
                            "scale": params.scale,
                            "pca": pca_label(n_components),
                            "pca_components": int(pca.n_components_) if fitted_pca else int(X.shape[1]),
                            "pca_variance": float(pca.explained_variance_ratio_.sum()) if fitted_pca else 1.0,
                            "kernel": kernel,
                            "estimator": ESTIMATOR_NAMES[kind],
                            "C": float(C),
                            "C_label": c_label(C),
                            "cv_acc": means[i],
                            "cv_std": float(scores[(kernel, C)].std()),
                            "cv_picked": i == picked,
                            "test_acc": float(np.mean(pred == yt)),
                            "fit_seconds": fit_s,
                            "predict_seconds": pred_s,
                            "transform_seconds": transform_seconds,
                        }
                    )
    return GridResult(rows, preds, preps)
