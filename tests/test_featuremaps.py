"""featuremaps: maps before/after ReLU are really different (in-place ReLU trap), figures, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from transferlab.config import from_mapping
from transferlab.data.prepared import PreparedDataset
from transferlab.errors import UserError
from transferlab.inside.featuremaps import (
    FeaturemapsParams,
    extract_maps,
    first_conv_and_relu,
    run_featuremaps,
)
from transferlab.models.registry import build_backbone

torch.set_num_threads(1)


def _dataset():
    rng = np.random.default_rng(0)
    return PreparedDataset(
        images=rng.integers(0, 255, (8, 28, 28, 1), dtype=np.uint8),
        labels=np.arange(8) % 4,
        is_test=np.arange(8) >= 4,
        classes=("a", "b", "c", "d"),
        meta={"name": "toy"},
    )


def _cfg(**kw):
    return from_mapping(FeaturemapsParams, {"backbone": "vgg_mini", **kw}, "featuremaps")


def test_inplace_relu_does_not_overwrite_the_conv_maps():
    backbone = build_backbone("alexnet", "none", seed=0)  # features.1 is ReLU(inplace=True)
    assert first_conv_and_relu(backbone.model) == ("features.0", "features.1")
    x = torch.randn(1, 3, 224, 224)
    maps, _, _ = extract_maps(backbone, x, "pool1")
    assert (maps["conv"] < 0).any()
    assert torch.equal(maps["relu"], maps["conv"].clamp(min=0))
    assert maps["deep"].shape[1:] == (64, 27, 27)


def test_run_writes_both_figures(tmp_path):
    backbone = build_backbone("vgg_mini", "none", seed=0)
    metrics = run_featuremaps(backbone, _dataset(), _cfg(n_filters=4, n_deep=3, images=[0, 3]), tmp_path)
    assert (tmp_path / "first_conv.png").stat().st_size > 0 and (tmp_path / "deep.png").stat().st_size > 0
    assert metrics["first_conv_shape"] == [16, 28, 28] and metrics["deep_shape"] == [32, 7, 7]
    assert 0 < metrics["conv_negative_fraction"] < 1
    assert metrics["image_labels"] == ["a", "d"]


@pytest.mark.parametrize(("kw", "match"), [({"n_filters": 17}, "between 1 and 16"), ({"n_deep": 33}, "between 1 and 32")])
def test_counts_out_of_range(tmp_path, kw, match):
    backbone = build_backbone("vgg_mini", "none", seed=0)
    with pytest.raises(UserError, match=match) as exc:
        run_featuremaps(backbone, _dataset(), _cfg(**kw), tmp_path)
    assert "\n" not in str(exc.value)


def test_bad_params(tmp_path):
    with pytest.raises(UserError, match="n_filters"):
        _cfg(n_filters=0)
    with pytest.raises(UserError, match="exactly two"):
        _cfg(images=[0])
    backbone = build_backbone("vgg_mini", "none", seed=0)
    with pytest.raises(UserError, match="unknown cut point"):
        run_featuremaps(backbone, _dataset(), _cfg(deep_layer="pool9"), tmp_path)
    with pytest.raises(UserError, match="beyond"):
        run_featuremaps(backbone, _dataset(), _cfg(images=[0, 4]), tmp_path)


def test_efficientnet_reads_the_fused_batchnorm_relu6_node():
    """timm's BatchNormAct2d is one traced node: 'with ReLU' is its output, ReLU6(BN(conv))."""
    from transferlab.inside.featuremaps import extract_maps

    bb = build_backbone("efficientnet_lite0", "none", seed=0)
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    maps, conv, relu = extract_maps(bb, x, "block1")
    assert (conv, relu) == ("conv_stem", "bn1")
    bn = bb.model.bn1
    expected = torch.clamp(
        (maps["conv"] - bn.running_mean.view(1, -1, 1, 1)) / torch.sqrt(bn.running_var.view(1, -1, 1, 1) + bn.eps)
        * bn.weight.view(1, -1, 1, 1) + bn.bias.view(1, -1, 1, 1), 0, 6,
    )  # fmt: skip
    torch.testing.assert_close(maps["relu"], expected, rtol=1e-5, atol=1e-5)


def test_a_failed_trace_leaves_the_model_in_its_mode():
    from transferlab.models.cutpoints import create_extractor

    bb = build_backbone("efficientnet_lite0", "none", seed=0)
    bb.model.eval()
    with pytest.raises(ValueError):
        create_extractor(bb.model, {"bn1.act": "relu"})  # inside a traced leaf: not a node
    assert not any(m.training for m in bb.model.modules())
