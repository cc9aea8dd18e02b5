"""Tests for training from scratch: models, convergence metric, the stage, its errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from stages import scratch as stage
from transferlab.config import from_mapping
from transferlab.data.prepared import PreparedDataset, save_prepared
from transferlab.errors import UserError
from transferlab.metrics import read_metrics
from transferlab.scratch.convergence import iterations_table, iterations_to_threshold, threshold_key
from transferlab.scratch.run import (
    ModelSpec,
    ScratchParams,
    build_model,
    count_parameters,
    flip_crop,
    run,
)

# ---------------------------------------------------------------- models


@pytest.mark.parametrize(
    ("spec", "in_shape", "expected"),
    [
        # linear: 28*28*1 inputs x 10 outputs + 10 biases
        (ModelSpec(arch="linear"), (1, 28, 28), 784 * 10 + 10),
        # mlp: 784 -> 128 -> 10
        (ModelSpec(arch="mlp", hidden=128), (1, 28, 28), (784 * 128 + 128) + (128 * 10 + 10)),
        (
            ModelSpec(arch="mlp", hidden=50, activation="sigmoid"),
            (3, 8, 8),
            (192 * 50 + 50) + (50 * 10 + 10),
        ),
        # cnn: conv 1->32 (3x3), conv 32->64 (3x3), 28-4=24 -> pool 12: 64*12*12 -> 128 -> 10
        (
            ModelSpec(arch="cnn"),
            (1, 28, 28),
            (9 * 32 + 32) + (32 * 9 * 64 + 64) + (64 * 12 * 12 * 128 + 128) + (128 * 10 + 10),
        ),
        # cifar_cnn: three conv+BN blocks (32, 64, 128) on 32x32 -> 128*4*4 -> 128 -> 10
        (
            ModelSpec(arch="cifar_cnn"),
            (3, 32, 32),
            (3 * 9 * 32 + 32 + 2 * 32)
            + (32 * 9 * 64 + 64 + 2 * 64)
            + (64 * 9 * 128 + 128 + 2 * 128)
            + (128 * 16 * 128 + 128)
            + (128 * 10 + 10),
        ),
    ],
)
def test_model_parameter_count_and_output_shape(spec, in_shape, expected):
    model = build_model(spec, in_shape, 10)
    assert count_parameters(model) == expected
    out = model(torch.zeros(3, *in_shape))
    assert out.shape == (3, 10)


def test_cnn_known_totals():
    # the course's numbers: Keras mnist_cnn has 1,199,882 parameters
    assert count_parameters(build_model(ModelSpec(arch="cnn"), (1, 28, 28), 10)) == 1_199_882
    assert count_parameters(build_model(ModelSpec(arch="linear"), (1, 28, 28), 10)) == 7850


def test_activation_is_used():
    relu = build_model(ModelSpec(arch="cnn", activation="relu"), (1, 12, 12), 4)
    sig = build_model(ModelSpec(arch="cnn", activation="sigmoid"), (1, 12, 12), 4)
    assert any(isinstance(m, torch.nn.ReLU) for m in relu.modules())
    assert not any(isinstance(m, torch.nn.Sigmoid) for m in relu.modules())
    assert sum(isinstance(m, torch.nn.Sigmoid) for m in sig.modules()) == 3


def test_cnn_too_small_image_is_user_error():
    with pytest.raises(UserError, match="at least 6x6"):
        build_model(ModelSpec(arch="cnn"), (1, 5, 5), 10)


def test_flip_crop_keeps_shape_and_pixels():
    x = torch.randint(0, 256, (5, 3, 8, 8), dtype=torch.uint8)
    y = flip_crop(x)
    assert y.shape == x.shape and y.dtype == torch.uint8
    # every output pixel is an input pixel of the same image or the zero padding
    for i in range(5):
        assert set(y[i].unique().tolist()) <= set(x[i].unique().tolist()) | {0}


# ---------------------------------------------------------------- convergence metric


def test_iterations_to_threshold_on_synthetic_curve():
    rows = [
        {"iteration": 10, "train_acc": 0.50},
        {"iteration": 20, "train_acc": 0.79},
        {"iteration": 30, "train_acc": 0.81},
        {"iteration": 40, "train_acc": 0.70},
        {"iteration": 50, "train_acc": 0.90},
    ]
    assert iterations_to_threshold(rows, 0.8) == 30
    assert iterations_to_threshold(rows, 0.5) == 10
    assert iterations_to_threshold(rows, 0.9) == 50
    assert iterations_to_threshold(rows, 0.95) is None
    assert iterations_to_threshold([], 0.1) is None
    assert iterations_table(rows, (0.8, 0.875)) == {
        "iters_to_train_acc_80": 30,
        "iters_to_train_acc_87_5": 50,
    }
    assert threshold_key(0.85) == "iters_to_train_acc_85"


# ---------------------------------------------------------------- runs on tiny data


def tiny_dataset(
    n_train: int = 240, n_test: int = 80, size: int = 12, classes: int = 4, seed: int = 0
):
    """Synthetic 1-channel images whose class is a bright quadrant plus noise."""
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    labels = rng.integers(0, classes, n)
    images = rng.integers(0, 60, (n, size, size, 1)).astype(np.uint8)
    half = size // 2
    for i, c in enumerate(labels):
        r, q = divmod(int(c), 2)
        images[i, r * half : (r + 1) * half, q * half : (q + 1) * half, 0] += 150
    is_test = np.zeros(n, bool)
    is_test[n_train:] = True
    return PreparedDataset(
        images,
        labels.astype(np.int64),
        is_test,
        tuple(f"c{i}" for i in range(classes)),
        {"name": "tiny"},
    )


def tiny_params(**model_overrides) -> dict:
    model = {
        "arch": "cnn",
        "activation": "relu",
        "hidden": 16,
        "optim": {"optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "epochs": 2, "batch_size": 16},
    }
    model.update(model_overrides)
    return {
        "datasets": ["tiny"],
        "models": ["m"],
        "models_config": {"m": model, "lin": {"arch": "linear"}},
        "thresholds": [0.5, 0.9, 1.0],
        "log_every": 5,
        "eval_size": 40,
        "hard_examples": 6,
    }


def test_tiny_run_decreases_loss_and_learns():
    torch.set_num_threads(1)
    params = from_mapping(ScratchParams, tiny_params(), "scratch")
    result = run(tiny_dataset(), "m", params, seed=0, device=torch.device("cpu"))
    curve = result.curve
    assert len(curve) == 2 * 240 // 16 // 5  # 30 iterations, one row every 5
    assert curve[-1]["train_loss"] < curve[0]["train_loss"]
    assert result.metrics["test_acc"] > 0.5  # 4 classes: chance is 0.25
    assert result.metrics["iterations"] == 30
    assert result.metrics["train_images"] == 240 and result.metrics["test_images"] == 80
    assert result.metrics["iters_to_train_acc_50"] == iterations_to_threshold(curve, 0.5)


def test_hard_examples_are_confident_mistakes():
    torch.set_num_threads(1)
    # one epoch of a linear model leaves mistakes to find
    raw = tiny_params(
        arch="linear", optim={"lr": 0.001, "momentum": 0.0, "epochs": 1, "batch_size": 16}
    )
    params = from_mapping(ScratchParams, raw, "scratch")
    ds = tiny_dataset()
    result = run(ds, "m", params, seed=0, device=torch.device("cpu"))
    idx = result.hard_indices
    assert 0 < len(idx) <= 6
    assert len(result.hard_titles) == len(idx)
    _, test_y = ds.split("test")
    for i, title in zip(idx, result.hard_titles, strict=True):
        true_name, pred_part = title.split("\n")
        assert true_name == f"true: c{test_y[i]}"
        assert not pred_part.startswith(f"pred: c{test_y[i]} ")
    confs = [float(t.rsplit("(", 1)[1].rstrip(")")) for t in result.hard_titles]
    assert confs == sorted(confs, reverse=True)


def test_train_size_subsamples_training_set():
    torch.set_num_threads(1)
    params = from_mapping(ScratchParams, tiny_params(arch="linear", train_size=100), "scratch")
    result = run(tiny_dataset(), "m", params, seed=0, device=torch.device("cpu"))
    assert result.metrics["train_images"] == 100
    assert result.metrics["iterations"] == 2 * 7  # ceil(100 / 16) per epoch


# ---------------------------------------------------------------- the stage


def write_inputs(tmp_path: Path, raw_scratch: dict) -> tuple[Path, Path]:
    data = tmp_path / "data"
    data.mkdir()
    save_prepared(tiny_dataset(), data)
    params = tmp_path / "params.yaml"
    params.write_text(
        yaml.safe_dump(
            {"base": {"seed": 0, "device": "cpu", "num_workers": 0}, "scratch": raw_scratch}
        )
    )
    return data, params


def stage_args(
    tmp_path: Path, data: Path, params: Path, model: str = "m", tag: str = "out"
) -> list[str]:
    out = tmp_path / tag
    return [
        "--model", model,
        "--data", str(data),
        "--metrics", str(out / "metrics.json"),
        "--plot", str(out / "curve.csv"),
        "--figure", str(out / "hard.png"),
        "--params", str(params),
    ]  # fmt: skip


def test_stage_writes_outputs_and_metric_matches_curve(tmp_path):
    torch.set_num_threads(1)
    data, params = write_inputs(tmp_path, tiny_params())
    stage.main(stage_args(tmp_path, data, params))
    out = tmp_path / "out"
    metrics = read_metrics(out / "metrics.json")  # with its timings merged back
    with (out / "curve.csv").open() as fh:
        rows = [{k: float(v) for k, v in r.items()} for r in csv.DictReader(fh)]
    assert list(rows[0]) == ["iteration", "train_loss", "train_acc", "test_acc"]
    assert [r["iteration"] for r in rows] == [5.0 * k for k in range(1, 7)]
    for t, key in [
        (0.5, "iters_to_train_acc_50"),
        (0.9, "iters_to_train_acc_90"),
        (1.0, "iters_to_train_acc_100"),
    ]:
        assert metrics[key] == iterations_to_threshold(rows, t)
    assert metrics["params"] == count_parameters(
        build_model(ModelSpec(arch="cnn", hidden=16), (1, 12, 12), 4)
    )
    assert 0 <= metrics["test_acc"] <= 1 and metrics["seconds"] > 0
    assert metrics["dataset"] == "tiny" and metrics["model"] == "m"
    png = (out / "hard.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 1000


def test_stage_is_deterministic(tmp_path):
    torch.set_num_threads(1)
    data, params = write_inputs(tmp_path, tiny_params())
    stage.main(stage_args(tmp_path, data, params, tag="a"))
    stage.main(stage_args(tmp_path, data, params, tag="b"))
    a = json.loads((tmp_path / "a" / "metrics.json").read_text())
    b = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert a == b
    assert (tmp_path / "a" / "curve.csv").read_text() == (tmp_path / "b" / "curve.csv").read_text()


@pytest.mark.parametrize(
    ("model", "overrides", "message"),
    [
        ("nope", {}, "error: unknown scratch model 'nope'; valid scratch models: lin, m"),
        (
            "m",
            {"optim": {"lr": 0.0}},
            "error: params.yaml: scratch.models_config.m.optim.lr must be > 0, got 0.0",
        ),
        (
            "m",
            {"arch": "resnet"},
            "error: params.yaml: scratch.models_config.m.arch: got 'resnet'; expected one of",
        ),
        ("m", {"activation": "tanh"}, "scratch.models_config.m.activation: got 'tanh'"),
    ],
)
def test_bad_params_one_line_error_and_no_outputs(tmp_path, capsys, model, overrides, message):
    data, params = write_inputs(tmp_path, tiny_params(**overrides))
    with pytest.raises(SystemExit) as exc:
        stage.main(stage_args(tmp_path, data, params, model=model))
    assert exc.value.code != 0
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and message in err
    assert not (tmp_path / "out").exists()


def test_models_list_must_name_configured_models(tmp_path, capsys):
    raw = tiny_params()
    raw["models"] = ["m", "missing"]
    data, params = write_inputs(tmp_path, raw)
    with pytest.raises(SystemExit):
        stage.main(stage_args(tmp_path, data, params))
    err = capsys.readouterr().err
    assert "scratch.models[1] lists 'missing' but models_config has no such entry" in err, err


# ---------------------------------------------------------------- report section


def test_report_section_table_and_galleries(tmp_path):
    from transferlab.report.model import Figure, Table, Text
    from transferlab.report.sections import scratch as section

    metrics, reports = tmp_path / "metrics", tmp_path / "reports"
    assert section.build(metrics, reports) is None
    (metrics / "scratch").mkdir(parents=True)
    (reports / "figures" / "scratch").mkdir(parents=True)
    common = {"dataset": "fm", "params": 10, "train_images": 100, "iterations": 40, "seconds": 1.5}
    runs = {
        "fm-cnn": {"model": "cnn", "arch": "cnn", "activation": "relu", "test_acc": 0.91,
                   "iters_to_train_acc_80": 10, "iters_to_train_acc_85": 20},
        "fm-cnn_sigmoid": {"model": "cnn_sigmoid", "arch": "cnn", "activation": "sigmoid",
                           "test_acc": 0.85, "iters_to_train_acc_80": 30, "iters_to_train_acc_85": None},
        "fm-linear": {"model": "linear", "arch": "linear", "activation": "none", "test_acc": 0.84,
                      "iters_to_train_acc_80": 15, "iters_to_train_acc_85": None},
    }  # fmt: skip
    for item, m in runs.items():
        (metrics / "scratch" / f"{item}.json").write_text(json.dumps({**common, **m}))
    (reports / "figures" / "scratch" / "fm-cnn_hard.png").write_bytes(b"png")

    sec = section.build(metrics, reports)
    tables = [b for b in sec.blocks if isinstance(b, Table)]
    assert len(tables) == 1
    frame = tables[0].frame
    assert list(frame["model"]) == ["cnn", "cnn_sigmoid", "linear"]  # by test accuracy
    assert tables[0].highlight == (0,)
    assert list(frame["iters to 80% train acc"]) == [10, 30, 15]
    assert list(frame["iters to 85% train acc"])[1:] == ["not reached (> 40)"] * 2
    text = " ".join(b.markdown for b in sec.blocks if isinstance(b, Text))
    assert "`cnn` on `fm`" in text and "80%: ReLU 10, sigmoid 30" in text
    figures = [b for b in sec.blocks if isinstance(b, Figure)]
    assert [f.path for f in figures] == ["figures/scratch/fm-cnn_hard.png"]  # only existing files


def test_image_grid_titles_and_png(tmp_path):
    from transferlab.figures import image_grid, save_figure

    images = np.zeros((5, 8, 8, 3), np.uint8)
    fig = image_grid(images, [f"t{i}" for i in range(5)], ncols=4, title="grid")
    shown = [ax for ax in fig.axes if ax.images]
    assert len(fig.axes) == 8 and len(shown) == 5  # 2 rows x 4, empty cells hidden
    assert [ax.get_title() for ax in shown] == ["t0", "t1", "t2", "t3", "t4"]
    save_figure(fig, tmp_path / "g.png")
    assert (tmp_path / "g.png").read_bytes().startswith(b"\x89PNG")
    with pytest.raises(ValueError, match="images must be"):
        image_grid(np.zeros((2, 8, 8), np.uint8))
