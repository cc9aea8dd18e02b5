"""The ``featuremaps`` params section (torch-free: every stage's params check imports it)."""

from __future__ import annotations

import dataclasses

from transferlab.config import require


@dataclasses.dataclass(frozen=True)
class FeaturemapsParams:
    """The ``featuremaps`` section of params.yaml."""

    backbone: str
    dataset: str = "fashion-mnist"
    images: tuple[int, ...] = (0, 1)
    n_filters: int = 8
    deep_layer: str = "pool2"
    n_deep: int = 8

    def __post_init__(self) -> None:
        require(len(self.images) == 2, f"images must list exactly two test positions, got {list(self.images)}")
        require(all(i >= 0 for i in self.images), f"images must be >= 0, got {list(self.images)}")
        require(self.n_filters >= 1, f"n_filters must be >= 1, got {self.n_filters}")
        require(self.n_deep >= 1, f"n_deep must be >= 1, got {self.n_deep}")
