"""Adversarial examples in [0, 1] pixel space: a targeted iterative attack and FGSM.

* :func:`targeted_attack` ("fooling images", as in the course): repeat
  ``x <- clip(x + step_size * g / ||g||_2)`` with ``g`` the gradient of the *target* class
  score, per image, until the model predicts the target or ``max_iterations`` is reached.
* :func:`fgsm` (Goodfellow et al. 2015): one untargeted step
  ``x + epsilon * sign(grad of the cross-entropy)``, clipped to [0, 1]; the gradient is the
  same for every epsilon, so a whole epsilon grid costs one backward pass.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from transferlab.explain.common import (
    ATTACK_STREAM,
    SCORED_STREAM,
    ExplainInputs,
    accuracy,
    cpu_threads_for,
    grid_key,
    predict,
    to_uint8_hwc,
)
from transferlab.explain.params import AdversarialParams, FGSMParams


@dataclasses.dataclass
class AttackResult:
    """Per image: adversarial pixels, success, steps taken, perturbation norms, confidence."""

    adversarial: torch.Tensor  # (N, C, H, W) in [0, 1]
    success: torch.Tensor  # bool (N,)
    iterations: torch.Tensor  # int (N,): steps taken (until success or max_iterations)
    linf: torch.Tensor  # (N,)
    l2: torch.Tensor  # (N,)
    confidence: torch.Tensor  # (N,) softmax probability of the target at the end
    predicted: torch.Tensor  # int (N,): the model's class for the adversarial image


def targeted_attack(
    model: nn.Module, x: torch.Tensor, target: int, step_size: float, max_iterations: int
) -> AttackResult:
    """Push every image of ``x`` (pixels in [0, 1]) to class ``target`` by normalised gradient
    ascent on the target score; an image stops moving as soon as the model predicts the target."""
    x = x.detach()
    adv = x.clone()
    steps = torch.zeros(len(x), dtype=torch.long, device=x.device)
    done = torch.zeros(len(x), dtype=torch.bool, device=x.device)
    for _ in range(max_iterations):
        adv.requires_grad_(True)
        logits = model(adv)
        done = logits.argmax(1) == target
        if bool(done.all()):
            adv = adv.detach()
            break
        (grad,) = torch.autograd.grad(logits[:, target].sum(), adv)
        norm = grad.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (x.ndim - 1)))
        active = (~done).view(-1, *([1] * (x.ndim - 1)))
        adv = torch.where(active, adv.detach() + step_size * grad / norm, adv.detach()).clamp(
            0.0, 1.0
        )
        steps += (~done).long()
    with torch.no_grad():
        probs = model(adv).softmax(1)
    done = probs.argmax(1) == target
    delta = (adv - x).flatten(1)
    return AttackResult(
        adversarial=adv.detach(),
        success=done,
        iterations=steps,
        linf=delta.abs().amax(1),
        l2=delta.norm(dim=1),
        confidence=probs[:, target],
        predicted=probs.argmax(1),
    )


def fgsm_gradient_sign(model: nn.Module, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """sign of d cross-entropy / d x (the FGSM direction) for a batch."""
    x = x.detach().clone().requires_grad_(True)
    loss = nn.functional.cross_entropy(model(x), labels, reduction="sum")
    (grad,) = torch.autograd.grad(loss, x)
    return grad.sign()


def fgsm(model: nn.Module, x: torch.Tensor, labels: torch.Tensor, epsilon: float) -> torch.Tensor:
    """Untargeted FGSM images: clip(x + epsilon * sign(grad), 0, 1)."""
    if epsilon < 0:
        raise ValueError(f"epsilon must be >= 0, got {epsilon}")
    return (x.detach() + epsilon * fgsm_gradient_sign(model, x, labels)).clamp(0.0, 1.0)


def fgsm_accuracy_curve(
    model: nn.Module,
    x: torch.Tensor,
    labels: torch.Tensor,
    epsilons: Sequence[float],
    batch_size: int = 250,
) -> list[float]:
    """Accuracy under FGSM at each epsilon (one backward pass per batch for the whole grid)."""
    if any(e < 0 for e in epsilons):
        raise ValueError(f"epsilons must be >= 0, got {list(epsilons)}")
    device = next(iter(model.buffers()), next(model.parameters())).device
    correct = torch.zeros(len(epsilons), dtype=torch.long)
    for start in range(0, len(x), batch_size):
        xb = x[start : start + batch_size].to(device)
        yb = labels[start : start + batch_size].to(device)
        sign = fgsm_gradient_sign(model, xb, yb)
        with torch.no_grad():
            for k, eps in enumerate(epsilons):
                adv = (xb + eps * sign).clamp(0.0, 1.0)
                correct[k] += int((model(adv).argmax(1) == yb).sum())
    return [float(c) / max(len(x), 1) for c in correct]


@dataclasses.dataclass
class AdversarialRun:
    original: np.ndarray  # uint8 (N, H, W, C)
    perturbation: np.ndarray  # uint8 (N, H, W, C): 0.5 + delta scaled to fill [0, 1] (magnified)
    adversarial: np.ndarray  # uint8 (N, H, W, C)
    titles: list[str]
    magnification: float
    metrics: dict


def round_robin(positions: torch.Tensor, labels: np.ndarray) -> torch.Tensor:
    """``positions`` reordered one per dataset class in turn (first of each class, then second, ...),
    so the first k attacked images spread over the classes (the photos) instead of filling up with one."""
    rank: dict[int, int] = {}
    keyed = []
    for p in positions.tolist():
        c = int(labels[p])
        keyed.append((rank.get(c, 0), p))
        rank[c] = rank.get(c, 0) + 1
    return torch.tensor([p for _, p in sorted(keyed)], dtype=torch.long)


def run_targeted(inputs: ExplainInputs, params: AdversarialParams, seed: int) -> AdversarialRun:
    """The targeted attack on seeded test images not already labelled (or predicted) as the target."""
    target = inputs.class_index(params.target_class)
    start = time.perf_counter()
    device = inputs.model.mean.device
    # draw extra so that enough images remain after dropping those of the target class
    x, labels, idx = inputs.test_selection(params.num_images * 2 + 10, seed, stream=ATTACK_STREAM)
    pred = predict(inputs.model, x).argmax(1)
    keep = (pred != target) & ((labels != target) if inputs.labels_match else True)
    keep_idx = round_robin(torch.nonzero(keep).flatten(), inputs.dataset.split("test")[1][idx])[: params.num_images]
    x, labels, pred, idx = x[keep_idx], labels[keep_idx], pred[keep_idx], idx[keep_idx.numpy()]
    with cpu_threads_for(x.to(device)):
        res = targeted_attack(
            inputs.model, x.to(device), target, params.step_size, params.max_iterations
        )
    res = AttackResult(*(t.cpu() for t in dataclasses.astuple(res)))
    ok = res.success
    names = inputs.classes
    per_image = {
        str(int(i)): {
            "success": bool(s),
            "iterations": int(n),
            "linf": float(li),
            "l2": float(l2),
            "target_confidence": float(c),
            "original_class": int(p),
        }
        for i, s, n, li, l2, c, p in zip(
            idx, ok, res.iterations, res.linf, res.l2, res.confidence, pred, strict=True
        )
    }

    def mean_over_success(t: torch.Tensor) -> float | None:
        return float(t[ok].double().mean()) if bool(ok.any()) else None

    metrics = {
        "backbone": inputs.backbone.name,
        "dataset": inputs.dataset.name,
        "labels": inputs.label_source,
        "target_class": target,
        "target_name": names[target],
        "num_images": len(x),
        "success_rate": float(ok.double().mean()) if len(x) else 0.0,
        "mean_iterations": mean_over_success(res.iterations),
        "mean_linf": mean_over_success(res.linf),
        "mean_l2": mean_over_success(res.l2),
        "mean_target_confidence": float(res.confidence.double().mean()) if len(x) else 0.0,
        "per_image": per_image,
        "seconds": time.perf_counter() - start,
    }
    delta = res.adversarial - x
    peak = float(delta.abs().max()) if len(x) else 0.0
    magnification = 0.5 / peak if peak > 0 else 1.0
    titles = [
        f"{names[int(p)]} -> {names[int(q)]} ({int(n)} it)"
        for p, q, n in zip(pred, res.predicted, res.iterations, strict=True)
    ]
    return AdversarialRun(
        original=to_uint8_hwc(x),
        perturbation=to_uint8_hwc(0.5 + delta * magnification),
        adversarial=to_uint8_hwc(res.adversarial),
        titles=titles,
        magnification=magnification,
        metrics=metrics,
    )


@dataclasses.dataclass
class FGSMRun:
    curve: list[dict[str, float]]  # rows {epsilon, epsilon_255, accuracy}
    metrics: dict


def run_fgsm(inputs: ExplainInputs, params: FGSMParams, seed: int) -> FGSMRun:
    """Accuracy of the model under untargeted FGSM over the epsilon grid."""
    start = time.perf_counter()
    x, labels, _ = inputs.test_selection(params.num_images, seed, stream=SCORED_STREAM)
    epsilons = sorted(params.epsilons)
    accs = fgsm_accuracy_curve(inputs.model, x, labels, epsilons, params.batch_size)
    clean = accuracy(predict(inputs.model, x), labels)
    curve = [
        {"epsilon": float(e), "epsilon_255": float(e * 255), "accuracy": a}
        for e, a in zip(epsilons, accs, strict=True)
    ]
    metrics = {
        "backbone": inputs.backbone.name,
        "dataset": inputs.dataset.name,
        "labels": inputs.label_source,
        "num_images": len(x),
        "clean_accuracy": clean,
        "accuracy": {grid_key("eps", e): a for e, a in zip(epsilons, accs, strict=True)},
        "seconds": time.perf_counter() - start,
    }
    return FGSMRun(curve, metrics)
