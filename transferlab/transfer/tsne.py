"""A 2-D t-SNE picture of one cut layer's cached features, coloured by class.

A seeded random subsample (train and test images together, at most ``max_points``) is
standardised and embedded with scikit-learn's ``TSNE`` (PCA init, ``random_state=seed``).
As a number to go with the picture, a k-nearest-neighbour classifier is fitted on the
embedded TRAIN points and scored on the embedded TEST points: t-SNE never sees labels,
so this measures how well the classes separate in the picture itself.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np
from sklearn.manifold import TSNE
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler

from transferlab.errors import UserError
from transferlab.transfer.params import TsneParams


@dataclasses.dataclass
class TsneResult:
    embedding: np.ndarray  # (n, 2)
    labels: np.ndarray  # (n,)
    is_test: np.ndarray  # (n,)
    metrics: dict[str, Any]


def subsample(n: int, max_points: int, seed: int) -> np.ndarray:
    """Sorted indices of a seeded random subset of size min(n, max_points)."""
    if n <= max_points:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_points, replace=False))


def run(
    feats: np.ndarray, labels: np.ndarray, is_test: np.ndarray, params: TsneParams, seed: int
) -> TsneResult:
    """Embed a subsample of ``feats`` in 2-D; KL divergence and 2-D kNN accuracy as metrics."""
    idx = subsample(len(feats), params.max_points, seed)
    X = np.asarray(feats[idx], dtype=np.float64)
    if not np.isfinite(X).all():
        raise UserError(f"features of layer {params.layer!r} contain NaN/inf; set extract.pool: avg or pick another layer")
    y, test = np.asarray(labels)[idx], np.asarray(is_test, dtype=bool)[idx]
    if len(X) <= params.perplexity:
        raise UserError(f"tsne.perplexity ({params.perplexity:g}) must be below the number of points ({len(X)}); lower it")
    start = time.perf_counter()
    X = StandardScaler().fit_transform(X)
    tsne = TSNE(
        n_components=2,
        perplexity=params.perplexity,
        max_iter=params.max_iter,
        init="pca",
        learning_rate="auto",
        random_state=seed,
    )
    emb = tsne.fit_transform(X)
    seconds = time.perf_counter() - start
    knn_acc = None
    if test.any() and (~test).sum() >= params.knn_k:
        knn = KNeighborsClassifier(n_neighbors=params.knn_k).fit(emb[~test], y[~test])
        knn_acc = float(knn.score(emb[test], y[test]))
    metrics = {
        "layer": params.layer,
        "dim": int(feats.shape[1]),
        "points": len(idx),
        "train_points": int((~test).sum()),
        "test_points": int(test.sum()),
        "perplexity": params.perplexity,
        "kl_divergence": float(tsne.kl_divergence_),
        "knn_k": params.knn_k,
        "knn_test_acc": knn_acc,
        "seconds": seconds,
    }
    return TsneResult(emb, y, test, metrics)


def tsne_figure(result: TsneResult, classes: list[str], title: str):
    """Scatter of the embedding, one colour per class (train dots, test crosses)."""
    from transferlab.figures import plt

    fig, ax = plt.subplots(figsize=(6, 5))
    cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
    for c, name in enumerate(classes):
        for split, marker in ((False, "o"), (True, "x")):
            sel = (result.labels == c) & (result.is_test == split)
            if sel.any():
                ax.scatter(
                    result.embedding[sel, 0], result.embedding[sel, 1], s=8, marker=marker,
                    color=cmap(c % cmap.N), label=name if not split else None, alpha=0.8, linewidths=0.8,
                )
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(fontsize=7, markerscale=1.5, loc="best", ncol=1 if len(classes) <= 10 else 2)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig
