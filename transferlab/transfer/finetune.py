"""Transfer by fine-tuning: replace the last layer, then train only it (``head``) or everything (``full``).

Uses the one training loop (``transferlab.training.loop.fit``) with the backbone's own
preprocessing. In ``head`` mode every backbone parameter is frozen AND the backbone
stays in eval mode (BatchNorm statistics and dropout fixed), so it is exactly a
trainable linear layer on fixed penultimate features; only the new head changes.
Augmentation acts on the uint8 batch at the prepared resolution, before preprocessing.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import torch
from torch import nn

from transferlab.data.prepared import PreparedDataset
from transferlab.models.registry import load_backbone
from transferlab.seeding import torch_generator
from transferlab.training.checkpoint import Checkpoint
from transferlab.training.loop import fit
from transferlab.transfer.params import MODES, FinetuneParams


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
    channels = 3
    start = time.perf_counter()
    history = fit(
        model,
        ds.split("train"),
        ds.split("test"),
        backbone.preprocess,
        params,
        device,
        torch_generator(seed),
        augment=augment if augment.active else None,
        channels=channels,
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
        "epochs": params.epochs,
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
