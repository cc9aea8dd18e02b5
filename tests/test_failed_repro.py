"""A stage that fails under `dvc repro` keeps every previously computed output (issue 20.1).

DVC deletes a stage's outputs before running its command unless they are ``persist: true``;
every output in dvc.yaml is (docs/ARCHITECTURE.md says why), and stages replace them
atomically only once they succeed. One tiny study reproduces the digits transfer chain
(prepare, pretrain@vgg_mini, extract, classify) and is committed; then each kind of mistake a
user makes (a params typo, an out-of-range value, a bad device, an unknown cut layer, a dataset
path that does not exist, a bad file with ``on_bad_file: error``) makes `dvc repro` fail with
its one ``error:`` line, and every output, model and metrics file (and dvc.lock) is
byte-identical afterwards, with nothing but params.yaml changed in git.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.study_repo import ROOT, build_study_repo, commit_all, run, write_params

TARGET = "classify@digits-vgg_mini"
OUTPUT_DIRS = ("data", "metrics", "timings", "plots", "reports")


def test_every_output_in_dvc_yaml_persists():
    """DVC would delete a non-persistent output before the stage runs (and so lose it if it fails)."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    missing = [
        f"{name}: {next(iter(entry)) if isinstance(entry, dict) else entry}"
        for name, stage in stages.items()
        for kind in ("outs", "metrics", "plots")
        for entry in stage.get("do", stage).get(kind, [])  # a foreach stage's outputs are under ``do``
        if not (isinstance(entry, dict) and next(iter(entry.values())).get("persist") is True)
    ]
    assert missing == [], "add `persist: true` to: " + "; ".join(missing)


def _snapshot(repo: Path) -> dict[str, str]:
    """sha256 of every file DVC or git tracks as an output (and dvc.lock), by path."""
    files = [repo / "dvc.lock"] + [p for d in OUTPUT_DIRS for p in sorted((repo / d).rglob("*")) if p.is_file()]
    return {str(p.relative_to(repo)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> tuple[Path, dict[str, str], dict[str, str]]:
    """The digits transfer chain reproduced once and committed; its outputs' hashes."""
    repo, env = build_study_repo(tmp_path_factory.mktemp("failed-repro") / "repo")
    run(["dvc", "repro", TARGET], repo, env)
    commit_all(repo, env, "digits chain")
    before = _snapshot(repo)
    assert {"data/models/vgg_mini/weights.pt", "metrics/classify/digits-vgg_mini.json",
            "metrics/prepare/digits.json", "metrics/pretrain/vgg_mini.json"} <= set(before)  # fmt: skip
    return repo, env, before


def _bad_file_folder(root: Path) -> Path:
    from PIL import Image

    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (8, 8), (i * 50, 0, 0)).save(root / cls / f"{i}.png")
    (root / "b/zero.png").write_bytes(b"")
    return root


CASES = {  # id -> (params overrides, what the one error line must say)
    "params-typo": ({"classify": {"CC": [1]}}, r"classify\.CC: unknown key"),
    "out-of-range": ({"classify": {"C": [-1]}}, r"classify\.C"),
    "bad-device": ({"base": {"device": "gpu"}}, r"base\.device: unknown device 'gpu'"),
    "unknown-layer": ({"backbones": {"vgg_mini": {"layers": ["pool1", "pool9"]}}}, r"backbones\.vgg_mini\.layers\[1\]"),
    "missing-path": ({"datasets": {"digits": {"source": "folder", "path": "/nonexistent/digits"}}}, "is not a directory"),
    "bad-file": ({"datasets": {"digits": {"source": "folder", "path": "{bad}", "on_bad_file": "error"}}}, "empty_file"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_a_failed_repro_keeps_every_previous_output(study, case, tmp_path):
    repo, env, before = study
    overrides, message = CASES[case]
    if case == "bad-file":
        overrides = {"datasets": {"digits": {**overrides["datasets"]["digits"], "path": str(_bad_file_folder(tmp_path / "bad"))}}}
    write_params(repo, overrides)
    try:
        proc = run(["dvc", "repro", TARGET], repo, env, check=False)
        output = proc.stdout + proc.stderr
        assert proc.returncode != 0, output[-3000:]
        errors = [line for line in output.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1 and re.search(message, errors[0]), output[-3000:]
        assert _snapshot(repo) == before  # every output, model and metrics file byte-identical
        status = subprocess.run(["git", "status", "--porcelain"], cwd=repo, capture_output=True, text=True, check=True)
        assert status.stdout.split("\n")[0].strip() == "M params.yaml" and status.stdout.count("\n") == 1, status.stdout
    finally:
        run(["git", "checkout", "--", "params.yaml"], repo, env)
