"""The ``inspect`` params section (torch-free: every stage's params check imports it)."""

from __future__ import annotations

import dataclasses

from transferlab.config import require
from transferlab.models.archs import ARCH_NAMES


@dataclasses.dataclass(frozen=True)
class InspectParams:
    """The ``inspect`` section of params.yaml."""

    archs: tuple[str, ...] = ()  # the dvc.yaml matrix; each must be a registry architecture
    input_size: int | None = None  # None: each architecture's own input size

    def __post_init__(self) -> None:
        unknown = [a for a in self.archs if a not in ARCH_NAMES]
        require(not unknown, f"unknown arch(s) {', '.join(unknown)}; valid archs: {', '.join(sorted(ARCH_NAMES))}")
        require(self.input_size is None or self.input_size >= 1, f"input_size must be null or >= 1, got {self.input_size}")
