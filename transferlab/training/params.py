"""The training wing's params: optimiser knobs shared by pretrain, finetune and scratch, and ``resume``.

Torch-free: the whole-file params check every stage runs imports them.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from transferlab.config import require


@dataclasses.dataclass(frozen=True)
class OptimParams:
    """Optimiser and schedule knobs, named like torch.optim's arguments."""

    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 0.0
    epochs: int = 1
    batch_size: int = 64
    lr_schedule: Literal["constant", "cosine"] = "constant"

    def __post_init__(self) -> None:
        require(self.lr > 0, f"lr must be > 0, got {self.lr}")
        require(0 <= self.momentum < 1, f"momentum must be in [0, 1), got {self.momentum}")
        require(self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}")
        require(self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}")
        require(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")


@dataclasses.dataclass(frozen=True)
class ResumeParams:
    """The ``resume`` section of params.yaml (not a DVC-tracked param: it changes no result)."""

    enabled: bool = False  # continue a killed stage from its last checkpoint
    save: bool = True  # write checkpoints while training
    every_iterations: int = 100  # iteration-based loops (GANs): iterations between checkpoints
    dir: str = "data/checkpoints"

    def __post_init__(self) -> None:
        require(self.every_iterations >= 1, f"every_iterations must be >= 1, got {self.every_iterations}")
