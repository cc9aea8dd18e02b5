"""Torch-free facts about the registry's architectures: their names and cut-point tables.

The params check (which every stage runs) validates arch and layer names against these
tables without importing torch; :mod:`transferlab.models.registry` builds its ``ArchSpec``s
from the same tables, so there is one list of names.

Named cut points: the study's layer names mapped to torchvision FX graph node names.

Each table is in network order (the order ``transferlab layers`` prints). Node names
were chosen with ``torchvision.models.feature_extraction.get_graph_node_names`` and
are checked against it by the tests. Post-ReLU nodes are used for the FC layers
(fc6/fc7 = the activations a linear classifier on "fc7 features" sees); for ResNet a
``layerK`` name is the last op of that stage (the block's final ReLU); ``avgpool``
is the flattened global average pool. SqueezeNet's ``pool`` is the net's own final
global average pool (after conv10 + ReLU, 1000-d); for 512-d pooled fire9 features
cut at ``fire9`` with ``extract.pool: avg``.

EfficientNet-Lite0 (timm's ``tf_efficientnet_lite0``) is traced with timm's FX tracer
(torchvision's cannot trace its dynamic "same" padding; for torchvision models the two
graphs are identical). Its BatchNorm nodes are timm's ``BatchNormAct2d``, BN + ReLU6 in
one leaf: ``stem`` (``bn1``) and ``conv_head`` (``bn2``) are therefore after the
activation. ``blockK`` is the end of stage K: the residual ``add`` of its last block where
it has one, else the linear projection's BN (blocks 1 and 7 are single blocks without a
skip). ``pool`` is the flattened global average pool (1280-d) the classifier reads.
"""

from __future__ import annotations

from collections.abc import Mapping

VGG_MINI_BLOCKS: tuple[tuple[int, ...], ...] = ((16,), (32,), (64, 64))  # vgg_mini's conv widths per block


def vgg_mini_cut_points() -> dict[str, str]:
    """The study's layer names for vgg_mini, as FX graph node names."""
    points = {}
    idx = 0
    for block, widths in enumerate(VGG_MINI_BLOCKS, start=1):
        idx += 3 * len(widths)  # (conv, bn, relu) per conv
        points[f"pool{block}"] = f"features.{idx}"
        idx += 1
    points["fc6"] = "classifier.1"
    points["fc7"] = "classifier.4"
    return points


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

EFFICIENTNET_LITE0 = {
    "stem": "bn1",  # conv 3x3 s2 + BN + ReLU6: 32 x 112 x 112 at 224 px
    "block1": "blocks.0.0.bn2",  # 16 x 112 x 112
    "block2": "blocks.1.1.add",  # 24 x 56 x 56
    "block3": "blocks.2.1.add",  # 40 x 28 x 28
    "block4": "blocks.3.2.add",  # 80 x 14 x 14
    "block5": "blocks.4.2.add",  # 112 x 14 x 14
    "block6": "blocks.5.3.add",  # 192 x 7 x 7
    "block7": "blocks.6.0.bn3",  # 320 x 7 x 7
    "conv_head": "bn2",  # 1x1 conv to 1280 + BN + ReLU6: 1280 x 7 x 7
    "pool": "global_pool.flatten",  # 1280
}

CUT_POINTS: Mapping[str, Mapping[str, str]] = {
    "vgg16": VGG16,
    "alexnet": ALEXNET,
    "resnet18": RESNET18,
    "resnet50": RESNET50,
    "squeezenet1_1": SQUEEZENET1_1,
    "vgg_mini": vgg_mini_cut_points(),
    "efficientnet_lite0": EFFICIENTNET_LITE0,
}
ARCH_NAMES: tuple[str, ...] = tuple(CUT_POINTS)  # the backbone registry's architectures
