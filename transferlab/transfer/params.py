"""The transfer wing's params sections: ``extract``, ``classify`` (the SVM grid, the softmax head and the
pixel baseline), ``finetune`` and ``tsne``.

Torch-free: the whole-file params check every stage runs imports them.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from transferlab.config import require
from transferlab.training.params import OptimParams

KERNELS = ("linear", "rbf", "sigmoid")
MODES = ("head", "full")  # finetune: train the new head only, or everything


def pca_label(n_components: float | None) -> str:
    """``pca=none`` / ``pca=0.95``: the key used in metrics and tables."""
    return "pca=none" if n_components is None else f"pca={n_components:g}"


def c_label(c: float) -> str:
    """``C=0.1`` / ``C=10``: the key used in metrics and tables."""
    return f"C={c:g}"


@dataclasses.dataclass(frozen=True)
class ExtractParams:
    """The ``extract`` section."""

    batch_size: int = 256
    pool: Literal["none", "avg", "max"] = "none"  # spatial pooling of conv maps before flattening
    pool_size: int = 1  # output side of that pooling (1 = global)

    def __post_init__(self) -> None:
        require(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        require(self.pool_size >= 1, f"pool_size must be >= 1, got {self.pool_size}")


@dataclasses.dataclass(frozen=True)
class ClassifyParams:
    """Grid of Pipeline(StandardScaler?, PCA?, SVM) per cut layer; C picked by CV on train only."""

    kernels: tuple[str, ...] = KERNELS
    C: tuple[float, ...] = (0.1, 1.0, 10.0)
    n_components: tuple[float | str | None, ...] = ("none", 0.95)
    scale: bool = True
    cv_folds: int = 3
    gamma: float | str = "scale"
    linear_impl: Literal["auto", "svc", "linear_svc"] = "auto"
    head_C: float = 1.0
    head_max_iter: int = 500
    pixels: bool = True
    threads: int | None = 1

    def __post_init__(self) -> None:
        require(len(self.kernels) > 0, "kernels: give at least one of " + ", ".join(KERNELS))
        for k in self.kernels:
            require(k in KERNELS, f"kernels: unknown kernel {k!r}; valid kernels: {', '.join(KERNELS)}")
        require(len(self.C) > 0, "C: give at least one value > 0")
        for c in self.C:
            require(c > 0, f"C: every value must be > 0, got {c:g}")
        require(len(set(self.C)) == len(self.C), f"C: duplicate values in {list(self.C)}")
        require(len(self.n_components) > 0, "n_components: give none and/or a variance fraction in (0, 1]")
        fractions: list[float | None] = []
        for v in self.n_components:
            if v is None or v == "none":
                fractions.append(None)
                continue
            require(
                isinstance(v, float) and 0 < v <= 1,
                f"n_components: PCA keeps a variance fraction in (0, 1] or none, got {v!r}",
            )
            fractions.append(float(v))
        require(len(set(fractions)) == len(fractions), f"n_components: duplicate values in {list(self.n_components)}")
        object.__setattr__(self, "n_components", tuple(fractions))
        require(self.cv_folds >= 2, f"cv_folds must be >= 2, got {self.cv_folds}")
        if isinstance(self.gamma, str):
            require(self.gamma in ("scale", "auto"), f"gamma must be scale, auto or a number > 0, got {self.gamma!r}")
        else:
            require(self.gamma > 0, f"gamma must be scale, auto or a number > 0, got {self.gamma}")
        require(self.head_C > 0, f"head_C must be > 0, got {self.head_C}")
        require(self.threads is None or self.threads >= 1, f"threads must be >= 1 or null, got {self.threads}")
        require(self.head_max_iter >= 1, f"head_max_iter must be >= 1, got {self.head_max_iter}")


@dataclasses.dataclass(frozen=True)
class FinetuneParams(OptimParams):
    """The ``finetune`` section: optimiser knobs (``OptimParams``), modes and augmentation."""

    modes: tuple[str, ...] = MODES
    head_epochs: int | None = None  # epochs of head mode (on features computed once); None = epochs
    head_standardise: bool = True  # head mode trains on standardised features (scaler folded into the head after)
    crop_pad: int = 0
    hflip: bool = False
    threads: int | None = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        for mode in self.modes:
            require(mode in MODES, f"modes: unknown mode {mode!r}; valid modes: {', '.join(MODES)}")
        require(self.crop_pad >= 0, f"crop_pad must be >= 0, got {self.crop_pad}")
        require(
            self.head_epochs is None or self.head_epochs >= 1,
            f"head_epochs must be >= 1 or null, got {self.head_epochs}",
        )
        require(self.threads is None or self.threads >= 1, f"threads must be >= 1 or null, got {self.threads}")


@dataclasses.dataclass(frozen=True)
class TsneParams:
    """The ``tsne`` section."""

    layer: str | None = None  # null = each backbone's deepest extracted layer (backbones.<name>.layers[-1])
    max_points: int = 1000
    perplexity: float = 30.0
    max_iter: int = 500
    knn_k: int = 5

    def __post_init__(self) -> None:
        require(self.max_points >= 10, f"max_points must be >= 10, got {self.max_points}")
        require(self.perplexity > 0, f"perplexity must be > 0, got {self.perplexity}")
        require(
            self.max_iter >= 300,
            f"max_iter must be >= 300 (the first 250 are sklearn's early exaggeration), got {self.max_iter}",
        )
        require(self.knn_k >= 1, f"knn_k must be >= 1, got {self.knn_k}")
