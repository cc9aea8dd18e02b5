"""Sweep cost (issue 8, item 3): ``dvc exp run -S`` of the SVM grid vs a full ``dvc repro``.

In a temporary git + DVC copy of the project (``tests.study_repo.build_study_repo``: the
stages, the package, dvc.yaml, params.yaml merged with ``tests/tiny_params.yaml``, or the
full default params with ``--sweep-params default``, which took 14 minutes on a
2-core CPU): time ``dvc repro`` from nothing, commit, then time ``dvc exp run -S
classify.C=...``, which should re-run only classify and report. Target: the sweep takes
<= 10% of the full run. To show where the sweep's time goes, the import time of the
stages it re-runs (``python -c "import stages.<name>"``, in the same repo) is measured too.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.figures import Figure, at_most
from tests.study_repo import build_study_repo, commit_all, ran_stages
from tests.study_repo import run as run_cmd

SWEEP_TARGET = 10.0  # % of the full dvc repro's wall time


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("sweep")
    group.add_argument("--sweep-params", choices=("tiny", "default"), default="tiny",
                       help="tiny: params.yaml + tests/tiny_params.yaml (minutes); default: params.yaml (~14 min)")
    group.add_argument("--sweep-C", default="[0.5,2]", help="the classify.C list the experiment sets")


def timed(cmd: list[str], repo: Path, env: dict[str, str]) -> tuple[float, str]:
    """(wall seconds, stdout) of ``cmd`` in ``repo``; fails with its output on a non-zero exit."""
    start = time.perf_counter()
    proc = run_cmd(cmd, repo, env)
    return time.perf_counter() - start, proc.stdout


def import_seconds(module: str, repo: Path, env: dict[str, str]) -> float:
    """Wall seconds of a fresh interpreter importing ``module`` in ``repo`` (what each stage pays first)."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", f"import {module}"], cwd=repo, env=env, check=True)
    return time.perf_counter() - start


def run(args: argparse.Namespace) -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        repo, env = build_study_repo(Path(tmp) / "repo", tiny=args.sweep_params == "tiny")
        commit_all(repo, env, "study")
        full_s, full_out = timed(["dvc", "repro"], repo, env)
        commit_all(repo, env, "after dvc repro")
        sweep_s, sweep_out = timed(["dvc", "exp", "run", "-S", f"classify.C={args.sweep_C}"], repo, env)
        swept = ran_stages(sweep_out)
        stage_modules = sorted({f"stages.{name.split('@')[0]}" for name in swept})
        imports = {m: import_seconds(m, repo, env) for m in stage_modules}
    per_stage = ", ".join(f"{m} {s:.1f} s" for m, s in imports.items())
    detail = (f"{args.sweep_params} params: dvc repro {full_s:.1f} s ({len(ran_stages(full_out))} stages); "
              f"dvc exp run -S classify.C={args.sweep_C} {sweep_s:.1f} s re-ran {len(swept)} stages ({', '.join(swept)})")
    return [
        at_most(f"sweep / full run wall time ({args.sweep_params} params)", 100 * sweep_s / full_s, SWEEP_TARGET, "%",
                detail),
        Figure("sweep time spent importing the re-run stages", 100 * sum(
            imports[f"stages.{n.split('@')[0]}"] for n in swept) / sweep_s, "%", "-", None,
            f"one fresh import each: {per_stage}; the rest is the fits, the report and dvc itself"),
    ]
