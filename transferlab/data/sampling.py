"""Seeded stratified sampling: subsamples and train/test splits that keep class proportions.

One mechanism serves every source (``max_train``/``max_test`` limits, ``test_fraction``
splits, ``train_per_class`` splits), so the same seed always picks the same indices.
Each class gets its proportional share of the sample (largest-remainder rounding),
drawn without replacement with a NumPy generator seeded from ``seed``.
"""

from __future__ import annotations

import numpy as np


def _rng(seed: int, stream: int) -> np.random.Generator:
    """Independent generator per use (``stream``) so one draw never shifts another."""
    return np.random.default_rng([seed, stream])


def stratified_subset(labels: np.ndarray, n: int, seed: int, stream: int = 0) -> np.ndarray:
    """Sorted indices of ``n`` items of ``labels`` with the class proportions kept."""
    labels = np.asarray(labels)
    total = len(labels)
    if n >= total:
        return np.arange(total)
    if n <= 0:
        return np.arange(0)
    classes, counts = np.unique(labels, return_counts=True)
    quota = counts * (n / total)
    take = np.floor(quota).astype(int)
    remainder = n - int(take.sum())
    if remainder:
        # largest fractional parts first; ties broken by class order (stable sort)
        order = np.argsort(-(quota - take), kind="stable")
        take[order[:remainder]] += 1
    rng = _rng(seed, stream)
    chosen = [
        rng.choice(np.flatnonzero(labels == c), size=k, replace=False)
        for c, k in zip(classes, take, strict=True)
        if k
    ]
    return np.sort(np.concatenate(chosen))


def stratified_test_mask(labels: np.ndarray, test_fraction: float, seed: int) -> np.ndarray:
    """Boolean mask: a stratified ``test_fraction`` of the items marked as test."""
    n_test = int(round(test_fraction * len(labels)))
    mask = np.zeros(len(labels), dtype=bool)
    mask[stratified_subset(labels, n_test, seed, stream=1)] = True
    return mask


def per_class_train_mask(labels: np.ndarray, train_per_class: int, seed: int) -> np.ndarray:
    """Boolean test mask: ``train_per_class`` items of each class drawn for train, rest test.

    (The 15-Scene protocol: 100 training images per class, the rest for testing.)
    """
    labels = np.asarray(labels)
    rng = _rng(seed, 2)
    is_test = np.ones(len(labels), dtype=bool)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        is_test[rng.choice(idx, size=min(train_per_class, len(idx)), replace=False)] = False
    return is_test


def limit_split(
    labels: np.ndarray, is_test: np.ndarray, max_train: int | None, max_test: int | None, seed: int
) -> np.ndarray:
    """Sorted indices keeping at most ``max_train`` train and ``max_test`` test items."""
    keep = []
    for split_mask, limit, stream in ((~is_test, max_train, 3), (is_test, max_test, 4)):
        idx = np.flatnonzero(split_mask)
        if limit is not None:
            idx = idx[stratified_subset(labels[idx], limit, seed, stream)]
        keep.append(idx)
    return np.sort(np.concatenate(keep))
