"""One GAN variant end to end: build, train with checkpoints, sample, score.

Scores use a domain classifier the pipeline trained on the same dataset: FID on its
``fid_layer`` features (generated vs ``n_fid`` real training images), the floor
(real test vs the same real training images: what a perfect generator would score
at this sample size), and for conditional variants the classifier's accuracy on
generated images against the requested labels; for every variant the classifier's mean
confidence on samples and the class histogram of its predictions (mode coverage,
``scores.py``), with the same numbers on real test images beside them.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from transferlab.data.prepared import PreparedDataset
from transferlab.errors import UserError
from transferlab.gan.fid import ClassifierFeatures, fid_from_features, inception_fid
from transferlab.gan.models import IMAGE_SIZES, build_gan
from transferlab.gan.params import SMOOTH_REAL_LABEL, GanParams
from transferlab.gan.scores import sample_scores
from transferlab.gan.sheets import progress_sheet, sample_sheet
from transferlab.gan.training import LoopConfig, fixed_latent_grid, generate, train_gan
from transferlab.models.backbone import Backbone
from transferlab.training.checkpoint import Checkpoint

GRID_COLS = 10
PROGRESS_FIGURE = "progress.png"  # every checkpoint's sheet side by side (the report's figure)


def check_inputs(
    params: GanParams, variant: str, data: PreparedDataset, classifier_card: Mapping[str, Any]
) -> None:
    """Fail with one line, before any training, when the inputs cannot work together."""
    cfg = params.config(variant)
    trained_on = classifier_card.get("source_dataset")
    if trained_on != data.name:
        raise UserError(
            f"GAN classifier {params.classifier!r} was trained on {trained_on!r}, not on the GAN's dataset "
            f"{data.name!r}; set gan.classifier to a backbone pretrained on {data.name!r}"
        )
    n_cls = classifier_card.get("num_classes")
    if n_cls is not None and n_cls != len(data.classes):
        raise UserError(
            f"GAN classifier {params.classifier!r} has {n_cls} classes but {data.name!r} has "
            f"{len(data.classes)}; pretrain it on {data.name!r}"
        )
    h, w = data.images.shape[1:3]
    if cfg.arch == "dcgan" and (h != w or h not in IMAGE_SIZES):
        raise UserError(
            f"GAN variant {variant!r} (dcgan) needs {' or '.join(f'{s}x{s}' for s in IMAGE_SIZES)} images, "
            f"dataset {data.name!r} has {h}x{w}; use arch: mlp or another dataset"
        )
    if h != w:
        raise UserError(f"GANs need square images; dataset {data.name!r} has {h}x{w}")


def run_variant(
    params: GanParams,
    variant: str,
    data: PreparedDataset,
    classifier: Backbone,
    *,
    gen: torch.Generator,
    device: torch.device,
    model_dir: Path,
    figures_dir: Path,
    checkpoint: Checkpoint | None = None,
) -> tuple[dict[str, Any], list[dict[str, float]]]:
    """Train ``variant``; write checkpoints + sheets; return (metrics, logged loss rows).

    ``model_dir`` receives ``generator.pt`` (final) and ``generator_it<N>.pt`` per
    checkpoint; ``figures_dir`` receives ``it<N>.png`` sample sheets, all from the same
    fixed latent grid. ``checkpoint`` (optional) makes the training resumable.
    """
    cfg = params.config(variant)
    nb_g, nb_d = params.updates(variant)
    n_classes = len(data.classes)
    train_x, train_y = data.split("train")
    test_x, test_y = data.split("test")
    images = torch.from_numpy(np.ascontiguousarray(train_x)).permute(0, 3, 1, 2)  # uint8 NCHW view
    labels = torch.from_numpy(np.asarray(train_y, dtype=np.int64))
    channels, size = images.shape[1], images.shape[2]
    G, D = build_gan(
        cfg.arch,
        nz=cfg.nz,
        channels=channels,
        image_size=size,
        n_classes=n_classes,
        label_in_g=cfg.label_in_g,
        label_in_d=cfg.label_in_d,
        width=cfg.width,
    )
    grid_classes = n_classes if cfg.conditional else 0
    grid_z, grid_y = fixed_latent_grid(cfg.nz, grid_classes, params.grid_seed, GRID_COLS)
    row_labels = list(data.classes) if cfg.conditional else None
    model_dir.mkdir(parents=True, exist_ok=True)
    figures_dir.mkdir(parents=True, exist_ok=True)

    sheets: dict[int, torch.Tensor] = {}  # a resumed run redraws the earlier ones into it

    def on_checkpoint(it: int) -> None:
        sheet = generate(G, grid_z, grid_y, device)
        sheets[it] = sheet
        sample_sheet(
            sheet,
            figures_dir / f"it{it}.png",
            n_cols=GRID_COLS,
            row_labels=row_labels,
            title=f"{variant} - iteration {it}",
        )
        torch.save(_cpu_state(G), model_dir / f"generator_it{it}.pt")

    loop = LoopConfig(
        iterations=params.iterations_of(variant),
        batch_size=params.batch_size,
        lr=params.lr,
        betas=(params.betas[0], params.betas[1]),
        nb_update_G=nb_g,
        nb_update_D=nb_d,
        real_label=SMOOTH_REAL_LABEL if params.label_smoothing else 1.0,
        log_every=params.log_every,
        checkpoints=params.checkpoint_iterations(variant),
    )
    start = time.perf_counter()
    rows = train_gan(
        G,
        D,
        images,
        labels,
        loop,
        gen,
        device,
        n_classes=n_classes,
        on_checkpoint=on_checkpoint,
        desc=f"gan {variant}",
        checkpoint=checkpoint,
    )
    train_seconds = time.perf_counter() - start + (checkpoint.prior_seconds if checkpoint else 0.0)
    torch.save(_cpu_state(G), model_dir / "generator.pt")
    progress_sheet(
        sorted(sheets.items()),
        figures_dir / PROGRESS_FIGURE,
        n_cols=GRID_COLS,
        row_labels=row_labels,
        title=f"{variant}: the fixed latent grid during training",
    )

    # Samples for scoring: balanced labels, latents from the (seeded) training generator.
    n = params.n_fid
    z = torch.randn(n, cfg.nz, generator=gen)
    y = torch.arange(n) % max(n_classes, 1)
    start = time.perf_counter()
    fake = generate(G, z, y, device)
    sample_seconds = time.perf_counter() - start
    # The real reference sets depend on neither the variant nor the training seed, so the
    # floor is one number for the whole study and FIDs compare against the same images.
    eval_gen = torch.Generator().manual_seed(params.grid_seed)
    real_train = images[_subset_index(len(images), n, eval_gen)]
    test_idx = _subset_index(len(test_x), n, eval_gen)
    real_test = torch.from_numpy(np.ascontiguousarray(test_x[test_idx.numpy()])).permute(0, 3, 1, 2)

    feats = ClassifierFeatures(classifier, params.fid_layer, device)
    f_train, _ = feats(real_train)
    f_test, probs_test = feats(real_test)
    f_fake, probs_fake = feats(fake)
    real_scores = sample_scores(probs_test, data.classes, np.asarray(test_y)[test_idx.numpy()])
    inc_fid, inc_note = inception_fid(real_train, fake)
    last = rows[-1]
    metrics: dict[str, Any] = {
        "variant": variant,
        "dataset": data.name,
        "arch": cfg.arch,
        "nz": cfg.nz,
        "label_in_g": cfg.label_in_g,
        "label_in_d": cfg.label_in_d,
        "iterations": loop.iterations,
        "width": cfg.width,
        "batch_size": params.batch_size,
        "nb_update_G": nb_g,
        "nb_update_D": nb_d,
        "fid": fid_from_features(f_fake, f_train),
        "fid_floor": fid_from_features(f_test, f_train),
        "fid_layer": f"{classifier.name}.{params.fid_layer}",
        "fid_samples": n,
        **sample_scores(probs_fake, data.classes, y.numpy() if cfg.conditional else None),
        "classifier_accuracy_real": real_scores["conditional_accuracy"],
        "mean_confidence_real": real_scores["mean_confidence"],
        "classes_covered_real": real_scores["classes_covered"],
        "inception_fid": inc_fid,
        "train_seconds": train_seconds,
        "iterations_per_second": loop.iterations / train_seconds,
        "samples_per_second": n / sample_seconds,
        "final_loss_D": last["loss_D"],
        "final_loss_G": last["loss_G"],
        "final_D_x": last["D_x"],
        "final_D_G_z": last["D_G_z"],
        "parameters_G": sum(p.numel() for p in G.parameters()),
        "parameters_D": sum(p.numel() for p in D.parameters()),
        "checkpoints": list(loop.checkpoints),
    }
    if inc_fid is None:
        metrics["inception_fid_reason"] = inc_note
    return metrics, rows


def _subset_index(total: int, n: int, gen: torch.Generator) -> torch.Tensor:
    """Sorted indices of ``n`` items drawn without replacement (all if there are fewer)."""
    return torch.randperm(total, generator=gen)[:n].sort().values


def _cpu_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}
