"""The pieces of the sweep benchmark (the dvc runs themselves are what `python -m benchmarks --only sweep` times)."""

from __future__ import annotations

import sys

import pytest

from benchmarks import sweep
from tests.study_repo import study_env


def test_timed_returns_output_and_fails_with_it(tmp_path):
    seconds, out = sweep.timed([sys.executable, "-c", "print('ran in the repo')"], tmp_path, study_env())
    assert out.strip() == "ran in the repo" and seconds > 0
    with pytest.raises(AssertionError, match="boom"):
        sweep.timed([sys.executable, "-c", "import sys; print('boom'); sys.exit(1)"], tmp_path, study_env())


def test_import_seconds_imports_in_the_repo(tmp_path):
    (tmp_path / "only_here.py").write_text("VALUE = 1\n")
    assert sweep.import_seconds("only_here", tmp_path, study_env()) > 0
    with pytest.raises(Exception, match="returned non-zero exit status 1"):
        sweep.import_seconds("not_a_module_anywhere", tmp_path, study_env())
