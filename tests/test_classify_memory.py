"""classify's memory behaviour: the head fits in float32 without a float64 copy, and the
splits are row indices read block by block from the cache file (no copies, no resident mapping)."""

from __future__ import annotations

import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from transferlab.transfer import classify, heads
from transferlab.transfer.features import Features, load_features, save_features
from transferlab.transfer.params import ClassifyParams
from transferlab.transfer.rows import Rows


def _blobs(n: int = 600, d: int = 300, classes: int = 4, seed: int = 0):
    """float16 class blobs, rows sorted by class, test rows interleaved (like a 15-Scene extract)."""
    rng = np.random.default_rng(seed)
    labels = np.sort(np.arange(n) % classes)
    X = (rng.normal(0, 0.6, (classes, d))[labels] + rng.normal(0, 1, (n, d))).astype(np.float16)
    is_test = rng.random(n) < 0.4
    return X, labels, is_test


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


def test_rows_select_lazily_and_read_like_numpy_indexing(tmp_path):
    X, _, is_test = _blobs(n=97, d=11)
    np.save(tmp_path / "x.npy", X)
    mapped = np.load(tmp_path / "x.npy", mmap_mode="r")
    for source, from_file in ((mapped, True), (X, False), (mapped[5:50], False)):
        rows = Rows(source)
        assert (rows._file is not None) == from_file
        ref = np.asarray(source)
        train = rows[~is_test[: len(ref)]]
        assert isinstance(train, Rows) and train.shape == (int((~is_test[: len(ref)]).sum()), 11)
        np.testing.assert_array_equal(np.asarray(train), ref[~is_test[: len(ref)]])
        fold = np.array([7, 3, 4, 5, 0, 20])  # unsorted, with a run
        np.testing.assert_array_equal(np.asarray(train[fold][1:4]), ref[~is_test[: len(ref)]][fold][1:4])
        np.testing.assert_array_equal(np.asarray(rows[10:0]), ref[10:0])
        assert np.asarray(rows[2:9], dtype=np.float64).dtype == np.float64
        assert len(rows[::3]) == len(ref[::3]) and rows.size == ref.size and rows.ndim == 2
    with pytest.raises(TypeError, match="slice, an index array"):
        Rows(X)[3]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads RssFile from /proc/self/status")
def test_reading_rows_leaves_the_cache_file_out_of_the_resident_set(tmp_path):
    def rss_file_mib() -> float:
        line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith("RssFile:"))
        return int(line.split()[1]) / 1024

    np.save(tmp_path / "x.npy", np.ones((2048, 16384), dtype=np.float16))  # 64 MiB
    mapped = np.load(tmp_path / "x.npy", mmap_mode="r")
    before = rss_file_mib()
    rows = Rows(mapped)[np.arange(0, 2048, 2)]
    total = sum(float(np.asarray(rows[lo : lo + 128], dtype=np.float32).sum()) for lo in range(0, len(rows), 128))
    assert total == 1024 * 16384
    assert rss_file_mib() - before < 8  # through the mapping, the half read would add 32 MiB
    float(mapped[::2].sum(dtype=np.float32))
    assert rss_file_mib() - before > 24  # ... as reading the memmap itself does


def test_run_passes_row_selections_not_copies_and_matches_in_memory_arrays(tmp_path, monkeypatch):
    X, labels, is_test = _blobs(n=240, d=40, classes=3, seed=2)
    meta = {"dataset": "toy", "backbone": "toynet", "classes": ["a", "b", "c"]}
    save_features(tmp_path / "cache", {"pool1": X}, labels, is_test, meta)
    params = ClassifyParams(kernels=("linear", "rbf"), C=(1.0,), n_components=(None, 0.95), cv_folds=2)
    in_memory = classify.run(Features({"pool1": X}, labels, is_test, meta), ["pool1"], params, 0)

    seen = []
    real_run_grid = classify.run_grid

    def spy(layer, train, test, *args, **kwargs):
        seen.append((train[0], test[0]))
        return real_run_grid(layer, train, test, *args, **kwargs)

    monkeypatch.setattr(classify, "run_grid", spy)
    mapped = classify.run(load_features(tmp_path / "cache", mmap=True), ["pool1"], params, 0)
    (train, test), = seen
    assert isinstance(train, Rows) and train._file is not None
    np.testing.assert_array_equal(train.index, np.flatnonzero(~is_test))
    np.testing.assert_array_equal(test.index, np.flatnonzero(is_test))
    strip = ("fit_seconds", "predict_seconds", "transform_seconds")
    assert [{k: v for k, v in r.items() if k not in strip} for r in mapped.rows] == [
        {k: v for k, v in r.items() if k not in strip} for r in in_memory.rows
    ]
    assert mapped.head_rows[0]["test_acc"] == in_memory.head_rows[0]["test_acc"]


def test_pixel_baseline_reads_the_mapped_images_a_block_at_a_time_with_the_same_results(tmp_path, monkeypatch):
    """The [0, 1] float64 pixel matrix (16x the uint8 images) never exists whole; the rows are unchanged."""
    rng = np.random.default_rng(3)
    labels = np.sort(np.arange(180) % 3)
    images = np.clip(rng.normal(60, 40, (3, 6, 6, 3))[labels] + rng.normal(0, 30, (180, 6, 6, 3)), 0, 255)
    images = images.astype(np.uint8)
    is_test = rng.random(180) < 0.4
    np.save(tmp_path / "images.npy", images)
    mapped = np.load(tmp_path / "images.npy", mmap_mode="r")
    P = classify.pixel_matrix(mapped)
    assert isinstance(P, Rows) and P._file is not None and P.shape == (180, 108) and P.dtype == np.float64
    old = images.astype(np.float64).reshape(180, -1) / 255.0  # what the baseline materialised before
    np.testing.assert_array_equal(np.asarray(P[is_test]), old[is_test])  # bit-identical values
    feats = Features({"pool1": rng.normal(0, 1, (180, 5)).astype(np.float16)}, labels, is_test, {"classes": ["a", "b", "c"]})
    params = ClassifyParams(kernels=("linear", "rbf"), C=(1.0,), n_components=(None, 0.95), cv_folds=2)
    lazy = classify.run(feats, ["pool1"], params, 0, pixels=mapped)
    monkeypatch.setattr(classify, "pixel_matrix", lambda imgs: np.asarray(imgs, dtype=np.float64).reshape(len(imgs), -1) / 255.0)
    dense = classify.run(feats, ["pool1"], params, 0, pixels=images)
    strip = ("fit_seconds", "predict_seconds", "transform_seconds")
    pixel_rows = [[{k: v for k, v in r.items() if k not in strip} for r in res.rows if r["layer"] == "pixels"]
                  for res in (lazy, dense)]
    assert pixel_rows[0] == pixel_rows[1] and len(pixel_rows[0]) == 4
