"""GramPCA: the same PCA as scikit-learn's exact full-SVD solver, on wide and tall matrices."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.decomposition import PCA

from transferlab.transfer.grid import gram_pca, preprocessor
from transferlab.transfer.pca import GramPCA, pca_components


def _low_rank(n: int, d: int, seed: int = 0, dtype=np.float64) -> tuple[np.ndarray, np.ndarray]:
    """Rows with a decaying spectrum plus noise and a non-zero mean (so centring matters); train and new rows."""
    rng = np.random.default_rng(seed)
    basis = rng.normal(size=(12, d)) * np.geomspace(10, 0.5, 12)[:, None]
    make = lambda m: (rng.normal(size=(m, 12)) @ basis + 0.3 * rng.normal(size=(m, d)) + 5.0).astype(dtype)  # noqa: E731
    return make(n), make(n // 3)


EPS = np.finfo(np.float64).eps


def _same_up_to_sign(A: np.ndarray, B: np.ndarray, rtol: float) -> None:
    signs = np.sign(np.sum(A * B, axis=0))
    np.testing.assert_allclose(A * signs, B, rtol=rtol, atol=rtol * np.abs(B).max())


def _rank_tolerance(singular_values: np.ndarray, shape: tuple[int, int]) -> float:
    """numpy's ``matrix_rank`` rule: singular values below this are rounding noise, not data."""
    return float(singular_values[0]) * max(shape) * EPS


@pytest.mark.parametrize("shape", [(40, 300), (300, 40)], ids=["wide: Gram eigh", "tall: covariance eigh"])
@pytest.mark.parametrize("fraction", [0.95, 0.5, None])
def test_gram_pca_equals_full_svd_pca(shape, fraction):
    X, X_new = _low_rank(*shape)
    ours = GramPCA(fraction).fit(X)
    ref = PCA(fraction, svd_solver="full").fit(X)
    assert ours.n_components_ == ref.n_components_
    if fraction is not None:
        assert 0 < ours.n_components_ < min(shape)  # the fraction really cut components
    # eigenvalues move by at most ~ the rounding of the matrix they come from (Weyl): m eps lambda_max
    m = max(shape)
    np.testing.assert_allclose(ours.explained_variance_ratio_, ref.explained_variance_ratio_, rtol=0, atol=m * EPS)
    np.testing.assert_allclose(ours.explained_variance_, ref.explained_variance_, rtol=0,
                               atol=m * EPS * ref.explained_variance_[0])
    np.testing.assert_allclose(ours.mean_, ref.mean_, rtol=1e-12)
    k = min(ours.n_components_, 12)  # the signal components (the noise tail has near-equal eigenvalues)
    _same_up_to_sign(ours.transform(X)[:, :k], ref.transform(X)[:, :k], rtol=1e-7)
    _same_up_to_sign(ours.transform(X_new)[:, :k], ref.transform(X_new)[:, :k], rtol=1e-7)
    # Only components above the rank tolerance carry data. A centred 40-row matrix has rank 39:
    # its 40th component (kept when fraction is None) is an arbitrary axis of the null space in
    # any solver, and its scores are rounding noise that changes with the CPU's BLAS kernels.
    s = ref.singular_values_
    real = s > _rank_tolerance(s, shape)
    assert real.sum() == min(shape[0] - 1, shape[1], ours.n_components_)
    # fit_transform's scores (U sqrt(lambda) on the Gram path) are transform's (Xc V) by another
    # route: a score of component j moves by ~ m eps s_max^2 / s_j (first-order perturbation)
    fitted, transformed = GramPCA(fraction).fit_transform(X), ours.transform(X)
    bound = m * EPS * s[0] ** 2 / s[real]
    assert np.all(np.abs(fitted[:, real] - transformed[:, real]).max(axis=0) <= bound)
    assert np.all(np.sum(fitted[:, real] * transformed[:, real], axis=0) > 0)  # same signs as transform
    # a null component has no axis: it scores exactly 0, on the training rows and on new ones
    for scores in (fitted, transformed, ours.transform(X_new)):
        assert not np.any(scores[:, ~real])
    # dot products of transformed rows (what every SVM kernel sees) match over every component
    # with variance
    a, b = ours.transform(X_new)[:, real], ref.transform(X_new)[:, real]
    np.testing.assert_allclose(a @ a.T, b @ b.T, rtol=1e-7, atol=1e-7 * np.abs(b @ b.T).max())


@pytest.mark.parametrize("fraction", [None, 0.95])
def test_gram_kernels_of_a_wide_layer_equal_pca_scores_kernels(fraction):
    """The stage's precomputed path: kernels of the PCA scores over the components with variance.

    With every component kept, the null one (centred 40 rows have rank 39) contributes nothing:
    without that rule a new row's score on it was noise over noise, unbounded.
    """
    X, X_new = _low_rank(40, 300)
    G, Ge, norms, eval_norms, _, k, _ = gram_pca(X @ X.T, X_new @ X.T, X.shape[1], fraction)
    ref = PCA(fraction, svd_solver="full").fit(X)
    assert k == ref.n_components_
    s = ref.singular_values_
    real = s > _rank_tolerance(s, X.shape)
    Z, Ze = ref.transform(X)[:, real], ref.transform(X_new)[:, real]
    # products of scores: rounding of the Gram route is ~ m eps s_max^2 per entry
    tol = max(X.shape) * EPS * s[0] ** 2
    np.testing.assert_allclose(G, Z @ Z.T, rtol=0, atol=100 * tol)
    np.testing.assert_allclose(norms, np.einsum("ij,ij->i", Z, Z), rtol=0, atol=100 * tol)
    # a new row's score on component j: ~ m eps s_max^2 / s_j times the row's size
    row = np.linalg.norm(X_new - ref.mean_, axis=1).max()
    tol_e = max(X.shape) * EPS * s[0] ** 2 / s[real][-1] * row
    np.testing.assert_allclose(Ge, Ze @ Z.T, rtol=0, atol=100 * tol_e * np.abs(Z).max())
    np.testing.assert_allclose(eval_norms, np.einsum("ij,ij->i", Ze, Ze), rtol=0, atol=100 * tol_e * np.abs(Ze).max())


def test_stage_pipeline_uses_gram_pca_and_it_keeps_float32():
    X, _ = _low_rank(30, 200, dtype=np.float32)
    prep = preprocessor(True, 0.95).fit(X.astype(np.float64))
    pca = prep.named_steps["pca"]
    assert isinstance(pca, GramPCA)
    ref = PCA(0.95, svd_solver="full").fit(prep.named_steps["scale"].transform(X.astype(np.float64)))
    assert pca.n_components_ == ref.n_components_
    # float32 input (kept as float32, like scikit-learn's PCA) gives the float64 result to float32 precision
    single, double = GramPCA(0.95).fit(X), GramPCA(0.95).fit(X.astype(np.float64))
    assert single.components_.dtype == np.float32 and single.n_components_ == double.n_components_
    _same_up_to_sign(single.transform(X)[:, :5], double.transform(X.astype(np.float64))[:, :5], rtol=1e-3)


def test_pca_components_follows_sklearns_rule():
    lam = np.array([5.0, 3.0, 1.0, 0.5, 0.5])  # cumulative ratios 0.5, 0.8, 0.9, 0.95, 1.0
    assert pca_components(lam, 0.8) == 3  # strictly more than the fraction, as PCA's searchsorted(side="right")
    assert pca_components(lam, 0.79) == 2
    assert pca_components(lam, None) == 5
    for fraction in (0.3, 0.8, 0.9, 0.96):
        X = np.diag(np.sqrt(lam)) @ np.linalg.qr(np.random.default_rng(1).normal(size=(5, 5)))[0]
        X = np.vstack([X, -X]) * np.sqrt(9 / 2)  # zero mean, variances exactly lam
        assert PCA(fraction, svd_solver="full").fit(X).n_components_ == pca_components(lam, fraction)
