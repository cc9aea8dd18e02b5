"""The ``resume`` params section (torch-free: every stage's params check imports it)."""

from __future__ import annotations

import dataclasses

from transferlab.config import require


@dataclasses.dataclass(frozen=True)
class ResumeParams:
    """The ``resume`` section of params.yaml (not a DVC-tracked param: it changes no result)."""

    enabled: bool = False  # continue a killed stage from its last checkpoint
    save: bool = True  # write checkpoints while training
    every_iterations: int = 100  # iteration-based loops (GANs): iterations between checkpoints
    dir: str = "data/checkpoints"

    def __post_init__(self) -> None:
        require(self.every_iterations >= 1, f"every_iterations must be >= 1, got {self.every_iterations}")
