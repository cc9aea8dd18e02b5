"""Shared fixtures: one tiny study, reproduced once per test session and copied by the tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.study_repo import build_study_repo, commit_all, copy_study, ran_stages, run


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
def tiny_study(tmp_path_factory) -> TinyStudy:
    """The project's stages on tiny params, `dvc repro`-ed once and committed."""
    repo, env = build_study_repo(tmp_path_factory.mktemp("tiny-study") / "repo")
    proc = run(["dvc", "repro"], repo, env)
    commit_all(repo, env, "tiny study")
    return TinyStudy(repo, env, ran_stages(proc.stdout))


@pytest.fixture
def one_torch_thread():
    """torch on one thread for the test: tiny nets gain nothing from more, and a busy CPU loses a lot."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
