"""The pixel-space view of a backbone that every explain/attack stage shares.

Attacks and visualisations take gradients with respect to *pixels in [0, 1]* at the
model's input resolution, so an ``epsilon`` of 8/255 means eight grey levels whatever
normalisation the network uses. :func:`to_pixels` reuses ``Backbone.preprocess``
(resize, crop, normalise) and undoes only the normalisation; :class:`PixelModel` puts
that normalisation back inside a differentiable module. Together
``PixelModel(to_pixels(x)) == backbone.model(backbone.preprocess(x))``.

Grayscale datasets stay one-channel in pixel space (the module replicates them to the
3 channels the network expects), so perturbations stay grey too.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torchvision.transforms.v2 import functional as TF

from transferlab.config import load_entry
from transferlab.data.prepared import PreparedDataset, load_prepared, to_nchw_uint8
from transferlab.data.sampling import stratified_subset
from transferlab.errors import UserError
from transferlab.explain.params import ExplainRun, run_params
from transferlab.models.backbone import Backbone
from transferlab.models.registry import head_classes, load_backbone

# Sampling streams (transferlab.data.sampling) keep each stage's seeded draw independent;
# fgsm and robustness share one so their clean accuracies are on the same images.
SALIENCY_STREAM, ATTACK_STREAM, SCORED_STREAM = 10, 11, 12


class PixelModel(nn.Module):
    """[0, 1] pixels (N, 1|3, S, S) -> logits: replicate grey, normalise, run the network."""

    def __init__(self, model: nn.Module, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.model = model.eval()
        self.register_buffer(
            "mean", torch.tensor(list(mean), dtype=torch.float32).view(1, -1, 1, 1)
        )
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).view(1, -1, 1, 1))

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """The network's input for pixels ``x`` (differentiable)."""
        if x.shape[1] == 1:
            x = x.expand(-1, self.mean.shape[1], -1, -1)
        return (x - self.mean) / self.std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(self.normalise(x))


def pixel_model(backbone: Backbone) -> PixelModel:
    """The backbone's network behind its own normalisation (mean/std), frozen, in eval mode."""
    module = PixelModel(backbone.model, backbone.mean, backbone.std)
    for p in module.parameters():
        p.requires_grad_(False)
    return module.eval()


@torch.no_grad()
def to_pixels(backbone: Backbone, images: np.ndarray, batch_size: int = 512) -> torch.Tensor:
    """uint8 (N, H, W, C) -> float pixels in [0, 1], (N, C, S, S) at the model's input size.

    Runs ``backbone.preprocess`` (so resize and crop are exactly the model's own) and
    undoes its normalisation; antialiased resizing can overshoot by a hair, hence the clamp.
    """
    channels = images.shape[3]
    mean = torch.tensor(backbone.mean, dtype=torch.float32).view(1, -1, 1, 1)[:, :channels]
    std = torch.tensor(backbone.std, dtype=torch.float32).view(1, -1, 1, 1)[:, :channels]
    out = []
    for start in range(0, len(images), batch_size):
        x = to_nchw_uint8(images[start : start + batch_size], channels)
        z = backbone.preprocess(x)[:, :channels]
        out.append((z * std + mean).clamp(0.0, 1.0))
    if not out:
        return torch.empty(0, channels, backbone.input_size, backbone.input_size)
    return torch.cat(out)


def to_uint8_hwc(x: torch.Tensor) -> np.ndarray:
    """[0, 1] pixels (N, C, H, W) -> uint8 (N, H, W, C) for figures."""
    return (x.detach().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Logits of ``model`` for pixel batch ``x``, in chunks, as a CPU float tensor."""
    device = next(iter(model.buffers()), torch.empty(0)).device
    out = [
        model(x[i : i + batch_size].to(device)).float().cpu() for i in range(0, len(x), batch_size)
    ]
    return torch.cat(out) if out else torch.empty(0)


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of rows whose argmax is the label (0 for an empty batch)."""
    if len(labels) == 0:
        return 0.0
    return int((logits.argmax(1) == labels).sum()) / len(labels)


def grid_key(prefix: str, value: float) -> str:
    """Metric key for one grid point, e.g. ``acc_eps_0.0313725`` (stable, no scientific noise)."""
    return f"{prefix}_{value:g}"


@dataclasses.dataclass
class ExplainInputs:
    """A backbone in pixel space plus a seeded selection of test images and their labels."""

    backbone: Backbone
    model: PixelModel
    dataset: PreparedDataset
    classes: tuple[str, ...]  # the model's class names (its head's outputs)
    labels_match: bool  # the dataset's labels index the model's classes

    @property
    def label_source(self) -> str:
        """What the stages score against: the dataset's ``label``, or the model's ``clean_prediction``.

        Photos that are not of the model's classes (ImageNet photos named by file, say) are
        labelled by the model's own top-1 on the clean image: FGSM accuracy is then the rate at
        which that top-1 survives, robustness the top-1 agreement under corruption.
        """
        return "label" if self.labels_match else "clean_prediction"

    def class_index(self, target: int | str) -> int:
        """A class given by index or name -> its index; unknown -> one-line UserError."""
        names = self.classes
        if isinstance(target, str) and not isinstance(target, bool):
            if target in names:
                return names.index(target)
            if target.isdigit():
                target = int(target)
            else:
                raise UserError(
                    f"unknown target class {target!r} for backbone {self.backbone.name!r}; "
                    f"use an index 0..{len(names) - 1} or one of: {', '.join(names)}"
                )
        if not 0 <= int(target) < len(names):
            raise UserError(
                f"target class {target} out of range for backbone {self.backbone.name!r} "
                f"({len(names)} classes); use an index 0..{len(names) - 1} or a class name"
            )
        return int(target)

    def test_selection(
        self, n: int, seed: int, stream: int
    ) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
        """Pixels, labels and test-split indices of ``n`` test images: a stratified seeded draw
        (``stream`` keeps each stage's draw independent); ``n = 0`` takes the whole split.
        The labels are ``label_source``'s: the dataset's, or the clean top-1 prediction."""
        images, labels = self.dataset.split("test")
        if len(images) == 0:
            raise UserError(
                f"dataset {self.dataset.name!r} has no test images; prepare it with a test split"
            )
        idx = np.arange(len(labels)) if n == 0 else stratified_subset(labels, n, seed, stream)
        pixels = to_pixels(self.backbone, np.asarray(images[idx]))
        if not self.labels_match:
            return pixels, predict(self.model, pixels).argmax(1), idx
        return pixels, torch.from_numpy(labels[idx].astype(np.int64)), idx

    def title(self, label: int, pred: int) -> str:
        """Figure title: 'true / predicted' when labels are the model's classes, else 'predicted'."""
        names = self.classes
        if self.labels_match:
            return f"{names[label]} / {names[pred]}"
        return names[pred]


def method_params(file: Mapping[str, Any], run: str, method: str) -> Any:
    """``explain.<method>`` of the params ``file`` with the overrides of run ``run`` (an ``explain.runs`` key)."""
    explain = file.get("explain") or {}
    entry = load_entry(ExplainRun, "explain.runs", run, "explain run", file)
    return run_params(method, explain.get(method) or {}, entry, run)


def load_inputs(backbone_dir: Path, data_dir: Path, device: torch.device) -> ExplainInputs:
    """Load the backbone (as a pixel-space model on ``device``) and the prepared dataset."""
    backbone = load_backbone(Path(backbone_dir))
    ds = load_prepared(Path(data_dir))
    n_out = head_classes(backbone)
    if backbone.categories and len(backbone.categories) == n_out:
        classes = tuple(backbone.categories)
        labels_match = classes == tuple(ds.classes)
    else:
        classes = (
            tuple(ds.classes) if len(ds.classes) == n_out else tuple(str(i) for i in range(n_out))
        )
        labels_match = len(ds.classes) == n_out
    return ExplainInputs(backbone, pixel_model(backbone).to(device), ds, classes, labels_match)


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of a pixel batch with standard deviation ``sigma`` pixels (0 = unchanged).

    Kernel of 2*ceil(3 sigma)+1 taps (capped to fit the image), torchvision's implementation.
    """
    if sigma <= 0:
        return x
    side = min(x.shape[-2:])
    k = min(2 * math.ceil(3 * sigma) + 1, 2 * side - 1)
    k = k if k % 2 == 1 else k - 1
    return TF.gaussian_blur(x, kernel_size=[k, k], sigma=[float(sigma), float(sigma)])


SMALL_BATCH_ELEMENTS = 1_000_000  # below this many input values per step, one CPU thread is faster


@contextlib.contextmanager
def cpu_threads_for(x: torch.Tensor) -> Iterator[None]:
    """Run a many-step loop over a *small* CPU batch on one intra-op thread, then restore.

    The iterative methods (targeted attack, class visualisation) take hundreds of steps on a
    handful of images; at that size torch's thread pool costs more than it saves (measured:
    ~10x the CPU time for 100 class-visualisation steps on a busy 2-core machine). Large
    inputs (e.g. 224 px ImageNet batches) and non-CPU devices are left alone.
    """
    if x.device.type != "cpu" or x.numel() >= SMALL_BATCH_ELEMENTS:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
