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
    # Per-backbone transfer settings (null = the shared section's), so backbones of different
    # families and input sizes sit in one study: the side extract feeds the network (the
    # images are resized to it, no crop), and the spatial pooling of its conv maps.
    extract_size: int | None = None  # null = the arch's own input size
    pool: str | None = None  # none | avg | max; null = extract.pool
    pool_size: int | None = None  # null = extract.pool_size
    finetune_modes: tuple[str, ...] | None = None  # modes finetune runs for it (head | full); null = all of finetune.modes


    def __post_init__(self) -> None:
        require(self.extract_size is None or self.extract_size >= 16, f"extract_size must be >= 16 or null, got {self.extract_size}")
        require(self.pool in (None, "none", "avg", "max"), f"pool must be none, avg, max or null, got {self.pool!r}")
        require(
            self.finetune_modes is None or set(self.finetune_modes) <= {"head", "full"},
            f"finetune_modes must list head and/or full, or be null, got {self.finetune_modes!r}",
        )
        require(self.pool_size is None or self.pool_size >= 1, f"pool_size must be >= 1 or null, got {self.pool_size}")
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
