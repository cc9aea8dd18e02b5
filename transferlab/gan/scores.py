"""Scores a reader can interpret beside FID: the domain classifier's verdict on samples.

The classifier's softmax probabilities on generated images give its mean confidence
(how sure it is that a sample is *some* class: blurred or hybrid samples score low), the
class histogram of its predictions, and mode coverage: how many classes get at least half
their fair share of the samples (an unconditional GAN that collapses onto a few garments
covers few), and for conditional variants the accuracy against the requested labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

COVERAGE_SHARE = 0.5  # a class is covered when it gets >= this fraction of n / n_classes samples


def class_histogram(probs: np.ndarray) -> np.ndarray:
    """Counts of the predicted (argmax) class, one per class, from (N, n_classes) probabilities."""
    return np.bincount(probs.argmax(1), minlength=probs.shape[1])


def classes_covered(histogram: np.ndarray, share: float = COVERAGE_SHARE) -> int:
    """How many classes receive at least ``share`` of their fair share ``N / n_classes``."""
    fair = histogram.sum() / len(histogram)
    return int((histogram >= share * fair).sum())


def sample_scores(
    probs: np.ndarray, classes: Sequence[str], requested: np.ndarray | None
) -> dict[str, Any]:
    """Metrics from the classifier's probabilities on samples (``requested`` labels if conditional)."""
    hist = class_histogram(probs)
    pred = probs.argmax(1)
    return {
        "mean_confidence": float(probs.max(1).mean()),
        "class_histogram": {name: int(n) for name, n in zip(classes, hist, strict=True)},
        "classes_covered": classes_covered(hist),
        "conditional_accuracy": None if requested is None else float(np.mean(pred == requested)),
    }
