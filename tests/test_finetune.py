"""finetune: head mode trains only the new head, full mode trains the backbone, same seed -> same run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml

from stages import finetune as stage
from transferlab.data.prepared import PreparedDataset, save_prepared
from transferlab.models.registry import build_backbone, load_backbone, save_backbone
from transferlab.transfer.finetune import Augment, FinetuneParams, run

torch.set_num_threads(1)
CPU = torch.device("cpu")
PARAMS = FinetuneParams(epochs=1, batch_size=16, lr=0.05, crop_pad=1)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("models") / "toynet"
    save_backbone(build_backbone("vgg_mini", "none", name="toynet", seed=0), out, {"weights": "none", "seed": 0})
    return out


def _toy_dataset(n_train=32, n_test=12, classes=3) -> PreparedDataset:
    rng = np.random.default_rng(0)
    n = n_train + n_test
    labels = np.arange(n) % classes
    images = rng.integers(0, 60, (n, 8, 8, 1), dtype=np.uint8)
    for c in range(classes):  # a class-specific bright stripe, so there is something to learn
        images[labels == c, :, 2 * c : 2 * c + 2, 0] = 250
    is_test = np.arange(n) >= n_train
    return PreparedDataset(images, labels.astype(np.int64), is_test, tuple("abc"[:classes]), {"name": "toy"})


def _state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _fresh_head(model_dir, seed=0, classes=3):
    bb = load_backbone(model_dir)
    torch.manual_seed(seed)
    bb.replace_head(classes)
    return bb


def test_head_mode_changes_only_the_head(model_dir):
    before = _fresh_head(model_dir)
    init = _state(before.model)
    res = run(_toy_dataset(), model_dir, "head", PARAMS, 0, CPU)
    after = _state(res.model)
    head = f"{res.head}."
    backbone_keys = [k for k in init if not k.startswith(head)]
    assert any("running_mean" in k for k in backbone_keys)  # BatchNorm buffers are checked too
    for k in backbone_keys:
        assert torch.equal(init[k], after[k]), k
    assert not torch.equal(init[f"{head}weight"], after[f"{head}weight"])
    assert res.metrics["trainable_params"] == init[f"{head}weight"].numel() + init[f"{head}bias"].numel()


def test_full_mode_changes_backbone_weights(model_dir):
    init = _state(_fresh_head(model_dir).model)
    res = run(_toy_dataset(), model_dir, "full", PARAMS, 0, CPU)
    after = _state(res.model)
    assert not torch.equal(init["features.0.weight"], after["features.0.weight"])
    assert not torch.equal(init["classifier.0.weight"], after["classifier.0.weight"])
    assert res.metrics["trainable_params"] == res.metrics["total_params"]


def test_same_seed_same_run(model_dir):
    a = run(_toy_dataset(), model_dir, "full", PARAMS, 0, CPU)
    b = run(_toy_dataset(), model_dir, "full", PARAMS, 0, CPU)
    ma, mb = dict(a.metrics), dict(b.metrics)
    ma.pop("seconds"), mb.pop("seconds")
    assert ma == mb and a.curve == b.curve


def test_augment_keeps_shape_and_moves_pixels():
    torch.manual_seed(0)
    x = torch.arange(2 * 1 * 8 * 8, dtype=torch.uint8).view(2, 1, 8, 8).repeat(16, 1, 1, 1)
    y = Augment(crop_pad=1, hflip=True)(x)
    assert y.shape == x.shape and y.dtype == torch.uint8
    assert not torch.equal(x, y)
    assert torch.equal(Augment(0, False)(x), x)


def test_stage_writes_metrics_plot_figure(tmp_path, model_dir):
    prepared = tmp_path / "toy"
    prepared.mkdir()
    save_prepared(_toy_dataset(), prepared)
    params = {"base": {"seed": 0, "device": "cpu", "num_workers": 0},
              "backbones": {"toynet": {"arch": "vgg_mini", "weights": "none", "layers": ["fc7"]}},
              "finetune": {"modes": ["head", "full"], "epochs": 2, "batch_size": 16, "lr": 0.05}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    out = tmp_path / "out"
    argv = ["--dataset", str(prepared), "--backbone", str(model_dir), "--mode", "head",
            "--metrics", str(out / "m.json"), "--plots", str(out / "p.json"), "--figure", str(out / "f.png"),
            "--params", str(tmp_path / "params.yaml")]
    stage.main(argv)
    m = json.loads((out / "m.json").read_text())
    curve = json.loads((out / "p.json").read_text())
    assert m["mode"] == "head" and m["epochs"] == 2 and len(curve) == 2
    assert set(curve[0]) == {"epoch", "train_loss", "train_acc", "test_loss", "test_acc"}
    assert m["best_test_acc"] == max(r["test_acc"] for r in curve) and m["final_test_acc"] == curve[-1]["test_acc"]
    assert (out / "f.png").stat().st_size > 1000


def test_stage_rejects_bad_mode_and_params(tmp_path, capsys, model_dir):
    params = {"base": {"seed": 0}, "finetune": {"lr": -1}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    argv = ["--dataset", str(tmp_path / "none"), "--backbone", str(model_dir), "--mode", "head",
            "--metrics", str(tmp_path / "o" / "m.json"), "--plots", str(tmp_path / "o" / "p.json"),
            "--figure", str(tmp_path / "o" / "f.png"), "--params", str(tmp_path / "params.yaml")]
    with pytest.raises(SystemExit):
        stage.main(argv)
    assert "lr must be > 0" in capsys.readouterr().err
    params["finetune"] = {}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(SystemExit):
        stage.main([*argv[:4], "--mode", "partial", *argv[6:]])
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unknown fine-tuning mode 'partial'" in err
    assert not (tmp_path / "o").exists()


def test_stage_skips_a_mode_the_backbone_entry_leaves_out(tmp_path, model_dir):
    """finetune_modes: [head] makes the full run write a `skipped` record (and empty curve), not train."""
    prepared = tmp_path / "toy"
    prepared.mkdir()
    save_prepared(_toy_dataset(), prepared)
    params = {"base": {"seed": 0, "device": "cpu", "num_workers": 0},
              "backbones": {"toynet": {"arch": "vgg_mini", "weights": "none", "layers": ["fc7"], "finetune_modes": ["head"]}},
              "finetune": {"modes": ["head", "full"], "epochs": 2, "batch_size": 16, "lr": 0.05}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    out = tmp_path / "out"
    argv = ["--dataset", str(prepared), "--backbone", str(model_dir), "--mode", "full",
            "--metrics", str(out / "m.json"), "--plots", str(out / "p.json"), "--figure", str(out / "f.png"),
            "--params", str(tmp_path / "params.yaml")]
    stage.main(argv)
    m = json.loads((out / "m.json").read_text())
    assert m["mode"] == "full" and "finetune_modes" in m["skipped"] and "final_test_acc" not in m
    assert json.loads((out / "p.json").read_text()) == [] and (out / "f.png").is_file()
    stage.main([*argv[:5], "head", *argv[6:]])  # the listed mode trains
    assert "final_test_acc" in json.loads((out / "m.json").read_text())
