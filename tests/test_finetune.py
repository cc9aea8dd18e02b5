"""finetune: head mode trains only the new head, full mode trains the backbone, same seed -> same run."""

from __future__ import annotations

import dataclasses
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


NO_AUG = FinetuneParams(epochs=2, batch_size=16, lr=0.05)


def test_head_on_frozen_features_without_standardising_is_the_frozen_network_trained(model_dir):
    """Head mode without augmentation trains the head on features computed once: the same model
    and the same steps as running the frozen network every batch (HeadOnly), up to float rounding."""
    from transferlab.seeding import torch_generator
    from transferlab.training.loop import fit
    from transferlab.transfer.finetune import HeadOnly

    ds = _toy_dataset()
    plain = dataclasses.replace(NO_AUG, head_standardise=False)
    res = run(ds, model_dir, "head", plain, 0, CPU)
    assert res.metrics["frozen_features"] is True and res.metrics["standardised"] is False
    ref = _fresh_head(model_dir)
    history = fit(HeadOnly(ref.model, ref.head), ds.split("train"), ds.split("test"), ref.preprocess, plain, CPU,
                  torch_generator(0), channels=3)  # fmt: skip
    ours, theirs = res.model.get_submodule(res.head), ref.head_module()
    # features differ from the per-batch ones only by float32 rounding (conv batch sizes): 1e-4 is far above it
    torch.testing.assert_close(ours.weight, theirs.weight, rtol=1e-4, atol=1e-5)
    assert [r["train_acc"] for r in res.curve] == [r["train_acc"] for r in history["epochs"]]


def test_standardised_head_is_folded_into_the_network(model_dir):
    """Trained on standardised features, the head is rewritten so the plain network gives the logits
    the training saw: its test accuracy on the images equals the curve's last test accuracy."""
    from transferlab.training.loop import evaluate

    ds = _toy_dataset()
    res = run(ds, model_dir, "head", NO_AUG, 0, CPU)
    assert res.metrics["standardised"] is True
    bb = load_backbone(model_dir)
    _, acc = evaluate(res.model, *ds.split("test"), bb.preprocess, CPU)
    assert acc == pytest.approx(res.metrics["final_test_acc"])


def test_head_inputs_refuses_a_head_that_is_not_the_last_step(model_dir):
    """When something follows the head, its inputs cannot stand in for the network: None (run the network)."""
    from transferlab.transfer.finetune import head_inputs

    bb = load_backbone(model_dir)
    images = _toy_dataset().split("train")[0]
    feats = head_inputs(bb.model, bb.head, images, bb.preprocess, CPU)
    assert feats is not None and feats.shape == (len(images), bb.head_module().in_features)
    doubled = torch.nn.Sequential(bb.model, torch.nn.Identity())
    doubled.forward = lambda x: 2 * bb.model(x)  # type: ignore[method-assign]
    assert head_inputs(doubled, f"0.{bb.head}", images, bb.preprocess, CPU) is None


def test_head_mode_converges_to_the_softmax_head(model_dir):
    """With the default-like optimiser and enough (cheap) epochs, the head reaches the softmax head's
    test accuracy (LogisticRegression on the same frozen features) within 2 points."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from transferlab.transfer.finetune import head_inputs

    ds = _toy_dataset(n_train=300, n_test=150, classes=3)
    rng = np.random.default_rng(1)
    ds.images[:] = np.clip(ds.images.astype(int) + rng.integers(-40, 40, ds.images.shape), 0, 255).astype(np.uint8)
    bb = load_backbone(model_dir)
    (xtr, ytr), (xte, yte) = ds.split("train"), ds.split("test")
    ftr, fte = (head_inputs(bb.model, bb.head, x, bb.preprocess, CPU).numpy() for x in (xtr, xte))
    scaler = StandardScaler().fit(ftr)
    softmax = LogisticRegression(max_iter=2000).fit(scaler.transform(ftr), ytr).score(scaler.transform(fte), yte)
    res = run(ds, model_dir, "head", FinetuneParams(epochs=1, head_epochs=40, batch_size=32, lr=0.01), 0, CPU)
    assert res.metrics["epochs"] == 40 and len(res.curve) == 40
    assert res.metrics["final_test_acc"] >= softmax - 0.02, (res.metrics["final_test_acc"], softmax)
