"""The shared mechanisms: params loading, atomic outputs, training loop, pretrain, extraction, report."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pytest
import torch

from transferlab.config import BaseParams, from_mapping, load_entry, require
from transferlab.data.prepared import PreparedDataset, load_prepared, save_prepared
from transferlab.data.registry import prepare_dataset
from transferlab.errors import UserError
from transferlab.io import atomic_dir
from transferlab.models.pretrain import BackboneEntry, PretrainParams, materialise_backbone
from transferlab.models.registry import load_backbone
from transferlab.report.model import Figure, Section, Table, Text
from transferlab.report.render import to_html, to_markdown
from transferlab.seeding import seed_everything, torch_generator
from transferlab.training.loop import OptimParams, fit, predict_logits
from transferlab.transfer.extraction import ExtractParams, extract_dataset
from transferlab.transfer.features import load_features

CIFAR_SMALL = Path(__file__).resolve().parents[2] / "shared/data/cifar10-small"


@dataclasses.dataclass(frozen=True)
class _Section:
    kernel: Literal["linear", "rbf"] = "linear"
    C: tuple[float, ...] = (1.0,)
    n: int = 1

    def __post_init__(self) -> None:
        require(all(c > 0 for c in self.C), f"C must be > 0, got {self.C}")


def test_params_reject_unknown_keys_bad_types_and_ranges():
    assert from_mapping(_Section, {"C": [0.1, 1]}, "s").C == (0.1, 1.0)
    with pytest.raises(UserError, match=r"s\.kernal: unknown key; valid keys: kernel, C, n \(did you mean 'kernel'\?\)"):
        from_mapping(_Section, {"kernal": "rbf"}, "s")
    with pytest.raises(UserError, match=r"s.kernel: got 'poly'; expected one of 'linear', 'rbf'"):
        from_mapping(_Section, {"kernel": "poly"}, "s")
    with pytest.raises(UserError, match=r"s.n: expected an integer"):
        from_mapping(_Section, {"n": "3"}, "s")
    with pytest.raises(UserError, match=r"s\.C\[0\] must be > 0"):
        from_mapping(_Section, {"C": [0, 1]}, "s")
    with pytest.raises(UserError, match="num_workers must be >= 0"):
        from_mapping(BaseParams, {"num_workers": -1}, "base")


def test_unknown_backbone_entry_lists_valid_names(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("backbones:\n  vgg_mini: {arch: vgg_mini}\n  other: {arch: vgg16}\n")
    with pytest.raises(UserError, match=r"unknown backbone 'vgg' ; valid backbones: other, vgg_mini".replace(" ;", ";")):
        load_entry(BackboneEntry, "backbones", "vgg", "backbone", params)
    with pytest.raises(UserError, match="unknown arch 'vgg17'"):
        from_mapping(BackboneEntry, {"arch": "vgg17"}, "backbones.x")


def test_atomic_dir_keeps_old_output_on_failure(tmp_path):
    out = tmp_path / "out"
    with atomic_dir(out) as tmp:
        (tmp / "a.txt").write_text("first")
    with pytest.raises(RuntimeError), atomic_dir(out) as tmp:
        (tmp / "a.txt").write_text("partial")
        raise RuntimeError("boom")
    assert (out / "a.txt").read_text() == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def _blobs(n: int = 200, seed: int = 0) -> PreparedDataset:
    """Two classes of 28x28 images: bright top half vs bright bottom half, plus noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    images = rng.integers(0, 60, (n, 28, 28, 1)).astype(np.uint8)
    for i, y in enumerate(labels):
        rows = slice(0, 14) if y == 0 else slice(14, 28)
        images[i, rows] += 150
    is_test = np.arange(n) >= int(n * 0.75)
    return PreparedDataset(images, labels.astype(np.int64), is_test, ("top", "bottom"), {"name": "blobs"})


def test_fit_learns_and_is_deterministic():
    ds = _blobs()
    cfg = OptimParams(optimizer="adam", lr=0.003, epochs=2, batch_size=32)

    def train_once():
        seed_everything(0)
        model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 28 * 28, 2))
        history = fit(model, ds.split("train"), ds.split("test"), lambda x: x.float() / 255, cfg,
                      torch.device("cpu"), torch_generator(0))
        return model, history["epochs"]

    model_a, hist_a = train_once()
    _, hist_b = train_once()
    strip = [{k: v for k, v in row.items() if k != "seconds"} for row in hist_a]
    assert strip == [{k: v for k, v in row.items() if k != "seconds"} for row in hist_b]
    assert hist_a[-1]["test_acc"] == 1.0 and hist_a[-1]["train_loss"] < hist_a[0]["train_loss"]
    logits = predict_logits(model_a, ds.split("test")[0], lambda x: x.float() / 255, torch.device("cpu"))
    assert logits.shape == (int(ds.is_test.sum()), 2)


def test_pretrain_materialises_a_loadable_backbone(tmp_path):
    ds = _blobs(120)
    cfg = PretrainParams(optimizer="adam", lr=0.003, epochs=1, batch_size=32)
    seed_everything(0)
    entry = BackboneEntry(arch="vgg_mini", weights="pretrain", layers=("pool3", "fc7"))
    metrics = materialise_backbone("mini", entry, cfg, ds, tmp_path, seed=0, device_name="cpu")
    assert {"test_acc", "train_acc", "parameters", "curve"} <= set(metrics)
    assert 0.0 <= metrics["test_acc"] <= 1.0 and len(metrics["curve"]) == 1
    backbone = load_backbone(tmp_path)
    assert backbone.categories == ("top", "bottom")
    x = torch.zeros(1, 3, 28, 28, dtype=torch.uint8)
    backbone.model.eval()
    assert backbone.model(backbone.preprocess(x)).shape == (1, 2)


def test_extract_writes_every_layer_and_rejects_unknown_layers(tmp_path):
    prepared = tmp_path / "prepared"
    prepared.mkdir()
    save_prepared(_blobs(40), prepared)
    models = tmp_path / "model"
    entry = BackboneEntry(arch="vgg_mini", weights="none")
    materialise_backbone("ctl", entry, PretrainParams(), None, models, seed=0)
    with pytest.raises(UserError, match=r"pool9.*pool1"):
        extract_dataset(prepared, models, ["pool9"], ExtractParams(), tmp_path / "never")
    out = tmp_path / "feats"
    out.mkdir()
    metrics = extract_dataset(prepared, models, ["pool1", "fc7"], ExtractParams(batch_size=16), out, device_name="cpu")
    feats = load_features(out)
    assert metrics["dims"] == {"pool1": 16 * 14 * 14, "fc7": 256}
    assert feats.feats["pool1"].dtype == np.float16 and feats.feats["fc7"].shape == (40, 256)
    assert (feats.labels == load_prepared(prepared).labels).all()


@pytest.mark.skipif(not CIFAR_SMALL.is_dir(), reason="../shared/data/cifar10-small not present")
def test_cifar10_small_prepares_and_extracts(tmp_path):
    entry = {"source": "folder", "path": str(CIFAR_SMALL), "image_size": 32, "max_train": 100, "max_test": 50}
    ds = prepare_dataset("cifar10-small", entry, seed=0, cache_dir=tmp_path / "dl")
    assert ds.images.shape[1:] == (32, 32, 3) and ds.counts() == {"train": 100, "test": 50}
    prepared = tmp_path / "prepared"
    prepared.mkdir()
    save_prepared(ds, prepared)
    models = tmp_path / "model"
    materialise_backbone("ctl", BackboneEntry(arch="vgg_mini", weights="none"), PretrainParams(), None, models, seed=0)
    out = tmp_path / "feats"
    out.mkdir()
    metrics = extract_dataset(prepared, models, ["pool3", "fc7"], ExtractParams(pool="avg"), out, device_name="cpu")
    assert metrics["images"] == 150 and metrics["dims"] == {"pool3": 64, "fc7": 256}
    assert load_features(out).feats["pool3"].shape == (150, 64)


def test_report_renders_markdown_and_self_contained_html(tmp_path):
    from PIL import Image

    Image.new("RGB", (4, 4), "red").save(tmp_path / "fig.png")
    frame = pd.DataFrame({"layer": ["fc6", "fc7"], "acc": [0.91, 0.934], "n": [1000, 20]})
    sections = [Section("Transfer", [Text("Some `code` here."), Table(frame, "cap", highlight=(1,)),
                                     Figure("fig.png", "a figure")])]
    md = to_markdown("R", sections)
    assert "| layer | acc | n |" in md and "| **fc7** | **0.934** | **20** |" in md
    assert "![a figure](fig.png)" in md
    html = to_html("R", sections, tmp_path)
    assert '<tr class="best"><td>fc7</td>' in html and "data:image/png;base64," in html
    assert "<code>code</code>" in html
