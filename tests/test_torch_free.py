"""Stages that never touch a network must not import torch (seconds of start-up per run).

Every stage runs the whole-file params check first, so the params dataclasses (and the
architecture tables the check validates against) must stay torch-free too. Each module is
imported in a fresh interpreter, then the project's params.yaml is checked there.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

TORCH_FREE = (
    "transferlab.params_check",
    "transferlab.stage",
    "transferlab.transfer.classify",
    "stages.classify",
    "stages.tsne",
    "stages.prepare",
)

PROBE = """
import sys
import {module}
from transferlab.stage import read_checked_params
read_checked_params("params.yaml")  # the whole-file check every stage runs first
heavy = sorted(m for m in ("torch", "torchvision") if m in sys.modules)
print(",".join(heavy))
"""


@pytest.mark.parametrize("module", TORCH_FREE)
def test_module_and_params_check_do_not_import_torch(module: str) -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(module=module)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "", f"{module} (plus the params check) imported {out.stdout.strip()}"


def test_arch_tables_are_the_registrys() -> None:
    """The torch-free names the params check uses are exactly the registry's architectures."""
    from transferlab.models.archs import ARCH_NAMES, CUT_POINTS
    from transferlab.models.registry import ARCHS

    assert tuple(ARCHS) == ARCH_NAMES
    assert {name: dict(spec.cut_points) for name, spec in ARCHS.items()} == {k: dict(v) for k, v in CUT_POINTS.items()}
