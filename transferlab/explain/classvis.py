"""Class-model visualisation (Simonyan et al. 2014; Yosinski et al. 2015 regularisers).

Start from noise and climb the *unnormalised* class score in [0, 1] pixel space:
``x <- clip(x + lr * g / ||g||_2)`` with ``g`` the gradient of
``score_c(x) - l2_reg * ||normalise(x)||^2``, the image randomly rolled by up to
``jitter`` pixels before each step (and rolled back after), and Gaussian-blurred every
``blur_every`` steps. All requested classes are optimised together as one batch (eval
mode: images do not interact). Reports the target probability at the start and the end.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import torch

from transferlab.errors import UserError
from transferlab.explain.common import (
    ExplainInputs,
    PixelModel,
    cpu_threads_for,
    gaussian_blur,
    to_uint8_hwc,
)
from transferlab.explain.params import ClassVisParams


def visualise_classes(
    model: PixelModel,
    targets: list[int],
    shape: tuple[int, int, int],
    params: ClassVisParams,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(images, target probability at start, at end) for one image per target class.

    ``shape`` is (channels, height, width) of the pixel input; noise and jitter come from
    ``generator`` (CPU), so the same seed gives the same images.
    """
    device = model.mean.device
    c, h, w = shape
    y = torch.tensor(targets, dtype=torch.long, device=device)
    rows = torch.arange(len(targets), device=device)
    mean = model.mean[:, :c].cpu()
    x = (mean + params.init_std * torch.randn(len(targets), c, h, w, generator=generator)).clamp(
        0, 1
    )
    x = x.to(device)
    with torch.no_grad():
        p_start = model(x).softmax(1)[rows, y].cpu()
    for t in range(params.iterations):
        ox, oy = (
            torch.randint(-params.jitter, params.jitter + 1, (2,), generator=generator).tolist()
            if params.jitter
            else (0, 0)
        )
        xj = torch.roll(x, shifts=(oy, ox), dims=(2, 3)).requires_grad_(True)
        objective = model(xj)[rows, y].sum() - params.l2_reg * model.normalise(xj).pow(2).sum()
        (grad,) = torch.autograd.grad(objective, xj)
        norm = grad.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
        xj = (xj.detach() + params.lr * grad / norm).clamp(0, 1)
        x = torch.roll(xj, shifts=(-oy, -ox), dims=(2, 3))
        if params.blur_every and params.blur_sigma > 0 and (t + 1) % params.blur_every == 0:
            x = gaussian_blur(x, params.blur_sigma)
    with torch.no_grad():
        p_end = model(x).softmax(1)[rows, y].cpu()
    return x.cpu(), p_start, p_end


@dataclasses.dataclass
class ClassVisRun:
    images: np.ndarray  # uint8 (K, H, W, C)
    titles: list[str]
    metrics: dict


def run(inputs: ExplainInputs, params: ClassVisParams, seed: int) -> ClassVisRun:
    """One visualisation per requested class (every class when ``classes`` is empty)."""
    targets = [inputs.class_index(c) for c in params.classes] or list(range(len(inputs.classes)))
    if len(set(targets)) != len(targets):
        raise UserError(
            f"explain.classvis.classes names a class twice ({list(params.classes)}); list each once"
        )
    start = time.perf_counter()
    size = inputs.backbone.input_size
    shape = (int(inputs.dataset.images.shape[3]), size, size)
    gen = torch.Generator().manual_seed(seed)
    with cpu_threads_for(torch.empty(len(targets), *shape, device=inputs.model.mean.device)):
        images, p0, p1 = visualise_classes(inputs.model, targets, shape, params, gen)
    names = inputs.classes
    per_class = {
        names[t]: {"class_index": t, "prob_start": float(a), "prob_end": float(b)}
        for t, a, b in zip(targets, p0, p1, strict=True)
    }
    metrics = {
        "backbone": inputs.backbone.name,
        "dataset": inputs.dataset.name,
        "num_classes": len(targets),
        "mean_prob_start": float(p0.double().mean()),
        "mean_prob_end": float(p1.double().mean()),
        "min_prob_end": float(p1.min()),
        "per_class": per_class,
        "seconds": time.perf_counter() - start,
    }
    titles = [f"{names[t]} p={float(b):.2f}" for t, b in zip(targets, p1, strict=True)]
    return ClassVisRun(to_uint8_hwc(images), titles, metrics)
