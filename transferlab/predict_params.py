"""The ``predict`` params section (torch-free: every stage's params check imports it)."""

from __future__ import annotations

import dataclasses
from typing import Literal

from transferlab.config import require


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
