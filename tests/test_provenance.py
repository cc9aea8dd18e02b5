"""Metrics files: the timing split and merge, the timings path, the provenance block."""

from __future__ import annotations

import json
import platform
from pathlib import Path

import pytest

from transferlab.metrics import (
    merge_timings,
    read_metrics,
    split_timings,
    timings_path,
    write_metrics,
)
from transferlab.provenance import describe_device, provenance

NESTED = {
    "dataset": "digits",
    "seconds": 12.5,
    "images_per_second": 800.0,
    "dims": {"pool1": 64, "fc7": 128},
    "rows": [
        {"layer": "pool1", "test_acc": 0.9, "fit_seconds": 0.1, "predict_seconds": 0.02},
        {"layer": "fc7", "test_acc": 0.95, "fit_seconds": 0.3, "predict_seconds": 0.01},
    ],
    "head": {"C": 1.0, "timing": {"fit_seconds": 2.0}, "curve": [[1, 2], [3, 4]]},
    "mixed": [1, {"seconds": 3.0}, "x", {"acc": 1.0}],
    "empty": {},
    "none": None,
}


def test_split_keeps_results_and_mirrors_the_timing_shape():
    kept, timed = split_timings(NESTED)
    assert kept == {
        "dataset": "digits",
        "dims": {"pool1": 64, "fc7": 128},
        "rows": [{"layer": "pool1", "test_acc": 0.9}, {"layer": "fc7", "test_acc": 0.95}],
        "head": {"C": 1.0, "timing": {}, "curve": [[1, 2], [3, 4]]},
        "mixed": [1, {}, "x", {"acc": 1.0}],
        "empty": {},
        "none": None,
    }
    assert timed == {
        "seconds": 12.5,
        "images_per_second": 800.0,
        "rows": [
            {"fit_seconds": 0.1, "predict_seconds": 0.02},
            {"fit_seconds": 0.3, "predict_seconds": 0.01},
        ],
        "head": {"timing": {"fit_seconds": 2.0}},
        "mixed": [None, {"seconds": 3.0}, None, None],
    }


@pytest.mark.parametrize(
    "obj",
    [NESTED, {}, {"a": 1}, {"seconds": 1.0}, {"rows": [{"seconds": 1.0}, {"b": 2}]}, [{"seconds": 1}]],
)
def test_merge_inverts_split(obj):
    kept, timed = split_timings(obj)
    assert merge_timings(kept, timed) == obj


def test_merge_rejects_timings_of_another_shape():
    with pytest.raises(ValueError, match="shape"):
        merge_timings({"rows": [{}, {}]}, {"rows": [{"seconds": 1.0}]})


@pytest.mark.parametrize(
    ("metrics", "timings"),
    [
        ("metrics/extract/digits-vgg_mini.json", "timings/extract/digits-vgg_mini.json"),
        ("metrics/predict.json", "timings/predict.json"),
        ("/repo/metrics/a/metrics/x.json", "/repo/metrics/a/timings/x.json"),  # the last folder
        ("out/m.json", "out/timings/m.json"),  # outside any metrics folder: beside the file
        ("metrics.json", "timings/metrics.json"),
    ],
)
def test_timings_path(metrics, timings):
    assert timings_path(metrics) == Path(timings)


def test_provenance_block_has_seed_device_and_versions():
    block = provenance(7, "cpu")
    assert block["seed"] == 7 and block["device"] == "cpu"
    v = block["versions"]
    assert set(v) == {"python", "torch", "torchvision", "scikit-learn", "numpy", "transferlab"}
    assert v["python"] == platform.python_version()
    import numpy
    import sklearn
    import torch

    assert (v["numpy"], v["scikit-learn"]) == (numpy.__version__, sklearn.__version__)
    assert torch.__version__.split("+")[0] == v["torch"]  # metadata has no local label (+cu130)
    assert describe_device("mps") == "mps"


def test_write_metrics_splits_files_and_read_metrics_merges_them(tmp_path):
    path = tmp_path / "metrics" / "classify" / "a.json"
    write_metrics(path, NESTED, seed=3, device="cpu")
    on_disk = json.loads(path.read_text())
    timed = json.loads((tmp_path / "timings" / "classify" / "a.json").read_text())
    assert on_disk == {**split_timings(NESTED)[0], "provenance": provenance(3, "cpu")}
    assert not any("seconds" in line for line in path.read_text().splitlines())
    assert 0 < timed.pop("stage_seconds") < 24 * 3600  # this test process's age
    assert timed == split_timings(NESTED)[1]
    merged = read_metrics(path)
    assert merged.pop("provenance")["seed"] == 3
    assert merged.pop("stage_seconds") > 0 and merged == NESTED
    # a second write of the same metrics is byte-identical in metrics/
    before = path.read_bytes()
    write_metrics(path, NESTED, seed=3, device="cpu")
    assert path.read_bytes() == before


def test_write_metrics_without_stage_time_and_without_timings(tmp_path):
    path = tmp_path / "out" / "m.json"
    write_metrics(path, {"acc": 0.5}, seed=0, device="cpu", records_stage=False)
    assert json.loads((tmp_path / "out" / "timings" / "m.json").read_text()) == {}
    assert read_metrics(path)["acc"] == 0.5
    with pytest.raises(ValueError, match="provenance"):
        write_metrics(path, {"provenance": 1}, seed=0, device="cpu")


def _stage_run(root: Path, rel: str, metrics: dict, timings: dict) -> None:
    for folder, obj in (("metrics", metrics), ("timings", timings)):
        path = root / folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(obj))


def test_report_merges_timings_and_lists_where_the_time_goes(tmp_path):
    from transferlab.report.build import write_report
    from transferlab.report.model import Table
    from transferlab.report.sections import extract, timing

    block = provenance(0, "cpu")
    extract_metrics = {"dataset": "digits", "backbone": "vgg_mini", "images": 400, "dims": {"fc7": 128}}
    _stage_run(tmp_path, "extract/digits-vgg_mini.json", {**extract_metrics, "provenance": block},
               {"images_per_second": 812.5, "stage_seconds": 30.0})
    _stage_run(tmp_path, "notes/a.json", {"provenance": block}, {"seconds": 1.0, "stage_seconds": 4.0})
    _stage_run(tmp_path, "notes/b.json", {"provenance": block}, {"stage_seconds": 6.0})
    _stage_run(tmp_path, "predict.json", {"provenance": block}, {"stage_seconds": 60.0})
    _stage_run(tmp_path, "notes/rows.json", {"rows": [{}], "provenance": block},
               {"rows": [{"fit_seconds": 0.5}]})  # records no stage time: not listed
    metrics_dir = tmp_path / "metrics"
    (frame,) = [b.frame for b in extract.build(metrics_dir, tmp_path).blocks if isinstance(b, Table)]
    assert frame["images/s"].tolist() == [812.5]  # the existing section sees the merged timing
    section = timing.build(metrics_dir, tmp_path)
    by_stage, table = [b for b in section.blocks if isinstance(b, Table)]
    assert by_stage.frame.to_dict("list") == {
        "stage": ["predict", "extract", "notes"], "runs": [1, 1, 2],
        "seconds": [60.0, 30.0, 10.0], "share": ["60.0%", "30.0%", "10.0%"],
    }
    assert table.frame.to_dict("records") == [
        {"stage": "predict", "item": "", "seconds": 60.0, "share": "60.0%"},
        {"stage": "extract", "item": "digits-vgg_mini", "seconds": 30.0, "share": "30.0%"},
        {"stage": "notes", "item": "b", "seconds": 6.0, "share": "6.0%"},
        {"stage": "notes", "item": "a", "seconds": 4.0, "share": "4.0%"},
        {"stage": "total", "item": "", "seconds": 100.0, "share": "100.0%"},
    ]
    md, html = write_report(metrics_dir, tmp_path / "reports")
    text = md.read_text()
    assert "## Where the time goes" in text and "| predict |  | 60 | 60.0% |" in text
    assert "seed 0 on `cpu`" in text and "5 metrics files" in text
    assert "Where the time goes</h2>" in html.read_text()
