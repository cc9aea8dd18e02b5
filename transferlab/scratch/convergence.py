"""Convergence numbers from a logged training curve.

"How many iterations until the model reaches X% training accuracy" turns "sigmoid
converges more slowly than ReLU" from an impression into a number. It is read off the
per-k-iteration rows that :func:`transferlab.training.loop.fit` logs, so it is exactly as
fine-grained as ``log_every``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence


def iterations_to_threshold(
    rows: Iterable[Mapping[str, float]], threshold: float, key: str = "train_acc"
) -> int | None:
    """The first logged ``iteration`` whose ``key`` is >= ``threshold``; None if never."""
    for row in rows:
        if row[key] >= threshold:
            return int(row["iteration"])
    return None


def threshold_key(threshold: float) -> str:
    """Metric name for a threshold, e.g. 0.85 -> ``iters_to_train_acc_85`` (no dots: DVC
    flattens nested metrics on dots)."""
    pct = round(threshold * 100, 4)
    return f"iters_to_train_acc_{pct:g}".replace(".", "_")


def iterations_table(
    rows: Sequence[Mapping[str, float]], thresholds: Iterable[float], key: str = "train_acc"
) -> dict[str, int | None]:
    """{threshold_key(t): iterations_to_threshold(rows, t)} for every threshold."""
    return {threshold_key(t): iterations_to_threshold(rows, t, key) for t in thresholds}
