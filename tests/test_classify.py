"""classify: PCA keeps its variance, CV never sees test data, the full grid, bad params fail before work."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.decomposition import PCA
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from stages import classify as stage
from transferlab.config import from_mapping
from transferlab.errors import UserError
from transferlab.transfer import classify
from transferlab.transfer.features import Features, load_features, save_features
from transferlab.transfer.grid import (
    Kernels,
    Standardiser,
    blocked_gram,
    fit_predict,
    gram_kernels,
    preprocessor,
    row_blocks,
    run_grid,
)
from transferlab.transfer.params import ClassifyParams

LAYERS = {"pool1": 40, "fc7": 6}
EPS = np.finfo(np.float64).eps


def _toy(seed: int = 0, n_train: int = 60, n_test: int = 30, classes: int = 3):
    """Class-separated Gaussian features with decaying variance per dim, plus 8x8 'pixels'."""
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    labels = np.tile(np.arange(classes), n // classes + 1)[:n]
    is_test = np.zeros(n, dtype=bool)
    is_test[n_train:] = True
    feats = {}
    for layer, dim in LAYERS.items():
        centres = rng.normal(0, 2.0, (classes, dim))
        scale = 1.0 / np.arange(1, dim + 1)  # anisotropic: PCA 0.95 keeps fewer than all dims
        feats[layer] = (centres[labels] + rng.normal(0, 1, (n, dim)) * scale * 3).astype(np.float16)
    pixels = rng.integers(0, 256, (n, 8, 8, 1), dtype=np.uint8)
    return feats, labels, is_test, pixels


def _features(feats, labels, is_test) -> Features:
    return Features(feats, labels, is_test, {"dataset": "toy", "backbone": "toynet", "classes": ["a", "b", "c"],
                                             "layers": {k: {"dim": v.shape[1]} for k, v in feats.items()}})


PARAMS = ClassifyParams(kernels=("linear", "rbf", "sigmoid"), C=(0.1, 1.0, 10.0), n_components=(None, 0.95), cv_folds=3)


def test_pca_fraction_keeps_that_much_variance():
    feats, labels, is_test, _ = _toy()
    X = feats["pool1"].astype(np.float64)
    grid = run_grid("pool1", (X[~is_test], labels[~is_test]), (X[is_test], labels[is_test]), PARAMS, seed=0)
    pca = grid.preprocessors["pca=0.95"]
    kept = pca.variance
    assert kept >= 0.95
    assert 0 < pca.n_components < LAYERS["pool1"]  # it really reduced the dimension
    # the same count and variance as scikit-learn's PCA(0.95) after StandardScaler on the train split
    ref = sklearn_preprocessor(0.95).fit(X[~is_test])[-1]
    assert pca.n_components == ref.n_components_
    assert kept == pytest.approx(float(ref.explained_variance_ratio_.sum()), rel=1e-9)
    pca_rows = [r for r in grid.rows if r["pca"] == "pca=0.95"]
    assert pca_rows and all(r["pca_variance"] == pytest.approx(kept) for r in pca_rows)
    assert all(r["pca_components"] == pca.n_components for r in pca_rows)
    assert all(r["pca_components"] == LAYERS["pool1"] for r in grid.rows if r["pca"] == "pca=none")


def test_cross_validation_never_sees_the_test_split():
    feats, labels, is_test, pixels = _toy()
    clean = classify.run(_features(feats, labels, is_test), list(LAYERS), PARAMS, 0, pixels=pixels)
    rng = np.random.default_rng(1)
    poisoned_feats = {}
    for k, v in feats.items():
        p = v.copy()
        p[is_test] = rng.normal(0, 1000, p[is_test].shape).astype(np.float16)  # garbage test features
        poisoned_feats[k] = p
    poisoned_labels = labels.copy()
    poisoned_labels[is_test] = rng.permutation(labels[is_test])[::-1]  # shuffled test labels
    poisoned_pixels = pixels.copy()
    poisoned_pixels[is_test] = 255 - poisoned_pixels[is_test]
    dirty = classify.run(
        _features(poisoned_feats, poisoned_labels, is_test), list(LAYERS), PARAMS, 0, pixels=poisoned_pixels
    )
    key = ("layer", "kernel", "C", "pca", "cv_acc", "cv_std", "cv_picked")
    assert [tuple(r[k] for k in key) for r in clean.rows] == [tuple(r[k] for k in key) for r in dirty.rows]
    assert clean.metrics["picked_C"] == dirty.metrics["picked_C"]
    assert clean.best_index == dirty.best_index
    # the poison did reach the test scores, so the equality above is not vacuous
    assert [r["test_acc"] for r in clean.rows] != [r["test_acc"] for r in dirty.rows]


def test_grid_has_every_row_best_flagged_and_metrics_shape():
    feats, labels, is_test, pixels = _toy()
    res = classify.run(_features(feats, labels, is_test), list(LAYERS), PARAMS, 0, pixels=pixels)
    per_layer = len(PARAMS.kernels) * len(PARAMS.C) * len(PARAMS.n_components)
    assert len(res.rows) == per_layer * (len(LAYERS) + 1)  # + the raw-pixel baseline
    got = {(r["layer"], r["kernel"], r["C"], r["pca"]) for r in res.rows}
    want = {(lay, k, c, p) for lay in [*LAYERS, "pixels"] for k in PARAMS.kernels for c in PARAMS.C
            for p in ("pca=none", "pca=0.95")}
    assert got == want
    # exactly one C picked per (layer, kernel, pca), and it has the best CV accuracy of its group
    for lay, k, p in {(a, b, d) for a, b, _, d in want}:
        group = [r for r in res.rows if (r["layer"], r["kernel"], r["pca"]) == (lay, k, p)]
        picked = [r for r in group if r["cv_picked"]]
        assert len(picked) == 1 and picked[0]["cv_acc"] == max(r["cv_acc"] for r in group)
    feature_rows = [r for r in res.rows if r["source"] == "features"]
    best = res.rows[res.best_index]
    assert best["source"] == "features" and best["cv_acc"] == max(r["cv_acc"] for r in feature_rows)
    m = res.metrics
    for lay in [*LAYERS, "pixels"]:
        for k in PARAMS.kernels:
            for c in ("C=0.1", "C=1", "C=10"):
                assert set(m["test_acc"][lay][k][c]) == {"pca=none", "pca=0.95"}
                assert isinstance(m["test_acc"][lay][k][c]["pca=none"], float)
    assert m["best"]["layer"] == best["layer"] and m["best"]["test_acc"] == best["test_acc"]
    assert set(m["softmax_head"]) == set(LAYERS) and len(res.head_rows) == len(LAYERS)
    assert set(m["best_by_layer"]) == set(LAYERS)
    assert m["pixels_best"]["layer"] == "pixels"
    assert len(res.details["confusion_matrix"]) == 3
    assert "macro avg" in res.details["classification_report"]
    json.dumps(m)
    json.dumps(res.details)


def _votes_winner(values: np.ndarray, n_classes: int) -> int:
    """libsvm's one-vs-one vote: pair (i, j), i < j, votes i when its decision value is > 0."""
    votes = np.zeros(n_classes, dtype=int)
    pairs = [(i, j) for i in range(n_classes) for j in range(i + 1, n_classes)]
    for (i, j), value in zip(pairs, values, strict=True):
        votes[i if value > 0 else j] += 1
    return int(np.argmax(votes))


def _agree_off_the_boundary(pre, direct, kernel, C, y, Z, Ze) -> None:
    """Two routes to one SVM predict alike wherever the vote is not decided by a near tie.

    Their kernels differ by rounding, and libsvm stops at a tolerance (``tol``), so a pairwise
    decision value within a few ``tol`` of 0 may take either sign. A test point whose vote
    would change with such a sign may go either way; every other point must be predicted alike,
    and such points must be the exception.
    """
    ref = SVC(kernel=kernel, C=C, gamma="scale", decision_function_shape="ovo").fit(Z, y)
    values, k = ref.decision_function(Ze), len(ref.classes_)
    undecided = np.zeros(len(Ze), dtype=bool)
    for row, v in enumerate(values):
        winner = _votes_winner(v, k)
        for pair in np.flatnonzero(np.abs(v) < 10 * ref.tol):
            flipped = v.copy()
            flipped[pair] = -flipped[pair]
            undecided[row] |= _votes_winner(flipped, k) != winner
    assert undecided.mean() < 0.2, f"{kernel} C={C}: {undecided.sum()} of {len(Ze)} votes hang on a near tie"
    np.testing.assert_array_equal(pre[~undecided], direct[~undecided])


def test_precomputed_kernels_match_sklearn_svc():
    feats, labels, is_test, _ = _toy()
    X = feats["pool1"].astype(np.float64)
    Z, Ze, y = X[~is_test], X[is_test], labels[~is_test]
    kernels = Kernels.from_matrices(Z, Ze, "scale")
    for kernel in ("linear", "rbf", "sigmoid"):
        pre, _, _ = fit_predict("precomputed", kernel, 1.0, y, Z, Ze, kernels, PARAMS, 0)
        direct, _, _ = fit_predict("svc", kernel, 1.0, y, Z, Ze, None, PARAMS, 0)
        _agree_off_the_boundary(pre, direct, kernel, 1.0, y, Z, Ze)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"C": [1, 0]}, "every value must be > 0, got 0"),
        ({"C": [-1]}, "every value must be > 0, got -1"),
        ({"kernels": ["linear", "poly3"]}, "unknown kernel 'poly3'"),
        ({"n_components": [1.5]}, "variance fraction in (0, 1]"),
        ({"n_components": [0.0]}, "variance fraction in (0, 1]"),
        ({"n_components": ["all"]}, "variance fraction in (0, 1]"),
    ],
)
def test_bad_params_are_rejected(change, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[").replace("]", r"\]")):
        from_mapping(ClassifyParams, {"kernels": ["linear"], "C": [1], **change}, "classify")


def _project(tmp_path: Path, classify_params: dict, layers=("pool1", "fc7")) -> dict[str, Path]:
    feats, labels, is_test, pixels = _toy()
    cache = tmp_path / "features" / "toy-toynet"
    save_features(cache, feats, labels, is_test, {"dataset": "toy", "backbone": "toynet", "classes": ["a", "b", "c"]})
    from transferlab.data.prepared import PreparedDataset, save_prepared

    prepared = tmp_path / "prepared" / "toy"
    prepared.mkdir(parents=True)
    save_prepared(PreparedDataset(pixels, labels, is_test, ("a", "b", "c"), {"name": "toy"}), prepared)
    params = {
        "base": {"seed": 0, "device": "cpu", "num_workers": 0},
        "backbones": {"toynet": {"arch": "vgg_mini", "weights": "none", "layers": list(layers)}},
        "classify": classify_params,
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    out = tmp_path / "out"
    return {"features": cache, "prepared": prepared, "params": tmp_path / "params.yaml",
            "metrics": out / "m.json", "rows": out / "rows.json", "figure": out / "fig" / "c.png", "out": out}


def _argv(p: dict[str, Path]) -> list[str]:
    return ["--features", str(p["features"]), "--prepared", str(p["prepared"]), "--backbone", "toynet",
            "--metrics", str(p["metrics"]), "--rows", str(p["rows"]), "--figure", str(p["figure"]),
            "--params", str(p["params"])]


SMALL = {"kernels": ["linear", "rbf"], "C": [0.1, 1], "n_components": ["none", 0.95], "cv_folds": 2}


@pytest.mark.parametrize(
    ("change", "layers", "message"),
    [
        ({"C": [0.1, -1]}, ("pool1",), "every value must be > 0, got -1"),
        ({"kernels": ["linear", "cubic"]}, ("pool1",), "unknown kernel 'cubic'"),
        ({"n_components": [1.2]}, ("pool1",), "(0, 1]"),
        ({}, ("pool1", "pool2"), "layer 'pool2' (backbones.toynet.layers) was not extracted"),
    ],
)
def test_stage_fails_with_one_line_and_writes_nothing(tmp_path, capsys, change, layers, message):
    p = _project(tmp_path, {**SMALL, **change}, layers)
    with pytest.raises(SystemExit) as exc:
        stage.main(_argv(p))
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err
    assert not p["out"].exists()


def test_stage_writes_outputs_and_is_deterministic(tmp_path):
    p = _project(tmp_path, SMALL)
    stage.main(_argv(p))
    first = json.loads(p["metrics"].read_text())
    rows = json.loads(p["rows"].read_text())
    assert p["figure"].stat().st_size > 1000
    assert len(rows["rows"]) == 3 * 2 * 2 * 2  # (2 layers + pixels) x kernels x C x PCA
    assert rows["selection"].startswith("best row = highest cross-validation accuracy")
    stage.main(_argv(p))
    second = json.loads(p["metrics"].read_text())
    assert first == second
    cache = load_features(p["features"])
    assert first["test_size"] == int(cache.is_test.sum())


def test_check_layers_message():
    with pytest.raises(UserError, match="was not extracted"):
        classify.check_layers(["pool9"], {"layers": {"fc7": {}}}, "data/features/x", "vgg_mini")


def test_report_section_marks_the_cv_best_row(tmp_path):
    from transferlab.report.model import Table
    from transferlab.report.sections import transfer

    p = _project(tmp_path, SMALL)
    metrics = tmp_path / "metrics"
    argv = _argv(p)
    argv[argv.index("--metrics") + 1] = str(metrics / "classify" / "toy-toynet.json")
    argv[argv.index("--rows") + 1] = str(metrics / "classify-rows" / "toy-toynet.json")
    stage.main(argv)
    section = transfer.build(metrics, tmp_path / "reports")
    tables = [b for b in section.blocks if isinstance(b, Table)]
    main = next(t for t in tables if "method" in t.frame.columns)
    details = json.loads((metrics / "classify-rows" / "toy-toynet.json").read_text())
    best = details["rows"][details["best_index"]]
    (i,) = main.highlight
    row = main.frame.iloc[i]
    assert (row["layer"], row["kernel"], row["C"], row["cv acc"]) == (best["layer"], best["kernel"], best["C"], best["cv_acc"])
    assert set(main.frame["method"]) >= {"SVM", "softmax head", "baseline: raw pixels"}
    assert (main.frame["method"] == "SVM").sum() == 2 * 2 * 2 * 2  # 2 layers x kernels x C x PCA


def sklearn_preprocessor(n_components: float | None) -> Pipeline:
    """The independent reference: scikit-learn's own StandardScaler + PCA with its full-SVD solver."""
    if n_components is None:
        return make_pipeline(StandardScaler())
    return make_pipeline(StandardScaler(), PCA(None if n_components >= 1 else n_components, svd_solver="full"))


def _relative_gap_at_cut(X: np.ndarray, n_components: float | None) -> float:
    """(lambda_k - lambda_k+1) / lambda_1 of the scaled rows where PCA(n_components) cuts; 1 without a cut."""
    if n_components is None:
        return 1.0
    lam = sklearn_preprocessor(1.0).fit(X.astype(np.float64))[-1].explained_variance_
    k = sklearn_preprocessor(n_components).fit(X.astype(np.float64))[-1].n_components_
    return 1.0 if k == len(lam) else float((lam[k - 1] - lam[k]) / lam[0])


def _dense_kernels(X: np.ndarray, Xe: np.ndarray, n_components: float | None) -> tuple[np.ndarray, np.ndarray, int]:
    """The in-memory reference: scikit-learn's Pipeline on float64 copies, then Z @ Z.T."""
    prep = sklearn_preprocessor(n_components).fit(X.astype(np.float64))
    Z, Ze = prep.transform(X.astype(np.float64)), prep.transform(Xe.astype(np.float64))
    return Z @ Z.T, Ze @ Z.T, Z.shape[1]


@pytest.mark.parametrize("n_components", [None, 0.95, 1.0])
def test_blocked_memmapped_gram_equals_the_dense_pipeline(tmp_path, n_components):
    feats, labels, is_test, _ = _toy()
    np.save(tmp_path / "wide.npy", feats["pool1"])
    X = np.load(tmp_path / "wide.npy", mmap_mode="r")  # float16 on disk, as the stage reads it
    train, test = X[~is_test], X[is_test]
    G, Ge, dim = _dense_kernels(train, test, n_components)
    # 8 rows x 40 dims x 8 bytes per block: many blocks, so the off-diagonal assembly is exercised
    kernels, info, _ = gram_kernels(train, test, True, n_components, "scale", block_bytes=8 * 40 * 8)
    # Two exact routes to the same kernels (scaled rows' products vs scikit-learn's SVD) differ by
    # rounding, ~ d eps |G|; after a PCA cut by its subspace's sensitivity too: 1 / (relative
    # eigengap at the cut) (Davis-Kahan). 1000x margin over both.
    tol = 1000 * dim * EPS / _relative_gap_at_cut(train, n_components)
    np.testing.assert_allclose(kernels.G, G, rtol=0, atol=tol * np.abs(G).max())
    np.testing.assert_allclose(kernels.Ge, Ge, rtol=0, atol=tol * np.abs(Ge).max())
    np.testing.assert_allclose(kernels.n, np.diag(G), rtol=0, atol=tol * np.abs(G).max())
    assert info.n_components == dim
    if n_components == 0.95:
        assert dim < LAYERS["pool1"]


def test_blocked_gram_matches_dense_var_and_rows(tmp_path):
    rng = np.random.default_rng(3)
    X = rng.normal(2.0, 3.0, (50, 7)).astype(np.float16)
    Xe = rng.normal(2.0, 3.0, (11, 7)).astype(np.float16)
    G, Ge, n, ne, var = blocked_gram(X, Xe, Standardiser(), block_bytes=3 * 7 * 8)  # no scaling, 17 blocks
    Z, Ze = X.astype(np.float64), Xe.astype(np.float64)
    # two float64 dot products of length d in any summation order differ by at most 2 gamma_d |x|.|y|
    # (Higham, Accuracy and Stability, 3.1), gamma_d = d eps / (1 - d eps)
    d = X.shape[1]
    gamma = d * EPS / (1 - d * EPS)
    assert np.all(np.abs(G - Z @ Z.T) <= 2 * gamma * (np.abs(Z) @ np.abs(Z).T))
    assert np.all(np.abs(Ge - Ze @ Z.T) <= 2 * gamma * (np.abs(Ze) @ np.abs(Z).T))
    assert np.all(np.abs(ne - (Ze**2).sum(1)) <= 2 * gamma * (Ze**2).sum(1))
    assert var == pytest.approx(Z.var(), rel=1e-9)
    assert [(s.start, s.stop) for s in row_blocks(7, 5, block_bytes=2 * 5 * 8)] == [(0, 2), (2, 4), (4, 6), (6, 7)]


@pytest.mark.parametrize("n_components", [None, 0.95])
def test_precomputed_blocked_path_predicts_like_svc_on_the_pipeline(n_components):
    """Same predictions as the materialised path: Pipeline(StandardScaler, PCA) then SVC(kernel=...)."""
    feats, labels, is_test, _ = _toy()
    X, y = feats["pool1"], labels
    train, test = X[~is_test], X[is_test]
    kernels, _, _ = gram_kernels(train, test, True, n_components, "scale", block_bytes=8 * 40 * 8)
    prep = preprocessor(True, n_components).fit(train.astype(np.float64))
    Z, Ze = prep.transform(train.astype(np.float64)), prep.transform(test.astype(np.float64))
    for kernel in ("linear", "rbf", "sigmoid"):
        for C in (0.1, 10.0):
            pre, _, _ = fit_predict("precomputed", kernel, C, y[~is_test], None, None, kernels, PARAMS, 0)
            direct, _, _ = fit_predict("svc", kernel, C, y[~is_test], Z, Ze, None, PARAMS, 0)
            _agree_off_the_boundary(pre, direct, kernel, C, y[~is_test], Z, Ze)


def test_report_side_by_side_puts_each_untrained_copy_next_to_its_backbone():
    from transferlab.report.sections.transfer import side_by_side

    def summary(dataset, backbone, acc, pixels):
        return {"dataset": dataset, "backbone": backbone, "best": {"test_acc": acc}, "pixels_best": {"test_acc": pixels}}

    summaries = {
        "a": summary("fmnist-100", "vgg_mini_untrained", 0.84, 0.81),
        "b": summary("fmnist-100", "efficientnet_lite0", 0.88, 0.81),
        "c": summary("fmnist-100", "vgg_mini", 0.92, 0.81),
        "d": summary("fmnist-100", "efficientnet_lite0_untrained", 0.77, 0.81),
        "e": summary("digits", "vgg_mini", 0.95, 0.97),
    }
    frame = side_by_side(summaries).frame
    assert list(frame.columns) == [
        "target", "efficientnet_lite0", "efficientnet_lite0_untrained", "vgg_mini", "vgg_mini_untrained", "raw pixels",
    ]
    rows = {r["target"]: r for r in frame.to_dict("records")}
    assert rows["fmnist-100"]["efficientnet_lite0"] == 0.88 and rows["fmnist-100"]["raw pixels"] == 0.81
    assert rows["digits"]["vgg_mini"] == 0.95 and pd.isna(rows["digits"]["efficientnet_lite0"])
    assert side_by_side({}) is None
