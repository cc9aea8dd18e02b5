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
from sklearn.preprocessing import StandardScaler

from transferlab.transfer.grid import row_blocks


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
    # The same ops as Pipeline(StandardScaler(), LogisticRegression()), but the scaler works in
    # place on the one float64 copy of train made here (X may be float16 rows of the feature
    # cache); the test rows are scaled and predicted in row blocks.
    scaler = StandardScaler(copy=False) if scale else None
    clf = LogisticRegression(C=C, max_iter=max_iter, random_state=seed)

    def prepare(rows: np.ndarray, fit: bool = False) -> np.ndarray:
        Z = np.array(rows, dtype=np.float64)  # float64: float32 moved fc7's digits accuracy by 0.2 points
        if scaler is None:
            return Z
        return scaler.fit_transform(Z) if fit else scaler.transform(Z)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # n_iter == max_iter says so in the row
        t0 = time.perf_counter()
        Z = prepare(X, fit=True)
        clf.fit(Z, y)
        t1 = time.perf_counter()
        pred = np.concatenate([clf.predict(prepare(Xt[r])) for r in row_blocks(len(Xt), Xt.shape[1])])
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
