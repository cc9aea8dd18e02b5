"""Headline metrics: what each stage declares for `dvc exp show`, picked and written beside the detail file."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest
import yaml

from transferlab.metrics import HEADLINE_DIGITS, headline, headline_path, write_metrics

ROOT = Path(__file__).resolve().parents[1]
HEADLINE_STAGES = ("pretrain", "classify", "finetune", "scratch", "fgsm", "adversarial", "gan")


def test_headline_path_sits_under_the_last_metrics_folder():
    assert headline_path("metrics/classify/a.json") == Path("metrics/headline/classify/a.json")
    assert headline_path("metrics/predict.json") == Path("metrics/headline/predict.json")
    assert headline_path("out/m.json") == Path("out/headline/m.json")


def test_headline_picks_nested_and_computed_values_rounds_and_leaves_out_missing():
    metrics = {"best": {"test_acc": 0.123456789}, "fid": 212.2479579, "cond": None, "heads": [0.5, 0.7]}
    spec = {"svm": "best.test_acc", "fid": "fid", "cond_acc": "cond", "gone": "no.such", "head": lambda m: max(m["heads"])}
    assert headline(metrics, spec, "digits-vgg_mini") == {
        "digits-vgg_mini": {"svm": round(0.123456789, HEADLINE_DIGITS), "fid": 212.248, "head": 0.7}
    }
    assert headline({"cond": None}, {"cond_acc": "cond"}, "x") == {}  # a skipped run: nothing to compare


@pytest.mark.parametrize("value", ["0.9", True, float("nan"), {"a": 1}])
def test_headline_rejects_a_value_that_is_not_a_finite_number(value):
    with pytest.raises(ValueError, match="finite number"):
        headline({"v": value}, {"v": "v"}, "run")


def test_headline_refuses_a_wall_clock_name():
    with pytest.raises(ValueError, match="timings"):
        headline({"fit_seconds": 1.0}, {"fit_seconds": "fit_seconds"}, "run")


def test_write_metrics_writes_the_headline_from_the_deterministic_part(tmp_path):
    path = tmp_path / "metrics" / "gan" / "cdcgan.json"
    metrics = {"fid": 212.24795799, "conditional_accuracy": 0.539, "seconds": 3.2, "per_image": {"1": 0.5}}
    write_metrics(path, metrics, seed=0, device="cpu", headline_spec={"fid": "fid", "cond_acc": "conditional_accuracy"})
    assert json.loads((tmp_path / "metrics" / "headline" / "gan" / "cdcgan.json").read_text()) == {
        "cdcgan": {"cond_acc": 0.539, "fid": 212.248}
    }
    assert "per_image" in json.loads(path.read_text())  # the detail keeps everything
    skipped = tmp_path / "metrics" / "gan" / "dcgan.json"
    write_metrics(skipped, {"skipped": "why"}, seed=0, device="cpu", headline_spec={"fid": "fid"})
    assert json.loads(headline_path(skipped).read_text()) == {}  # the declared DVC metric always exists
    without = tmp_path / "metrics" / "inspect" / "vgg16.json"
    write_metrics(without, {"params": 1}, seed=0, device="cpu")
    assert not headline_path(without).exists()


@pytest.mark.parametrize("stage", HEADLINE_STAGES)
def test_each_declared_headline_picks_numbers_from_the_committed_default_study(stage):
    """Every name a stage declares is found in at least one of the default study's metrics files (no typo'd key)."""
    spec = importlib.import_module(f"stages.{stage}").STAGE.headline
    files = sorted((ROOT / "metrics" / stage).glob("*.json"))
    assert files, f"no committed metrics/{stage}/*.json"
    found: set[str] = set()
    for path in files:
        picked = headline(json.loads(path.read_text()), spec, path.stem)
        for values in picked.values():
            assert all(0 <= v <= 1 for k, v in values.items() if k != "fid"), (path, values)
            found |= set(values)
    assert found == set(spec), (stage, sorted(set(spec) - found))


def test_dvc_yaml_declares_headlines_as_metrics_and_details_as_outs():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        stage = stage.get("do", stage)  # a foreach stage's declarations are under ``do``
        metrics = [next(iter(m)) if isinstance(m, dict) else m for m in stage.get("metrics", [])]
        outs = [next(iter(o)) if isinstance(o, dict) else o for o in stage.get("outs", [])]
        assert all(m.startswith("metrics/headline/") for m in metrics), (name, metrics)
        assert (name in HEADLINE_STAGES) == bool(metrics), name
        if name != "report":
            assert any(o.startswith(f"metrics/{name}") for o in outs), (name, outs)  # the detail file
