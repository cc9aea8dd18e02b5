"""The GPU check (scripts/gpu-check.sh run -> benchmarks.gpu_check), run on the CPU with tiny settings.

No GPU here: these tests show the script runs the stages in DVC's order in a fresh working
directory with the requested device, reports each stage's exit code and time, and passes the
benchmark its options; the GPU numbers themselves need a GPU machine (issue 22).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from benchmarks.gpu_check import StageCommand, make_workdir, parse_dry_run, run_study, table
from tests.study_repo import ROOT, build_study_repo, run

DRY_RUN = """\
Running stage 'prepare@digits':
> python -m stages.prepare --dataset digits --out data/prepared/digits

Running stage 'report':
> python -m stages.report --metrics metrics --reports reports
> echo done

Use `dvc push` to send your updates to remote storage.
"""


def test_parse_dry_run_keeps_dvc_order_and_every_command_line():
    stages = parse_dry_run(DRY_RUN)
    assert stages == [
        StageCommand("prepare@digits", ("python -m stages.prepare --dataset digits --out data/prepared/digits",)),
        StageCommand("report", ("python -m stages.report --metrics metrics --reports reports", "echo done")),
    ]


def test_parse_dry_run_rejects_a_stage_without_command():
    with pytest.raises(ValueError, match="no command after stage"):
        parse_dry_run("Running stage 'x':\n\nRunning stage 'y':\n> true\n")


def test_a_failed_stage_is_reported_and_the_rest_still_run(tmp_path):
    results = run_study(
        [StageCommand("a", ("exit 3",)), StageCommand("b", ("true", "echo ok > b.txt"))], tmp_path
    )
    assert [(r.name, r.returncode) for r in results] == [("a", 3), ("b", 0)]
    assert (tmp_path / "b.txt").read_text() == "ok\n"
    lines = table(results)
    assert lines[-1].split()[:4] == ["whole", "study", "1", f"{sum(r.seconds for r in results):.1f}"]
    assert "(1 of 2 stages failed)" in lines[-1]


def test_workdir_is_a_copy_with_the_device_set_and_the_checkout_untouched(tmp_path):
    before = (ROOT / "params.yaml").read_bytes()
    work = make_workdir(ROOT, tmp_path / "w", "cuda:1")
    assert yaml.safe_load((work / "params.yaml").read_text())["base"]["device"] == "cuda:1"
    assert (work / "stages" / "prepare.py").is_file() and (work / "dvc.yaml").is_file()
    assert (ROOT / "params.yaml").read_bytes() == before


@pytest.mark.slow
def test_gpu_check_script_runs_stages_and_benchmark_on_cpu(tmp_path):
    repo, env = build_study_repo(tmp_path / "repo")
    only = "^(prepare@digits|pretrain@vgg_mini_untrained|extract@digits-vgg_mini_untrained)$"
    out = tmp_path / "out"
    cmd = ["bash", str(ROOT / "scripts" / "gpu-check.sh"), "run", "--device", "cpu", "--root", str(repo),
           "--only", only, "--workdir", str(tmp_path / "work"), "--out", str(out), "--",
           "--extract-small-images", "128", "--extract-small-batch", "64", "--extract-large-archs",
           "--extract-min-seconds", "0", "--extract-min-rounds", "1"]  # fmt: skip
    proc = run(cmd, ROOT, env | {"PATH": f"{Path(sys.executable).parent}:{env['PATH']}"})
    summary = json.loads((out / "gpu-check.json").read_text())
    assert [(s["name"], s["returncode"]) for s in summary["stages"]] == [
        ("prepare@digits", 0), ("pretrain@vgg_mini_untrained", 0), ("extract@digits-vgg_mini_untrained", 0),
    ]  # fmt: skip
    assert summary["device"] == "cpu" and summary["benchmark_returncode"] == 0
    names = {f["name"] for f in summary["benchmark"]}
    assert "matmul ceiling (cpu)" in names and any(n.startswith("one pass vs per layer, vgg_mini") for n in names)
    assert (tmp_path / "work" / "metrics" / "extract" / "digits-vgg_mini_untrained.json").is_file()
    assert "whole study" in proc.stdout and "extraction benchmark: rc 0" in proc.stdout
    assert not (repo / "data").exists()  # the stages ran in the work dir, not in the project


def test_gpu_check_script_without_a_step_prints_usage():
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "gpu-check.sh")], capture_output=True, text=True)
    assert proc.returncode == 2 and "prepare" in proc.stderr and "run" in proc.stderr
