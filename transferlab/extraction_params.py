"""The ``extract`` params section (torch-free: every stage's params check imports it)."""

from __future__ import annotations

import dataclasses
from typing import Literal

from transferlab.config import require


@dataclasses.dataclass(frozen=True)
class ExtractParams:
    """The ``extract`` section."""

    batch_size: int = 256
    pool: Literal["none", "avg", "max"] = "none"  # spatial pooling of conv maps before flattening
    pool_size: int = 1  # output side of that pooling (1 = global)

    def __post_init__(self) -> None:
        require(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        require(self.pool_size >= 1, f"pool_size must be >= 1, got {self.pool_size}")
