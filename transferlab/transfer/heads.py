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

from transferlab.transfer.grid import fit_standardiser, row_blocks


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
    # statistics from row blocks (StandardScaler.fit would hold a second train-sized float64
    # temporary) and the one float64 copy of train scaled in place; X may be float16 cache
    # rows. The test rows are scaled and predicted in row blocks.
    clf = LogisticRegression(C=C, max_iter=max_iter, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # n_iter == max_iter says so in the row
        t0 = time.perf_counter()
        prepare = fit_standardiser(X, scale)
        Z = prepare(X)
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
