"""classify's memory behaviour: the head fits in float32 without a float64 copy."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import sklearn
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from transferlab.transfer import heads


def _blobs(n: int = 600, d: int = 300, classes: int = 4, seed: int = 0):
    """float16 class blobs, rows sorted by class, test rows interleaved (like a 15-Scene extract)."""
    rng = np.random.default_rng(seed)
    labels = np.sort(np.arange(n) % classes)
    X = (rng.normal(0, 0.6, (classes, d))[labels] + rng.normal(0, 1, (n, d))).astype(np.float16)
    is_test = rng.random(n) < 0.4
    return X, labels, is_test


def test_head_dtype_is_float32_where_lbfgs_keeps_it():
    major, minor = (int(p) for p in sklearn.__version__.split(".")[:2])
    assert heads.HEAD_DTYPE is (np.float32 if (major, minor) >= (1, 9) else np.float64)
    assert heads._at_least("1.10.dev0", (1, 9)) and heads._at_least("1.9.0rc1", (1, 9))
    assert not heads._at_least("1.8.0", (1, 9))


def test_softmax_head_fits_head_dtype_without_a_train_sized_copy(monkeypatch):
    seen: dict = {}

    class Recording(LogisticRegression):
        def fit(self, X, y, sample_weight=None):
            tracemalloc.start()
            try:
                out = super().fit(X, y, sample_weight)
                seen.update(dtype=X.dtype, nbytes=X.nbytes, peak=tracemalloc.get_traced_memory()[1])
            finally:
                tracemalloc.stop()
            return out

    monkeypatch.setattr(heads, "LogisticRegression", Recording)
    # many rows against lbfgs' own memory (a few m x (classes x dims) histories) and fixed overhead
    X, y, is_test = _blobs(n=2000, d=1000)
    row = heads.softmax_head("l", (X[~is_test], y[~is_test]), (X[is_test], y[is_test]),
                             C=1.0, max_iter=200, scale=True, seed=0)
    assert seen["dtype"] == heads.HEAD_DTYPE
    # no copy of X during the fit (a float64 one would be 2 x a float32 X's nbytes)
    assert seen["peak"] < 0.5 * seen["nbytes"], seen
    assert row["test_acc"] > 0.9


def test_softmax_head_predicts_like_the_float64_pipeline():
    X, y, is_test = _blobs(seed=1)
    row = heads.softmax_head("l", (X[~is_test], y[~is_test]), (X[is_test], y[is_test]),
                             C=0.5, max_iter=500, scale=True, seed=0)
    ref = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=500, random_state=0))
    ref.fit(X[~is_test].astype(np.float64), y[~is_test])
    ref_acc = float(np.mean(ref.predict(X[is_test].astype(np.float64)) == y[is_test]))
    assert row["test_acc"] == pytest.approx(ref_acc, abs=2 / is_test.sum())  # float32 rounding: a row or two
    assert row["dim"] == X.shape[1] and row["model"] == "softmax"
