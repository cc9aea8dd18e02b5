"""The ``finetune`` params section (torch-free: every stage's params check imports it)."""

from __future__ import annotations

import dataclasses

from transferlab.config import require
from transferlab.training_params import OptimParams

MODES = ("head", "full")


@dataclasses.dataclass(frozen=True)
class FinetuneParams(OptimParams):
    """The ``finetune`` section: optimiser knobs (``OptimParams``), modes and augmentation."""

    modes: tuple[str, ...] = MODES
    crop_pad: int = 0
    hflip: bool = False
    threads: int | None = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        for mode in self.modes:
            require(mode in MODES, f"modes: unknown mode {mode!r}; valid modes: {', '.join(MODES)}")
        require(self.crop_pad >= 0, f"crop_pad must be >= 0, got {self.crop_pad}")
        require(self.threads is None or self.threads >= 1, f"threads must be >= 1 or null, got {self.threads}")
