"""Shared fixtures: one tiny study, reproduced once per test session and copied by the tests.

``scripts/test.sh`` runs the suite on two pytest-xdist workers (``--dist loadfile``). Then
the tiny study is still built once: the first worker that needs it builds it under a file
lock in the session's shared temporary directory, the other waits and reuses it. Each
worker process, and every ``dvc`` stage it starts, runs torch/BLAS on one thread, so two
workers never oversubscribe the cores (OpenMP's spinning threads make that very slow).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from filelock import FileLock

from tests.study_repo import build_study_repo, commit_all, copy_study, ran_stages, run

if os.environ.get("PYTEST_XDIST_WORKER"):  # before anything imports torch or numpy's BLAS
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, "1")


@dataclass(frozen=True)
class TinyStudy:
    """A committed tiny study after one full `dvc repro`: never modify it, copy it."""

    repo: Path
    env: dict[str, str]
    first_repro_stages: list[str]  # the stages the first `dvc repro` ran

    def copy(self, dest: Path) -> Path:
        """A private copy to change (params, outputs, git history)."""
        return copy_study(self.repo, dest)


@pytest.fixture(scope="session")
def tiny_study(tmp_path_factory, worker_id: str) -> TinyStudy:
    """The project's stages on tiny params, `dvc repro`-ed once (per session, across workers) and committed."""
    if worker_id == "master":  # no xdist: this session's own temporary directory
        return _build_tiny_study(tmp_path_factory.mktemp("tiny-study"))
    shared = tmp_path_factory.getbasetemp().parent  # the xdist session's directory, common to its workers
    with FileLock(shared / "tiny-study.lock"):
        return _build_tiny_study(shared / "tiny-study")


def _build_tiny_study(where: Path) -> TinyStudy:
    """Build the tiny study in ``where`` unless a finished one is there (``built.json`` written last)."""
    built = where / "built.json"
    if built.is_file():
        saved = json.loads(built.read_text())
        return TinyStudy(where / "repo", saved["env"], saved["stages"])
    repo, env = build_study_repo(where / "repo")
    proc = run(["dvc", "repro"], repo, env)
    commit_all(repo, env, "tiny study")
    stages = ran_stages(proc.stdout)
    built.write_text(json.dumps({"env": env, "stages": stages}))
    return TinyStudy(repo, env, stages)


@pytest.fixture
def one_torch_thread():
    """torch on one thread for the test: tiny nets gain nothing from more, and a busy CPU loses a lot."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
