"""Transfer by fine-tuning: replace the last layer, then train only it (``head``) or everything (``full``).

Uses the one training loop (``transferlab.training.loop.fit``) with the backbone's own
preprocessing. In ``head`` mode every backbone parameter is frozen AND the backbone
stays in eval mode (BatchNorm statistics and dropout fixed), so it is exactly a
trainable linear layer on fixed penultimate features; only the new head changes. Those
features are therefore computed once (``head_inputs``) and the head trains on them: the
same model as running the frozen network every epoch, at the cost of one forward pass, so
head mode can afford the epochs it needs to converge (``head_epochs``). With
``head_standardise`` the head trains on standardised features (the softmax head's
preconditioning: SGD on raw features of very different scales crawls), and the scaler is
folded into its weights afterwards, so the saved network is the plain one.
Augmentation acts on the uint8 batch at the prepared resolution, before preprocessing
(it changes the features every epoch, so head mode with augmentation runs the network).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np
import torch
from torch import nn

from transferlab.data.prepared import PreparedDataset
from transferlab.device import autocast, prepare_model
from transferlab.models.registry import load_backbone
from transferlab.seeding import torch_generator
from transferlab.training.checkpoint import Checkpoint
from transferlab.training.loop import Preprocess, batch_input, fit, iterate_batches
from transferlab.transfer.params import MODES, FinetuneParams


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


class Augment:
    """Random crop after zero padding and optional horizontal flip of a uint8 (N, C, H, W) batch.

    Draws from the global torch RNG (seeded by the stage), so runs repeat exactly.
    """

    def __init__(self, crop_pad: int, hflip: bool) -> None:
        self.crop_pad = crop_pad
        self.hflip = hflip

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        if self.hflip:
            flips = torch.rand(n) < 0.5
            x = torch.where(flips.view(-1, 1, 1, 1), x.flip(3), x)
        pad = self.crop_pad
        if pad:
            padded = nn.functional.pad(x, (pad, pad, pad, pad))
            offsets = torch.randint(0, 2 * pad + 1, (n, 2)).tolist()
            x = torch.stack([padded[i, :, dy : dy + h, dx : dx + w] for i, (dy, dx) in enumerate(offsets)])
        return x

    @property
    def active(self) -> bool:
        return self.hflip or self.crop_pad > 0


class HeadOnly(nn.Module):
    """Wrap a model so only its head trains: backbone frozen and kept in eval mode."""

    def __init__(self, model: nn.Module, head: str) -> None:
        super().__init__()
        self.model = model
        self.head_name = head
        for p in model.parameters():
            p.requires_grad_(False)
        for p in model.get_submodule(head).parameters():
            p.requires_grad_(True)

    def train(self, mode: bool = True) -> HeadOnly:
        super().train(False)  # backbone: eval (BatchNorm running stats and dropout fixed)
        self.model.get_submodule(self.head_name).train(mode)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


@torch.no_grad()
def head_inputs(
    model: nn.Module,
    head: str,
    images: np.ndarray,
    preprocess: Preprocess,
    device: torch.device,
    batch_size: int = 256,
) -> torch.Tensor | None:
    """What the frozen network feeds its ``head`` for every image (eval mode, one pass), as float32.

    Captured by a forward pre-hook on the head. None when the head is not simply the last
    step of the network (not called exactly once with one tensor, or ``head(inputs)`` is not
    the network's output): then head-only training has to run the whole network.
    """
    module = model.get_submodule(head)
    captured: list[tuple[torch.Tensor, ...]] = []
    handle = module.register_forward_pre_hook(lambda _m, args: captured.append(args))
    model = prepare_model(model, device).eval()
    rows = []
    try:
        for idx in iterate_batches(len(images), batch_size, None):
            captured.clear()
            with autocast(device):
                out = model(batch_input(images, idx, preprocess, device)).float()
            if len(captured) != 1 or len(captured[0]) != 1 or not isinstance(captured[0][0], torch.Tensor):
                return None
            x = captured[0][0].detach()
            if not rows:  # the head alone must reproduce the network's output
                with autocast(device):
                    again = module(x).float()
                scale = float(out.abs().max()) or 1.0
                if again.shape != out.shape or not torch.allclose(again, out, rtol=1e-4, atol=1e-4 * scale):
                    return None
            rows.append(x.float().cpu())
    finally:
        handle.remove()
    return torch.cat(rows) if rows else None


def feature_scaler(train: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-feature mean and standard deviation of the train features (constant features: scale 1),
    as scikit-learn's StandardScaler, computed in float64."""
    x = train.double()
    mean, std = x.mean(0), x.std(0, correction=0)
    std = torch.where(std > 1e-12 * max(float(std.max()), 1e-300), std, torch.ones_like(std))
    return mean.float(), std.float()


@torch.no_grad()
def fold_scaler(head: nn.Module, shift: torch.Tensor, scale: torch.Tensor) -> None:
    """Rewrite a linear ``head`` trained on ``(x - shift) / scale`` as the same map of ``x``.

    ``W (x - m) / s + b = (W / s) x + (b - W (m / s))``: the network keeps its plain head and
    gives the logits the head was trained to give.
    """
    weight = head.weight.double()
    head.bias.copy_((head.bias.double() - weight @ (shift.double() / scale.double()).to(weight.device)).to(head.bias.dtype))
    head.weight.copy_((weight / scale.double().to(weight.device)).to(head.weight.dtype))


@dataclasses.dataclass
class FinetuneResult:
    metrics: dict[str, Any]
    curve: list[dict[str, float]]
    model: nn.Module  # the fine-tuned network (the backbone's model with its new head)
    head: str


def run(
    ds: PreparedDataset,
    model_dir: Any,
    mode: str,
    params: FinetuneParams,
    seed: int,
    device: torch.device,
    checkpoint: Checkpoint | None = None,
    input_size: int | None = None,
) -> FinetuneResult:
    """Fine-tune the backbone in ``model_dir`` on ``ds`` in ``mode``; per-epoch curve + metrics.

    ``input_size`` (None = the backbone's own) is the side the images are resized to, as extract does.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    backbone = load_backbone(model_dir).at_size(input_size)
    torch.manual_seed(seed)  # new head init and augmentation draws depend on the seed alone
    backbone.replace_head(len(ds.classes))
    model: nn.Module = HeadOnly(backbone.model, backbone.head) if mode == "head" else backbone.model
    for p in model.parameters() if mode == "full" else ():
        p.requires_grad_(True)
    augment = Augment(params.crop_pad, params.hflip)
    train, test = ds.split("train"), ds.split("test")
    start = time.perf_counter()
    features = None
    if mode == "head" and not augment.active:
        features = [head_inputs(backbone.model, backbone.head, x, backbone.preprocess, device) for x, _ in (train, test)]
        features = None if any(f is None for f in features) else features
    feature_seconds = time.perf_counter() - start
    optim = dataclasses.replace(params, epochs=params.head_epochs) if mode == "head" and params.head_epochs else params
    if features is not None:  # the head on the frozen features: the same model, one forward pass
        shift, scale = feature_scaler(features[0]) if params.head_standardise else (None, None)
        if shift is not None:
            features = [(f - shift) / scale for f in features]
        history = fit(
            backbone.head_module(),
            (features[0], train[1]),
            (features[1], test[1]),
            _identity,
            optim,
            device,
            torch_generator(seed),
            channels=None,
            desc=f"finetune {backbone.name} {mode} (frozen features)",
            checkpoint=checkpoint,
        )
        if shift is not None:
            fold_scaler(backbone.head_module(), shift, scale)
    else:
        history = fit(
            model,
            train,
            test,
            backbone.preprocess,
            optim,
            device,
            torch_generator(seed),
            augment=augment if augment.active else None,
            channels=3,
            desc=f"finetune {backbone.name} {mode}",
            checkpoint=checkpoint,
        )
    seconds = time.perf_counter() - start
    curve = [{k: v for k, v in row.items() if k != "seconds"} for row in history["epochs"]]
    best = max(curve, key=lambda r: r["test_acc"])
    last = curve[-1]
    counts = ds.counts()
    metrics = {
        "dataset": ds.name,
        "backbone": backbone.name,
        "mode": mode,
        "epochs": optim.epochs,
        "frozen_features": features is not None,  # head trained on features computed once
        "standardised": features is not None and params.head_standardise,
        "feature_seconds": feature_seconds if features is not None else 0.0,
        "optimizer": params.optimizer,
        "lr": params.lr,
        "best_test_acc": best["test_acc"],
        "best_epoch": int(best["epoch"]),
        "final_test_acc": last["test_acc"],
        "final_train_acc": last["train_acc"],
        "final_test_loss": last["test_loss"],
        "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "total_params": sum(p.numel() for p in model.parameters()),
        "train_size": counts["train"],
        "test_size": counts["test"],
        "seconds": seconds,
    }
    return FinetuneResult(metrics, curve, backbone.model, backbone.head)


def skipped_figure(text: str):
    """A figure that says why a fine-tuning run was skipped (the stage's figure output still exists)."""
    from transferlab.figures import plt

    fig, ax = plt.subplots(figsize=(7.5, 1.2))
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, fontsize=8)
    return fig


def curves_figure(curve: list[dict[str, float]], title: str):
    """Loss and accuracy per epoch, train and test (the finetune stage's figure)."""
    from transferlab.figures import plt

    epochs = [r["epoch"] for r in curve]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(7.5, 2.8))
    for split, style in (("train", "-o"), ("test", "--s")):
        ax_loss.plot(epochs, [r[f"{split}_loss"] for r in curve], style, label=split, markersize=3)
        ax_acc.plot(epochs, [r[f"{split}_acc"] for r in curve], style, label=split, markersize=3)
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig
