"""Metrics files: the deterministic numbers under ``metrics/``, wall-clock times under ``timings/``.

A stage's metrics dict mixes results (accuracies, counts) with wall-clock measurements.
:func:`write_metrics` splits them by one key convention, :data:`TIMING_KEY`: a key
containing ``seconds`` or ``per_second`` holds a wall-clock value (``seconds``,
``fit_seconds``, ``images_per_second``, ...). The rest, plus a ``provenance`` block (seed,
device, versions), goes to the metrics path, so the same params and seed give a
byte-identical file and ``dvc metrics diff`` shows only real changes. The timing leaves go,
in the same nested shape, to the mirror path under ``timings/`` (:func:`timings_path`),
with ``stage_seconds``: the stage process's wall time from its start to the write.
:func:`read_metrics` merges the two back, so readers see one dict as before.

A wall-clock value under a key that breaks the convention lands in ``metrics/`` and makes
re-runs differ; the end-to-end determinism test (tests/test_pipeline.py) catches it.

The metrics file is the detail the report reads (a plain, git-tracked DVC output). What a
person compares between experiments is its *headline*: a few numbers a stage declares
(:data:`Headline`, given to ``Stage(..., headline=...)``), picked by :func:`headline`,
rounded to :data:`HEADLINE_DIGITS` decimals and written to :func:`headline_path`
(``metrics/headline/...``), the file dvc.yaml declares as the DVC metric. Its keys are
nested under the run's name (the file stem), so every key is unique across the study and
``dvc exp show`` heads its column with the key alone (``digits-vgg_mini.svm``).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import psutil

from transferlab.io import read_json, write_json
from transferlab.provenance import provenance

TIMING_KEY = re.compile(r"seconds|per_second")
METRICS_DIR, TIMINGS_DIR = "metrics", "timings"
STAGE_SECONDS = "stage_seconds"
PROVENANCE = "provenance"
HEADLINE_DIR = "headline"
HEADLINE_DIGITS = 4  # decimals kept in a headline value: 1 test image in 10,000; short table cells

# headline name -> the key of the metrics dict (nested keys dotted: "best.test_acc") or a
# function of the metrics dict; a missing key or a None (a skipped run) leaves the name out
Headline = Mapping[str, str | Callable[[Mapping[str, Any]], Any]]


def timings_path(metrics_path: str | Path) -> Path:
    """Where the timings of ``metrics_path`` go: its last ``metrics`` folder becomes ``timings``.

    ``metrics/extract/x.json`` -> ``timings/extract/x.json``. A file outside any ``metrics``
    folder gets a ``timings`` folder beside it: ``out/m.json`` -> ``out/timings/m.json``.
    """
    path = Path(metrics_path)
    parts = path.parts
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == METRICS_DIR:
            return Path(*parts[:i], TIMINGS_DIR, *parts[i + 1 :])
    return path.parent / TIMINGS_DIR / path.name


def headline_path(metrics_path: str | Path) -> Path:
    """Where the headline of ``metrics_path`` goes: under ``headline/`` in its last ``metrics`` folder.

    ``metrics/classify/x.json`` -> ``metrics/headline/classify/x.json``; a file outside any
    ``metrics`` folder gets a ``headline`` folder beside it.
    """
    path = Path(metrics_path)
    parts = path.parts
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == METRICS_DIR:
            return Path(*parts[: i + 1], HEADLINE_DIR, *parts[i + 1 :])
    return path.parent / HEADLINE_DIR / path.name


def pick(metrics: Mapping[str, Any], key: str) -> Any:
    """``metrics[a][b]`` for ``key`` ``"a.b"``; None when any part is missing."""
    node: Any = metrics
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def headline(metrics: Mapping[str, Any], spec: Headline, run: str) -> dict[str, dict[str, float]]:
    """``{run: {name: value}}``: the numbers ``spec`` picks from ``metrics``, rounded; missing ones left out.

    A picked value must be a finite number (a bool or a string is a wrong declaration, not data).
    """
    out: dict[str, float] = {}
    for name, source in spec.items():
        if TIMING_KEY.search(name):
            raise ValueError(f"headline {name!r}: wall-clock values stay in timings/, not in the headline")
        value = pick(metrics, source) if isinstance(source, str) else source(metrics)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ValueError(f"headline {name!r} of {run!r}: expected a finite number, got {value!r}")
        out[name] = round(float(value), HEADLINE_DIGITS)
    return {run: out} if out else {}


def split_timings(obj: Any) -> tuple[Any, Any]:
    """``(deterministic, timings)``: ``obj`` without and with only its :data:`TIMING_KEY` values.

    Timings keep the nesting of ``obj``: mappings hold only the keys leading to a timing
    value, a list that holds any timing keeps its length with ``None`` for the elements that
    hold none. ``timings`` is None when ``obj`` holds no timing at all.
    """
    if isinstance(obj, dict):
        kept, timed = {}, {}
        for key, value in obj.items():
            if TIMING_KEY.search(str(key)):
                timed[key] = value
                continue
            kept[key], inner = split_timings(value)
            if inner is not None:
                timed[key] = inner
        return kept, (timed or None)
    if isinstance(obj, list):
        pairs = [split_timings(v) for v in obj]
        timed_list = [t for _, t in pairs]
        return [d for d, _ in pairs], (timed_list if any(t is not None for t in timed_list) else None)
    return obj, None


def merge_timings(metrics: Any, timings: Any) -> Any:
    """Inverse of :func:`split_timings`: ``merge_timings(*split_timings(x)) == x``."""
    if timings is None:
        return metrics
    if isinstance(metrics, dict) and isinstance(timings, dict):
        out = dict(metrics)
        for key, value in timings.items():
            out[key] = merge_timings(out[key], value) if key in out else value
        return out
    if isinstance(metrics, list) and isinstance(timings, list) and len(metrics) == len(timings):
        return [merge_timings(m, t) for m, t in zip(metrics, timings, strict=True)]
    raise ValueError(f"timings do not match the metrics' shape: {timings!r} vs {metrics!r}")


def stage_seconds() -> float:
    """Wall seconds since this process started (Python start-up and imports included)."""
    return round(time.time() - psutil.Process().create_time(), 3)


def write_metrics(
    path: str | Path,
    metrics: dict[str, Any],
    *,
    seed: int,
    device: Any,
    records_stage: bool = True,
    headline_spec: Headline | None = None,
) -> None:
    """Write ``metrics`` split in two: deterministic + provenance at ``path``, timings beside.

    ``device`` is the resolved device the stage computed on (see
    :func:`transferlab.provenance.describe_device`). ``records_stage``: whether this file
    records the stage's whole wall time; a stage writing several metrics files sets it on one.
    ``headline_spec``: also write the :func:`headline` at :func:`headline_path` (``{}`` when
    it picks nothing, e.g. a skipped run: the DVC metric file always exists).
    """
    if PROVENANCE in metrics:
        raise ValueError(f"metrics must not hold a {PROVENANCE!r} key; write_metrics adds it")
    kept, timed = split_timings(metrics)
    timed = timed or {}
    if records_stage:
        timed[STAGE_SECONDS] = stage_seconds()
    picked = None if headline_spec is None else headline(kept, headline_spec, Path(path).stem)
    write_json(timings_path(path), timed)
    write_json(path, {**kept, PROVENANCE: provenance(seed, device)})
    if picked is not None:
        write_json(headline_path(path), picked)


def read_metrics(path: str | Path) -> Any:
    """A metrics file with its timings (if written) merged back: what the stage computed."""
    metrics = read_json(path)
    timings = timings_path(path)
    return merge_timings(metrics, read_json(timings)) if timings.is_file() else metrics
