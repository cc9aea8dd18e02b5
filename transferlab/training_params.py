"""Optimiser and schedule knobs shared by pretrain, finetune and scratch (torch-free: the params check imports it)."""

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
