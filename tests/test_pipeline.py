"""End-to-end: the real dvc.yaml stages on tiny params in a temporary git + DVC repo.

Runs `dvc repro` (all stages), checks every stage wrote metrics and the report, that a
second `dvc repro` runs nothing, that a forced re-run of every stage gives byte-identical
metrics (the detail files with their provenance and the headline files; same seed, same
numbers on CPU; wall-clock times live apart in timings/), and that `dvc metrics show`
lists the headlines.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.study_repo import commit_all, deep_merge, ran_stages, run
from transferlab.metrics import timings_path

pytestmark = pytest.mark.slow
VERSIONED = ("python", "torch", "torchvision", "scikit-learn", "numpy", "transferlab")


def read_metrics(repo: Path) -> dict[str, bytes]:
    """Every metrics JSON's bytes, by path (the wall-clock halves live in timings/)."""
    return {str(p.relative_to(repo)): p.read_bytes() for p in sorted((repo / "metrics").rglob("*.json"))}


def timings_outs(repo: Path) -> dict[str, list[str]]:
    """Per stage in dvc.lock, the timings files it declares as outputs."""
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    return {
        name: [o["path"] for o in entry.get("outs", []) if o["path"].startswith("timings/")]
        for name, entry in lock.items()
    }


@pytest.fixture(scope="module")
def first_run(tiny_study, tmp_path_factory) -> tuple[Path, dict, dict]:
    """A private copy of the session's tiny study, checked to have run every stage."""
    repo = tiny_study.copy(tmp_path_factory.mktemp("pipeline") / "repo")
    env = tiny_study.env
    stages = run(["dvc", "stage", "list", "--name-only"], repo, env).stdout.split()
    assert sorted(tiny_study.first_repro_stages) == sorted(stages)
    return repo, env, read_metrics(repo)


def test_every_stage_writes_metrics_and_report(first_run):
    repo, _, metrics = first_run
    for stage in ("prepare", "pretrain", "extract"):
        assert any(k.startswith(f"metrics/{stage}/") for k in metrics), stage
    report = (repo / "reports" / "report.md").read_text()
    assert "## Backbones" in report and "## Feature extraction" in report
    assert "## Where the time goes" in report and "| total |" in report
    html = (repo / "reports" / "report.html").read_text()
    assert html.startswith("<!doctype html>") and "<table>" in html


def test_second_repro_runs_nothing_and_metrics_listed(first_run):
    repo, env, metrics = first_run
    proc = run(["dvc", "repro"], repo, env)
    assert ran_stages(proc.stdout) == []
    assert read_metrics(repo) == metrics
    (workspace,) = json.loads(run(["dvc", "metrics", "show", "--json"], repo, env).stdout).values()
    shown = workspace["data"]
    assert shown["metrics/headline/pretrain/vgg_mini.json"]["data"]["vgg_mini"]["test_acc"] > 0
    assert not any(path.startswith("metrics/pretrain/") for path in shown)  # the detail is an out, not a metric


def test_forced_rerun_of_every_stage_gives_byte_identical_metrics(first_run):
    repo, env, metrics = first_run
    models = sorted((repo / "data" / "models" / "vgg_mini").iterdir())
    before = {p.name: p.read_bytes() for p in models}
    proc = run(["dvc", "repro", "--force"], repo, env)
    assert sorted(ran_stages(proc.stdout)) == sorted(timings_outs(repo))  # every stage re-ran
    again = read_metrics(repo)
    assert sorted(again) == sorted(metrics)
    assert [k for k in metrics if again[k] != metrics[k]] == []  # a timing under another key shows here
    seed = yaml.safe_load((repo / "params.yaml").read_text())["base"]["seed"]
    headlines = [k for k in again if k.startswith("metrics/headline/")]  # byte-identical too, checked above
    assert headlines and all(k.replace("headline/", "", 1) in again for k in headlines)  # each beside its detail
    for key, raw in again.items():
        if key in headlines:
            assert "provenance" not in json.loads(raw), key  # numbers only: no version columns in dvc exp show
            continue
        block = json.loads(raw)["provenance"]
        assert block["seed"] == seed and block["device"].split(":")[0] in ("cpu", "mps", "cuda"), key
        assert all(block["versions"][name] for name in VERSIONED), key
        assert timings_path(repo / key).is_file(), key
    for stage, paths in timings_outs(repo).items():
        if stage == "report":
            assert paths == []
            continue
        recorded = [json.loads((repo / p).read_text()).get("stage_seconds") for p in paths]
        assert [s for s in recorded if s is not None and s > 0], (stage, paths)
    # byte-identical model directory: nothing downstream of pretrain is invalidated
    assert {p.name: p.read_bytes() for p in models} == before
    status = run(["dvc", "status", "--json"], repo, env).stdout
    assert json.loads(status) == {}, status


def test_bad_param_fails_with_one_line_and_keeps_outputs(first_run):
    repo, env, _ = first_run
    before = (repo / "metrics" / "extract" / "digits-vgg_mini.json").read_text()
    params = yaml.safe_load((repo / "params.yaml").read_text())
    bad = deep_merge(params, {"backbones": {"vgg_mini": {"layers": ["pool1", "pool9"]}}})
    (repo / "params.yaml").write_text(yaml.safe_dump(bad, sort_keys=False))
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "stages.extract", "--dataset", "data/prepared/digits",
             "--backbone", "vgg_mini", "--out", "data/features/digits-vgg_mini",
             "--metrics", "metrics/extract/digits-vgg_mini.json"],
            cwd=repo, env=env, capture_output=True, text=True,
        )
    finally:
        (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "pool9" in lines[0] and "pool1" in lines[0], proc.stderr
    assert (repo / "metrics" / "extract" / "digits-vgg_mini.json").read_text() == before
    assert (repo / "data" / "features" / "digits-vgg_mini").is_dir()


def test_exp_run_of_a_classify_change_reruns_only_classify_and_report(first_run):
    repo, env, _ = first_run
    run(["dvc", "repro"], repo, env)  # earlier tests may have left the workspace changed
    commit_all(repo, env, "after the forced re-runs")
    proc = run(["dvc", "exp", "run", "-S", "classify.C=[0.5,2]"], repo, env)
    ran = ran_stages(proc.stdout)
    assert ran and all(s.startswith("classify@") or s == "report" for s in ran), ran
    assert any(s.startswith("classify@") for s in ran) and "report" in ran
    # the detail files are not DVC metrics, yet `dvc metrics diff --targets` compares any JSON
    diff = run(["dvc", "metrics", "diff", "--json", "--targets", "metrics/classify", "-R"], repo, env).stdout
    assert "C=0.5" in diff or "C=2" in diff  # per layer/kernel/C accuracies are compared
