"""Cut points: resolving requested layer names against a backbone, and their output shapes.

The name -> graph-node tables live in :mod:`transferlab.models.archs` (torch-free).
Every FX graph of the study is traced here, with timm's tracer (:func:`create_extractor`,
:func:`graph_node_names`): it is torchvision's with timm's untraceable helpers (dynamic
"same" padding, BatchNormAct2d) kept as leaves, so it traces timm's EfficientNet and gives
torchvision's models exactly the graph (and node names) torchvision's own tracer gives.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from timm.models import create_feature_extractor as _timm_feature_extractor
from timm.models import get_graph_node_names as _timm_graph_node_names
from torch import nn

from transferlab.errors import UserError, unknown_name
from transferlab.models.archs import CUT_POINTS as CUT_POINTS
from transferlab.models.backbone import Backbone


def create_extractor(model: nn.Module, return_nodes: Mapping[str, str]) -> nn.Module:
    """``model`` as an FX graph returning ``{name: output}`` for ``return_nodes`` (node -> name).

    The graph comes back in ``model``'s mode, and ``model`` keeps its mode even when tracing fails
    (an unknown node raises after the tracer switched the model to train mode: an eval-mode model
    would then normalise with batch statistics and update its running statistics).
    """
    training = model.training
    try:
        return _timm_feature_extractor(model, return_nodes=dict(return_nodes)).train(training)
    finally:
        model.train(training)


def graph_node_names(model: nn.Module) -> tuple[list[str], list[str]]:
    """(train-mode, eval-mode) FX node names of ``model``, as :func:`create_extractor` names them."""
    return _timm_graph_node_names(model)


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
        extractor = create_extractor(model, {node: name for name, node in cut_points.items()})
        extractor.eval()
        with torch.no_grad():
            out = extractor(torch.zeros(1, 3, input_size, input_size, device=device))
    finally:
        model.train(was_training)
    return {name: tuple(out[name].shape[1:]) for name in cut_points}
