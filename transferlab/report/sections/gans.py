"""Report section: GAN variants side by side (FID, floor, conditional accuracy, time) and their sheets."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from transferlab.report.model import Figure, Section, Table, Text, read_metrics_dir

FIGURES = "figures/gan"  # relative to the reports directory (stages/gan.py --figures)


def build(metrics_dir: Path, reports_dir: Path) -> Section | None:
    runs = read_metrics_dir(metrics_dir, "gan")
    if not runs:
        return None
    rows = []
    for name, m in runs.items():
        rows.append(
            {
                "variant": name,
                "arch": m.get("arch"),
                "nz": m.get("nz"),
                "label in G/D": f"{'yes' if m.get('label_in_g') else 'no'}/{'yes' if m.get('label_in_d') else 'no'}",
                "G:D updates": f"{m.get('nb_update_G')}:{m.get('nb_update_D')}",
                "iterations": m.get("iterations"),
                "FID (domain clf)": m.get("fid"),
                "FID floor (test vs train)": m.get("fid_floor"),
                "conditional acc": m.get("conditional_accuracy"),
                "Inception FID": m.get("inception_fid"),
                "train s": m.get("train_seconds"),
                "samples/s": m.get("samples_per_second"),
            }
        )
    frame = pd.DataFrame(rows)
    if frame["Inception FID"].isna().all():
        frame = frame.drop(columns="Inception FID")
    first = next(iter(runs.values()))
    layer, n = first.get("fid_layer", "?"), first.get("fid_samples", "?")
    real_acc = first.get("classifier_accuracy_real")
    blocks: list = [
        Text(
            f"FID is computed on the `{layer}` features of the domain classifier the pipeline "
            f"trained on the same dataset ({n} generated vs {n} real training images); the floor is "
            "real test vs the same real training images, i.e. what a perfect generator scores at this "
            "sample size. Lower is better. These numbers are comparable across variants and runs of "
            "this pipeline, NOT with published (Inception) FIDs, whose scale differs. Conditional "
            "accuracy: the classifier's accuracy on generated images against the requested labels "
            f"(chance 1/classes; the classifier itself scores {_fmt(real_acc)} on real test images)."
        ),
        Table(frame, "GAN variants: sample quality, conditioning and cost."),
    ]
    reasons = {m.get("inception_fid_reason") for m in runs.values()} - {None}
    if reasons:
        blocks.append(Text("Inception FID not computed: " + "; ".join(sorted(reasons)) + "."))
    for name, m in runs.items():
        final = (m.get("checkpoints") or [m.get("iterations")])[-1]
        rel = f"{FIGURES}/{name}/it{final}.png"
        if (Path(reports_dir) / rel).is_file():
            blocks.append(
                Figure(rel, f"{name}: samples from the fixed latent grid at iteration {final}")
            )
    return Section("GANs", blocks)


def _fmt(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else "n/a"
