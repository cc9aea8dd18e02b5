"""Comparing and sharing runs the DVC way, end to end on the tiny study.

A `classify.C` sweep as `dvc exp run -S`: `dvc exp show --json` lists the headline metrics
with values, `dvc metrics diff` reports exactly the headline numbers that moved and, with
`--targets`, the grid points of the detail files; `dvc plots show` draws train and test
accuracy (and D and G losses) on one chart; two clones push their experiments to a shared
bare git remote and a local DVC remote, and a third clone pulls both and compares them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.study_repo import commit_all, run

pytestmark = pytest.mark.slow
HEADLINE = "metrics/headline/"


def revisions(shown: Any) -> Iterator[dict[str, Any]]:
    """Every revision entry (workspace, baseline commits, experiments) of `dvc exp show --json`."""
    if isinstance(shown, dict):
        if "rev" in shown and "data" in shown:
            yield shown
        for value in shown.values():
            yield from revisions(value)
    elif isinstance(shown, list):
        for value in shown:
            yield from revisions(value)


def exp_show(repo: Path, env: dict[str, str]) -> dict[str, dict[str, Any]]:
    """``{name or rev: data}`` of `dvc exp show --json` (data: params, metrics, ...)."""
    shown = json.loads(run(["dvc", "exp", "show", "--json"], repo, env).stdout)
    return {r.get("name") or r["rev"]: r["data"] for r in revisions(shown) if r.get("data")}


def headlines(metrics: dict[str, Any]) -> dict[str, float]:
    """``{path: {"data": {run: {name: value}}}}`` (metrics of a revision) flattened to ``path:run.name``."""
    out = {}
    for path, entry in metrics.items():
        assert path.startswith(HEADLINE), path  # nothing but headlines is a DVC metric
        for run_name, values in entry["data"].items():
            out.update({f"{path}:{run_name}.{k}": v for k, v in values.items()})
    return out


def check_values(values: dict[str, float]) -> None:
    """Accuracies in [0, 1], FIDs non-negative: numbers, not placeholders."""
    for key, value in values.items():
        assert isinstance(value, float) and value >= 0 and (key.endswith(".fid") or value <= 1), (key, value)


@pytest.fixture
def study(tiny_study, tmp_path) -> tuple[Path, dict[str, str]]:
    return tiny_study.copy(tmp_path / "a"), tiny_study.env


def test_a_c_sweep_shows_headlines_and_the_accuracies_that_moved(study):
    repo, env = study
    (workspace,) = json.loads(run(["dvc", "metrics", "show", "--json"], repo, env).stdout).values()
    base = headlines(workspace["data"])
    run(["dvc", "exp", "run", "-n", "c-sweep", "-S", "classify.C=[0.5,2]"], repo, env)
    shown = exp_show(repo, env)["c-sweep"]
    assert shown["params"]["params.yaml"]["data"]["classify"]["C"] == [0.5, 2]
    exp = headlines(shown["metrics"])
    check_values(exp)
    classify = {k for k in exp if k.startswith(f"{HEADLINE}classify/")}
    assert classify and {k.rsplit(".", 1)[1] for k in classify} == {"svm", "softmax"}
    for stage in ("pretrain", "finetune", "scratch", "gan", "fgsm", "adversarial"):
        assert any(k.startswith(f"{HEADLINE}{stage}/") for k in exp), stage
    assert set(exp) == set(base)
    # plain `dvc metrics diff` (HEAD vs the workspace, which holds the experiment): exactly the moved headlines
    diff = json.loads(run(["dvc", "metrics", "diff", "--json"], repo, env).stdout)
    moved = {f"{path}:{key}": change["new"] for path, keys in diff.items() for key, change in keys.items()}
    assert moved == {k: v for k, v in exp.items() if base[k] != v}
    assert all(k.startswith(f"{HEADLINE}classify/") for k in moved)  # only classify (and report) ran
    # the detail files are not DVC metrics, yet `--targets` compares them: every new grid point shows
    detail = json.loads(
        run(["dvc", "metrics", "diff", "--json", "--targets", "metrics/classify", "-R"], repo, env).stdout
    )
    new_points = [(p, k) for p, keys in detail.items() for k in keys if k.startswith("test_acc.") and ".C=0.5." in k]
    assert new_points and all(detail[p][k]["old"] is None and 0 <= detail[p][k]["new"] <= 1 for p, k in new_points)
    assert any(k.startswith("best_by_layer.") for keys in detail.values() for k in keys)  # per-layer best moved


def test_plots_draw_curves_that_belong_together_on_one_chart(study):
    repo, env = study
    shown = json.loads(run(["dvc", "plots", "show", "--json"], repo, env).stdout)
    assert not shown.get("errors"), shown.get("errors")
    fields = {  # one chart per file with a curve; an empty curve (a skipped run) draws none
        path: {v.get("field") for p in plots for v in p["content"]["data"]["values"]}
        for path, plots in shown["data"].items()
        if plots
    }
    assert all(len(shown["data"][path]) == 1 for path in fields)  # every curve of a run on its one chart
    # every fine-tune run that trained (a headline test_acc) has its train and test curves together
    trained = {
        f"plots/finetune/{p.stem}.json"
        for p in (repo / HEADLINE / "finetune").glob("*.json")
        if json.loads(p.read_text())
    }
    assert trained and {p for p in fields if p.startswith("plots/finetune/")} == trained
    assert all(fields[p] == {"train_acc", "test_acc"} for p in trained), fields
    gan = [f for path, f in fields.items() if path.startswith("plots/gan/")]
    assert gan and all(f == {"loss_D", "loss_G"} for f in gan), fields
    assert fields["plots/pretrain/vgg_mini.json"] == {"train_acc", "test_acc"}
    assert fields["plots/scratch/fashion-mnist-cnn.csv"] == {"train_acc", "test_acc"}
    assert any(path.startswith("plots/fgsm/") for path in fields)
    html = repo / "dvc_plots" / "index.html"
    run(["dvc", "plots", "show", "-o", str(html.parent)], repo, env)
    text = html.read_text()
    assert all(name in text for name in ("train_acc", "test_acc", "loss_D", "loss_G"))


def test_two_clones_push_experiments_a_third_pulls_and_compares_both(study, tmp_path):
    a, env = study
    origin, store = tmp_path / "origin.git", tmp_path / "dvc-store"
    run(["git", "init", "-q", "--bare", "--initial-branch=main", str(origin)], tmp_path, env)
    run(["git", "branch", "-M", "main"], a, env)
    run(["dvc", "remote", "add", "-d", "store", str(store)], a, env)
    commit_all(a, env, "share: a DVC remote")
    run(["git", "remote", "add", "origin", str(origin)], a, env)
    run(["git", "push", "-q", "origin", "main"], a, env)
    run(["dvc", "push", "-q"], a, env)

    b = tmp_path / "b"
    run(["git", "clone", "-q", str(origin), str(b)], tmp_path, env)
    run(["dvc", "pull", "-q"], b, env)
    assert json.loads(run(["dvc", "status", "--json"], b, env).stdout) == {}  # b has the study, nothing to re-run
    results = {}
    for repo, name, c_grid in ((a, "from-a", "[2]"), (b, "from-b", "[0.5]")):
        run(["dvc", "exp", "run", "-n", name, "-S", f"classify.C={c_grid}"], repo, env)
        results[name] = headlines(exp_show(repo, env)[name]["metrics"])
        run(["dvc", "exp", "push", "origin", name], repo, env)

    c = tmp_path / "c"
    run(["git", "clone", "-q", str(origin), str(c)], tmp_path, env)
    assert exp_show(c, env).keys().isdisjoint(results)  # nothing before the pull
    for name in results:
        run(["dvc", "exp", "pull", "origin", name], c, env)
    shown = exp_show(c, env)
    for name, values in results.items():
        assert headlines(shown[name]["metrics"]) == values, name
    assert [shown[n]["params"]["params.yaml"]["data"]["classify"]["C"] for n in ("from-a", "from-b")] == [[2], [0.5]]
    # the pulled experiment's outputs came with it (DVC remote): apply one and its workspace is complete
    run(["dvc", "exp", "apply", "from-b"], c, env)
    run(["dvc", "pull", "-q"], c, env)
    assert json.loads(run(["dvc", "status", "--json"], c, env).stdout) == {}
