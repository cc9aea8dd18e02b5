"""The params sections of the inside-the-network stages: ``inspect``, ``predict``, ``featuremaps``, ``fcn``.

Torch-free: the whole-file params check every stage runs imports them.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

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


@dataclasses.dataclass(frozen=True)
class PredictParams:
    """The ``predict`` section of params.yaml."""

    backbone: str
    dataset: str | None = "fashion-mnist"
    n_images: int = 16
    n_wrong: int = 6
    candidates: int = 1000
    photos: str | None = "skimage"
    on_bad_file: Literal["skip", "error"] = "skip"
    image_size: int = 224
    top_k: int = 5

    def __post_init__(self) -> None:
        require(self.n_images >= 1, f"n_images must be >= 1, got {self.n_images}")
        require(0 <= self.n_wrong <= self.n_images, f"n_wrong must be in [0, n_images], got {self.n_wrong}")
        require(self.candidates >= self.n_images, f"candidates must be >= n_images, got {self.candidates}")
        require(self.image_size >= 8, f"image_size must be >= 8, got {self.image_size}")
        require(self.top_k >= 1, f"top_k must be >= 1, got {self.top_k}")
        require(self.dataset is not None or self.photos is not None, "set dataset or photos (both are null)")


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
