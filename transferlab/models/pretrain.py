"""Materialise a backbone-registry entry into data/models/<name>: train it or resolve its weights.

``weights: pretrain`` trains the architecture on the source dataset with the shared
``fit`` loop (the offline stand-in for ImageNet pretraining) and records its test
accuracy; ``none`` records the seeded random init (the control); ``imagenet`` records
which torchvision weights to load; a path copies that local weights file. Every later
stage then loads backbones the same way, from ``data/models/<name>``.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from transferlab.data.prepared import PreparedDataset
from transferlab.device import resolve_device
from transferlab.errors import UserError
from transferlab.models.params import BackboneEntry, PretrainParams
from transferlab.models.registry import build_backbone, save_backbone
from transferlab.seeding import torch_generator
from transferlab.training.checkpoint import Checkpoint
from transferlab.training.loop import fit


def materialise_backbone(
    name: str,
    entry: BackboneEntry,
    cfg: PretrainParams,
    source: PreparedDataset | None,
    out_dir: Path,
    *,
    seed: int,
    device_name: str = "auto",
    checkpoint: Checkpoint | None = None,
) -> dict[str, Any]:
    """Write ``out_dir`` (weights.pt and/or card.json) for one registry entry; return metrics."""
    card: dict[str, Any] = {"name": name, "arch": entry.arch, "weights": entry.weights, "seed": seed}
    metrics: dict[str, Any] = {"arch": entry.arch, "weights": entry.weights}
    if entry.weights == "pretrain":
        if source is None:
            raise UserError(f"backbone {name!r} needs a source dataset; set pretrain.dataset")
        device = resolve_device(device_name)
        backbone = build_backbone(entry.arch, "none", num_classes=len(source.classes), name=name, seed=seed)
        start = time.perf_counter()
        history = fit(
            backbone.model,
            source.split("train"),
            source.split("test"),
            backbone.preprocess,
            cfg,
            device,
            torch_generator(seed),
            desc=f"pretrain {name}",
            checkpoint=checkpoint,
        )
        backbone.model.cpu()
        backbone.categories = tuple(source.classes)
        last = history["epochs"][-1]
        metrics.update(
            source_dataset=source.name,
            test_acc=last["test_acc"],
            train_acc=last["train_acc"],
            test_loss=last["test_loss"],
            epochs=cfg.epochs,
            seconds=time.perf_counter() - start,
            train_images=int(source.counts()["train"]),
        )
        # The card holds no wall-clock values, so a re-run with the same seed writes a
        # byte-identical model directory and nothing downstream re-runs.
        untimed = [{k: v for k, v in row.items() if k != "seconds"} for row in history["epochs"]]
        card.update(source_dataset=source.name, test_acc=last["test_acc"], history=untimed)
        save_backbone(backbone, out_dir, card)
        metrics["curve"] = history["epochs"]
    elif entry.weights in ("none", "imagenet"):
        backbone = build_backbone(entry.arch, entry.weights, name=name, seed=seed)
        # vgg_mini is small: keep its exact init as a file. ImageNet-sized nets are rebuilt
        # from arch + weights + seed (card only), so no 500 MB copy lands in the DVC cache.
        save_backbone(backbone, out_dir, card, include_weights=entry.arch == "vgg_mini")
    else:
        src = Path(entry.weights)
        if not src.is_file():
            raise UserError(f"weights file {str(src)!r} for backbone {name!r} not found; fix backbones.{name}.weights")
        backbone = build_backbone(entry.arch, str(src), name=name, seed=seed)
        card["weights_file"] = str(src)
        save_backbone(backbone, out_dir, card)
        shutil.copystat(src, out_dir / "weights.pt")
    metrics["parameters"] = sum(p.numel() for p in backbone.model.parameters())
    return metrics
