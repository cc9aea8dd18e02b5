"""The one supervised training loop (pretrain, fine-tune and scratch stages share it).

Works on prepared uint8 arrays: batches are drawn by a seeded generator, turned into
model input by a ``preprocess`` callable (the backbone's own), optionally augmented,
and trained with SGD or Adam from params. Returns per-epoch (and optionally
per-k-iterations) history rows ready for DVC plots. With a ``Checkpoint`` it saves its
whole state after every epoch and, when resuming, continues from the saved epoch with
identical results.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from transferlab.data.prepared import to_nchw_uint8
from transferlab.device import autocast, prepare_batch, prepare_model
from transferlab.training.checkpoint import Checkpoint, fingerprint, rng_state, set_rng_state
from transferlab.training.params import OptimParams

Preprocess = Callable[[torch.Tensor], torch.Tensor]


def make_optimizer(params: Iterable[nn.Parameter], cfg: OptimParams) -> torch.optim.Optimizer:
    """SGD (with momentum) or Adam, as the params say."""
    params = [p for p in params if p.requires_grad]
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def iterate_batches(
    n: int, batch_size: int, generator: torch.Generator | None
) -> Iterable[np.ndarray]:
    """Index batches over ``n`` items: shuffled by ``generator``, in order when None."""
    order = torch.randperm(n, generator=generator).numpy() if generator is not None else np.arange(n)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]


def batch_rows(images: np.ndarray | torch.Tensor, idx: np.ndarray, channels: int | None) -> torch.Tensor:
    """Rows ``idx`` as a tensor: uint8 NHWC images -> uint8 (N, C, H, W) with ``channels``;
    ``channels=None``: ``images`` is already model input (e.g. frozen features), sliced as is."""
    if channels is None:
        return torch.as_tensor(images)[torch.from_numpy(np.asarray(idx, dtype=np.int64))]
    return to_nchw_uint8(images[idx], channels)


def batch_input(
    images: np.ndarray | torch.Tensor,
    idx: np.ndarray,
    preprocess: Preprocess,
    device: torch.device,
    channels: int | None = 3,
) -> torch.Tensor:
    """Slice a batch (``batch_rows``) and apply the model's preprocessing."""
    return prepare_batch(preprocess(batch_rows(images, idx, channels)), device)


@torch.no_grad()
def predict_logits(
    model: nn.Module,
    images: np.ndarray | torch.Tensor,
    preprocess: Preprocess,
    device: torch.device,
    batch_size: int = 256,
    channels: int | None = 3,
) -> torch.Tensor:
    """Logits for all ``images`` (uint8 NHWC, or model-ready rows with ``channels=None``) in order,
    as a float32 CPU tensor."""
    model.eval()
    out = []
    for idx in iterate_batches(len(images), batch_size, None):
        with autocast(device):
            out.append(model(batch_input(images, idx, preprocess, device, channels)).float().cpu())
    return torch.cat(out) if out else torch.empty(0)


def evaluate(
    model: nn.Module,
    images: np.ndarray | torch.Tensor,
    labels: np.ndarray,
    preprocess: Preprocess,
    device: torch.device,
    batch_size: int = 256,
    channels: int | None = 3,
) -> tuple[float, float]:
    """(mean cross-entropy loss, accuracy) on a labelled set."""
    logits = predict_logits(model, images, preprocess, device, batch_size, channels)
    y = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    loss = nn.functional.cross_entropy(logits, y).item()
    acc = (logits.argmax(1) == y).float().mean().item()
    return loss, acc


def fit(
    model: nn.Module,
    train: tuple[np.ndarray | torch.Tensor, np.ndarray],
    test: tuple[np.ndarray | torch.Tensor, np.ndarray],
    preprocess: Preprocess,
    cfg: OptimParams,
    device: torch.device,
    generator: torch.Generator,
    *,
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    channels: int | None = 3,
    log_every: int = 0,
    desc: str = "train",
    checkpoint: Checkpoint | None = None,
) -> dict[str, list[dict[str, float]]]:
    """Train ``model`` on ``train`` and evaluate on ``test`` after every epoch.

    ``augment`` (if given) acts on the uint8 (N, C, H, W) batch before preprocessing. With
    ``channels=None`` the train/test inputs are model-ready rows (a tensor, e.g. a frozen
    network's features) instead of uint8 images.
    With ``log_every`` > 0, the running train loss/accuracy and the test accuracy are
    also logged every ``log_every`` iterations (convergence curves). ``checkpoint``
    (optional) saves the state after each epoch and resumes from it when asked. Returns
    ``{"epochs": [...], "iterations": [...]}`` rows.
    """
    model = prepare_model(model, device)
    optimizer = make_optimizer(model.parameters(), cfg)
    steps_per_epoch = -(-len(train[0]) // cfg.batch_size)
    scheduler = (
        torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs * steps_per_epoch)
        if cfg.lr_schedule == "cosine"
        else None
    )
    scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda")
    labels = torch.from_numpy(np.asarray(train[1], dtype=np.int64))
    epochs: list[dict[str, float]] = []
    iterations: list[dict[str, float]] = []
    step = 0
    first_epoch = 1
    if checkpoint is not None:
        inputs = fingerprint(
            cfg, log_every, channels, str(device), model.state_dict(), train, test, rng_state(generator)
        )
        saved = checkpoint.load(inputs)
        if saved is not None:
            model.load_state_dict(saved["model"])
            optimizer.load_state_dict(saved["optimizer"])
            if scheduler is not None:
                scheduler.load_state_dict(saved["scheduler"])
            scaler.load_state_dict(saved["scaler"])
            epochs, iterations, step = saved["epochs"], saved["iterations"], saved["step"]
            first_epoch = saved["epoch"] + 1
            set_rng_state(saved["rng"], generator)
    start = time.perf_counter() - (checkpoint.prior_seconds if checkpoint is not None else 0.0)
    for epoch in range(first_epoch, cfg.epochs + 1):
        model.train()
        seen = correct = 0
        loss_sum = 0.0
        window = {"loss": 0.0, "correct": 0, "seen": 0}
        batches = tqdm(
            list(iterate_batches(len(train[0]), cfg.batch_size, generator)),
            desc=f"{desc} {epoch}/{cfg.epochs}",
            leave=False,
            mininterval=5,
        )
        for idx in batches:
            x = batch_rows(train[0], idx, channels)
            if augment is not None:
                x = augment(x)
            x = prepare_batch(preprocess(x), device)
            y = labels[idx].to(device)
            with autocast(device):
                logits = model(x)
                loss = nn.functional.cross_entropy(logits, y)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            if scheduler is not None:
                scheduler.step()
            step += 1
            n = len(idx)
            hits = (logits.argmax(1) == y).sum().item()
            seen += n
            correct += hits
            loss_sum += loss.item() * n
            window["loss"] += loss.item() * n
            window["correct"] += hits
            window["seen"] += n
            if log_every and step % log_every == 0:
                _, test_acc = evaluate(model, *test, preprocess, device, channels=channels)
                model.train()
                iterations.append(
                    {
                        "iteration": step,
                        "train_loss": window["loss"] / window["seen"],
                        "train_acc": window["correct"] / window["seen"],
                        "test_acc": test_acc,
                    }
                )
                window = {"loss": 0.0, "correct": 0, "seen": 0}
        test_loss, test_acc = evaluate(model, *test, preprocess, device, channels=channels)
        epochs.append(
            {
                "epoch": epoch,
                "train_loss": loss_sum / max(seen, 1),
                "train_acc": correct / max(seen, 1),
                "test_loss": test_loss,
                "test_acc": test_acc,
                "seconds": time.perf_counter() - start,
            }
        )
        if checkpoint is not None:
            checkpoint.save(
                inputs,
                {
                    "progress": f"epoch {epoch} of {cfg.epochs} done",
                    "epoch": epoch,
                    "step": step,
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict() if scheduler is not None else {},
                    "scaler": scaler.state_dict(),
                    "epochs": epochs,
                    "iterations": iterations,
                    "rng": rng_state(generator),
                    "seconds": time.perf_counter() - start,
                },
            )
    return {"epochs": epochs, "iterations": iterations}
