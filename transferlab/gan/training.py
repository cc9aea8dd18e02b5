"""The GAN training loop: alternating D and G updates with Adam, logged for DVC plots.

Non-saturating GAN loss (Goodfellow et al. 2014) with BCE on logits; optional
one-sided label smoothing (real target 0.9); ``nb_update_D`` discriminator steps then
``nb_update_G`` generator steps per iteration; a callback at fixed checkpoint
iterations (sample sheets, weights). Every random draw (batches, latents, fake labels)
comes from one seeded ``torch.Generator``, so a run is reproducible on CPU. With a
``Checkpoint`` the whole loop state is saved every ``every_iterations`` iterations and a
resumed run continues with identical results (sample sheets before the resume point are
redrawn from the generator snapshots kept in the checkpoint).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from transferlab.device import prepare_batch
from transferlab.training.checkpoint import Checkpoint, fingerprint, rng_state, set_rng_state


@dataclasses.dataclass(frozen=True)
class LoopConfig:
    """What the loop needs (resolved from the params for one variant)."""

    iterations: int
    batch_size: int
    lr: float
    betas: tuple[float, float]
    nb_update_G: int = 1
    nb_update_D: int = 1
    real_label: float = 1.0  # 0.9 with one-sided label smoothing
    log_every: int = 25
    checkpoints: tuple[int, ...] = ()


def to_unit_range(x: torch.Tensor) -> torch.Tensor:
    """uint8 images -> float in [-1, 1] (the generator's tanh range)."""
    return x.float().div(127.5).sub(1.0)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Generator output in [-1, 1] -> uint8 images (quantised exactly like real data)."""
    return x.detach().add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8).cpu()


def fixed_latent_grid(
    nz: int, n_classes: int, seed: int, n_cols: int = 10
) -> tuple[torch.Tensor, torch.Tensor]:
    """The one latent grid every checkpoint and run of a variant is drawn from.

    Seeded by its own generator (independent of the training seed and of any RNG
    state). Conditional (``n_classes`` > 0): one row per class, and the same ``n_cols``
    latents in every row, so a column shows one "style" across classes.
    Unconditional: ``n_cols`` x ``n_cols`` latents. Returns (z, labels); labels are
    the row class (all zeros when unconditional).
    """
    gen = torch.Generator().manual_seed(seed)
    if n_classes:
        z = torch.randn(n_cols, nz, generator=gen).repeat(n_classes, 1)
        y = torch.arange(n_classes).repeat_interleave(n_cols)
    else:
        z = torch.randn(n_cols * n_cols, nz, generator=gen)
        y = torch.zeros(n_cols * n_cols, dtype=torch.long)
    return z, y


@torch.no_grad()
def generate(
    G: nn.Module, z: torch.Tensor, y: torch.Tensor, device: torch.device, batch_size: int = 256
) -> torch.Tensor:
    """uint8 (N, C, H, W) samples from ``G`` in eval mode (BatchNorm running stats)."""
    was_training = G.training
    G.eval()
    out = [
        to_uint8(G(z[i : i + batch_size].to(device), y[i : i + batch_size].to(device)))
        for i in range(0, len(z), batch_size)
    ]
    G.train(was_training)
    return torch.cat(out)


class EndlessBatches:
    """Endless shuffled index batches (full batches only), reshuffled every epoch.

    Its position is explicit state (``state_dict``), so a resumed loop draws the same batches.
    """

    def __init__(self, n: int, batch_size: int, gen: torch.Generator) -> None:
        self.n, self.batch_size, self.gen = n, min(batch_size, n), gen
        self.order: torch.Tensor | None = None
        self.pos = 0

    def __next__(self) -> torch.Tensor:
        if self.order is None or self.pos + self.batch_size > self.n:
            self.order, self.pos = torch.randperm(self.n, generator=self.gen), 0
        self.pos += self.batch_size
        return self.order[self.pos - self.batch_size : self.pos]

    def state_dict(self) -> dict[str, Any]:
        return {"order": self.order, "pos": self.pos}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.order, self.pos = state["order"], state["pos"]


def train_gan(
    G: nn.Module,
    D: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    cfg: LoopConfig,
    gen: torch.Generator,
    device: torch.device,
    *,
    n_classes: int,
    on_checkpoint: Callable[[int], None] | None = None,
    desc: str = "gan",
    checkpoint: Checkpoint | None = None,
) -> list[dict[str, float]]:
    """Train ``G``/``D`` in place on uint8 (N, C, H, W) ``images``; return logged rows.

    Each row averages the last ``log_every`` iterations: ``loss_D`` (real + fake BCE),
    ``loss_G``, ``D_x`` (mean D(x) on real) and ``D_G_z`` (mean D(G(z)) in the D step).
    ``checkpoint`` (optional) saves the loop state periodically and resumes from it.
    """
    G.to(device).train()
    D.to(device).train()
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.lr, betas=cfg.betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr, betas=cfg.betas)
    bce = nn.BCEWithLogitsLoss()
    batches = EndlessBatches(len(images), cfg.batch_size, gen)
    checkpoints = set(cfg.checkpoints)
    nz = G.nz
    rows: list[dict[str, float]] = []
    window = {"loss_D": 0.0, "loss_G": 0.0, "D_x": 0.0, "D_G_z": 0.0, "d_steps": 0, "g_steps": 0}
    snapshots: list[tuple[int, dict[str, torch.Tensor]]] = []  # G at each sheet iteration
    first = 1
    if checkpoint is not None:
        inputs = fingerprint(
            cfg, n_classes, str(device), G.state_dict(), D.state_dict(), images, labels, rng_state(gen)
        )
        saved = checkpoint.load(inputs)
        if saved is not None:
            for it, snapshot in saved["snapshots"]:  # redraw the sheets the killed run made
                G.load_state_dict(snapshot)
                if on_checkpoint is not None:
                    on_checkpoint(it)
            for module, key in ((G, "G"), (D, "D"), (opt_g, "opt_G"), (opt_d, "opt_D"), (batches, "batches")):
                module.load_state_dict(saved[key])
            G.train()
            rows, window, snapshots = saved["rows"], saved["window"], saved["snapshots"]
            set_rng_state(saved["rng"], gen)
            first = saved["iteration"] + 1
    start = time.perf_counter() - (checkpoint.prior_seconds if checkpoint is not None else 0.0)

    def latents(b: int) -> tuple[torch.Tensor, torch.Tensor]:
        z = torch.randn(b, nz, generator=gen)
        y = torch.randint(0, max(n_classes, 1), (b,), generator=gen)
        return z.to(device), y.to(device)

    for it in tqdm(range(first, cfg.iterations + 1), desc=desc, leave=False, mininterval=5):
        for _ in range(cfg.nb_update_D):
            idx = next(batches)
            x = prepare_batch(to_unit_range(images[idx]), device)
            y = labels[idx].to(device)
            z, yf = latents(len(idx))
            with torch.no_grad():
                fake = G(z, yf)
            d_real, d_fake = D(x, y), D(fake, yf)
            loss_d = bce(d_real, torch.full_like(d_real, cfg.real_label)) + bce(
                d_fake, torch.zeros_like(d_fake)
            )
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            window["loss_D"] += loss_d.item()
            window["D_x"] += torch.sigmoid(d_real).mean().item()
            window["D_G_z"] += torch.sigmoid(d_fake).mean().item()
            window["d_steps"] += 1
        for _ in range(cfg.nb_update_G):
            z, yf = latents(cfg.batch_size)
            out = D(G(z, yf), yf)
            loss_g = bce(out, torch.ones_like(out))
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
            window["loss_G"] += loss_g.item()
            window["g_steps"] += 1
        if it % cfg.log_every == 0 or it == cfg.iterations:
            d, g = max(window["d_steps"], 1), max(window["g_steps"], 1)
            rows.append(
                {
                    "iteration": it,
                    "loss_D": window["loss_D"] / d,
                    "loss_G": window["loss_G"] / g,
                    "D_x": window["D_x"] / d,
                    "D_G_z": window["D_G_z"] / d,
                }
            )
            window = dict.fromkeys(window, 0.0) | {"d_steps": 0, "g_steps": 0}
        if it in checkpoints and on_checkpoint is not None:
            on_checkpoint(it)
            G.train()
            if checkpoint is not None and checkpoint.save_enabled:
                snapshots.append((it, {k: v.detach().cpu().clone() for k, v in G.state_dict().items()}))
        if checkpoint is not None and checkpoint.due(it, cfg.iterations):
            checkpoint.save(
                inputs,
                {
                    "progress": f"iteration {it} of {cfg.iterations} done",
                    "iteration": it,
                    "G": G.state_dict(),
                    "D": D.state_dict(),
                    "opt_G": opt_g.state_dict(),
                    "opt_D": opt_d.state_dict(),
                    "batches": batches.state_dict(),
                    "rows": rows,
                    "window": window,
                    "snapshots": snapshots,
                    "rng": rng_state(gen),
                    "seconds": time.perf_counter() - start,
                },
            )
    return rows
