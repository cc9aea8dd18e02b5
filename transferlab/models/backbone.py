"""A built backbone: the network plus everything stages need to use it correctly."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import torch
from torch import nn
from torchvision.transforms.v2 import functional as TF


@dataclasses.dataclass
class Backbone:
    """A network with its own preprocessing, named cut points and class names.

    ``preprocess`` turns a uint8 (N, C, H, W) batch (C = 1 or 3) into the normalised
    float input the network was trained on: grayscale replicated to 3 channels,
    shorter side resized to ``resize_size``, centre-cropped to ``input_size``,
    normalised with ``mean``/``std`` (torchvision's ImageNet preset for ImageNet
    weights; the TF-Lite scaling and a bicubic resize for EfficientNet-Lite). ``cut_points`` maps the study's layer names (pool1, fc7, avgpool, ...)
    to torchvision FX graph node names.
    """

    name: str
    arch: str
    model: nn.Module
    input_size: int
    resize_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    cut_points: Mapping[str, str]
    head: str  # dotted path of the final classification layer (replaced when fine-tuning)
    categories: tuple[str, ...] | None = None
    weights: str = "none"
    interpolation: str = "bilinear"  # resize filter: bilinear | bicubic

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 (N, C, H, W) -> normalised float (N, 3, input_size, input_size)."""
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = TF.to_dtype(x, torch.float32, scale=True)
        if min(x.shape[-2:]) != self.resize_size:
            mode = TF.InterpolationMode(self.interpolation)
            x = TF.resize(x, [self.resize_size], interpolation=mode, antialias=True)
        if tuple(x.shape[-2:]) != (self.input_size, self.input_size):
            x = TF.center_crop(x, [self.input_size, self.input_size])
        return TF.normalize(x, list(self.mean), list(self.std))

    def at_size(self, input_size: int | None) -> Backbone:
        """This backbone fed ``input_size`` px images (shorter side resized to it, square crop); None = as is.

        The transfer stages use it to feed a 224 px ImageNet net smaller inputs from small images.
        """
        if input_size is None:
            return self
        return dataclasses.replace(self, input_size=input_size, resize_size=input_size)

    def head_module(self) -> nn.Module:
        return self.model.get_submodule(self.head)

    def replace_head(self, num_classes: int) -> nn.Module:
        """Swap the final layer for a fresh one with ``num_classes`` outputs; returns it."""
        old = self.head_module()
        if isinstance(old, nn.Linear):
            new: nn.Module = nn.Linear(old.in_features, num_classes)
        elif isinstance(old, nn.Conv2d):  # SqueezeNet's 1x1 conv classifier
            new = nn.Conv2d(old.in_channels, num_classes, kernel_size=old.kernel_size)
        else:
            raise TypeError(f"cannot replace head of type {type(old).__name__}")
        parent_name, _, attr = self.head.rpartition(".")
        parent = self.model.get_submodule(parent_name) if parent_name else self.model
        setattr(parent, attr, new)
        self.categories = None
        return new
