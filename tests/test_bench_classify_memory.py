"""The pieces of the classifier and memory benchmarks (no timing assertions: the figures are printed, not tested)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from benchmarks import classifiers, memory
from transferlab.data.sampling import per_class_train_mask
from transferlab.transfer.features import load_features


def test_synthetic_cache_is_the_real_format_and_widest_layer_is_found(tmp_path):
    cache = memory.synthetic_cache(tmp_path / "features", rows=120, dims=300, classes=4, train=40)
    loaded = load_features(cache, mmap=True)
    X = loaded.feats[memory.LAYER]
    assert X.dtype == np.float16 and X.shape == (120, 300) and np.isfinite(X).all()
    assert len(loaded.labels) == 120 and loaded.is_test.sum() == 80
    assert memory.widest_layer(cache) == (memory.LAYER, 120, 300)


def test_synthetic_cache_has_a_real_15scene_extracts_order_and_split(tmp_path):
    """Sorted by class, train drawn per class like the 15scene source: the splits interleave."""
    cache = memory.synthetic_cache(tmp_path / "features", rows=150, dims=4, classes=5, train=50)
    loaded = load_features(cache)
    labels, is_test = loaded.labels, loaded.is_test
    assert np.array_equal(labels, np.sort(labels)) and np.bincount(labels).tolist() == [30] * 5
    assert np.bincount(labels[~is_test]).tolist() == [10] * 5
    assert np.array_equal(is_test, per_class_train_mask(labels, 10, 0))
    train = np.flatnonzero(~is_test)
    assert not np.array_equal(train, np.arange(train[0], train[0] + len(train)))  # not one slice
    with pytest.raises(ValueError, match="no train or no test"):
        memory.synthetic_cache(tmp_path / "bad", rows=20, dims=4, classes=5, train=20)


def test_default_shape_is_15scene_through_vgg16_pool5():
    parser = argparse.ArgumentParser()
    memory.add_arguments(parser)
    args = parser.parse_args([])
    assert (args.mem_rows, args.mem_dims, args.mem_classes, args.mem_train) == (4485, 25088, 15, 1500)


def test_stage_params_add_a_backbone_cut_at_the_layer_without_pixels(tmp_path):
    cache = memory.synthetic_cache(tmp_path / "features", rows=40, dims=8, classes=4, train=20)
    params = yaml.safe_load(memory.stage_params(tmp_path, cache, "pool1", "small").read_text())
    assert params["backbones"][memory.BACKBONE] == {"arch": "vgg_mini", "weights": "none", "layers": ["pool1"]}
    assert params["classify"]["pixels"] is False
    assert params["classify"]["kernels"] == memory.SMALL_GRID["kernels"]


def test_peak_rss_is_the_childs_own_and_failures_raise(tmp_path):
    small, _ = memory.peak_rss([sys.executable, "-c", "pass"], tmp_path)
    big, out = memory.peak_rss(
        [sys.executable, "-c", "import numpy as np; a = np.ones(300 * 2**20 // 8); print(a.sum() > 0)"], tmp_path
    )
    assert out.strip() == "True"
    assert big - small > 250 * 2**20  # the 300 MiB array shows, the first child's size does not mask it
    with pytest.raises(RuntimeError, match="exited 3"):
        memory.peak_rss([sys.executable, "-c", "import sys; sys.exit(3)"], tmp_path)


def test_figures_ratio_and_increment():
    m = {"layer": "pool1", "rows": 10, "dims": 10, "float32": 100 * 2**20, "peak": 250 * 2**20,
         "imports": 150 * 2**20, "imports_torch": False, "log": "ok"}
    raw, increment, startup = memory.figures(m)
    assert raw.value == pytest.approx(2.5) and raw.met is False
    assert increment.value == pytest.approx(1.0) and increment.met is None
    assert startup.value == pytest.approx(150)


def test_classifier_timings_use_the_stage_estimators_and_pca_reduces():
    rng = np.random.default_rng(0)
    labels = np.arange(200) % 4
    X = (rng.normal(0, 3, (4, 60))[labels] @ np.diag(1 / np.arange(1, 61)) + rng.normal(0, 0.2, (200, 60)))
    is_test = np.arange(200) >= 150
    Xtr, Xte, y, yt = X[~is_test], X[is_test], labels[~is_test], labels[is_test]
    rbf = classifiers.timed_svm("svc", "rbf", None, Xtr, y, Xte, yt, C=1.0)
    pca = classifiers.timed_svm("svc", "rbf", 0.95, Xtr, y, Xte, yt, C=1.0)
    assert rbf["dims"] == 60 and 0 < pca["dims"] < 60
    assert rbf["acc"] > 0.9 and pca["seconds"] >= pca["prep"] > 0
    pre = classifiers.timed_precomputed(0.95, Xtr.astype(np.float16), y, Xte.astype(np.float16), yt, C=1.0)
    assert pre["dims"] == pca["dims"]  # the stage's Gram PCA keeps as many components as PCA(0.95)
    figs = classifiers.case_figures("toy x", X.astype(np.float16), labels, is_test, C=1.0)
    assert [f.unit for f in figs] == ["x", " pts", "x", "x"]
    wide = classifiers.case_figures("toy x", X.astype(np.float16), labels, is_test, C=1.0, short="wide, 60 dims",
                                    rbf_only=True)
    assert [f.name for f in wide] == ["RBF / PCA(0.95)+RBF fit time (wide, 60 dims)",
                                      "accuracy lost by PCA(0.95) before RBF (wide, 60 dims)"]


def test_wide_case_has_the_coursework_width_at_a_small_input():
    arch, layer, size = classifiers.WIDE
    backbone, width = classifiers.wide_backbone(arch, layer, size)
    assert width == 25088 == 512 * 7 * 7  # VGG16 pool5 at 224 px
    assert backbone.input_size == backbone.resize_size == size == 112 and backbone.weights == "none"
    assert classifiers.wide_backbone(arch, layer, 64)[1] == 128 * 8 * 8
    assert Path(classifiers.ROOT.parent, "shared", "data", "cifar10-small") == classifiers.CIFAR


def test_real_folder_case_builds_a_folder_the_folder_source_prepares(tmp_path):
    from PIL import Image

    from benchmarks import memory_folder
    from transferlab.data.registry import prepare_dataset

    src = tmp_path / "src"
    for cls in ("a", "b"):
        (src / "train" / cls).mkdir(parents=True)
        (src / "test" / cls).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (8, 8), (100 * (cls == "a"), i * 60, 0)).save(src / "train" / cls / f"{i}.jpg")
        Image.new("RGB", (8, 8), (0, 0, 200)).save(src / "test" / cls / "0.jpg")
    assert [len(p) for p in memory_folder.source_images(src)] == [4, 4]
    made = memory_folder.write_folder(tmp_path / "f", images=31, classes=3, size=20, source=src)
    assert made.startswith("CIFAR-10 photos from")
    counts = [len(list((tmp_path / "f" / f"class{k:02d}").glob("*.jpg"))) for k in range(3)]
    assert counts == [11, 10, 10]  # near-equal classes; the third (beyond the source's two) mirrors the first
    ds = prepare_dataset("f", {"source": "folder", "path": str(tmp_path / "f"), "train_per_class": 4}, seed=0)
    assert ds.images.shape == (31, 20, 20, 3) and np.bincount(ds.labels[~ds.is_test]).tolist() == [4, 4, 4]
    assert memory_folder.source_images(tmp_path / "nope") is None
    made = memory_folder.write_folder(tmp_path / "g", images=6, classes=2, size=16, source=tmp_path / "nope")
    assert made == "seeded random smooth images" and len(list((tmp_path / "g").rglob("*.jpg"))) == 6


def test_stage_params_for_a_real_extract_cut_every_layer_with_pixels(tmp_path):
    cache = memory.synthetic_cache(tmp_path / "features", rows=40, dims=8, classes=4, train=20)
    params = yaml.safe_load(memory.stage_params(tmp_path, cache, "layer3", "small", arch="resnet18",
                                                layers=["layer3", "layer4", "avgpool"], pixels=True).read_text())
    assert params["backbones"][memory.BACKBONE] == {"arch": "resnet18", "weights": "none",
                                                    "layers": ["layer3", "layer4", "avgpool"]}
    assert params["classify"]["pixels"] is True
    from transferlab.params_check import validate_params

    validate_params(params)  # the stage's whole-file check passes it
