"""Exact PCA for the SVM grid, fast on wide layers: the eigendecomposition of the smaller Gram matrix.

``PCA(n_components=0.95)`` in scikit-learn needs an exact solver for a variance fraction:
``full`` (LAPACK SVD of the whole n x D matrix) or ``covariance_eigh`` (eigh of D x D).
Deep features are wide (VGG16 pool5: 25,088 dims) and datasets small (15-Scene: 1500
train images), so both cost O(n D^2)-ish or worse: 47 s of a 49 s PCA + RBF fit on 2000 x
25,088 on one core. The same components come from the n x n Gram matrix of the centred
rows (``X X^T`` double-centred): one BLAS product plus an n x n eigh, a few seconds there.
:class:`GramPCA` does that when D > n and otherwise defers to scikit-learn's
``covariance_eigh`` solver; :func:`centred_eigh` and :func:`pca_components` are shared
with the precomputed-kernel path (``grid.gram_pca``), which never materialises the rows.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.decomposition import PCA
from sklearn.utils.validation import check_is_fitted, validate_data


def pca_components(eigenvalues: np.ndarray, fraction: float | None) -> int:
    """How many components ``PCA(n_components=fraction)`` keeps for these (descending) variances."""
    if fraction is None or fraction >= 1:
        return len(eigenvalues)
    ratio_cumsum = np.cumsum(eigenvalues / eigenvalues.sum())
    return int(np.searchsorted(ratio_cumsum, fraction, side="right") + 1)  # PCA's own rule


def null_eigenvalue(lam: np.ndarray, n: int) -> float:
    """Eigenvalues of an n x n Gram matrix at or below this are zero to eigh's accuracy.

    ``eigh`` returns each eigenvalue with an absolute error of about n eps lambda_max, so a
    direction of no variance (centred rows have rank n - 1) comes back as a tiny, possibly
    positive, number. Its axis ``Xc^T u / sqrt(lambda)`` is then noise divided by noise, and
    a new row's score on it is unbounded; such components must score 0 instead.
    """
    return float(lam[0]) * n * np.finfo(np.float64).eps if len(lam) else 0.0


def score_scales(lk: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(sqrt(lambda), divisor)`` per kept component: a train score is ``u sqrt(lambda)``, an
    axis or a new row's score is divided by ``divisor``; both give 0 where lambda is null."""
    real = lk > null_eigenvalue(lk, n)
    root = np.sqrt(np.where(real, lk, 0.0))
    return root, np.where(real, root, np.inf)


def centred_eigh(G: np.ndarray, rank: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Eigenpairs of the double-centred Gram matrix ``G``, largest first, at most ``rank`` of them.

    ``G`` is centred and decomposed IN PLACE (it is garbage afterwards): with the MRRR
    driver (``evr``, O(n) workspace) the peak is G plus the eigenvectors, where
    ``np.linalg.eigh`` (``evd``) adds a centred copy and ~2 n^2 of workspace; same speed.
    Returns (eigenvalues clipped at 0, eigenvectors as columns, G's row means, G's mean);
    the means centre a cross Gram matrix ``Ge`` the same way (``Ge - Ge.mean(1) - r + t``).
    """
    row_mean = G.mean(axis=1)
    total_mean = float(row_mean.mean())
    G -= row_mean[:, None]  # G - r - r^T + t
    G -= row_mean[None, :]
    G += total_mean
    lam, U = scipy.linalg.eigh(G, overwrite_a=True, check_finite=False, driver="evr")
    return np.clip(lam[::-1][:rank], 0.0, None), U[:, ::-1][:, :rank], row_mean, total_mean


class GramPCA(TransformerMixin, BaseEstimator):
    """``PCA(n_components)`` with an exact solver picked for the shape: Gram eigh when D > n.

    Same ``n_components_``, ``explained_variance_ratio_``, ``mean_`` and components (up to
    each component's sign, which no SVM kernel sees) as ``PCA(svd_solver="full")``.
    ``n_components``: a variance fraction in (0, 1), or None / 1.0 for every component.
    On the Gram path a component without variance (see :func:`null_eigenvalue`) scores 0
    where scikit-learn returns an arbitrary unit axis of the null space.
    """

    def __init__(self, n_components: float | None = None) -> None:
        self.n_components = n_components

    def fit(self, X: np.ndarray, y: object = None) -> GramPCA:
        self._fit(X)
        return self

    def fit_transform(self, X: np.ndarray, y: object = None) -> np.ndarray:
        """``fit(X).transform(X)``; on the Gram path the scores are ``U_k sqrt(lam_k)``, one product fewer."""
        scores = self._fit(X)
        return scores if scores is not None else self.transform(X)

    def _fit(self, X: np.ndarray) -> np.ndarray | None:
        """Fit; return the training rows' scores when the Gram path has them for free."""
        X = validate_data(self, X, dtype=[np.float64, np.float32])
        n, d = X.shape
        fraction = None if self.n_components is None or self.n_components >= 1 else self.n_components
        if d <= n:  # scikit-learn does this shape well: eigh of the D x D covariance
            pca = PCA(n_components=fraction, svd_solver="covariance_eigh").fit(X)
            self.mean_, self.components_ = pca.mean_, pca.components_
            self.explained_variance_, self.explained_variance_ratio_ = pca.explained_variance_, pca.explained_variance_ratio_
            self.n_components_ = int(pca.n_components_)
            return None
        self.mean_ = X.mean(axis=0)
        lam, U, _, _ = centred_eigh(X @ X.T, rank=min(n, d))
        k = pca_components(lam, fraction)
        Uk, lk = U[:, :k], lam[:k]
        # centred rows' principal axes: Xc^T U_k / sqrt(lam_k), with Xc^T U = X^T U - mean (1^T U);
        # a null component (no variance to eigh's accuracy) has no axis: its row is 0, it scores 0
        root, divisor = score_scales(lk, n)
        axes = X.T @ Uk - np.outer(self.mean_, Uk.sum(axis=0))
        axes /= divisor
        self.components_ = np.ascontiguousarray(axes.T)
        self.explained_variance_ = lk / max(n - 1, 1)
        total = lam.sum()
        self.explained_variance_ratio_ = lk / total if total > 0 else np.ones(k) / k
        self.n_components_ = k
        return Uk * root

    def transform(self, X: np.ndarray) -> np.ndarray:
        check_is_fitted(self, "components_")
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        return (X - self.mean_) @ self.components_.T
