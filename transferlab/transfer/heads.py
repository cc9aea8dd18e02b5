"""A linear softmax head on deep features (the "perceptron on deep features" of the EuroSAT course).

Multinomial logistic regression (scikit-learn's ``LogisticRegression``, lbfgs) after the
same optional standardisation as the SVM grid; one fixed C from params, no CV: it is the
reference a fine-tuned head (``finetune@...-head``) is compared with.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from transferlab.transfer.grid import Standardiser, fit_standardiser, row_blocks

# The dtype the head is fitted in: scikit-learn >= 1.9 (pyproject's floor) casts lbfgs'
# coefficients to X's dtype (LinearModelLoss.weight_intercept_raw), so float32 X stays
# float32 throughout: half the memory of float64.
HEAD_DTYPE = np.float32


def standardised(X: np.ndarray, prepare: Standardiser, dtype: type = HEAD_DTYPE) -> np.ndarray:
    """``prepare(X)`` (computed in float64) stored as ``dtype``, one row block at a time."""
    Z = np.empty(X.shape, dtype=dtype)
    for rows in row_blocks(len(X), X.shape[1]):
        Z[rows] = prepare(X[rows])
    return Z


def softmax_head(
    layer: str,
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    *,
    C: float,
    max_iter: int,
    scale: bool,
    seed: int,
) -> dict[str, Any]:
    """Fit the softmax head on ``train`` and score it on ``test``; one table row."""
    X, y = train
    Xt, yt = test
    # The same ops as Pipeline(StandardScaler(), LogisticRegression()), but with the scaler's
    # statistics from float64 row blocks (StandardScaler.fit would hold train-sized float64
    # temporaries) and the scaled train rows stored in ONE HEAD_DTYPE (float32) matrix, filled
    # a row block at a time from X (float16 cache rows, or Rows read on demand): the head's
    # only train-sized allocation, half a float64 copy. Test rows likewise, in blocks.
    clf = LogisticRegression(C=C, max_iter=max_iter, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # n_iter == max_iter says so in the row
        t0 = time.perf_counter()
        prepare = fit_standardiser(X, scale)
        Z = standardised(X, prepare)
        clf.fit(Z, y)
        t1 = time.perf_counter()
        pred = np.concatenate(
            [clf.predict(standardised(Xt[r], prepare)) for r in row_blocks(len(Xt), Xt.shape[1])]
        )
        t2 = time.perf_counter()
        train_acc = float(np.mean(clf.predict(Z) == y))
        del Z
    return {
        "layer": layer,
        "dim": int(X.shape[1]),
        "model": "softmax",
        "C": float(C),
        "n_iter": int(np.max(clf.n_iter_)),
        "converged": bool(np.max(clf.n_iter_) < max_iter),
        "train_acc": train_acc,
        "test_acc": float(np.mean(pred == yt)),
        "fit_seconds": t1 - t0,
        "predict_seconds": t2 - t1,
    }
