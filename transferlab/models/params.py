"""The ``backbones`` registry entries and the ``pretrain`` section (torch-free: every stage's params check imports them)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from transferlab.config import require
from transferlab.models.archs import ARCH_NAMES
from transferlab.training.params import OptimParams

WEIGHT_KINDS = ("pretrain", "none", "imagenet")


@dataclasses.dataclass(frozen=True)
class BackboneEntry:
    """One entry of the ``backbones`` registry in params.yaml."""

    arch: str
    weights: str = "none"  # pretrain | none | imagenet | path to a local .pt/.pth file
    layers: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        require(self.arch in ARCH_NAMES, f"unknown arch {self.arch!r}; valid archs: {', '.join(sorted(ARCH_NAMES))}")
        if self.weights not in WEIGHT_KINDS:
            require(
                Path(self.weights).suffix in (".pt", ".pth"),
                f"weights must be one of {', '.join(WEIGHT_KINDS)} or a .pt/.pth file, got {self.weights!r}",
            )


@dataclasses.dataclass(frozen=True)
class PretrainParams(OptimParams):
    """The ``pretrain`` section: the source dataset plus the optimiser knobs."""

    dataset: str = "fashion-mnist"
