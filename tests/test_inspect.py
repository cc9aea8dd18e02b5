"""inspect: totals equal torchvision's published figures; receptive fields; conv arithmetic; errors."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from stages import inspect as inspect_stage
from transferlab.config import from_mapping
from transferlab.errors import UserError
from transferlab.inside.convarith import (
    ReceptiveField,
    conv_output_size,
    conv_weights,
    fc_equivalent_weights,
)
from transferlab.inside.inspect import inspect_arch, inspect_model
from transferlab.inside.params import InspectParams

torch.set_num_threads(1)

# torchvision's published figures (parameters, GMACs at 224 px)
PUBLISHED = {
    "resnet50": (25_557_032, 4.09),
    "resnet18": (11_689_512, 1.81),
    "squeezenet1_1": (1_235_496, 0.349),
}


@pytest.fixture(scope="module")
def vgg16():
    return inspect_arch("vgg16")


def _row(table, name):
    (row,) = [r for r in table if r["name"] == name]
    return row


def test_vgg16_totals(vgg16):
    metrics, table = vgg16
    assert metrics["params"] == 138_357_544
    assert metrics["params_fc"] == 123_642_856
    assert sum(_row(table, n)["params"] for n in ("fc6", "fc7", "fc8")) == 123_642_856
    assert abs(metrics["macs"] / 1e9 - 15.47) / 15.47 < 0.01
    assert sum(r["params"] for r in table) == metrics["params"]  # per-layer rows add up


def test_vgg16_receptive_fields_and_shapes(vgg16):
    _, table = vgg16
    assert _row(table, "conv1_1")["rf"] == 3
    assert _row(table, "conv1_2")["rf"] == 5
    assert _row(table, "pool1")["rf"] == 6
    assert _row(table, "pool1")["jump"] == 2
    assert _row(table, "pool5")["rf"] == 212 and _row(table, "pool5")["jump"] == 32
    assert _row(table, "pool5")["output_shape"] == "512x7x7"
    assert _row(table, "fc6")["rf"] is None  # fully connected: the whole image
    # conv1_1 on 3x224x224 -> 64x224x224: the FC layer doing the same would need this many weights
    assert _row(table, "conv1_1")["fc_equivalent_params"] == (3 * 224 * 224) * (64 * 224 * 224) + 64 * 224 * 224


@pytest.mark.parametrize("arch", sorted(PUBLISHED))
def test_published_totals(arch):
    params, gmacs = PUBLISHED[arch]
    metrics, table = inspect_arch(arch)
    assert metrics["params"] == params
    assert abs(metrics["macs"] / 1e9 - gmacs) / gmacs < 0.01
    assert metrics["published_params"] == params  # cross-check with the weights enum's meta
    assert sum(r["params"] for r in table) == params


def test_resnet_receptive_field_through_residuals():
    # the residual `+=` is not a module: the field must still flow through it (ResNet-50: 427 px)
    metrics, table = inspect_arch("resnet50")
    assert [r["rf"] for r in table if r["layer"] == "layer4.2.relu"][-1] == 427
    assert metrics["receptive_field"] == 427


def test_branching_concat_keeps_the_larger_field():
    class Branches(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(3, 2, 1)
            self.b = nn.Conv2d(3, 2, 5, padding=2)
            self.c = nn.Conv2d(4, 1, 3, padding=1)

        def forward(self, x):
            return self.c(torch.cat([self.a(x), self.b(x)], 1))

    result = inspect_model(Branches(), 16)
    rf = {r.layer: r.rf for r in result.rows}
    assert rf == {"a": 1, "b": 5, "c": 7}
    assert result.macs == 16 * 16 * (2 * 3 + 2 * 3 * 25 + 1 * 4 * 9)


@pytest.mark.parametrize(
    ("n", "k", "s", "p", "expected"),
    [(224, 3, 1, 1, 224), (224, 7, 2, 3, 112), (227, 11, 4, 0, 55), (224, 11, 4, 2, 55), (7, 3, 2, 1, 4), (5, 3, 2, 0, 2), (28, 2, 2, 0, 14)],
)
def test_conv_output_size(n, k, s, p, expected):
    assert conv_output_size(n, k, s, p) == expected


def test_conv_weights_and_fc_equivalent():
    assert conv_weights(3, 3, 64) == 3 * 3 * 3 * 64 + 64 == 1792
    assert conv_weights(3, 64, 64) == 36_928
    assert conv_weights(1, 512, 1000, bias=False) == 512_000
    assert fc_equivalent_weights((1, 5, 5), (2, 3, 3)) == 25 * 18 + 18
    with pytest.raises(ValueError):
        conv_output_size(2, 5)


def test_receptive_field_recurrence():
    f = ReceptiveField().step(3, 1, 1).step(3, 1, 1).step(2, 2)
    assert (f.size, f.jump) == (6, 2)
    assert f.start == 1.0  # first pool1 unit is centred between input pixels 0 and 1


def test_params_reject_unknown_arch():
    with pytest.raises(UserError, match="unknown arch"):
        from_mapping(InspectParams, {"archs": ["vgg16", "vgg99"]}, "inspect")


def test_stage_writes_table_and_metrics(tmp_path, capsys):
    params = tmp_path / "params.yaml"
    params.write_text("base: {seed: 0}\ninspect: {archs: [vgg_mini], input_size: null}\n")
    out = dict(metrics=tmp_path / "m" / "vgg_mini.json", table=tmp_path / "t" / "vgg_mini.csv")
    inspect_stage.main(["--arch", "vgg_mini", "--metrics", str(out["metrics"]), "--table", str(out["table"]), "--params", str(params)])
    metrics = json.loads(out["metrics"].read_text())
    assert metrics["params"] == sum(p.numel() for p in __import__("transferlab.models.vgg_mini", fromlist=["VGGMini"]).VGGMini().parameters())
    assert "conv1_1" in out["table"].read_text()
    with pytest.raises(SystemExit) as exc:
        inspect_stage.main(["--arch", "nope", "--metrics", str(tmp_path / "x.json"), "--table", str(tmp_path / "x.csv"), "--params", str(params)])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "nope" in err and "vgg16" in err
    assert not (tmp_path / "x.json").exists()


def test_too_small_input_is_a_user_error():
    with pytest.raises(UserError, match="input_size"):
        inspect_arch("vgg_mini", 4)
