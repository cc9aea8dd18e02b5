"""A throwaway git + DVC copy of the project on tiny params, for end-to-end tests and benchmarks.

`build_study_repo` copies the stages, the package and dvc.yaml into an empty directory,
writes params.yaml (the project's, with `tests/tiny_params.yaml` deep-merged on top by
default) and runs `git init` + `dvc init`. `run` calls a command there and fails with its
output; `ran_stages` lists the stages a `dvc repro` / `dvc exp run` output says it ran.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
TINY_PARAMS = ROOT / "tests" / "tiny_params.yaml"


def deep_merge(base: dict, over: dict) -> dict:
    """``over`` merged into a copy of ``base`` (mappings recursively, the rest replaced)."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def study_env() -> dict[str, str]:
    """Environment for git/dvc in a study repo: this venv first on PATH, fixed identities."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(
        GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@t",
        DVC_NO_ANALYTICS="1", PYTHONHASHSEED="0",
    )
    return env


def run(cmd: list[str], repo: Path, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess:
    """Run ``cmd`` in ``repo``; with ``check``, fail with the tail of its output."""
    proc = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def ran_stages(output: str) -> list[str]:
    """Stage names a dvc repro / exp run output reports as run (not skipped)."""
    return re.findall(r"Running stage '([^']+)'", output)


def write_params(repo: Path, overrides: dict | None = None, tiny: bool = True) -> None:
    """params.yaml = the project's, plus tiny_params.yaml (if ``tiny``), plus ``overrides``."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    if tiny:
        params = deep_merge(params, yaml.safe_load(TINY_PARAMS.read_text()))
    params = deep_merge(params, overrides or {})
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def build_study_repo(repo: Path, tiny: bool = True) -> tuple[Path, dict[str, str]]:
    """Make ``repo`` a git + DVC repo holding the project's stages, package and dvc.yaml."""
    repo.mkdir(parents=True, exist_ok=True)
    for name in ("stages", "transferlab"):
        shutil.copytree(ROOT / name, repo / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("dvc.yaml", ".dvcignore"):
        shutil.copy(ROOT / name, repo / name)
    write_params(repo, tiny=tiny)
    env = study_env()
    run(["git", "init", "-q"], repo, env)
    run(["dvc", "init", "-q"], repo, env)
    return repo, env


def commit_all(repo: Path, env: dict[str, str], message: str) -> None:
    """Commit everything in the study repo (dvc.lock, metrics, params) as one git commit."""
    run(["git", "add", "-A"], repo, env)
    run(["git", "commit", "-qm", message, "--allow-empty"], repo, env)


def copy_study(src: Path, dest: Path) -> Path:
    """A full copy of a study repo (git history, DVC cache and workspace) at ``dest``."""
    shutil.copytree(src, dest, symlinks=True)
    return dest
