"""Every package file a stage runs is one of its dvc.yaml deps, so editing it re-runs the stage.

For each stage the modules ``stages/<name>.py`` imports (transitively) are collected in a
subprocess and mapped to files; each must lie under a dep path (a listed file, or a listed
directory containing it). Modules imported only inside functions are not seen.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]

# Files that cannot change a stage's outputs, so they need not be deps:
NOT_DEPS = {
    "transferlab/__init__.py",  # package marker and __version__ (provenance reads package metadata)
    "transferlab/errors.py",  # error types and messages: a failing run writes nothing
    "transferlab/params_check.py",  # validates params.yaml; the values themselves are DVC params
    "transferlab/config.py",  # reads params.yaml into the section dataclasses (values are DVC params)
    "transferlab/gpu_slots.py",  # which GPU a process takes when several are visible
}


def _not_a_dep(path: str) -> bool:
    """Allow-listed, a wing's params dataclass module (covered by DVC's params tracking) or a package marker."""
    name = Path(path).name
    return (
        path in NOT_DEPS
        or name == "params.py"
        or path == "transferlab/models/archs.py"  # arch / cut-point names the params check validates
        or (name == "__init__.py" and _docstring_only(ROOT / path))
    )


def _docstring_only(path: Path) -> bool:
    body = ast.parse(path.read_text()).body
    return all(isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) for node in body)


# imports every stage module in turn, each with transferlab/stages fresh (torch & co stay loaded)
PROBE = """
import importlib, json, sys
result = {}
for stage in sys.argv[1:]:
    for name in [m for m in sys.modules if m.split(".")[0] in ("transferlab", "stages")]:
        del sys.modules[name]
    importlib.import_module(f"stages.{stage}")
    result[stage] = sorted(
        m.__file__ for name, m in list(sys.modules.items())
        if name.split(".")[0] == "transferlab" and getattr(m, "__file__", None)
    )
print(json.dumps(result))
"""


def _stages() -> dict[str, list[str]]:
    """Stage name -> its dvc.yaml deps (a ``foreach`` stage's are under ``do``)."""
    spec = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    return {name: [str(d) for d in stage.get("do", stage).get("deps", [])] for name, stage in spec["stages"].items()}


@pytest.fixture(scope="module")
def imported() -> dict[str, list[str]]:
    """Stage name -> the transferlab files its module imports, relative to the repo root."""
    out = subprocess.run(
        [sys.executable, "-c", PROBE, *_stages()], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return {
        stage: [Path(f).resolve().relative_to(ROOT).as_posix() for f in files]
        for stage, files in json.loads(out.stdout).items()
    }


def _covered(path: str, deps: list[str]) -> bool:
    return any(path == dep or path.startswith(dep.rstrip("/") + "/") for dep in deps)


@pytest.mark.parametrize("stage", sorted(_stages()))
def test_stage_deps_cover_the_code_it_runs(stage: str, imported: dict[str, list[str]]) -> None:
    deps = _stages()[stage]
    assert f"stages/{stage}.py" in deps
    missing = [f for f in imported[stage] if not _covered(f, deps) and not _not_a_dep(f)]
    assert not missing, f"dvc.yaml stage {stage!r}: add to deps: {', '.join(missing)}"
