"""The ``fcn`` params section (torch-free: every stage's params check imports it)."""

from __future__ import annotations

import dataclasses

from transferlab.config import require


@dataclasses.dataclass(frozen=True)
class FcnParams:
    """The ``fcn`` section of params.yaml."""

    backbone: str
    dataset: str = "fashion-mnist"
    grid: int = 3
    canvases: int = 8
    shown: int = 2

    def __post_init__(self) -> None:
        require(self.grid >= 2, f"grid must be >= 2 (a canvas larger than one input), got {self.grid}")
        require(self.canvases >= 1, f"canvases must be >= 1, got {self.canvases}")
        require(0 <= self.shown <= self.canvases, f"shown must be in [0, canvases], got {self.shown}")
