"""The ``scratch`` params section (torch-free: every stage's params check imports it)."""

from __future__ import annotations

import dataclasses
from typing import Literal

from transferlab.config import require
from transferlab.errors import unknown_name
from transferlab.training.params import OptimParams

Arch = Literal["linear", "mlp", "cnn", "cifar_cnn"]
Activation = Literal["relu", "sigmoid"]
ARCHS: tuple[str, ...] = ("linear", "mlp", "cnn", "cifar_cnn")


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """One entry of ``scratch.models_config``: architecture, its options and its training."""

    arch: Arch
    activation: Activation = "relu"
    hidden: int = 128  # mlp hidden units; cnn / cifar_cnn fully connected width
    train_size: int = 0  # 0 = the whole train split, else a seeded random subset of this size
    augment: Literal["none", "flip_crop"] = "none"
    optim: OptimParams = dataclasses.field(default_factory=OptimParams)

    def __post_init__(self) -> None:
        require(self.hidden >= 1, f"hidden must be >= 1, got {self.hidden}")
        require(self.train_size >= 0, f"train_size must be >= 0, got {self.train_size}")


@dataclasses.dataclass(frozen=True)
class ScratchParams:
    """The ``scratch`` params section."""

    datasets: tuple[str, ...]
    models: tuple[str, ...]
    models_config: dict[str, ModelSpec]
    thresholds: tuple[float, ...] = (0.8, 0.85)
    log_every: int = 50
    eval_size: int = 2000
    hard_examples: int = 16

    def __post_init__(self) -> None:
        for name in self.models:
            require(
                name in self.models_config,
                f"models lists {name!r} but models_config has no such entry; "
                f"add it or use one of {', '.join(sorted(self.models_config))}",
            )
        for t in self.thresholds:
            require(0 < t <= 1, f"thresholds must be in (0, 1], got {t}")
        require(self.log_every >= 1, f"log_every must be >= 1, got {self.log_every}")
        require(self.eval_size >= 0, f"eval_size must be >= 0, got {self.eval_size}")
        require(self.hard_examples >= 0, f"hard_examples must be >= 0, got {self.hard_examples}")

    def spec(self, model: str) -> ModelSpec:
        """The config of ``model``, or a one-line UserError listing the valid names."""
        if model not in self.models_config:
            raise unknown_name("scratch model", model, self.models_config)
        return self.models_config[model]
