"""Tests for the five explain stages end to end (tiny data, random vgg_mini, fixed seed):
outputs written, same seed -> identical metrics, bad params -> one-line errors and no
outputs, and the report section built from the metrics."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from stages import adversarial, classvis, fgsm, robustness, saliency
from tests.study_repo import deep_merge
from transferlab.config import from_mapping
from transferlab.data.prepared import PreparedDataset, save_prepared
from transferlab.explain.adversarial import AdversarialParams, FGSMParams
from transferlab.explain.classvis import ClassVisParams
from transferlab.explain.params import METHOD_PARAMS, ExplainRun, run_params
from transferlab.explain.robustness import RobustnessParams
from transferlab.explain.saliency import SaliencyParams
from transferlab.metrics import read_metrics
from transferlab.models.registry import build_backbone, save_backbone
from transferlab.report.sections import explain as explain_section

torch.set_num_threads(1)

CLASSES = ("horizontal", "vertical", "diagonal")
ROOT = Path(__file__).resolve().parents[1]

TINY = {
    "base": {"seed": 0, "device": "cpu", "num_workers": 0},
    "explain": {
        "runs": {"tiny": {"backbone": "tiny", "dataset": "bars"}},
        "saliency": {"num_images": 3, "target": "label", "object_threshold": 0.05},
        "adversarial": {
            "num_images": 2,
            "target_class": "vertical",
            "step_size": 0.5,
            "max_iterations": 5,
        },
        "fgsm": {"epsilons": [0.0, 0.1, 0.3], "num_images": 12, "batch_size": 5},
        "classvis": {
            "classes": [0, "diagonal"],
            "iterations": 4,
            "lr": 0.5,
            "l2_reg": 0.001,
            "jitter": 1,
            "blur_every": 2,
            "blur_sigma": 0.5,
            "init_std": 0.1,
        },
        "robustness": {
            "noise_sigmas": [0.0, 0.3],
            "blur_radii": [0.0, 1.0],
            "num_images": 12,
            "gallery_size": 4,
            "batch_size": 5,
        },
    },
}


def bars_dataset(n: int = 60, side: int = 28, seed: int = 0) -> PreparedDataset:
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    images = rng.integers(0, 40, size=(n, side, side, 1)).astype(np.uint8)
    for i, y in enumerate(labels):
        k = int(rng.integers(4, side - 4))
        if y == 0:
            images[i, k, :, 0] = 230
        elif y == 1:
            images[i, :, k, 0] = 230
        else:
            np.fill_diagonal(images[i, :, :, 0], 230)
    is_test = np.arange(n) >= n // 2
    return PreparedDataset(images, labels.astype(np.int64), is_test, CLASSES, {"name": "bars"})


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("explain")
    (root / "data").mkdir()
    save_prepared(bars_dataset(), root / "data")
    backbone = build_backbone("vgg_mini", "none", num_classes=3, name="tiny", seed=0)
    backbone.categories = CLASSES
    save_backbone(backbone, root / "model", {"name": "tiny", "weights": "none", "seed": 0})
    write_params(root / "params.yaml", TINY)
    return root


def write_params(path: Path, params: dict) -> Path:
    path.write_text(yaml.safe_dump(params))
    return path


def stage_args(stage: str, ws: Path, out: Path, params: Path) -> list[str]:
    args = ["--model", str(ws / "model"), "--data", str(ws / "data"), "--params", str(params), "--run", "tiny"]
    args += ["--metrics", str(out / "metrics" / stage / "bars-tiny.json")]
    fig = out / "reports" / "figures" / stage
    args += ["--figure", str(fig / "bars-tiny.png")]
    if stage == "fgsm":
        args += ["--plot", str(out / "plots" / "fgsm" / "bars-tiny.json")]
    if stage == "robustness":
        args += ["--gallery", str(fig / "bars-tiny_mistakes.png")]
        args += ["--plot-noise", str(out / "plots" / "robustness" / "bars-tiny_noise.json")]
        args += ["--plot-blur", str(out / "plots" / "robustness" / "bars-tiny_blur.json")]
    return args


MAINS = {
    "saliency": saliency.main,
    "adversarial": adversarial.main,
    "fgsm": fgsm.main,
    "classvis": classvis.main,
    "robustness": robustness.main,
}


def without_timing(obj):
    """Metrics minus timing keys (the determinism rule: keys containing 'seconds')."""
    if isinstance(obj, dict):
        return {k: without_timing(v) for k, v in obj.items() if "seconds" not in k}
    return obj


def all_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize("stage", list(MAINS))
def test_stage_writes_outputs_and_is_deterministic(stage, workspace, tmp_path):
    params = workspace / "params.yaml"
    runs = []
    for k in range(2):
        out = tmp_path / f"run{k}"
        MAINS[stage](stage_args(stage, workspace, out, params))
        runs.append(read_metrics(out / "metrics" / stage / "bars-tiny.json"))  # timings merged back
        assert (out / "reports" / "figures" / stage / "bars-tiny.png").stat().st_size > 1000
    assert without_timing(runs[0]) == without_timing(runs[1])
    m = runs[0]
    assert m["backbone"] == "tiny" and m["dataset"] == "bars"
    assert isinstance(m["seconds"], float)
    if stage == "fgsm":
        curve = json.loads((tmp_path / "run0" / "plots" / "fgsm" / "bars-tiny.json").read_text())
        assert [r["epsilon"] for r in curve] == [0.0, 0.1, 0.3]
        assert curve[0]["accuracy"] == m["clean_accuracy"] == m["accuracy"]["eps_0"]
        assert m["num_images"] == 12
    if stage == "robustness":
        assert set(m["noise_accuracy"]) == {"sigma_0", "sigma_0.3"}
        assert (
            m["noise_accuracy"]["sigma_0"] == m["clean_accuracy"] == m["blur_accuracy"]["radius_0"]
        )
        assert (
            tmp_path / "run0" / "reports" / "figures" / "robustness" / "bars-tiny_mistakes.png"
        ).is_file()
        assert len(m["confident_mistakes"]) <= 4
    if stage == "adversarial":
        assert m["target_name"] == "vertical" and m["target_class"] == 1
        assert m["num_images"] == 2 and len(m["per_image"]) == 2
        assert all(v["original_class"] != 1 for v in m["per_image"].values())
        assert 0.0 <= m["success_rate"] <= 1.0
    if stage == "classvis":
        assert set(m["per_class"]) == {"horizontal", "diagonal"}
    if stage == "saliency":
        assert m["num_images"] == 3 and 0.0 <= m["mean_mass_in_object"] <= 1.0


def test_a_different_seed_changes_the_selection(workspace, tmp_path):
    params = copy.deepcopy(TINY)
    params["base"]["seed"] = 1
    p1 = write_params(tmp_path / "p1.yaml", params)
    saliency.main(stage_args("saliency", workspace, tmp_path / "a", workspace / "params.yaml"))
    saliency.main(stage_args("saliency", workspace, tmp_path / "b", p1))
    a = json.loads((tmp_path / "a" / "metrics" / "saliency" / "bars-tiny.json").read_text())
    b = json.loads((tmp_path / "b" / "metrics" / "saliency" / "bars-tiny.json").read_text())
    assert a["per_image_mass_in_object"] != b["per_image_mass_in_object"]


@pytest.mark.parametrize(
    ("stage", "section", "change", "message"),
    [
        ("fgsm", "fgsm", {"epsilons": [0.0, -0.1]}, "explain.fgsm.epsilons[1] must be in [0, 1]"),
        ("fgsm", "fgsm", {"epsilons": [0.0, 2.0]}, "explain.fgsm.epsilons[1] must be in [0, 1]"),
        ("adversarial", "adversarial", {"target_class": "cat"}, "unknown target class 'cat'"),
        ("adversarial", "adversarial", {"target_class": 7}, "target class 7 out of range"),
        ("adversarial", "adversarial", {"max_iterations": 0}, "max_iterations must be >= 1"),
        ("adversarial", "adversarial", {"step_size": 0}, "step_size must be > 0"),
        ("classvis", "classvis", {"iterations": 0}, "iterations must be >= 1"),
        ("classvis", "classvis", {"classes": ["dog"]}, "unknown target class 'dog'"),
        ("classvis", "classvis", {"classes": [0, "horizontal"]}, "names a class twice"),
        ("saliency", "saliency", {"target": "true"}, "target must be label or predicted"),
        ("saliency", "saliency", {"num_imgs": 3}, "explain.saliency.num_imgs: unknown key"),
        ("robustness", "robustness", {"noise_sigmas": [-1.0]}, "noise_sigmas must be >= 0"),
    ],
)
def test_bad_params_fail_with_one_line_and_no_outputs(
    stage, section, change, message, workspace, tmp_path, capsys
):
    params = copy.deepcopy(TINY)
    params["explain"][section].update(change)
    path = write_params(tmp_path / "params.yaml", params)
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exc:
        MAINS[stage](stage_args(stage, workspace, out, path))
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: ") and message in err, err
    assert not out.exists() or all_files(out) == []


def test_dataset_that_is_not_the_models_classes_is_labelled_by_the_clean_prediction(workspace, tmp_path):
    """Photos that are not the model's classes: FGSM/robustness score the clean top-1's survival."""
    other = bars_dataset()
    other = PreparedDataset(
        other.images, other.labels, other.is_test, ("a", "b", "c"), {"name": "other"}
    )
    (tmp_path / "other").mkdir()
    save_prepared(other, tmp_path / "other")
    out = tmp_path / "out"
    for stage in ("fgsm", "robustness", "saliency"):
        args = stage_args(stage, workspace, out, workspace / "params.yaml")
        args[args.index("--data") + 1] = str(tmp_path / "other")
        MAINS[stage](args)
    fgsm_m = json.loads((out / "metrics" / "fgsm" / "bars-tiny.json").read_text())
    assert fgsm_m["labels"] == "clean_prediction"
    assert fgsm_m["clean_accuracy"] == 1.0 and fgsm_m["accuracy"]["eps_0"] == 1.0  # top-1 agrees with itself
    rob = json.loads((out / "metrics" / "robustness" / "bars-tiny.json").read_text())
    assert rob["labels"] == "clean_prediction" and rob["clean_accuracy"] == 1.0
    sal = json.loads((out / "metrics" / "saliency" / "bars-tiny.json").read_text())
    assert sal["labels"] == "clean_prediction"


def test_run_overrides_apply_to_that_run_only(workspace, tmp_path):
    """explain.runs.<run>.<method> keys override explain.<method> for that run's stages."""
    params = copy.deepcopy(TINY)
    params["explain"]["runs"]["small"] = {"backbone": "tiny", "dataset": "bars", "fgsm": {"epsilons": [0.0, 0.2]}}
    path = write_params(tmp_path / "params.yaml", params)
    for run, out in (("tiny", tmp_path / "a"), ("small", tmp_path / "b")):
        args = stage_args("fgsm", workspace, out, path)
        args[args.index("--run") + 1] = run
        fgsm.main(args)
    a = json.loads((tmp_path / "a" / "metrics" / "fgsm" / "bars-tiny.json").read_text())
    b = json.loads((tmp_path / "b" / "metrics" / "fgsm" / "bars-tiny.json").read_text())
    assert sorted(a["accuracy"]) == ["eps_0", "eps_0.1", "eps_0.3"]
    assert sorted(b["accuracy"]) == ["eps_0", "eps_0.2"]
    assert a["num_images"] == b["num_images"] == 12  # the rest of explain.fgsm still applies


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"fgsm": {"epsilons": [0.0, 2.0]}}, "explain.runs.tiny.fgsm.epsilons[1] must be in [0, 1]"),
        ({"saliency": {"num_imgs": 3}}, "explain.runs.tiny.saliency.num_imgs: unknown key"),
        ({"classvis": {"iterations": 0}}, "explain.runs.tiny.classvis.iterations must be >= 1"),
    ],
)
def test_bad_run_override_is_one_line(override, message, workspace, tmp_path, capsys):
    params = copy.deepcopy(TINY)
    params["explain"]["runs"]["tiny"].update(override)
    path = write_params(tmp_path / "params.yaml", params)
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exc:
        fgsm.main(stage_args("fgsm", workspace, out, path))
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not out.exists() or all_files(out) == []


def test_missing_model_is_a_user_error(workspace, tmp_path, capsys):
    args = stage_args("saliency", workspace, tmp_path / "out", workspace / "params.yaml")
    args[args.index("--model") + 1] = str(tmp_path / "nope")
    with pytest.raises(SystemExit):
        saliency.main(args)
    assert "has no card.json" in capsys.readouterr().err


def test_report_section_shows_every_stage(workspace, tmp_path):
    for stage, main in MAINS.items():
        main(stage_args(stage, workspace, tmp_path, workspace / "params.yaml"))
    section = explain_section.build(tmp_path / "metrics", tmp_path / "reports")
    assert section is not None and section.title == "Explaining and attacking"
    tables = [b for b in section.blocks if hasattr(b, "frame")]
    summary = tables[0].frame
    assert summary["item"].tolist() == ["bars-tiny"]
    for col in ("saliency mass on object", "fooling success", "classvis p end", "mean noise acc"):
        assert col in summary.columns
    fgsm_table = tables[1].frame
    assert [c for c in fgsm_table.columns if c.startswith("eps=")] == [
        "eps=0",
        "eps=0.1",
        "eps=0.3",
    ]
    figures = [b.path for b in section.blocks if hasattr(b, "path")]
    assert "figures/robustness/bars-tiny_mistakes.png" in figures and len(figures) == 6
    assert explain_section.build(tmp_path / "empty", tmp_path / "reports") is None


@pytest.mark.parametrize("overrides", [None, "tests/tiny_params.yaml"])
def test_params_yaml_explain_sections_are_valid(overrides):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    if overrides:
        params = deep_merge(params, yaml.safe_load((ROOT / overrides).read_text()))
    ex = params["explain"]
    runs = {name: run for name, run in ex["runs"].items() if run is not None}  # null drops a run (tiny params)
    assert runs and all(r["backbone"] in params["backbones"] and r["dataset"] in params["datasets"] for r in runs.values())
    for name, run in runs.items():
        for method in METHOD_PARAMS:
            run_params(method, ex[method], from_mapping(ExplainRun, run, f"explain.runs.{name}"), name)
    for cls, key in [
        (SaliencyParams, "saliency"),
        (AdversarialParams, "adversarial"),
        (FGSMParams, "fgsm"),
        (ClassVisParams, "classvis"),
        (RobustnessParams, "robustness"),
    ]:
        from_mapping(cls, ex[key], where=f"explain.{key}")
