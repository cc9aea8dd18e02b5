"""predict: top-k lists, the seeded held-out draw, and photo folders under the folder-dataset rules."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from PIL import Image

from transferlab.config import from_mapping
from transferlab.data.prepared import PreparedDataset
from transferlab.errors import UserError
from transferlab.inside.predict import (
    PredictParams,
    load_photo_folder,
    predict_photos,
    run_predict,
    select_heldout,
    top_k,
)
from transferlab.models.registry import build_backbone

torch.set_num_threads(1)
CPU = torch.device("cpu")


@pytest.fixture
def backbone():
    b = build_backbone("vgg_mini", "none", seed=0)
    b.categories = tuple(f"c{i}" for i in range(10))
    return b


@pytest.fixture
def photo_folder(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (40, 60, 3), dtype=np.uint8)).save(folder / "colour.jpg")
    Image.fromarray(rng.integers(0, 255, (50, 30), dtype=np.uint8), "L").save(folder / "gray.png")
    (folder / "notes.txt").write_text("not an image")
    (folder / ".hidden.png").write_bytes(b"ignored")
    return folder


def test_top_k_orders_by_softmax_probability():
    logits = torch.tensor([[0.0, 2.0, 1.0], [3.0, 0.0, 0.0]])
    tops = top_k(logits, 2, ("a", "b", "c"))
    assert [t["class"] for t in tops[0]] == ["b", "c"]
    p = torch.softmax(logits[0], 0)
    assert tops[0][0]["prob"] == pytest.approx(float(p[1]), abs=1e-6)
    assert tops[1][0] == {"class": "a", "index": 0, "prob": pytest.approx(float(torch.softmax(logits[1], 0)[0]), abs=1e-6)}
    assert len(top_k(logits, 10, ("a", "b", "c"))[0]) == 3


def test_select_heldout_includes_mistakes_and_is_seeded():
    labels = np.arange(100) % 10
    pred = labels.copy()
    pred[[3, 17, 42]] = (pred[[3, 17, 42]] + 1) % 10
    chosen = select_heldout(pred, labels, 10, 2, seed=0)
    assert len(chosen) == 10 and (pred[chosen] != labels[chosen]).sum() == 2
    assert np.array_equal(chosen, select_heldout(pred, labels, 10, 2, seed=0))
    everything_wrong = select_heldout(pred, labels, 10, 8, seed=1)  # only 3 mistakes exist
    assert (pred[everything_wrong] != labels[everything_wrong]).sum() == 3 and len(everything_wrong) == 10


def test_folder_skips_non_images_and_converts_grayscale(photo_folder):
    images, names, skipped = load_photo_folder(photo_folder, 32, "skip")
    assert names == ["colour.jpg", "gray.png"]
    assert images.shape == (2, 32, 32, 3) and images.dtype == np.uint8
    gray = images[1]
    assert np.array_equal(gray[..., 0], gray[..., 1]) and np.array_equal(gray[..., 1], gray[..., 2])
    assert skipped == [{"file": "notes.txt", "reason": "not_an_image", "detail": "not a format PIL can read"}]


def test_folder_error_mode_names_the_bad_file(photo_folder):
    with pytest.raises(UserError, match="notes.txt") as exc:
        load_photo_folder(photo_folder, 32, "error")
    assert "\n" not in str(exc.value)


def test_missing_folder_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="not a directory"):
        load_photo_folder(tmp_path / "nope", 32, "skip")


def test_predict_photos_counts_and_marks_out_of_domain(backbone, photo_folder):
    cfg = from_mapping(PredictParams, {"backbone": "vgg_mini", "photos": str(photo_folder), "image_size": 32}, "predict")
    metrics, records, images, titles = predict_photos(backbone, photo_folder, cfg, CPU)
    assert metrics["photos"] == 2 and metrics["photos_skipped"] == 1
    assert metrics["photos_in_domain"] is False
    assert [r["file"] for r in records] == ["colour.jpg", "gray.png"] and len(records[0]["top"]) == 5


def _dataset(n=60):
    rng = np.random.default_rng(0)
    return PreparedDataset(
        images=rng.integers(0, 255, (n, 28, 28, 1), dtype=np.uint8),
        labels=np.arange(n) % 10,
        is_test=np.arange(n) % 2 == 0,
        classes=tuple(f"c{i}" for i in range(10)),
        meta={"name": "toy"},
    )


def test_run_predict_heldout_writes_figure_and_lists(backbone, tmp_path):
    cfg = from_mapping(
        PredictParams, {"backbone": "vgg_mini", "photos": None, "n_images": 8, "n_wrong": 3, "candidates": 20}, "predict"
    )
    metrics, lists = run_predict(backbone, _dataset(), cfg, 0, CPU, tmp_path)
    assert metrics["heldout_images"] == 20 and metrics["shown"] == 8
    assert metrics["shown_wrong"] == sum(not r["correct"] for r in lists["heldout"])
    assert (tmp_path / "heldout.png").stat().st_size > 0
    json.dumps(lists)  # JSON-able
    again, _ = run_predict(backbone, _dataset(), cfg, 0, CPU, tmp_path)
    assert again == metrics


def test_class_count_mismatch_is_a_user_error(backbone, tmp_path):
    ds = _dataset()
    ds = dataclasses.replace(ds, labels=ds.labels % 3, classes=("a", "b", "c"))
    cfg = from_mapping(PredictParams, {"backbone": "vgg_mini", "photos": None}, "predict")
    with pytest.raises(UserError, match="3 classes"):
        run_predict(backbone, ds, cfg, 0, CPU, tmp_path)


def test_bad_params():
    with pytest.raises(UserError, match="n_wrong"):
        from_mapping(PredictParams, {"backbone": "x", "n_images": 4, "n_wrong": 5}, "predict")
    with pytest.raises(UserError, match="on_bad_file"):
        from_mapping(PredictParams, {"backbone": "x", "on_bad_file": "ignore"}, "predict")
