"""GramPCA: the same PCA as scikit-learn's exact full-SVD solver, on wide and tall matrices."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.decomposition import PCA

from transferlab.transfer.grid import preprocessor
from transferlab.transfer.pca import GramPCA, pca_components


def _low_rank(n: int, d: int, seed: int = 0, dtype=np.float64) -> tuple[np.ndarray, np.ndarray]:
    """Rows with a decaying spectrum plus noise and a non-zero mean (so centring matters); train and new rows."""
    rng = np.random.default_rng(seed)
    basis = rng.normal(size=(12, d)) * np.geomspace(10, 0.5, 12)[:, None]
    make = lambda m: (rng.normal(size=(m, 12)) @ basis + 0.3 * rng.normal(size=(m, d)) + 5.0).astype(dtype)  # noqa: E731
    return make(n), make(n // 3)


def _same_up_to_sign(A: np.ndarray, B: np.ndarray, rtol: float) -> None:
    signs = np.sign(np.sum(A * B, axis=0))
    np.testing.assert_allclose(A * signs, B, rtol=rtol, atol=rtol * np.abs(B).max())


@pytest.mark.parametrize("shape", [(40, 300), (300, 40)], ids=["wide: Gram eigh", "tall: covariance eigh"])
@pytest.mark.parametrize("fraction", [0.95, 0.5, None])
def test_gram_pca_equals_full_svd_pca(shape, fraction):
    X, X_new = _low_rank(*shape)
    ours = GramPCA(fraction).fit(X)
    ref = PCA(fraction, svd_solver="full").fit(X)
    assert ours.n_components_ == ref.n_components_
    if fraction is not None:
        assert 0 < ours.n_components_ < min(shape)  # the fraction really cut components
    np.testing.assert_allclose(ours.explained_variance_ratio_, ref.explained_variance_ratio_, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(ours.explained_variance_, ref.explained_variance_, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(ours.mean_, ref.mean_, rtol=1e-12)
    k = min(ours.n_components_, 12)  # the signal components (the noise tail has near-equal eigenvalues)
    _same_up_to_sign(ours.transform(X)[:, :k], ref.transform(X)[:, :k], rtol=1e-7)
    np.testing.assert_allclose(GramPCA(fraction).fit_transform(X), ours.transform(X), rtol=1e-7,
                               atol=1e-7 * np.abs(ref.transform(X)).max())  # same signs as transform
    _same_up_to_sign(ours.transform(X_new)[:, :k], ref.transform(X_new)[:, :k], rtol=1e-7)
    # dot products of transformed rows (what every SVM kernel sees) match over every kept component
    # with variance; a null component (centred data has rank n - 1) has an arbitrary axis in any solver
    real = ref.explained_variance_ > 1e-9 * ref.explained_variance_[0]
    a, b = ours.transform(X_new)[:, real], ref.transform(X_new)[:, real]
    np.testing.assert_allclose(a @ a.T, b @ b.T, rtol=1e-7, atol=1e-7 * np.abs(b @ b.T).max())


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
