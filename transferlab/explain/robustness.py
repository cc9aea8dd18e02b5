"""Accuracy under corruption (Gaussian noise, Gaussian blur) and the most confident mistakes.

Corruptions act on [0, 1] pixels at the model's input size: noise ``x + sigma * N(0, 1)``
clipped to [0, 1] (drawn from a seeded generator, so a grid point is reproducible), blur
with standard deviation ``radius`` pixels (PIL's GaussianBlur ``radius``). The gallery is
the clean test images the model gets wrong with the highest softmax confidence.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from transferlab.explain.common import (
    SCORED_STREAM,
    ExplainInputs,
    accuracy,
    gaussian_blur,
    grid_key,
    predict,
    to_uint8_hwc,
)
from transferlab.explain.params import RobustnessParams


def add_noise(x: torch.Tensor, sigma: float, generator: torch.Generator) -> torch.Tensor:
    """x + sigma * N(0, 1), clipped to [0, 1] (noise drawn on the CPU from ``generator``)."""
    if sigma <= 0:
        return x
    noise = torch.randn(x.shape, generator=generator).to(x.device)
    return (x + sigma * noise).clamp(0.0, 1.0)


def corruption_curve(
    model: nn.Module,
    x: torch.Tensor,
    labels: torch.Tensor,
    kind: str,
    levels: Sequence[float],
    seed: int,
    batch_size: int = 500,
) -> list[float]:
    """Accuracy at each corruption level (``kind`` noise: sigma, blur: radius)."""
    accs = []
    for k, level in enumerate(levels):
        gen = torch.Generator().manual_seed(seed * 1000 + k)  # one fixed draw per grid point
        logits = []
        for start in range(0, len(x), batch_size):
            xb = x[start : start + batch_size]
            xb = add_noise(xb, level, gen) if kind == "noise" else gaussian_blur(xb, level)
            logits.append(predict(model, xb, batch_size))
        accs.append(accuracy(torch.cat(logits), labels))
    return accs


def confident_mistakes(
    logits: torch.Tensor, labels: torch.Tensor, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """(positions, confidences) of the ``n`` wrong predictions with the highest softmax confidence."""
    probs = logits.softmax(1)
    conf, pred = probs.max(1)
    wrong = torch.nonzero(pred != labels).flatten().numpy()
    order = wrong[np.argsort(-conf.numpy()[wrong], kind="stable")][:n]
    return order, conf.numpy()[order]


@dataclasses.dataclass
class RobustnessRun:
    noise_curve: list[dict[str, float]]  # rows {sigma, accuracy}
    blur_curve: list[dict[str, float]]  # rows {radius, accuracy}
    gallery: np.ndarray  # uint8 (n, H, W, C)
    gallery_titles: list[str]
    metrics: dict


def run(inputs: ExplainInputs, params: RobustnessParams, seed: int) -> RobustnessRun:
    """Noise and blur accuracy curves and the confident-mistakes gallery."""
    start = time.perf_counter()
    x, labels, idx = inputs.test_selection(params.num_images, seed, stream=SCORED_STREAM)
    sigmas, radii = sorted(params.noise_sigmas), sorted(params.blur_radii)
    noise = corruption_curve(inputs.model, x, labels, "noise", sigmas, seed, params.batch_size)
    blur = corruption_curve(inputs.model, x, labels, "blur", radii, seed, params.batch_size)
    logits = predict(inputs.model, x, params.batch_size)
    pos, conf = confident_mistakes(logits, labels, params.gallery_size)
    pred = logits.argmax(1)
    titles = [
        f"{inputs.title(int(labels[p]), int(pred[p]))} ({c:.2f})"
        for p, c in zip(pos, conf, strict=True)
    ]
    metrics = {
        "backbone": inputs.backbone.name,
        "dataset": inputs.dataset.name,
        "labels": inputs.label_source,
        "num_images": len(x),
        "clean_accuracy": accuracy(logits, labels),
        "noise_accuracy": {grid_key("sigma", s): a for s, a in zip(sigmas, noise, strict=True)},
        "blur_accuracy": {grid_key("radius", r): a for r, a in zip(radii, blur, strict=True)},
        "mean_noise_accuracy": float(np.mean(noise)),
        "mean_blur_accuracy": float(np.mean(blur)),
        "confident_mistakes": {str(int(idx[p])): float(c) for p, c in zip(pos, conf, strict=True)},
        "seconds": time.perf_counter() - start,
    }
    return RobustnessRun(
        noise_curve=[
            {"sigma": float(s), "accuracy": a} for s, a in zip(sigmas, noise, strict=True)
        ],
        blur_curve=[{"radius": float(r), "accuracy": a} for r, a in zip(radii, blur, strict=True)],
        gallery=to_uint8_hwc(x[torch.as_tensor(pos, dtype=torch.long)]),
        gallery_titles=titles,
        metrics=metrics,
    )
