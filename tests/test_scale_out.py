"""Scale-out on the tiny study: a parallel experiment queue, and a second clone fed by a remote.

- Queue: four `dvc exp run --queue` variants (two of classify.C, two of tsne.perplexity)
  run by `dvc queue start -j 2`; `dvc exp show --json` lists each with its own metrics, and
  each re-ran only the stages its params feed.
- Remote: a local-directory DVC remote; `dvc push` from one copy, `git clone` + `dvc pull`
  into a fresh workspace with its own empty cache, after which `dvc repro` runs nothing and
  the pulled data, models and features are byte-identical.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from tests.study_repo import ran_stages, run

pytestmark = pytest.mark.slow

TARGET = "digits-vgg_mini"  # a classify@ / tsne@ item of the tiny study
CLASSIFY_METRICS = f"metrics/classify/{TARGET}.json"
TSNE_METRICS = f"metrics/tsne/{TARGET}.json"
VARIANTS = {  # experiment name -> (-S override, the stage family it must re-run)
    "c-small": ("classify.C=[0.001]", "classify@"),
    "c-large": ("classify.C=[10]", "classify@"),
    "p-small": ("tsne.perplexity=5", "tsne@"),
    "p-large": ("tsne.perplexity=40", "tsne@"),
}
QUEUE_TIMEOUT_S = 900
CACHED_OUTPUTS = ("data/prepared", "data/models", "data/features", "reports/report.html")


def queue_statuses(repo: Path, env: dict[str, str]) -> dict[str, str]:
    """Experiment name -> Queued / Running / Success / Failed, from `dvc queue status`."""
    out = run(["dvc", "queue", "status"], repo, env).stdout
    rows = (re.match(r"^[0-9a-f]{7}\s+(\S+)\s+.*\s(\w+)\s*$", line) for line in out.splitlines())
    return {m.group(1): m.group(2) for m in rows if m}


def wait_for_queue(repo: Path, env: dict[str, str], names: list[str]) -> dict[str, str]:
    """Poll until none of ``names`` is queued or running; fail with the failed ones' logs."""
    deadline = time.monotonic() + QUEUE_TIMEOUT_S
    while True:
        statuses = queue_statuses(repo, env)
        done = all(statuses.get(n) in ("Success", "Failed") for n in names)
        if done or time.monotonic() > deadline:
            break
        time.sleep(3)
    bad = [n for n in names if statuses.get(n) != "Success"]
    if bad:
        logs = {n: run(["dvc", "queue", "logs", n], repo, env, check=False).stdout[-3000:] for n in bad}
        pytest.fail(f"queued experiments not successful: {statuses}\n{logs}")
    return statuses


def experiments_by_name(show_json: str) -> dict[str, dict]:
    """`dvc exp show --json` -> experiment name -> {"params": ..., "metrics": ...} (file -> data)."""
    found = {}
    for baseline in json.loads(show_json):
        for exp in [baseline, *(e for r in baseline.get("experiments") or [] for e in r["revs"])]:
            data = exp.get("data") or {}
            found[exp.get("name") or exp["rev"]] = {
                "rev": exp["rev"],
                **{kind: {path: v["data"] for path, v in (data.get(kind) or {}).items()} for kind in ("params", "metrics")},
            }
    return found


def untimed(metrics: dict) -> dict:
    """Metrics without wall-clock values (keys with 'seconds'), which differ on every run."""
    return {k: untimed(v) if isinstance(v, dict) else v for k, v in metrics.items() if "seconds" not in k}


def tree_bytes(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (or ``root`` itself) -> its bytes."""
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())  # none if absent
    return {str(p.relative_to(root.parent)): p.read_bytes() for p in files}


def test_queued_variants_run_on_two_workers_and_show_their_own_metrics(tiny_study, tmp_path):
    repo, env = tiny_study.copy(tmp_path / "repo"), tiny_study.env
    for name, (override, _) in VARIANTS.items():
        run(["dvc", "exp", "run", "--queue", "-n", name, "-S", override], repo, env)
    run(["dvc", "queue", "start", "-j", "2"], repo, env)
    wait_for_queue(repo, env, list(VARIANTS))

    exps = experiments_by_name(run(["dvc", "exp", "show", "--json"], repo, env).stdout)
    baseline = {path: json.loads((repo / path).read_text()) for path in (CLASSIFY_METRICS, TSNE_METRICS)}
    # the detail files are git-tracked outputs: read each experiment's from its commit
    metrics = {
        name: {path: json.loads(run(["git", "show", f"{exps[name]['rev']}:{path}"], repo, env).stdout)
               for path in (CLASSIFY_METRICS, TSNE_METRICS)}
        for name in VARIANTS
    }  # fmt: skip
    for name, (override, family) in VARIANTS.items():
        key, value = override.split("=")
        section, field = key.split(".")
        assert str(exps[name]["params"]["params.yaml"][section][field]).replace(" ", "") == value, name
        # the stage family its param feeds has new metrics; the other kept the baseline's
        changed, kept = (CLASSIFY_METRICS, TSNE_METRICS)
        if family == "tsne@":
            changed, kept = kept, changed
        assert metrics[name][kept] == baseline[kept], name
        assert untimed(metrics[name][changed]) != untimed(baseline[changed]), name
        ran = ran_stages(run(["dvc", "queue", "logs", name], repo, env).stdout)
        assert "report" in ran and any(s.startswith(family) for s in ran), (name, ran)
        assert all(s.startswith(family) or s == "report" for s in ran), (name, ran)
    # the metrics record the swept values, and the two variants of each pair differ
    assert [metrics[n][CLASSIFY_METRICS]["best"]["C"] for n in ("c-small", "c-large")] == [0.001, 10]
    assert [metrics[n][TSNE_METRICS]["perplexity"] for n in ("p-small", "p-large")] == [5, 40]
    for a, b, path in (("c-small", "c-large", CLASSIFY_METRICS), ("p-small", "p-large", TSNE_METRICS)):
        assert untimed(metrics[a][path]) != untimed(metrics[b][path]), (a, b)
    # -j 2: both workers took experiments (DVC's celery worker logs)
    worker_logs = sorted((repo / ".dvc" / "tmp" / "exps" / "celery").glob("dvc-exp-worker-*.out"))
    took = [bool(re.search(r"run_exp\[[^]]+\] received", p.read_text())) for p in worker_logs]
    assert took == [True, True], worker_logs


def test_second_clone_pulls_from_the_remote_and_recomputes_nothing(tiny_study, tmp_path):
    first, env = tiny_study.copy(tmp_path / "first"), tiny_study.env
    remote = tmp_path / "remote"
    run(["dvc", "remote", "add", "-d", "shared", str(remote)], first, env)
    run(["git", "commit", "-qam", "shared DVC remote"], first, env)
    run(["dvc", "push"], first, env)
    assert any(p.is_file() for p in remote.rglob("*"))

    second = tmp_path / "second"  # another machine: a fresh clone with its own, empty cache
    run(["git", "clone", "-q", str(first), str(second)], tmp_path, env)
    cache = Path(run(["dvc", "cache", "dir"], second, env).stdout.strip())
    assert cache.resolve() == (second / ".dvc" / "cache").resolve() and not cache.exists()
    assert not [f for out in CACHED_OUTPUTS for f in tree_bytes(second / out) if not f.endswith(".gitignore")]

    run(["dvc", "pull"], second, env)
    proc = run(["dvc", "repro"], second, env)
    assert ran_stages(proc.stdout) == [], proc.stdout
    assert json.loads(run(["dvc", "status", "--json"], second, env).stdout) == {}
    for output in CACHED_OUTPUTS:
        pulled = tree_bytes(second / output)
        assert pulled and pulled == tree_bytes(first / output), output
