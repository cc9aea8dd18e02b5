"""Training from scratch: the course's first networks, their convergence and their mistakes.

Models (``arch``), all built for any input shape (C, H, W) and number of classes:

- ``linear``: softmax regression on flattened pixels (the course's first network).
- ``mlp``: one hidden layer of ``hidden`` units, activation ``relu`` or ``sigmoid``.
- ``cnn``: the course's second network: 3x3 conv 32, 3x3 conv 64, 2x2 max-pool,
  dropout 0.25, fc ``hidden`` (128), dropout 0.5, fc to classes; activation
  ``relu`` or ``sigmoid`` so ReLU vs sigmoid can be compared for a CNN as well.
- ``cifar_cnn``: a small CIFAR CNN: three 3x3 conv blocks (32, 64, 128 channels, each
  BatchNorm + activation + 2x2 max-pool), dropout 0.5, fc ``hidden``, fc to classes.

:func:`run` trains one model with the shared loop :func:`transferlab.training.loop.fit`,
logging train loss/accuracy and test accuracy (on a fixed seeded test subsample, for
speed) every ``log_every`` iterations, then evaluates on the whole test split and picks
the test images the model gets wrong with the highest confidence.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import torch
from torch import nn

from transferlab.data.prepared import PreparedDataset
from transferlab.errors import UserError, unknown_name
from transferlab.scratch.convergence import iterations_table
from transferlab.scratch.params import ARCHS, ModelSpec, ScratchParams
from transferlab.seeding import torch_generator
from transferlab.training.checkpoint import Checkpoint
from transferlab.training.loop import fit, predict_logits


def _act(name: str) -> nn.Module:
    return nn.ReLU() if name == "relu" else nn.Sigmoid()


def build_model(spec: ModelSpec, in_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """The network ``spec.arch`` for inputs of shape (C, H, W) and ``num_classes`` outputs."""
    c, h, w = in_shape
    if spec.arch == "linear":
        return nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, num_classes))
    if spec.arch == "mlp":
        return nn.Sequential(
            nn.Flatten(),
            nn.Linear(c * h * w, spec.hidden),
            _act(spec.activation),
            nn.Linear(spec.hidden, num_classes),
        )
    if spec.arch == "cnn":
        if h < 6 or w < 6:
            raise UserError(
                f"cnn needs images of at least 6x6 pixels, got {h}x{w}; use linear or mlp"
            )
        flat = 64 * ((h - 4) // 2) * ((w - 4) // 2)
        return nn.Sequential(
            nn.Conv2d(c, 32, 3),
            _act(spec.activation),
            nn.Conv2d(32, 64, 3),
            _act(spec.activation),
            nn.MaxPool2d(2),
            nn.Dropout(0.25),
            nn.Flatten(),
            nn.Linear(flat, spec.hidden),
            _act(spec.activation),
            nn.Dropout(0.5),
            nn.Linear(spec.hidden, num_classes),
        )
    if spec.arch == "cifar_cnn":
        if h < 8 or w < 8:
            raise UserError(f"cifar_cnn needs images of at least 8x8 pixels, got {h}x{w}")
        layers: list[nn.Module] = []
        in_ch = c
        for out_ch in (32, 64, 128):
            layers += [
                nn.Conv2d(in_ch, out_ch, 3, padding=1),
                nn.BatchNorm2d(out_ch),
                _act(spec.activation),
                nn.MaxPool2d(2),
            ]
            in_ch = out_ch
        flat = 128 * (h // 8) * (w // 8)
        return nn.Sequential(
            *layers,
            nn.Flatten(),
            nn.Dropout(0.5),
            nn.Linear(flat, spec.hidden),
            _act(spec.activation),
            nn.Linear(spec.hidden, num_classes),
        )
    raise unknown_name("scratch arch", spec.arch, ARCHS)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


class Standardize:
    """uint8 (N, C, H, W) -> float in [0, 1], then per-channel (x - mean) / std.

    Mean and std come from the training images, so every dataset gets unit-scale input.
    """

    def __init__(self, mean: np.ndarray, std: np.ndarray) -> None:
        self.mean = torch.as_tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        self.std = torch.as_tensor(np.maximum(std, 1e-6), dtype=torch.float32).view(1, -1, 1, 1)

    @classmethod
    def fit(cls, images: np.ndarray, max_images: int = 10000) -> Standardize:
        """Per-channel mean/std of (the first ``max_images`` of) uint8 NHWC ``images``."""
        x = np.asarray(images[:max_images], dtype=np.float64) / 255.0
        return cls(x.mean(axis=(0, 1, 2)), x.std(axis=(0, 1, 2)))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return (x.float() / 255.0 - self.mean) / self.std


def flip_crop(x: torch.Tensor, pad: int = 4) -> torch.Tensor:
    """Random horizontal flip and random crop after zero padding (uint8 NCHW; torch RNG)."""
    n, _, h, w = x.shape
    flips = torch.rand(n) < 0.5
    x = torch.where(flips.view(-1, 1, 1, 1), x.flip(3), x)
    padded = nn.functional.pad(x, (pad, pad, pad, pad))
    offsets = torch.randint(0, 2 * pad + 1, (n, 2))
    return torch.stack(
        [padded[i, :, dy : dy + h, dx : dx + w] for i, (dy, dx) in enumerate(offsets.tolist())]
    )


@dataclasses.dataclass
class ScratchResult:
    """What one from-scratch run produced."""

    metrics: dict[str, object]
    curve: list[dict[str, float]]  # per-log_every rows: iteration, train_loss, train_acc, test_acc
    hard_indices: np.ndarray  # indices into the test split, most confident mistake first
    hard_titles: list[str]
    test_images: np.ndarray  # the test split's uint8 NHWC images (for the gallery)


def _subset(n: int, size: int, seed: int) -> np.ndarray:
    """Sorted seeded random subset of ``range(n)`` of ``size`` items (all when size is 0)."""
    if size <= 0 or size >= n:
        return np.arange(n)
    return np.sort(torch.randperm(n, generator=torch_generator(seed))[:size].numpy())


def run(
    ds: PreparedDataset,
    model_name: str,
    params: ScratchParams,
    seed: int,
    device: torch.device,
    checkpoint: Checkpoint | None = None,
) -> ScratchResult:
    """Train ``model_name`` from scratch on ``ds`` and measure it (see module docstring)."""
    spec = params.spec(model_name)
    train_x, train_y = ds.split("train")
    test_x, test_y = ds.split("test")
    if len(train_x) == 0 or len(test_x) == 0:
        raise UserError(f"dataset {ds.name!r} has an empty train or test split; re-run prepare")
    sub = _subset(len(train_x), spec.train_size, seed + 2)
    train_x, train_y = train_x[sub], train_y[sub]
    ev = _subset(len(test_x), params.eval_size, seed + 1)
    channels = ds.images.shape[3]
    in_shape = (channels, *ds.images.shape[1:3])
    num_classes = len(ds.classes)

    torch.manual_seed(seed)  # model init and augmentation draws depend on the seed alone
    model = build_model(spec, in_shape, num_classes)
    preprocess = Standardize.fit(train_x)
    start = time.perf_counter()
    history = fit(
        model,
        (train_x, train_y),
        (test_x[ev], test_y[ev]),
        preprocess,
        spec.optim,
        device,
        torch_generator(seed),
        augment=flip_crop if spec.augment == "flip_crop" else None,
        channels=channels,
        log_every=params.log_every,
        desc=f"scratch {model_name}",
        checkpoint=checkpoint,
    )
    logits = predict_logits(model, test_x, preprocess, device, channels=channels)
    seconds = time.perf_counter() - start

    y = torch.from_numpy(np.asarray(test_y, dtype=np.int64))
    probs = logits.softmax(1)
    conf, pred = probs.max(1)
    test_acc = (pred == y).float().mean().item()
    test_loss = nn.functional.cross_entropy(logits, y).item()
    wrong = np.flatnonzero((pred != y).numpy())
    order = wrong[np.argsort(-conf.numpy()[wrong], kind="stable")][: params.hard_examples]
    titles = [
        f"true: {ds.classes[int(y[i])]}\npred: {ds.classes[int(pred[i])]} ({conf[i].item():.3f})"
        for i in order
    ]
    last = history["epochs"][-1]
    curve = history["iterations"]
    metrics: dict[str, object] = {
        "dataset": ds.name,
        "model": model_name,
        "arch": spec.arch,
        "activation": spec.activation if spec.arch != "linear" else "none",
        "params": count_parameters(model),
        "test_acc": test_acc,
        "test_loss": test_loss,
        "final_train_loss": last["train_loss"],
        "final_train_acc": last["train_acc"],
        "iterations": spec.optim.epochs * -(-len(train_x) // spec.optim.batch_size),
        "train_images": len(train_x),
        "test_images": len(test_x),
        "seconds": seconds,
        "threads": torch.get_num_threads(),
        **iterations_table(curve, params.thresholds),
    }
    return ScratchResult(metrics, curve, order, titles, test_x)
