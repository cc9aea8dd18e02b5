"""Backbone registry: every arch builds, every cut point exists with the expected shape."""

from __future__ import annotations

import pytest
import torch

from transferlab import cli
from transferlab.errors import UserError
from transferlab.models import vgg_mini
from transferlab.models.cutpoints import create_extractor, graph_node_names
from transferlab.models.registry import (
    ARCHS,
    build_backbone,
    describe_cut_points,
    load_backbone,
    resolve_layers,
    save_backbone,
)

torch.set_num_threads(1)

# Per-image output shapes at each arch's input size (224 px for the ImageNet nets).
EXPECTED = {
    "vgg16": {
        "pool1": (64, 112, 112), "pool2": (128, 56, 56), "pool3": (256, 28, 28),
        "pool4": (512, 14, 14), "pool5": (512, 7, 7), "fc6": (4096,), "fc7": (4096,),
    },
    "alexnet": {"pool1": (64, 27, 27), "pool2": (192, 13, 13), "pool5": (256, 6, 6), "fc6": (4096,), "fc7": (4096,)},
    "resnet18": {"layer1": (64, 56, 56), "layer2": (128, 28, 28), "layer3": (256, 14, 14), "layer4": (512, 7, 7), "avgpool": (512,)},
    "resnet50": {"layer1": (256, 56, 56), "layer2": (512, 28, 28), "layer3": (1024, 14, 14), "layer4": (2048, 7, 7), "avgpool": (2048,)},
    "squeezenet1_1": {
        "fire2": (128, 55, 55), "fire3": (128, 55, 55), "fire4": (256, 27, 27), "fire5": (256, 27, 27),
        "fire6": (384, 13, 13), "fire7": (384, 13, 13), "fire8": (512, 13, 13), "fire9": (512, 13, 13),
        "pool": (1000,),
    },
    "efficientnet_lite0": {
        "stem": (32, 112, 112), "block1": (16, 112, 112), "block2": (24, 56, 56), "block3": (40, 28, 28),
        "block4": (80, 14, 14), "block5": (112, 14, 14), "block6": (192, 7, 7), "block7": (320, 7, 7),
        "conv_head": (1280, 7, 7), "pool": (1280,),
    },
}
_SIDE = vgg_mini.INPUT_SIZE // 2 ** len(vgg_mini.BLOCKS)  # 28 px -> 3
EXPECTED["vgg_mini"] = {
    "pool1": (vgg_mini.BLOCKS[0][-1], vgg_mini.INPUT_SIZE // 2, vgg_mini.INPUT_SIZE // 2),
    "pool2": (vgg_mini.BLOCKS[1][-1], vgg_mini.INPUT_SIZE // 4, vgg_mini.INPUT_SIZE // 4),
    "pool3": (vgg_mini.BLOCKS[2][-1], _SIDE, _SIDE),
    "fc6": (vgg_mini.FC_WIDTH,),
    "fc7": (vgg_mini.FC_WIDTH,),
}


def test_every_arch_has_expected_table():
    assert set(EXPECTED) == set(ARCHS)
    assert EXPECTED["vgg_mini"]["pool3"] == (64, 3, 3) and EXPECTED["vgg_mini"]["fc7"] == (256,)


@pytest.fixture(scope="module", params=sorted(ARCHS))
def built(request):
    """Each architecture built once (random init) for this module."""
    return build_backbone(request.param, "none", seed=0)


def test_cut_points_real_forward_shapes(built):
    """One real forward pass (batch 1) through every named cut point gives the expected shape."""
    spec = ARCHS[built.arch]
    assert list(built.cut_points) == list(EXPECTED[built.arch])  # network order, exact names
    _, eval_nodes = graph_node_names(built.model)
    assert set(built.cut_points.values()) <= set(eval_nodes)
    extractor = create_extractor(built.model.eval(), {n: k for k, n in built.cut_points.items()})
    x = built.preprocess(torch.randint(0, 256, (1, 3, spec.input_size, spec.input_size), dtype=torch.uint8))
    with torch.no_grad():
        out = extractor(x)
    shapes = {k: tuple(v.shape[1:]) for k, v in out.items()}
    assert shapes == EXPECTED[built.arch]
    # the meta-device description the CLI prints agrees with the real forward pass
    assert {name: shape for name, _, shape in describe_cut_points(built.arch)} == EXPECTED[built.arch]


def test_presets_and_heads():
    vgg = ARCHS["vgg16"]
    assert (vgg.input_size, vgg.resize_size) == (224, 256)
    assert vgg.mean == pytest.approx((0.485, 0.456, 0.406)) and vgg.std == pytest.approx((0.229, 0.224, 0.225))
    assert {a: ARCHS[a].head for a in ARCHS} == {
        "vgg16": "classifier.6", "alexnet": "classifier.6", "resnet18": "fc", "resnet50": "fc",
        "squeezenet1_1": "classifier.1", "vgg_mini": "classifier.6", "efficientnet_lite0": "classifier",
    }
    mini = ARCHS["vgg_mini"]
    assert (mini.input_size, mini.mean, mini.std) == (vgg_mini.INPUT_SIZE, (0.5,) * 3, (0.5,) * 3)


def test_vgg16_cut_points_match_the_study_names():
    cp = ARCHS["vgg16"].cut_points
    assert cp["fc7"] == "classifier.4" and cp["fc6"] == "classifier.1"  # after ReLU
    assert [cp[f"pool{i}"] for i in range(1, 6)] == ["features.4", "features.9", "features.16", "features.23", "features.30"]


def test_none_weights_are_seeded_and_deterministic():
    a = build_backbone("vgg_mini", "none", seed=3)
    b = build_backbone("vgg_mini", "none", seed=3)
    c = build_backbone("vgg_mini", "none", seed=4)
    sa, sb, sc = a.model.state_dict(), b.model.state_dict(), c.model.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa["features.0.weight"], sc["features.0.weight"])
    # building does not disturb the caller's RNG stream
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    build_backbone("vgg_mini", "none", seed=7)
    assert torch.equal(torch.rand(3), expected)


def test_num_classes_replaces_head():
    bb = build_backbone("resnet18", "none", num_classes=5)
    assert bb.model.fc.out_features == 5
    sq = build_backbone("squeezenet1_1", "none", num_classes=7)
    assert sq.model.classifier[1].out_channels == 7
    with torch.no_grad():
        assert sq.model.eval()(torch.zeros(1, 3, 224, 224)).shape == (1, 7)


def test_unknown_arch_is_one_line_listing_valid_names():
    with pytest.raises(UserError) as err:
        build_backbone("vgg19", "none")
    msg = str(err.value)
    assert "\n" not in msg and "'vgg19'" in msg
    for arch in ARCHS:
        assert arch in msg


def test_unknown_cut_point_is_one_line_listing_valid_names():
    bb = build_backbone("vgg_mini", "none")
    assert resolve_layers(bb, ["fc7", "pool1", "fc7"]) == ["fc7", "pool1"]
    with pytest.raises(UserError) as err:
        resolve_layers(bb, ["pool1", "pool5"])
    msg = str(err.value)
    assert "\n" not in msg and "'pool5'" in msg
    for layer in ("pool1", "pool2", "pool3", "fc6", "fc7"):
        assert layer in msg
    with pytest.raises(UserError):
        resolve_layers(bb, [])


def test_save_load_round_trip_vgg_mini(tmp_path):
    bb = build_backbone("vgg_mini", "none", num_classes=4, name="mini", seed=1)
    bb.categories = ("a", "b", "c", "d")
    save_backbone(bb, tmp_path / "mini", {"weights": "pretrain", "test_acc": 0.5})
    card = (tmp_path / "mini" / "card.json").read_text()
    assert '"weights_sha256"' in card and '"pretrain"' in card and '"test_acc": 0.5' in card
    loaded = load_backbone(tmp_path / "mini")
    assert (loaded.name, loaded.arch, loaded.weights, loaded.categories) == ("mini", "vgg_mini", "pretrain", ("a", "b", "c", "d"))
    x = bb.preprocess(torch.randint(0, 256, (3, 1, 28, 28), dtype=torch.uint8))
    with torch.no_grad():
        assert torch.equal(bb.model.eval()(x), loaded.model.eval()(x))


def test_load_backbone_detects_tampered_weights(tmp_path):
    bb = build_backbone("vgg_mini", "none")
    save_backbone(bb, tmp_path, {})
    state = torch.load(tmp_path / "weights.pt", weights_only=True)
    state["features.0.bias"] += 1
    torch.save(state, tmp_path / "weights.pt")
    with pytest.raises(UserError, match="sha256"):
        load_backbone(tmp_path)
    with pytest.raises(UserError, match="pretrain@nowhere"):
        load_backbone(tmp_path / "nowhere")


def test_card_only_random_init_rebuilds_same_weights(tmp_path):
    bb = build_backbone("vgg_mini", "none", seed=11)
    save_backbone(bb, tmp_path, {"seed": 11}, include_weights=False)
    assert not (tmp_path / "weights.pt").exists()
    loaded = load_backbone(tmp_path)
    assert torch.equal(loaded.model.features[0].weight, bb.model.features[0].weight)


def test_cli_layers_vgg16(capsys):
    assert cli.main(["layers", "vgg16"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split()[0] for ln in lines] == ["pool1", "pool2", "pool3", "pool4", "pool5", "fc6", "fc7"]
    assert lines[4].split()[1:] == ["features.30", "512x7x7"]
    assert lines[6].split()[1:] == ["classifier.4", "4096"]


def test_cli_layers_backbone_name_and_unknown(tmp_path, capsys):
    params = tmp_path / "params.yaml"
    params.write_text("backbones:\n  mine:\n    arch: resnet50\n    weights: none\n")
    assert cli.main(["layers", "mine", "--params", str(params)]) == 0
    assert capsys.readouterr().out.splitlines()[-1].split() == ["avgpool", "flatten", "2048"]
    with pytest.raises(SystemExit) as exc:
        cli.main(["layers", "nope", "--params", str(params)])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "'nope'" in err and "mine" in err and "vgg16" in err
