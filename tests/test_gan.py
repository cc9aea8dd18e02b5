"""GANs: network shapes, FID against closed forms, the training loop, the fixed grid, the stage."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from transferlab.config import from_mapping, read_params
from transferlab.data.prepared import PreparedDataset, save_prepared
from transferlab.errors import UserError
from transferlab.gan.fid import (
    ClassifierFeatures,
    feature_stats,
    fid_from_features,
    frechet_distance,
)
from transferlab.gan.models import build_gan
from transferlab.gan.params import GanParams
from transferlab.gan.run import check_inputs, run_variant
from transferlab.gan.scores import class_histogram, classes_covered, sample_scores
from transferlab.gan.training import LoopConfig, fixed_latent_grid, generate, train_gan
from transferlab.io import read_json
from transferlab.models.registry import build_backbone, save_backbone
from transferlab.report.model import Figure, Table
from transferlab.report.sections import gans as gans_section
from transferlab.seeding import seed_everything

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = {
    "dcgan": {"arch": "dcgan", "nz": 100, "width": 8},
    "dcgan_nz10": {"arch": "dcgan", "nz": 10, "width": 8},
    "cdcgan": {"arch": "dcgan", "nz": 16, "label_in_g": True, "label_in_d": True, "width": 8},
    "cgan": {"arch": "mlp", "nz": 16, "label_in_g": True, "label_in_d": True, "width": 32},
    "cdcgan_nolabel_d": {"arch": "dcgan", "nz": 16, "label_in_g": True, "width": 8},
}
TINY = {
    "dataset": "tiny",
    "variants": list(CONFIGS),
    "configs": CONFIGS,
    "iterations": 6,
    "batch_size": 8,
    "checkpoints": [3],
    "log_every": 2,
    "n_fid": 20,
}


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny nets gain nothing from threads, and a busy shared CPU makes them much slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_params(**over) -> GanParams:
    return from_mapping(GanParams, {**TINY, **over}, "gan")


def tiny_dataset(
    n: int = 60, size: int = 28, channels: int = 1, classes: int = 3
) -> PreparedDataset:
    """Class k = a bright square at a class-specific place, plus noise."""
    rng = np.random.default_rng(0)
    labels = np.arange(n) % classes
    images = rng.integers(0, 40, size=(n, size, size, channels), dtype=np.uint8)
    for i, k in enumerate(labels):
        images[i, 4 * k : 4 * k + 8, 4 * k : 4 * k + 8] = 250
    is_test = np.arange(n) >= n * 2 // 3
    return PreparedDataset(
        images,
        labels.astype(np.int64),
        is_test,
        tuple(f"c{k}" for k in range(classes)),
        {"name": "tiny"},
    )


def tiny_classifier(classes: int = 3):
    return build_backbone("vgg_mini", "none", num_classes=classes, name="vgg_mini", seed=0)


# --- networks ---------------------------------------------------------------------------


def _variant_configs() -> dict[str, dict]:
    """The shipped params.yaml configs when present, plus the tiny ones."""
    out = {f"tiny_{k}": v for k, v in CONFIGS.items()}
    params_file = ROOT / "params.yaml"
    if params_file.is_file():
        out.update(read_params(params_file).get("gan", {}).get("configs", {}))
    return out


@pytest.mark.parametrize("name,cfg", sorted(_variant_configs().items()))
@pytest.mark.parametrize("size,channels", [(28, 1), (32, 3)])
def test_generator_and_discriminator_shapes(name, cfg, size, channels):
    params = from_mapping(GanParams, {"variants": [name], "configs": {name: cfg}}, "gan")
    vc = params.config(name)
    G, D = build_gan(
        vc.arch,
        nz=vc.nz,
        channels=channels,
        image_size=size,
        n_classes=10,
        label_in_g=vc.label_in_g,
        label_in_d=vc.label_in_d,
        width=vc.width,
    )
    z, y = torch.randn(5, vc.nz), torch.arange(5)
    x = G(z, y)
    assert x.shape == (5, channels, size, size)
    assert x.min() >= -1 and x.max() <= 1
    assert D(x, y).shape == (5,)


def test_conditional_networks_need_labels_and_use_them():
    G, D = build_gan(
        "dcgan",
        nz=8,
        channels=1,
        image_size=28,
        n_classes=10,
        label_in_g=True,
        label_in_d=True,
        width=8,
    )
    G.eval()
    z = torch.randn(2, 8)
    with pytest.raises(ValueError, match="labels"):
        G(z)
    assert not torch.allclose(G(z, torch.tensor([0, 0])), G(z, torch.tensor([1, 1])))


# --- FID -------------------------------------------------------------------------------


def test_fid_is_zero_for_identical_features():
    f = np.random.default_rng(0).normal(size=(500, 16))
    assert fid_from_features(f, f) == pytest.approx(0.0, abs=1e-6)


def test_frechet_distance_matches_closed_form_gaussians():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(8, 8))
    sigma = a @ a.T + np.eye(8)
    mu1, mu2 = rng.normal(size=8), rng.normal(size=8)
    # equal covariances: the trace term vanishes, FID = ||mu1 - mu2||^2
    assert frechet_distance(mu1, sigma, mu2, sigma) == pytest.approx(
        np.sum((mu1 - mu2) ** 2), rel=1e-6
    )
    # diagonal covariances: sum (s1 + s2 - 2 sqrt(s1 s2)) = sum (sqrt(s1) - sqrt(s2))^2
    s1, s2 = rng.uniform(0.5, 2, 8), rng.uniform(0.5, 2, 8)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(s1) - np.sqrt(s2)) ** 2)
    assert frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(expected, rel=1e-6)


def test_fid_grows_with_mean_shift_like_the_closed_form():
    rng = np.random.default_rng(2)
    base = rng.normal(size=(4000, 6))
    other = rng.normal(size=(4000, 6))
    values = []
    for shift in (0.0, 0.5, 1.0, 2.0):
        fid = fid_from_features(base, other + shift)
        values.append(fid)
        assert fid == pytest.approx(6 * shift**2, abs=0.05 + 0.05 * 6 * shift**2)  # ||shift * 1||^2
    assert values == sorted(values)


def test_fid_handles_dead_units_and_few_samples():
    rng = np.random.default_rng(3)
    f = np.maximum(rng.normal(size=(50, 64)), 0)
    f[:, :10] = 0  # dead ReLU units: singular covariance
    g = f + 1.0
    g[:, :10] = 0
    value = fid_from_features(f, g)
    assert math.isfinite(value) and value == pytest.approx(54.0, rel=1e-3)
    mu, cov = feature_stats(f)
    assert mu.shape == (64,) and cov.shape == (64, 64)


def test_classifier_features_one_pass_gives_fc7_and_predictions():
    ds = tiny_dataset(n=10)
    feats, probs = ClassifierFeatures(tiny_classifier(), "fc7", torch.device("cpu"), batch_size=4)(
        torch.from_numpy(ds.images).permute(0, 3, 1, 2)
    )
    assert feats.shape == (10, 256) and probs.shape == (10, 3)
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)
    with pytest.raises(UserError, match="fc9"):
        ClassifierFeatures(tiny_classifier(), "fc9", torch.device("cpu"))


def test_sample_scores_histogram_coverage_and_confidence():
    # 10 samples over 4 classes: fair share 2.5, covered at >= 1.25 samples
    probs = np.zeros((10, 4))
    winners = [0, 0, 0, 0, 0, 1, 1, 2, 0, 1]
    probs[np.arange(10), winners] = 0.7
    probs[np.arange(10), [(w + 1) % 4 for w in winners]] = 0.3
    assert class_histogram(probs).tolist() == [6, 3, 1, 0]
    assert classes_covered(class_histogram(probs)) == 2
    assert classes_covered(np.array([3, 3, 3, 1])) == 3
    scores = sample_scores(probs, ("a", "b", "c", "d"), np.array(winners[:5] + [3] * 5))
    assert scores["class_histogram"] == {"a": 6, "b": 3, "c": 1, "d": 0}
    assert scores["classes_covered"] == 2
    assert scores["mean_confidence"] == pytest.approx(0.7)
    assert scores["conditional_accuracy"] == pytest.approx(0.5)
    assert sample_scores(probs, "abcd", None)["conditional_accuracy"] is None


# --- training loop and grid -----------------------------------------------------------------


@pytest.mark.parametrize("arch,width", [("dcgan", 8), ("mlp", 32)])
def test_training_steps_change_weights_and_keep_losses_finite(arch, width):
    ds = tiny_dataset()
    G, D = build_gan(
        arch,
        nz=8,
        channels=1,
        image_size=28,
        n_classes=3,
        label_in_g=True,
        label_in_d=True,
        width=width,
    )
    before_g = [p.detach().clone() for p in G.parameters()]
    before_d = [p.detach().clone() for p in D.parameters()]
    seen = []
    cfg = LoopConfig(
        iterations=4,
        batch_size=8,
        lr=2e-4,
        betas=(0.5, 0.999),
        nb_update_D=2,
        log_every=2,
        checkpoints=(2,),
    )
    rows = train_gan(
        G,
        D,
        torch.from_numpy(ds.images).permute(0, 3, 1, 2),
        torch.from_numpy(ds.labels),
        cfg,
        torch.Generator().manual_seed(0),
        torch.device("cpu"),
        n_classes=3,
        on_checkpoint=seen.append,
    )
    assert seen == [2]
    assert [r["iteration"] for r in rows] == [2, 4]
    for row in rows:
        assert all(math.isfinite(v) for v in row.values())
        assert 0 < row["D_x"] < 1 and 0 < row["D_G_z"] < 1
    assert any(not torch.equal(a, b) for a, b in zip(before_g, G.parameters(), strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(before_d, D.parameters(), strict=True))
    # a different seed draws different batches and latents: different curves
    G2, D2 = build_gan(
        arch,
        nz=8,
        channels=1,
        image_size=28,
        n_classes=3,
        label_in_g=True,
        label_in_d=True,
        width=width,
    )
    rows2 = train_gan(
        G2,
        D2,
        torch.from_numpy(ds.images).permute(0, 3, 1, 2),
        torch.from_numpy(ds.labels),
        cfg,
        torch.Generator().manual_seed(1),
        torch.device("cpu"),
        n_classes=3,
    )
    assert rows2 != rows


def test_fixed_latent_grid_is_identical_across_runs_and_independent_of_global_rng():
    torch.manual_seed(1)
    z1, y1 = fixed_latent_grid(16, 10, seed=7)
    torch.manual_seed(2)
    torch.randn(100)
    z2, y2 = fixed_latent_grid(16, 10, seed=7)
    assert torch.equal(z1, z2) and torch.equal(y1, y2)
    assert z1.shape == (100, 16)
    assert y1.tolist() == [k for k in range(10) for _ in range(10)]  # one row per class
    assert torch.equal(z1[:10], z1[10:20])  # same latents in every row
    zu, yu = fixed_latent_grid(16, 0, seed=7)
    assert zu.shape == (100, 16) and not torch.equal(zu, fixed_latent_grid(16, 0, seed=8)[0])


def test_generate_is_uint8_and_deterministic_in_eval_mode():
    G, _ = build_gan(
        "dcgan",
        nz=8,
        channels=1,
        image_size=28,
        n_classes=0,
        label_in_g=False,
        label_in_d=False,
        width=8,
    )
    z, y = fixed_latent_grid(8, 0, seed=0, n_cols=3)
    a, b = (
        generate(G, z, y, torch.device("cpu"), batch_size=4),
        generate(G, z, y, torch.device("cpu")),
    )
    assert a.dtype == torch.uint8 and a.shape == (9, 1, 28, 28)
    assert torch.equal(a, b) and G.training


# --- params and errors ------------------------------------------------------------------------


def test_bad_params_are_one_line_user_errors():
    with pytest.raises(UserError, match="nb_update_D must be >= 1") as err:
        tiny_params(nb_update_D=0)
    assert "\n" not in str(err.value)
    with pytest.raises(UserError, match="unknown GAN variant 'nope'.*cdcgan"):
        tiny_params().config("nope")
    with pytest.raises(UserError, match="have no entry under gan.configs"):
        tiny_params(variants=["nope"])
    with pytest.raises(UserError, match="checkpoints"):
        tiny_params(checkpoints=[99])
    with pytest.raises(UserError, match="label_in_d needs label_in_g"):
        tiny_params(configs={"x": {"label_in_d": True}}, variants=["x"])
    with pytest.raises(UserError, match="unknown key"):
        tiny_params(nb_updates_D=2)
    with pytest.raises(UserError, match=r"checkpoints \[3\] lie beyond gan.configs.x.iterations=2"):
        tiny_params(configs={"x": {"iterations": 2}}, variants=["x"])


def test_variant_iterations_override_the_shared_count():
    params = tiny_params(configs={**CONFIGS, "cgan": {**CONFIGS["cgan"], "iterations": 9}})
    assert params.iterations_of("cgan") == 9 and params.iterations_of("cdcgan") == 6
    assert params.checkpoint_iterations("cgan") == (3, 9)
    assert params.checkpoint_iterations("cdcgan") == params.checkpoint_iterations() == (3, 6)


def test_classifier_must_be_trained_on_the_gan_dataset():
    ds = tiny_dataset()
    check_inputs(tiny_params(), "cdcgan", ds, {"source_dataset": "tiny", "num_classes": 3})
    with pytest.raises(UserError, match="trained on 'digits'.*gan.classifier"):
        check_inputs(tiny_params(), "cdcgan", ds, {"source_dataset": "digits", "num_classes": 3})
    with pytest.raises(UserError, match="trained on None"):
        check_inputs(tiny_params(), "cdcgan", ds, {"weights": "none"})
    with pytest.raises(UserError, match="needs 28x28 or 32x32"):
        check_inputs(tiny_params(), "cdcgan", tiny_dataset(size=16), {"source_dataset": "tiny"})


# --- one variant end to end ----------------------------------------------------------------------


def _run(tmp_path: Path, variant: str, seed: int = 0):
    gen = seed_everything(seed)
    return run_variant(
        tiny_params(),
        variant,
        tiny_dataset(),
        tiny_classifier(),
        gen=gen,
        device=torch.device("cpu"),
        model_dir=tmp_path / "model",
        figures_dir=tmp_path / "fig",
    )


TIMING = {"train_seconds", "iterations_per_second", "samples_per_second"}


def test_same_seed_same_metrics_and_outputs(tmp_path):
    m1, rows1 = _run(tmp_path / "a", "cdcgan")
    m2, rows2 = _run(tmp_path / "b", "cdcgan")
    strip = lambda m: {k: v for k, v in m.items() if k not in TIMING}  # noqa: E731
    assert strip(m1) == strip(m2) and rows1 == rows2
    assert 0 <= m1["conditional_accuracy"] <= 1 and m1["fid"] > 0 and m1["fid_floor"] >= 0
    assert sorted(p.name for p in (tmp_path / "a" / "fig").iterdir()) == [
        "it3.png",
        "it6.png",
        "progress.png",
    ]
    assert sum(m1["class_histogram"].values()) == 20 and 0 <= m1["classes_covered"] <= 3
    assert 1 / 3 <= m1["mean_confidence"] <= 1 and 1 / 3 <= m1["mean_confidence_real"] <= 1
    assert sorted(p.name for p in (tmp_path / "a" / "model").iterdir()) == [
        "generator.pt",
        "generator_it3.pt",
        "generator_it6.pt",
    ]
    g1 = torch.load(tmp_path / "a" / "model" / "generator.pt", weights_only=True)
    g2 = torch.load(tmp_path / "b" / "model" / "generator.pt", weights_only=True)
    assert all(torch.equal(g1[k], g2[k]) for k in g1)


def test_unconditional_variant_has_no_conditional_accuracy(tmp_path):
    m, _ = _run(tmp_path, "dcgan")
    assert (
        m["conditional_accuracy"] is None
        and m["inception_fid"] is None
        and m["inception_fid_reason"]
    )


# --- the stage and the report section -------------------------------------------------------------


def _stage_tree(tmp_path: Path, gan: dict) -> dict[str, Path]:
    data = tmp_path / "data" / "prepared" / "tiny"
    data.mkdir(parents=True)
    save_prepared(tiny_dataset(), data)
    clf = tmp_path / "data" / "models" / "vgg_mini"
    backbone = tiny_classifier()
    backbone.categories = ("c0", "c1", "c2")
    save_backbone(
        backbone, clf, {"name": "vgg_mini", "weights": "pretrain", "source_dataset": "tiny"}
    )
    params = tmp_path / "params.yaml"
    params.write_text(
        yaml.safe_dump({"base": {"seed": 0, "device": "cpu", "num_workers": 0}, "gan": gan})
    )
    return {"data": data, "clf": clf, "params": params}


def _argv(tmp_path: Path, tree: dict[str, Path], variant: str) -> list[str]:
    return [
        "--variant", variant, "--data", str(tree["data"]), "--classifier", str(tree["clf"]),
        "--model-out", str(tmp_path / "data/models/gan" / variant),
        "--figures", str(tmp_path / "reports/figures/gan" / variant),
        "--metrics", str(tmp_path / "metrics/gan" / f"{variant}.json"),
        "--plots", str(tmp_path / "plots/gan" / f"{variant}.csv"),
        "--params", str(tree["params"]),
    ]  # fmt: skip


def test_stage_writes_outputs_and_report_section_reads_them(tmp_path):
    from stages import gan as stage

    tree = _stage_tree(tmp_path, TINY)
    for variant in ("cdcgan", "dcgan_nz10"):
        stage.main(_argv(tmp_path, tree, variant))
    plots = pd.read_csv(tmp_path / "plots/gan/cdcgan.csv")
    assert list(plots.columns) == ["iteration", "loss_D", "loss_G", "D_x", "D_G_z"]
    assert plots["iteration"].tolist() == [2, 4, 6]
    assert (tmp_path / "reports/figures/gan/cdcgan/it6.png").is_file()
    assert (tmp_path / "data/models/gan/dcgan_nz10/generator.pt").is_file()
    floors = {
        read_json(tmp_path / f"metrics/gan/{v}.json")["fid_floor"] for v in ("cdcgan", "dcgan_nz10")
    }
    assert len(floors) == 1  # one real reference for every variant
    section = gans_section.build(tmp_path / "metrics", tmp_path / "reports")
    table = next(b for b in section.blocks if isinstance(b, Table)).frame
    assert table["variant"].tolist() == ["cdcgan", "dcgan_nz10"]
    assert table["conditional acc"].notna().tolist() == [True, False]
    assert [b.path for b in section.blocks if isinstance(b, Figure)] == [
        "figures/gan/cdcgan/progress.png",
        "figures/gan/dcgan_nz10/progress.png",
    ]
    assert "iterations 3, 6" in next(b for b in section.blocks if isinstance(b, Figure)).caption
    assert table["classes covered"].str.endswith("/3").all()
    assert gans_section.build(tmp_path / "nothing", tmp_path / "reports") is None


def test_stage_errors_are_one_line_and_leave_nothing(tmp_path, capsys):
    from stages import gan as stage

    tree = _stage_tree(tmp_path, {**TINY, "nb_update_D": 0})
    with pytest.raises(SystemExit) as exit_info:
        stage.main(_argv(tmp_path, tree, "cdcgan"))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "nb_update_D must be >= 1" in err
    tree["params"].write_text(yaml.safe_dump({"base": {"seed": 0}, "gan": TINY}))
    with pytest.raises(SystemExit):
        stage.main(_argv(tmp_path, tree, "wgan"))
    assert "unknown GAN variant 'wgan'" in capsys.readouterr().err
    assert not (tmp_path / "metrics").exists() and not (tmp_path / "reports").exists()


def test_report_says_each_course_comparison_from_the_numbers(tmp_path):
    def metrics(fid, acc=None, covered=10, iterations=800):
        return {"fid": fid, "fid_floor": 2.0, "conditional_accuracy": acc, "mean_confidence": 0.9,
                "classes_covered": covered, "iterations": iterations}  # fmt: skip

    runs = {
        "dcgan": metrics(60.0, covered=9),
        "dcgan_nz10": metrics(90.0, covered=7),
        "cdcgan": metrics(40.0, 0.93),
        "cgan": metrics(70.0, 0.8, iterations=2000),
        "cdcgan_nolabel_d": metrics(50.0, 0.11),
    }
    for name, m in runs.items():
        (tmp_path / "gan").mkdir(exist_ok=True)
        (tmp_path / "gan" / f"{name}.json").write_text(json.dumps(m))
    text = " ".join(
        b.markdown for b in gans_section.build(tmp_path, tmp_path).blocks if hasattr(b, "markdown")
    )
    assert "FID 60.0 vs 90.0, classes covered 9 vs 7" in text
    assert "a latent of 100 gives the closer samples (0.67x the FID of a latent of 10)" in text
    assert "conditional accuracy 0.930 vs 0.110" in text and "ignores it (near chance)" in text
    assert "iterations 800 vs 2000: by FID the convolutional one gives the closer samples" in text
    del runs["dcgan_nz10"]
    (tmp_path / "gan" / "dcgan_nz10.json").unlink()
    assert "Latent size" not in str(gans_section.build(tmp_path, tmp_path).blocks)
