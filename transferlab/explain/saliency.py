"""Saliency maps (Simonyan et al. 2014): |d class score / d pixel|, max over channels.

The gradient comes from captum's :class:`~captum.attr.Saliency` on the pixel-space model,
so it is the gradient with respect to [0, 1] pixels. To make runs comparable by a number,
not only by eye, :func:`saliency_mass` measures how much of each map falls on the object
(pixels brighter than a threshold: for Fashion-MNIST the garment, the background is 0).
The sanity check of Adebayo et al. 2018 ("Sanity checks for saliency maps") asks whether a
map depends on what the network learned: :func:`randomised_copy` re-initialises every layer
(the model-parameter randomisation test) and :func:`rank_correlation` compares the two maps
of each image (Spearman; near 1 = the map is mostly the input's edges, not the weights').
"""

from __future__ import annotations

import copy
import dataclasses
import time

import numpy as np
import torch
from torch import nn

from transferlab.explain.common import SALIENCY_STREAM, ExplainInputs, predict, to_uint8_hwc
from transferlab.explain.params import SaliencyParams


def saliency_maps(model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(N, H, W) saliency: max over channels of |d score_target / d x| (captum Saliency)."""
    # captum imported here, not at module level: every stage imports SaliencyParams (whole-file params check)
    from captum.attr import Saliency

    x = x.clone().requires_grad_(True)
    grads = Saliency(model).attribute(x, target=target, abs=True)
    return grads.detach().amax(dim=1)


def randomised_copy(model: nn.Module, seed: int) -> nn.Module:
    """A copy of ``model`` with every layer's parameters (and BatchNorm statistics) re-initialised,
    seeded and without touching the global RNG: the same architecture, no learned weights."""
    clone = copy.deepcopy(model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in clone.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
            if hasattr(module, "reset_running_stats"):
                module.reset_running_stats()
    return clone.eval()


def rank_correlation(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    """Per image, Spearman's rank correlation of two (N, H, W) maps over their pixels."""
    from scipy.stats import spearmanr

    return np.array([spearmanr(x.flatten().numpy(), y.flatten().numpy()).statistic for x, y in zip(a, b, strict=True)])


def saliency_mass(maps: torch.Tensor, object_mask: torch.Tensor) -> dict[str, np.ndarray]:
    """Per image: share of saliency on the object, object area share, and their ratio.

    ``ratio`` > 1 means the map concentrates on the object more than a uniform map would.
    """
    flat = maps.flatten(1).double()
    mask = object_mask.flatten(1).double()
    total = flat.sum(1).clamp_min(1e-30)
    mass = (flat * mask).sum(1) / total
    area = mask.mean(1)
    ratio = torch.where(area > 0, mass / area.clamp_min(1e-30), torch.zeros_like(mass))
    return {"mass_in_object": mass.numpy(), "object_area": area.numpy(), "ratio": ratio.numpy()}


@dataclasses.dataclass
class SaliencyResult:
    images: np.ndarray  # uint8 (N, H, W, C)
    maps: np.ndarray  # float (N, H, W), each scaled to [0, 1] by its own maximum
    random_maps: np.ndarray  # the same for the randomised-weights copy (Adebayo et al.'s control)
    titles: list[str]
    metrics: dict


def run(inputs: ExplainInputs, params: SaliencyParams, seed: int) -> SaliencyResult:
    """Saliency maps for ``num_images`` seeded test images, with object/background mass."""
    start = time.perf_counter()
    device = inputs.model.mean.device
    x, labels, idx = inputs.test_selection(params.num_images, seed, stream=SALIENCY_STREAM)
    pred = predict(inputs.model, x).argmax(1)
    target = labels if params.target == "label" else pred
    maps = saliency_maps(inputs.model, x.to(device), target.to(device)).cpu()
    random_maps = saliency_maps(randomised_copy(inputs.model, seed), x.to(device), target.to(device)).cpu()
    rho = rank_correlation(maps, random_maps)
    mask = x.amax(dim=1) > params.object_threshold
    mass = saliency_mass(maps, mask)
    peak = maps.flatten(1).amax(1).clamp_min(1e-30).view(-1, 1, 1)
    random_peak = random_maps.flatten(1).amax(1).clamp_min(1e-30).view(-1, 1, 1)
    titles = [inputs.title(int(t), int(p)) for t, p in zip(labels, pred, strict=True)]
    metrics = {
        "backbone": inputs.backbone.name,
        "dataset": inputs.dataset.name,
        "num_images": len(x),
        "target": params.target,
        "labels": inputs.label_source,
        "random_weights_spearman": float(np.mean(rho)),  # Adebayo et al.: low = the map depends on the weights
        "per_image_random_weights_spearman": {str(int(i)): float(v) for i, v in zip(idx, rho, strict=True)},
        "mean_mass_in_object": float(mass["mass_in_object"].mean()),
        "mean_object_area": float(mass["object_area"].mean()),
        "mean_object_ratio": float(mass["ratio"].mean()),
        "per_image_mass_in_object": {
            str(int(i)): float(v) for i, v in zip(idx, mass["mass_in_object"], strict=True)
        },
        "seconds": time.perf_counter() - start,
    }
    return SaliencyResult(
        to_uint8_hwc(x), (maps / peak).numpy(), (random_maps / random_peak).numpy(), titles, metrics
    )
