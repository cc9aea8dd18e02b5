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

Memory: on the precomputed path the features are never materialised in float64. The
caller passes the float16 cache's rows as :class:`~transferlab.transfer.rows.Rows` (row
indices into the cache file, read only where a block is converted; the CV folds index
them further) or as arrays; the Gram matrices are built from row blocks of about
``BLOCK_BYTES`` converted to float64 and standardised one at a time (the scaler is fitted
with ``StandardScaler.partial_fit`` over the same blocks), and PCA is done on the centred
Gram matrix itself (its eigenvectors give the principal-component scores: the same
subspace, variance ratios and component count as ``PCA(n_components=fraction)`` with an
exact solver). Peak memory is then a few n x n matrices and a row block or two, not
several float64 copies of an n x D matrix.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, LinearSVC

from transferlab.transfer.params import ClassifyParams, c_label, pca_label
from transferlab.transfer.pca import GramPCA, centred_eigh, pca_components, score_scales

# With linear_impl: auto, LinearSVC (liblinear) replaces SVC's linear kernel (libsvm) above
# this many training samples: libsvm's cost grows ~quadratically with samples, liblinear's
# linearly. Below it SVC was much faster on the default features (liblinear's dual solver
# needs many iterations on standardised high-dimensional features).
LINEAR_SVC_ABOVE = 10_000
# Precomputed Gram matrices up to this many training samples (8000^2 doubles = 512 MB).
PRECOMPUTED_MAX_TRAIN = 8_000
# Row blocks of the feature matrix converted to float64 at a time on the precomputed path.
BLOCK_BYTES = 32 * 2**20
# libsvm's kernel row cache for precomputed kernels (SVC's default is 200 MB; the cache
# changes only speed, never the solution, and a precomputed row is just a lookup).
PRECOMPUTED_CACHE_MB = 16


def preprocessor(scale: bool, n_components: float | None) -> Pipeline:
    """An unfitted Pipeline: optional standardisation, then optional PCA (variance fraction).

    Used where the features are materialised (the SVC / LinearSVC paths); the precomputed
    path computes the same transform from Gram matrices (:func:`gram_kernels`).
    """
    scaler: Any = StandardScaler() if scale else "passthrough"
    if n_components is None:
        pca: Any = "passthrough"
    else:  # exact for a fraction, like PCA(svd_solver="full"), but fast on wide layers; 1.0 keeps every component
        pca = GramPCA(n_components=None if n_components >= 1 else n_components)
    return Pipeline([("scale", scaler), ("pca", pca)])


def resolve_gamma(gamma: float | str, Z: np.ndarray) -> float:
    """SVC's gamma for training matrix ``Z`` ('scale' = 1 / (n_features * Z.var()), 'auto' = 1 / n_features)."""
    return gamma_from_var(gamma, Z.shape[1], float(Z.var()) if gamma == "scale" else 0.0)


def gamma_from_var(gamma: float | str, n_features: int, var: float) -> float:
    """SVC's gamma given the training matrix's width and overall variance (used by 'scale' only)."""
    if gamma == "scale":
        return 1.0 / (n_features * var) if var > 0 else 1.0
    if gamma == "auto":
        return 1.0 / n_features
    return float(gamma)


def row_blocks(n: int, n_features: int, block_bytes: int | None = None) -> list[slice]:
    """Row slices whose float64 copy is about ``block_bytes`` (default ``BLOCK_BYTES``)."""
    rows = max(1, (block_bytes or BLOCK_BYTES) // (8 * max(1, n_features)))
    return [slice(lo, min(n, lo + rows)) for lo in range(0, n, rows)]


@dataclasses.dataclass(frozen=True)
class Standardiser:
    """Rows (any dtype, e.g. float16 memmap) -> float64, minus ``mean``, divided by ``scale`` (if fitted)."""

    mean: np.ndarray | None = None
    scale: np.ndarray | None = None

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        Z = np.array(rows, dtype=np.float64)
        if self.mean is not None and self.scale is not None:  # the same in-place ops as StandardScaler.transform
            Z -= self.mean
            Z /= self.scale
        return Z


def fit_standardiser(X: np.ndarray, scale: bool, block_bytes: int | None = None) -> Standardiser:
    """``StandardScaler`` statistics of ``X`` from float64 row blocks (partial_fit), or the identity."""
    if not scale:
        return Standardiser()
    scaler = StandardScaler()
    for rows in row_blocks(len(X), X.shape[1], block_bytes):
        scaler.partial_fit(np.asarray(X[rows], dtype=np.float64))
    return Standardiser(scaler.mean_, scaler.scale_)


def blocked_gram(
    X: np.ndarray, Xe: np.ndarray, f: Standardiser, block_bytes: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    """``Z Z^T``, ``Ze Z^T``, the squared row norms of Z and Ze, and ``Z.var()``, with Z = f(X), Ze = f(Xe).

    Only two row blocks of Z are held in float64 at a time, so X and Xe can stay float16
    (or memory-mapped); with one block it is exactly the dense ``Z @ Z.T``.
    """
    blocks = row_blocks(len(X), X.shape[1], block_bytes)
    G = np.empty((len(X), len(X)))
    Ge = np.empty((len(Xe), len(X)))
    norms = np.empty(len(X))
    total = 0.0
    for i, a in enumerate(blocks):
        Za = f(X[a])
        norms[a] = np.einsum("ij,ij->i", Za, Za)
        total += float(Za.sum())
        G[a, a] = Za @ Za.T
        for b in blocks[:i]:
            G[a, b] = Za @ f(X[b]).T
            G[b, a] = G[a, b].T
    eval_norms = np.empty(len(Xe))
    for e in row_blocks(len(Xe), Xe.shape[1], block_bytes):
        Ze = f(Xe[e])
        eval_norms[e] = np.einsum("ij,ij->i", Ze, Ze)
        for b in blocks:
            Ge[e, b] = Ze @ (Za if len(blocks) == 1 else f(X[b])).T
    size = X.size or 1
    var = float(norms.sum()) / size - (total / size) ** 2
    return G, Ge, norms, eval_norms, max(var, 0.0)


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    """What the fitted preprocessing did: input width, PCA components kept and their variance share."""

    n_features: int
    pca: bool
    n_components: int
    variance: float  # fraction of the (scaled) variance the kept components explain; 1.0 without PCA

    @classmethod
    def from_pipeline(cls, prep: Pipeline, n_features: int) -> Preprocessing:
        pca = prep.named_steps["pca"]
        if pca == "passthrough":
            return cls(n_features, False, n_features, 1.0)
        return cls(n_features, True, int(pca.n_components_), float(pca.explained_variance_ratio_.sum()))


def gram_pca(
    G: np.ndarray, Ge: np.ndarray, n_features: int, fraction: float | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float, int, float]:
    """PCA on the Gram matrix: the Gram matrices of the principal-component scores.

    With the centred Gram matrix ``Gc = U diag(lam) U^T``, the train scores are
    ``U_k sqrt(lam_k)`` (PCA's ``transform`` up to the sign of each component, which no
    kernel sees), and the eval scores ``Gec U_k / sqrt(lam_k)``. Returns (scores Gram,
    eval-vs-train scores Gram, their squared row norms, the scores' overall variance,
    components kept, variance ratio kept). ``G`` and ``Ge`` are centred in place (memory):
    they are garbage afterwards.
    """
    n = len(G)
    # rank: the components an exact PCA solver returns
    lam, U, row_mean, total_mean = centred_eigh(G, rank=min(n, n_features))
    Gec = Ge
    Gec -= Ge.mean(axis=1)[:, None]
    Gec -= row_mean[None, :]
    Gec += total_mean
    k = pca_components(lam, fraction)
    Uk, lk = np.ascontiguousarray(U[:, :k]), lam[:k]
    del U
    root, divisor = score_scales(lk, n)  # a null component scores 0 (no axis; see null_eigenvalue)
    P = Uk * root
    Pe = (Gec @ Uk) / divisor
    var = float(lk.sum()) / (n * k)  # scores have zero mean per component
    kept = float(lk.sum() / lam.sum()) if lam.sum() > 0 else 1.0
    return P @ P.T, Pe @ P.T, np.einsum("ij,ij->i", P, P), np.einsum("ij,ij->i", Pe, Pe), var, k, kept


class Kernels:
    """Linear / rbf / sigmoid kernel matrices of (fit, eval) sets from ONE Gram product each."""

    def __init__(
        self, G: np.ndarray, Ge: np.ndarray, norms: np.ndarray, eval_norms: np.ndarray, gamma: float,
        fit_seconds: float = 0.0, eval_seconds: float = 0.0,
    ) -> None:
        self.G, self.Ge, self.n, self.ne, self.gamma = G, Ge, norms, eval_norms, gamma
        self.fit_seconds, self.eval_seconds = fit_seconds, eval_seconds

    @classmethod
    def from_matrices(cls, Z: np.ndarray, Ze: np.ndarray, gamma: float | str) -> Kernels:
        """Kernels of materialised (already preprocessed) fit and eval matrices."""
        start = time.perf_counter()
        G, n = Z @ Z.T, np.einsum("ij,ij->i", Z, Z)
        fit_seconds = time.perf_counter() - start
        start = time.perf_counter()
        Ge, ne = Ze @ Z.T, np.einsum("ij,ij->i", Ze, Ze)
        return cls(G, Ge, n, ne, resolve_gamma(gamma, Z), fit_seconds, time.perf_counter() - start)

    def _make(self, kernel: str, G: np.ndarray, na: np.ndarray) -> np.ndarray:
        if kernel == "linear":
            return G
        if kernel == "rbf":  # exp(-gamma * max(|a|^2 + |b|^2 - 2 a.b, 0)), in place: two n x n buffers, not five
            K = np.add(na[:, None], self.n[None, :])
            twice = np.multiply(G, 2)
            np.subtract(K, twice, out=K)
            del twice
            np.maximum(K, 0, out=K)
            np.multiply(K, -self.gamma, out=K)
            return np.exp(K, out=K)
        return np.tanh(self.gamma * G)  # sigmoid, coef0 = 0 as in SVC's default

    def get(self, kernel: str) -> tuple[np.ndarray, np.ndarray, float, float]:
        """(K_fit, K_eval, seconds to build K_fit, seconds to build K_eval) for ``kernel``."""
        t0 = time.perf_counter()
        K = self._make(kernel, self.G, self.n)
        t1 = time.perf_counter()
        Ke = self._make(kernel, self.Ge, self.ne)
        t2 = time.perf_counter()
        return K, Ke, self.fit_seconds + t1 - t0, self.eval_seconds + t2 - t1


def gram_kernels(
    X: np.ndarray, Xe: np.ndarray, scale: bool, n_components: float | None, gamma: float | str,
    block_bytes: int | None = None,
) -> tuple[Kernels, Preprocessing, float]:
    """Kernels of the preprocessed (scaled, PCA'd) X and Xe, without materialising them in float64.

    Also returns the seconds spent on preprocessing (scaler statistics, PCA eigendecomposition);
    the kernels' own seconds are the Gram products.
    """
    t0 = time.perf_counter()
    f = fit_standardiser(X, scale, block_bytes)
    t1 = time.perf_counter()
    G, Ge, norms, eval_norms, var = blocked_gram(X, Xe, f, block_bytes)
    t2 = time.perf_counter()
    d = X.shape[1]
    if n_components is None:
        prep = Preprocessing(d, False, d, 1.0)
    else:
        G, Ge, norms, eval_norms, var, k, kept = gram_pca(G, Ge, d, n_components)
        prep, d = Preprocessing(d, True, k, kept), k
    t3 = time.perf_counter()
    kernels = Kernels(G, Ge, norms, eval_norms, gamma_from_var(gamma, d, var), t2 - t1, 0.0)
    return kernels, prep, (t1 - t0) + (t3 - t2)


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
        # libsvm's kernel cache only copies rows of a matrix already in memory: keep it small
        clf: Any = SVC(kernel="precomputed", C=C, random_state=seed, cache_size=PRECOMPUTED_CACHE_MB)
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
    """Rows (one per n_components x kernel x C), test predictions per row, what each preprocessing did."""

    rows: list[dict[str, Any]]
    predictions: list[np.ndarray]
    preprocessors: dict[str, Preprocessing]


def _score_all(
    X: np.ndarray, y: np.ndarray, Xe: np.ndarray, n_components: float | None, params: ClassifyParams, seed: int,
) -> tuple[Preprocessing, dict[tuple[str, float], tuple[np.ndarray, float, float]], float]:
    """Preprocess on X (scale?, PCA?), then every kernel x C on it, predicting Xe; also the transform seconds.

    When every kernel runs on a precomputed kernel, X and Xe are used in row blocks
    (:func:`gram_kernels`); otherwise they are materialised in float64 for the Pipeline.
    """
    kinds = {k: estimator_kind(k, len(X), params) for k in params.kernels}
    Z = Ze = None
    kernels: Kernels | None = None
    if set(kinds.values()) == {"precomputed"}:
        kernels, info, transform_seconds = gram_kernels(X, Xe, params.scale, n_components, params.gamma)
    else:
        start = time.perf_counter()
        prep = preprocessor(params.scale, n_components)
        Z = prep.fit_transform(np.asarray(X, dtype=np.float64))
        Ze = prep.transform(np.asarray(Xe, dtype=np.float64))
        transform_seconds = time.perf_counter() - start
        info = Preprocessing.from_pipeline(prep, X.shape[1])
        if "precomputed" in kinds.values():
            kernels = Kernels.from_matrices(Z, Ze, params.gamma)
    out = {
        (k, C): fit_predict(kinds[k], k, C, y, Z, Ze, kernels, params, seed)  # type: ignore[arg-type]
        for k in params.kernels
        for C in params.C
    }
    return info, out, transform_seconds


def cv_scores(
    X: np.ndarray, y: np.ndarray, n_components: float | None, params: ClassifyParams, seed: int
) -> dict[tuple[str, float], np.ndarray]:
    """Per (kernel, C): accuracy on each held-out fold of a seeded StratifiedKFold of (X, y)."""
    folds = StratifiedKFold(params.cv_folds, shuffle=True, random_state=seed)
    scores: dict[tuple[str, float], list[float]] = {}
    for fit_idx, val_idx in folds.split(np.zeros(len(y)), y):
        _, out, _ = _score_all(X[fit_idx], y[fit_idx], X[val_idx], n_components, params, seed)
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
    preps: dict[str, Preprocessing] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # LinearSVC: the achieved accuracy is recorded
        for n_components in params.n_components:
            scores = cv_scores(X, y, n_components, params, seed)
            prep, out, transform_seconds = _score_all(X, y, Xt, n_components, params, seed)
            preps[pca_label(n_components)] = prep
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
                            "pca_components": prep.n_components,
                            "pca_variance": prep.variance,
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
