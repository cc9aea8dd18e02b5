"""Named cut points: the study's layer names mapped to torchvision FX graph node names.

Each table is in network order (the order ``transferlab layers`` prints). Node names
were chosen with ``torchvision.models.feature_extraction.get_graph_node_names`` and
are checked against it by the tests. Post-ReLU nodes are used for the FC layers
(fc6/fc7 = the activations a linear classifier on "fc7 features" sees); for ResNet a
``layerK`` name is the last op of that stage (the block's final ReLU); ``avgpool``
is the flattened global average pool. SqueezeNet's ``pool`` is the net's own final
global average pool (after conv10 + ReLU, 1000-d); for 512-d pooled fire9 features
cut at ``fire9`` with ``extract.pool: avg``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn
from torchvision.models.feature_extraction import create_feature_extractor

from transferlab.errors import UserError, unknown_name
from transferlab.models import vgg_mini
from transferlab.models.backbone import Backbone

VGG16 = {
    "pool1": "features.4",
    "pool2": "features.9",
    "pool3": "features.16",
    "pool4": "features.23",
    "pool5": "features.30",
    "fc6": "classifier.1",  # after ReLU
    "fc7": "classifier.4",  # after ReLU
}
ALEXNET = {
    "pool1": "features.2",
    "pool2": "features.5",
    "pool5": "features.12",
    "fc6": "classifier.2",  # after ReLU
    "fc7": "classifier.5",  # after ReLU
}
RESNET18 = {
    "layer1": "layer1.1.relu_1",
    "layer2": "layer2.1.relu_1",
    "layer3": "layer3.1.relu_1",
    "layer4": "layer4.1.relu_1",
    "avgpool": "flatten",
}
RESNET50 = {
    "layer1": "layer1.2.relu_2",
    "layer2": "layer2.3.relu_2",
    "layer3": "layer3.5.relu_2",
    "layer4": "layer4.2.relu_2",
    "avgpool": "flatten",
}
# SqueezeNet 1.1 features: conv1, relu, pool, fire2, fire3, pool, fire4, fire5, pool, fire6..fire9
SQUEEZENET1_1 = {
    "fire2": "features.3.cat",
    "fire3": "features.4.cat",
    "fire4": "features.6.cat",
    "fire5": "features.7.cat",
    "fire6": "features.9.cat",
    "fire7": "features.10.cat",
    "fire8": "features.11.cat",
    "fire9": "features.12.cat",
    "pool": "flatten",  # final global average pool (after conv10 + ReLU)
}

CUT_POINTS: Mapping[str, Mapping[str, str]] = {
    "vgg16": VGG16,
    "alexnet": ALEXNET,
    "resnet18": RESNET18,
    "resnet50": RESNET50,
    "squeezenet1_1": SQUEEZENET1_1,
    "vgg_mini": vgg_mini.cut_points(),
}


def resolve_layers(backbone: Backbone, layers: Sequence[str]) -> list[str]:
    """Check requested cut-point names against the backbone; return them de-duplicated, in order.

    An unknown name is a :class:`UserError` listing the valid cut points.
    """
    if isinstance(layers, str):
        layers = [layers]
    if not layers:
        valid = ", ".join(backbone.cut_points)
        raise UserError(f"no layers requested for backbone {backbone.name!r}; pick from: {valid}")
    out: list[str] = []
    for layer in layers:
        if layer not in backbone.cut_points:
            raise unknown_name(f"cut point for {backbone.name!r} ({backbone.arch})", layer, backbone.cut_points)
        if layer not in out:
            out.append(layer)
    return out


def cut_point_shapes(model: nn.Module, cut_points: Mapping[str, str], input_size: int) -> dict[str, tuple[int, ...]]:
    """Per-image output shape of every cut point at ``input_size`` (one traced forward pass).

    Works on a model on the ``meta`` device too (no memory, no compute), which is how
    ``transferlab layers`` answers instantly even for VGG16.
    """
    device = next(model.parameters()).device
    was_training = model.training
    try:
        extractor = create_feature_extractor(model, return_nodes={node: name for name, node in cut_points.items()})
        extractor.eval()
        with torch.no_grad():
            out = extractor(torch.zeros(1, 3, input_size, input_size, device=device))
    finally:
        model.train(was_training)
    return {name: tuple(out[name].shape[1:]) for name in cut_points}
