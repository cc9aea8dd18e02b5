"""The current study's outputs: what dvc.yaml's stages produce with today's params.

The report shows these only. ``metrics/`` keeps the files of targets, variants or
backbones dropped from ``params.yaml`` (DVC never deletes an output a stage no longer
declares), so reading every file there would report a study that no longer exists.
DVC's own index resolves the ``matrix:`` and ``${...}`` of dvc.yaml against params.yaml,
the same expansion ``dvc repro`` runs.
"""

from __future__ import annotations

from pathlib import Path

from transferlab.errors import UserError


def study_outputs(root: Path) -> frozenset[Path] | None:
    """Every output path (resolved) of the stages of ``root``/dvc.yaml; None without a dvc.yaml."""
    root = Path(root).resolve()
    if not (root / "dvc.yaml").is_file():
        return None
    from dvc.exceptions import DvcException  # imported here: DVC is slow to import
    from dvc.repo import Repo

    try:
        with Repo(str(root)) as repo:
            return frozenset(Path(out.fs_path).resolve() for stage in repo.index.stages for out in stage.outs)
    except DvcException as err:
        raise UserError(f"{root / 'dvc.yaml'}: cannot resolve its stages ({err}); fix dvc.yaml or params.yaml") from None
