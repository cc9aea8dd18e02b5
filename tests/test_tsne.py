"""tsne: figure written, metrics shape, seeded subsample, clear error for a layer not extracted."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from stages import tsne as stage
from transferlab.transfer.features import save_features
from transferlab.transfer.tsne import TsneParams, run, subsample


def _cache(tmp_path, n=90, classes=3):
    rng = np.random.default_rng(0)
    labels = np.arange(n) % classes
    centres = rng.normal(0, 5, (classes, 12))
    feats = {"fc7": (centres[labels] + rng.normal(0, 1, (n, 12))).astype(np.float16)}
    is_test = np.arange(n) % 5 == 0
    path = tmp_path / "features" / "toy-toynet"
    save_features(path, feats, labels, is_test, {"dataset": "toy", "backbone": "toynet", "classes": ["a", "b", "c"]})
    return path


def _argv(tmp_path, cache):
    return ["--features", str(cache), "--metrics", str(tmp_path / "out" / "m.json"),
            "--figure", str(tmp_path / "out" / "t.png"), "--params", str(tmp_path / "params.yaml")]


def _params(tmp_path, **tsne):
    cfg = {"base": {"seed": 0}, "tsne": {"layer": "fc7", "max_points": 60, "perplexity": 10, "max_iter": 300, **tsne}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(cfg))


def test_stage_writes_figure_and_metrics(tmp_path):
    cache = _cache(tmp_path)
    _params(tmp_path)
    stage.main(_argv(tmp_path, cache))
    m = json.loads((tmp_path / "out" / "m.json").read_text())
    assert (tmp_path / "out" / "t.png").stat().st_size > 1000
    assert m["points"] == 60 and m["train_points"] + m["test_points"] == 60
    assert m["layer"] == "fc7" and m["dataset"] == "toy" and m["backbone"] == "toynet"
    assert m["kl_divergence"] > 0
    assert m["knn_test_acc"] > 0.9  # well-separated clusters stay separated in 2-D
    first = dict(m)
    stage.main(_argv(tmp_path, cache))
    second = json.loads((tmp_path / "out" / "m.json").read_text())
    assert first == second


def test_unknown_layer_fails_with_one_line(tmp_path, capsys):
    cache = _cache(tmp_path)
    _params(tmp_path, layer="fc9")
    with pytest.raises(SystemExit):
        stage.main(_argv(tmp_path, cache))
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "tsne.layer 'fc9' was not extracted" in err
    assert not (tmp_path / "out").exists()


def test_subsample_is_seeded_and_bounded():
    a, b = subsample(500, 100, 3), subsample(500, 100, 3)
    assert np.array_equal(a, b) and len(a) == 100 and len(set(a.tolist())) == 100
    assert not np.array_equal(a, subsample(500, 100, 4))
    assert np.array_equal(subsample(50, 100, 0), np.arange(50))


def test_run_embeds_in_two_dimensions():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 5)).astype(np.float16)
    y = np.arange(40) % 2
    res = run(X, y, np.arange(40) >= 30, TsneParams(max_points=40, perplexity=5, max_iter=300), 0)
    assert res.embedding.shape == (40, 2) and res.metrics["points"] == 40
