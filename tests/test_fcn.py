"""fcn: FC layers as convolutions give the same scores; score-map size; tile-region accuracy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from transferlab.config import from_mapping
from transferlab.data.prepared import PreparedDataset
from transferlab.errors import UserError
from transferlab.inside.convarith import ReceptiveField
from transferlab.inside.fcn import (
    FcnParams,
    make_canvases,
    output_field,
    position_accuracy,
    region_accuracy,
    run_fcn,
    tile_regions,
    to_fully_convolutional,
)
from transferlab.models.registry import build_backbone

torch.set_num_threads(1)


@torch.no_grad()
def test_vgg_mini_equivalence_and_map_size():
    backbone = build_backbone("vgg_mini", "none", seed=0)
    fcn = to_fully_convolutional(backbone)
    head = fcn[1]
    assert head[0].kernel_size == (3, 3) and head[3].kernel_size == (1, 1) and head[6].kernel_size == (1, 1)
    x = torch.randn(4, 3, 28, 28)
    assert (fcn(x).flatten(1) - backbone.model(x)).abs().max() < 1e-4
    assert fcn(torch.randn(1, 3, 84, 84)).shape == (1, 10, 8, 8)  # 84 -> 42 -> 21 -> 10 -> 3x3 conv -> 8
    assert fcn(torch.randn(1, 3, 112, 112)).shape == (1, 10, 12, 12)
    field = output_field(fcn)
    assert field.jump == 8


@torch.no_grad()
def test_vgg16_equivalence_and_map_size():
    backbone = build_backbone("vgg16", "none", seed=0)
    fcn = to_fully_convolutional(backbone)
    assert fcn[1][0].kernel_size == (7, 7) and fcn[1][3].kernel_size == (1, 1)
    x = torch.randn(1, 3, 224, 224)
    assert (fcn(x).flatten(1) - backbone.model(x)).abs().max() < 1e-4
    assert fcn(torch.randn(1, 3, 288, 288)).shape == (1, 1000, 3, 3)  # 288/32 = 9 -> 7x7 conv -> 3
    assert output_field(fcn).jump == 32


def test_unsupported_arch():
    with pytest.raises(UserError, match="vgg16, alexnet or vgg_mini"):
        to_fully_convolutional(build_backbone("resnet18", "none"))


def test_tile_regions_on_a_synthetic_map():
    # 2x2 tiles of 10 px; map positions every 5 px starting at 2.5 -> 4x4 positions, 2x2 per tile
    field = ReceptiveField(size=5, jump=5, start=2.5)
    classes = np.array([[0, 1], [2, 3]])
    scores = torch.full((4, 4, 4), -5.0)
    for r in range(2):
        for c in range(2):
            scores[classes[r, c], 2 * r : 2 * r + 2, 2 * c : 2 * c + 2] = 5.0
    scores[0, 3, 3] = 20.0  # one position of tile (1, 1) says class 0 ...
    regions, counts = tile_regions(scores, 2, 10, field)
    assert counts.tolist() == [[4, 4], [4, 4]]
    assert regions.tolist() == [[0, 1], [2, 3]]  # ... but the tile's summed scores still say 3
    assert region_accuracy(regions, classes) == 1.0
    assert position_accuracy(scores, classes, 10, field) == (15, 16)
    scores[0, 2:, 2:] = 20.0  # now the whole tile says 0
    regions, _ = tile_regions(scores, 2, 10, field)
    assert region_accuracy(regions, classes) == 0.75


def test_canvas_layout():
    images = np.stack([np.full((4, 4, 1), i, dtype=np.uint8) for i in range(10)])
    labels = np.arange(10)
    canvases, classes = make_canvases(images, labels, 2, 3, 4, seed=0)
    assert canvases.shape == (3, 1, 8, 8) and classes.shape == (3, 2, 2)
    for n in range(3):
        for r in range(2):
            for c in range(2):  # each tile holds the image of its recorded class
                assert (canvases[n, 0, 4 * r : 4 * r + 4, 4 * c : 4 * c + 4] == classes[n, r, c]).all()


def test_run_fcn(tmp_path):
    rng = np.random.default_rng(0)
    ds = PreparedDataset(
        images=rng.integers(0, 255, (40, 28, 28, 1), dtype=np.uint8),
        labels=np.arange(40) % 10,
        is_test=np.arange(40) % 2 == 0,
        classes=tuple(f"c{i}" for i in range(10)),
        meta={"name": "toy"},
    )
    cfg = from_mapping(FcnParams, {"backbone": "vgg_mini", "canvases": 2, "shown": 1}, "fcn")
    metrics = run_fcn(build_backbone("vgg_mini", "none", seed=0), ds, cfg, 0, tmp_path)
    assert metrics["map_size"] == [8, 8] and metrics["tiles"] == 18 and metrics["canvas_size"] == 84
    assert metrics["max_abs_diff_standard"] < 1e-4
    assert 0 <= metrics["tile_region_acc"] <= 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["canvas_0.png"]
    with pytest.raises(UserError, match="grid"):
        from_mapping(FcnParams, {"backbone": "vgg_mini", "grid": 1}, "fcn")
