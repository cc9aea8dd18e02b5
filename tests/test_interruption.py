"""End-to-end interruption: `dvc repro` SIGKILLed mid-stage leaves nothing DVC takes as complete.

On a private copy of the tiny study, for extract, finetune and a GAN: a param changes so the
stage must re-run, `dvc repro <stage>` starts in its own process group and the whole group is
SIGKILLed once the stage is really working (its temporary output or first checkpoint exists).
Then DVC still reports the stage changed, its outputs are the previous or the complete new
ones (never partial), the next `dvc repro` finishes (finetune resuming from its checkpoint,
the others starting over), leaves no temporary siblings, and gives byte-identical metrics and
output hashes to an uninterrupted (forced) run of the same params. Toggling the `resume`
section re-runs nothing (it is no stage's DVC param).
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.study_repo import run, write_params

pytestmark = pytest.mark.slow

EXTRACT = "extract@digits-vgg_mini"
FINETUNE = "finetune@digits-vgg_mini-head"
GAN = "gan@dcgan"
FINETUNE_CKPT = Path("data/checkpoints/finetune/digits-vgg_mini-head/last.pt")


@pytest.fixture(scope="module")
def study(tiny_study, tmp_path_factory) -> tuple[Path, dict[str, str]]:
    repo = tiny_study.copy(tmp_path_factory.mktemp("interruption") / "repo")
    # every stage below gets a param it must re-run for; other stages are not targeted
    write_params(
        repo,
        {
            "extract": {"pool": "avg"},
            "finetune": {"epochs": 4},
            "gan": {"iterations": 30},
            "resume": {"enabled": False},
        },
    )
    return repo, tiny_study.env


def _temps(repo: Path) -> list[str]:
    """Temporary siblings of atomic writes anywhere in the workspace."""
    return sorted(
        str(p.relative_to(repo))
        for p in repo.rglob(".*.tmp-*")
        if not {".git", ".dvc"} & set(p.relative_to(repo).parts)
    )


def _snapshot(path: Path) -> dict[str, str] | None:
    """sha256 per file under ``path`` (or of the file itself); None when it does not exist."""
    if not path.exists():
        return None
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return {str(p.relative_to(path.parent)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def _lock_outs(repo: Path, stage: str, timings: bool = True) -> dict[str, str]:
    """Output path -> hash recorded in dvc.lock (``timings=False``: without wall-clock files)."""
    entry = yaml.safe_load((repo / "dvc.lock").read_text())["stages"][stage]
    return {o["path"]: o.get("md5") for o in entry["outs"] if timings or not o["path"].startswith("timings/")}


def _metrics(repo: Path, stage: str) -> dict[str, bytes]:
    return {p: (repo / p).read_bytes() for p in _lock_outs(repo, stage) if p.startswith("metrics/")}


def _kill_when(repo: Path, env: dict[str, str], stage: str, ready: Callable[[], bool]) -> None:
    """Start `dvc repro stage` in a new process group; SIGKILL the group once ``ready()``."""
    log = (repo.parent / f"{stage}.log").open("w")
    proc = subprocess.Popen(
        ["dvc", "repro", stage], cwd=repo, env=env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 300
    while not ready():
        finished = proc.poll() is not None
        if finished or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"{stage}: never reached the kill point; log:\n{Path(log.name).read_text()[-3000:]}")
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    log.close()


def _interrupt(repo: Path, env: dict[str, str], stage: str, ready: Callable[[], bool]) -> dict:
    """Kill ``stage`` at ``ready``; check DVC still wants to run it; return what the outs held."""
    outs = list(_lock_outs(repo, stage))
    before = {o: _snapshot(repo / o) for o in outs}
    _kill_when(repo, env, stage, ready)
    status = run(["dvc", "status", stage, "--json"], repo, env).stdout
    assert stage in yaml.safe_load(status), status  # not taken as complete
    return {"before": before, "killed": {o: _snapshot(repo / o) for o in outs}}


def _finish_and_compare(repo: Path, env: dict[str, str], stage: str, seen: dict, extra_env=None) -> str:
    """Complete the stage, check outs/temps, compare with a forced uninterrupted run."""
    proc = run(["dvc", "repro", stage], repo, {**env, **(extra_env or {})})
    assert f"Running stage '{stage}'" in proc.stdout
    assert _temps(repo) == []
    assert yaml.safe_load(run(["dvc", "status", stage, "--json"], repo, env).stdout) == {}
    done = {o: _snapshot(repo / o) for o in seen["killed"]}
    for out, killed in seen["killed"].items():  # the previous or the complete new one, never partial
        assert killed in (seen["before"][out], done[out], None), out
    resumed_metrics, resumed_outs = _metrics(repo, stage), _lock_outs(repo, stage, timings=False)
    run(["dvc", "repro", "--force", "--single-item", stage], repo, env)
    assert _metrics(repo, stage) == resumed_metrics  # byte-identical (wall clock lives in timings/)
    assert _lock_outs(repo, stage, timings=False) == resumed_outs  # same hash for every other output
    return proc.stdout + proc.stderr


def test_extract_killed_mid_write_reruns_cleanly(study):
    repo, env = study
    features = repo / "data" / "features"
    seen = _interrupt(repo, env, EXTRACT, lambda: any(features.glob(".digits-vgg_mini.tmp-*")))
    _finish_and_compare(repo, env, EXTRACT, seen)


def test_gan_killed_mid_training_reruns_cleanly(study):
    repo, env = study
    models = repo / "data" / "models" / "gan"
    seen = _interrupt(repo, env, GAN, lambda: any(models.glob(".dcgan.tmp-*")))
    _finish_and_compare(repo, env, GAN, seen)


def test_finetune_killed_after_a_checkpoint_resumes_to_identical_results(study):
    repo, env = study
    seen = _interrupt(repo, env, FINETUNE, (repo / FINETUNE_CKPT).is_file)
    assert (repo / FINETUNE_CKPT).is_file()  # outside DVC's outputs: survives the kill
    output = _finish_and_compare(repo, env, FINETUNE, seen, {"TRANSFERLAB_RESUME": "1"})
    assert "resuming from checkpoint data/checkpoints/finetune/digits-vgg_mini-head/last.pt (epoch" in output
    assert not (repo / FINETUNE_CKPT).exists()  # removed once the stage succeeded


def test_toggling_the_resume_section_reruns_nothing(tiny_study, tmp_path):
    repo = tiny_study.copy(tmp_path / "repo")
    write_params(repo, {"resume": {"enabled": True, "save": False, "every_iterations": 7}})
    assert yaml.safe_load(run(["dvc", "status", "--json"], repo, tiny_study.env).stdout) == {}
