"""The ``explain`` sub-sections' params (torch-free: every stage's params check imports them)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from transferlab.config import from_mapping, require


@dataclasses.dataclass(frozen=True)
class AdversarialParams:
    """The ``explain.adversarial`` section."""

    num_images: int = 8  # test images attacked (stratified, seeded; target-class images skipped)
    target_class: int | str = 0  # class index or name the attack pushes every image to
    step_size: float = 0.1  # L2 length of each step in [0, 1] pixel units
    max_iterations: int = 100  # give up on an image after this many steps

    def __post_init__(self) -> None:
        require(self.num_images >= 1, f"num_images must be >= 1, got {self.num_images}")
        require(self.step_size > 0, f"step_size must be > 0, got {self.step_size}")
        require(self.max_iterations >= 1, f"max_iterations must be >= 1, got {self.max_iterations}")


@dataclasses.dataclass(frozen=True)
class FGSMParams:
    """The ``explain.fgsm`` section."""

    # L-inf budgets in [0, 1] pixels
    epsilons: tuple[float, ...] = (0.0, 1 / 255, 2 / 255, 4 / 255, 8 / 255, 16 / 255)
    num_images: int = 1000  # test images scored (stratified, seeded; 0 = whole test split)
    batch_size: int = 250  # images per forward/backward pass

    def __post_init__(self) -> None:
        require(len(self.epsilons) >= 1, "epsilons must list at least one value")
        require(
            all(0 <= e <= 1 for e in self.epsilons),
            f"epsilons must be in [0, 1], got {list(self.epsilons)}",
        )
        require(self.num_images >= 0, f"num_images must be >= 0, got {self.num_images}")
        require(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")


@dataclasses.dataclass(frozen=True)
class ClassVisParams:
    """The ``explain.classvis`` section."""

    classes: tuple[int | str, ...] = ()  # class indices or names to visualise; empty = every class
    iterations: int = 100  # gradient-ascent steps
    lr: float = 0.5  # L2 length of each step in [0, 1] pixels (gradient normalised per image)
    l2_reg: float = 0.001  # weight of ||normalised input||^2 subtracted from the class score
    jitter: int = 2  # random roll of up to this many pixels in x and y before each step (0 = off)
    blur_every: int = 10  # blur the image every this many steps (0 = never)
    blur_sigma: float = 0.5  # standard deviation of that blur, in pixels
    init_std: float = 0.1  # start image: model's mean pixel + this much Gaussian noise

    def __post_init__(self) -> None:
        require(self.iterations >= 1, f"iterations must be >= 1, got {self.iterations}")
        require(self.lr > 0, f"lr must be > 0, got {self.lr}")
        require(self.l2_reg >= 0, f"l2_reg must be >= 0, got {self.l2_reg}")
        require(self.jitter >= 0, f"jitter must be >= 0, got {self.jitter}")
        require(self.blur_every >= 0, f"blur_every must be >= 0, got {self.blur_every}")
        require(self.blur_sigma >= 0, f"blur_sigma must be >= 0, got {self.blur_sigma}")
        require(self.init_std >= 0, f"init_std must be >= 0, got {self.init_std}")


@dataclasses.dataclass(frozen=True)
class RobustnessParams:
    """The ``explain.robustness`` section."""

    # Gaussian noise std in [0, 1] pixels; Gaussian blur std in input pixels
    noise_sigmas: tuple[float, ...] = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5)
    blur_radii: tuple[float, ...] = (0.0, 0.5, 1.0, 1.5, 2.0)
    num_images: int = 1000  # test images scored (stratified, seeded; 0 = whole test split)
    gallery_size: int = 16  # most confidently wrong clean images shown
    batch_size: int = 500  # images per forward pass

    def __post_init__(self) -> None:
        require(len(self.noise_sigmas) >= 1, "noise_sigmas must list at least one value")
        require(
            all(s >= 0 for s in self.noise_sigmas),
            f"noise_sigmas must be >= 0, got {list(self.noise_sigmas)}",
        )
        require(len(self.blur_radii) >= 1, "blur_radii must list at least one value")
        require(
            all(r >= 0 for r in self.blur_radii),
            f"blur_radii must be >= 0, got {list(self.blur_radii)}",
        )
        require(self.num_images >= 0, f"num_images must be >= 0, got {self.num_images}")
        require(self.gallery_size >= 0, f"gallery_size must be >= 0, got {self.gallery_size}")
        require(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")


@dataclasses.dataclass(frozen=True)
class SaliencyParams:
    """The ``explain.saliency`` section."""

    num_images: int = 8  # test images (stratified, seeded) to explain
    target: str = "label"  # label = the true class's score | predicted = the predicted class's
    object_threshold: float = 0.05  # pixel value in [0, 1] above which a pixel counts as object

    def __post_init__(self) -> None:
        require(self.num_images >= 1, f"num_images must be >= 1, got {self.num_images}")
        require(
            self.target in ("label", "predicted"),
            f"target must be label or predicted, got {self.target!r}",
        )
        require(
            0 <= self.object_threshold < 1,
            f"object_threshold must be in [0, 1), got {self.object_threshold}",
        )


# explain.<method> sub-section -> its dataclass (the stages and the per-run overrides share it)
METHOD_PARAMS: dict[str, type] = {
    "saliency": SaliencyParams,
    "adversarial": AdversarialParams,
    "fgsm": FGSMParams,
    "classvis": ClassVisParams,
    "robustness": RobustnessParams,
}


@dataclasses.dataclass(frozen=True)
class ExplainRun:
    """One entry of ``explain.runs`` (the explain stages' fan-out): a backbone, the prepared dataset
    whose test split supplies the images, and per-method overrides of the ``explain.<method>``
    sub-sections (an ImageNet net needs an ImageNet target class, a few of its 1000 classes, ...)."""

    backbone: str
    dataset: str
    saliency: dict[str, Any] = dataclasses.field(default_factory=dict)
    adversarial: dict[str, Any] = dataclasses.field(default_factory=dict)
    fgsm: dict[str, Any] = dataclasses.field(default_factory=dict)
    classvis: dict[str, Any] = dataclasses.field(default_factory=dict)
    robustness: dict[str, Any] = dataclasses.field(default_factory=dict)


def run_params(method: str, defaults: Mapping[str, Any], run: ExplainRun, name: str) -> Any:
    """``explain.<method>`` with run ``name``'s overrides on top, as the method's dataclass.

    A bad override is one line naming ``explain.runs.<name>.<method>.<key>``.
    """
    merged = {**dict(defaults), **dict(getattr(run, method))}
    return from_mapping(METHOD_PARAMS[method], merged, f"explain.runs.{name}.{method}")
