"""The report shows the current study only and prints whole numbers as integers (issue 20.5, 20.8)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

from transferlab.io import write_json
from transferlab.report.build import write_report
from transferlab.report.model import Section, Table
from transferlab.report.render import to_markdown
from transferlab.report.study import study_outputs

DVC_YAML = {
    "stages": {
        "extract": {
            "matrix": {"dataset": "${study.targets}"},
            "cmd": "true",
            "outs": [{"metrics/extract/${item.dataset}-net.json": {"cache": False}}],
        },
    }
}


def _extract_metrics(dataset: str, dims: dict[str, int]) -> dict:
    return {"dataset": dataset, "backbone": "net", "images": 1797, "images_per_second": 55.9263,
            "device": "cpu", "dims": dims, "layers": ",".join(dims)}


def _study(tmp_path: Path, targets: list[str]) -> Path:
    root = tmp_path / "study"
    root.mkdir()
    subprocess.run([sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], cwd=root, check=True)  # the venv's dvc
    (root / "dvc.yaml").write_text(yaml.safe_dump(DVC_YAML))
    (root / "params.yaml").write_text(yaml.safe_dump({"study": {"targets": targets}}))
    return root


def test_a_target_dropped_from_the_study_is_not_reported(tmp_path):
    root = _study(tmp_path, ["digits"])
    write_json(root / "metrics/extract/digits-net.json", _extract_metrics("digits", {"pool": 3136}))
    write_json(root / "metrics/extract/oldtarget-net.json", _extract_metrics("oldtarget", {"fc": 256}))
    outputs = study_outputs(root)
    assert root.resolve() / "metrics/extract/digits-net.json" in outputs
    assert root.resolve() / "metrics/extract/oldtarget-net.json" not in outputs
    md_path, _ = write_report(root / "metrics", root / "reports", outputs)
    md = md_path.read_text()
    assert "| digits | net | 1,797 |" in md
    assert "oldtarget" not in md
    # without a study (no dvc.yaml) every file is read: the stale one shows, as before
    md_all = write_report(root / "metrics", tmp_path / "all", None)[0].read_text()
    assert "| oldtarget | net |" in md_all


def test_study_outputs_is_none_outside_a_dvc_project(tmp_path):
    assert study_outputs(tmp_path) is None


def test_whole_numbers_print_as_integers_in_tables_with_missing_cells(tmp_path):
    frame = pd.DataFrame([{"net": "a", "dim pool": 3136, "acc": 0.5}, {"net": "b", "dim fc": 256, "acc": 1.0}])
    assert frame["dim pool"].dtype == float  # pandas widened the ints for the missing cell
    md = to_markdown("R", [Section("S", [Table(frame)])])
    assert "| a | 3,136 | 0.5 |  |" in md and "| b |  | 1 | 256 |" in md
    assert "3,136.0" not in md and "256.0" not in md
    fractional = to_markdown("R", [Section("S", [Table(pd.DataFrame({"x": [1234.5, None]}))])])
    assert "| 1,234.5 |" in fractional  # a real fraction keeps its decimal


def test_extraction_table_prints_dims_as_integers_and_throughput_to_a_tenth(tmp_path):
    metrics = tmp_path / "metrics"
    write_json(metrics / "extract/digits-a.json", _extract_metrics("digits", {"pool1": 3136, "fc7": 256}))
    write_json(metrics / "extract/digits-b.json", _extract_metrics("digits", {"block6": 1280}))
    md = write_report(metrics, tmp_path / "reports")[0].read_text()
    rows = [line for line in md.splitlines() if line.startswith("| digits |")]
    assert rows == ["| digits | net | 1,797 | 55.9 | cpu | 3,136 | 256 |  |", "| digits | net | 1,797 | 55.9 | cpu |  |  | 1,280 |"]


def test_the_report_stage_reruns_when_a_matrix_list_changes():
    """Its params cover every list a dvc.yaml matrix (or foreach) fans out over (dropping a target re-runs it)."""
    stages = yaml.safe_load((Path(__file__).resolve().parents[1] / "dvc.yaml").read_text())["stages"]
    lists = {value.strip("${}") for stage in stages.values() for value in (stage.get("matrix") or {}).values()}
    lists |= {stage["foreach"].strip("${}") for stage in stages.values() if isinstance(stage.get("foreach"), str)}
    assert "explain.runs" in lists
    params = stages["report"]["params"]
    assert lists and all(any(key == p or key.startswith(p + ".") for p in params) for key in lists), (lists, params)
