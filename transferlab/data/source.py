"""The interface every dataset source implements, and the options all sources share.

A source is a frozen options dataclass (validated by :func:`transferlab.config.from_mapping`,
so unknown keys and out-of-range values are one-line errors) plus a ``load`` function
that turns those options into a :class:`RawDataset`. The registry adds the common
``max_train``/``max_test`` limits and the meta every prepared dataset carries.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from transferlab.config import require


@dataclasses.dataclass(frozen=True, kw_only=True)
class CommonOptions:
    """Keys every ``datasets.<name>`` entry may set."""

    source: str
    max_train: int | None = None  # null = all; else a stratified, seeded subsample
    max_test: int | None = None

    def __post_init__(self) -> None:
        for key in ("max_train", "max_test"):
            value = getattr(self, key)
            require(value is None or value >= 1, f"{key} must be null or >= 1, got {value}")


def check_test_fraction(value: float) -> None:
    """Range check shared by the sources that split with ``test_fraction``."""
    require(0.0 < value < 1.0, f"test_fraction must be in (0, 1), got {value}")


def check_image_options(image_size: int | None, channels: int) -> None:
    """Range checks shared by the sources that decode image files."""
    require(
        image_size is None or image_size >= 1, f"image_size must be null or >= 1, got {image_size}"
    )
    require(channels in (1, 3), f"channels must be 1 (grayscale) or 3 (RGB), got {channels}")


@dataclasses.dataclass(frozen=True)
class Context:
    """What a source needs besides its options."""

    name: str  # the dataset name (key under `datasets:`)
    seed: int
    cache_dir: Path  # where downloads land (data/downloads by default)

    @property
    def where(self) -> str:
        """The params key of this entry, for error messages."""
        return f"datasets.{self.name}"


@dataclasses.dataclass
class RawDataset:
    """What a source returns: arrays, split, classes and provenance."""

    images: np.ndarray  # uint8 (N, H, W, C)
    labels: np.ndarray  # int64 (N,)
    is_test: np.ndarray  # bool (N,)
    classes: tuple[str, ...]
    provenance: dict[str, Any]
    skipped: list[dict[str, str]] = dataclasses.field(default_factory=list)
    skipped_classes: list[dict[str, str]] = dataclasses.field(default_factory=list)  # dropped, empty


@dataclasses.dataclass(frozen=True)
class Source:
    """A registry entry: options type, loader, one-line description."""

    options: type[CommonOptions]
    load: Callable[[Any, Context], RawDataset]
    description: str
