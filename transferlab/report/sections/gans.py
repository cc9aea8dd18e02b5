"""Report section: GAN variants side by side (FID beside its floor, conditional accuracy,
classifier confidence, mode coverage, time), each variant's sheets over training, and one
sentence per comparison the course makes (nz 100 vs 10; label in D or not; MLP vs conv)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from transferlab.report.model import Figure, Section, Table, Text, read_metrics_dir

FIGURES = "figures/gan"  # relative to the reports directory (stages/gan.py --figures)
PROGRESS = "progress.png"  # transferlab.gan.run.PROGRESS_FIGURE (the report imports no torch)


def build(metrics_dir: Path, reports_dir: Path) -> Section | None:
    runs = read_metrics_dir(metrics_dir, "gan")
    if not runs:
        return None
    frame = pd.DataFrame([_row(name, m) for name, m in runs.items()])
    if frame["Inception FID"].isna().all():
        frame = frame.drop(columns="Inception FID")
    first = next(iter(runs.values()))
    layer, n = first.get("fid_layer", "?"), first.get("fid_samples", "?")
    blocks: list = [
        Text(
            f"FID is computed on the `{layer}` features of the domain classifier the pipeline "
            f"trained on the same dataset ({n} generated vs {n} real training images); the floor is "
            "real test vs the same real training images, i.e. what a perfect generator scores at this "
            "sample size. Lower is better. These numbers are comparable across variants and runs of "
            "this pipeline, NOT with published (Inception) FIDs, whose scale differs. Conditional "
            "accuracy: the classifier's accuracy on generated images against the requested labels "
            f"(chance 1/classes; the classifier itself scores {_fmt(first.get('classifier_accuracy_real'))} "
            "on real test images). Confidence: the classifier's mean top softmax probability on the "
            f"samples (real test images: {_fmt(first.get('mean_confidence_real'))}). Classes covered: "
            "how many classes the classifier assigns at least half their fair share of the samples "
            f"(real test images: {first.get('classes_covered_real', 'n/a')})."
        ),
        Table(frame, "GAN variants: sample quality, conditioning, mode coverage and cost."),
    ]
    reasons = {m.get("inception_fid_reason") for m in runs.values()} - {None}
    if reasons:
        blocks.append(Text("Inception FID not computed: " + "; ".join(sorted(reasons)) + "."))
    comparisons = _comparisons(runs)
    if comparisons:
        blocks.append(Text(" ".join(comparisons)))
    for name, m in runs.items():
        rel = f"{FIGURES}/{name}/{PROGRESS}"
        if (Path(reports_dir) / rel).is_file():
            blocks.append(Text(f"**{name}**: {_summary(m)}."))
            blocks.append(Figure(rel, f"{name}: the fixed latent grid at iterations {_its(m)}"))
    return Section("GANs", blocks)


def _row(name: str, m: Mapping) -> dict:
    hist = m.get("class_histogram") or {}
    return {
        "variant": name,
        "arch": m.get("arch"),
        "nz": m.get("nz"),
        "label in G/D": f"{_yes(m.get('label_in_g'))}/{_yes(m.get('label_in_d'))}",
        "G:D updates": f"{m.get('nb_update_G')}:{m.get('nb_update_D')}",
        "iterations": m.get("iterations"),
        "FID (domain clf)": m.get("fid"),
        "FID floor (test vs train)": m.get("fid_floor"),
        "conditional acc": m.get("conditional_accuracy"),
        "confidence": m.get("mean_confidence"),
        "classes covered": f"{m.get('classes_covered')}/{len(hist)}" if hist else None,
        "Inception FID": m.get("inception_fid"),
        "train s": m.get("train_seconds"),
    }


def _summary(m: Mapping) -> str:
    """One line of a variant's numbers, printed above its sheets."""
    parts = [f"FID {_fmt(m.get('fid'), 1)} (floor {_fmt(m.get('fid_floor'), 2)})"]
    if m.get("conditional_accuracy") is not None:
        parts.append(f"conditional accuracy {_fmt(m.get('conditional_accuracy'))}")
    parts.append(f"confidence {_fmt(m.get('mean_confidence'))}")
    hist = m.get("class_histogram") or {}
    if hist:
        counts = ", ".join(f"{k} {v}" for k, v in hist.items())
        parts.append(f"{m.get('classes_covered')}/{len(hist)} classes covered ({counts})")
    return "; ".join(parts)


FID_ = ("FID", "fid", 1)
ACC_ = ("conditional accuracy", "conditional_accuracy", 3)
# (title, variant a, variant b, the numbers compared, what a and b are called when FID decides)
COMPARISONS = (
    ("Latent size 100 vs 10", "dcgan", "dcgan_nz10",
     (FID_, ("classes covered", "classes_covered", 0), ("confidence", "mean_confidence", 3)),
     ("a latent of 100", "a latent of 10")),
    ("Label in D or not", "cdcgan", "cdcgan_nolabel_d", (ACC_, FID_), None),
    ("Convolutional vs MLP", "cdcgan", "cgan", (FID_, ACC_, ("iterations", "iterations", 0)),
     ("the convolutional one", "the MLP")),
)  # fmt: skip
LABEL_LESSON = (
    "without the label the discriminator cannot tell a wrong-class sample from a right one, "
    "so the generator has no reason to obey its label"
)


def _comparisons(runs: Mapping[str, Mapping]) -> list[str]:
    """The course's three comparisons, each as a sentence from the numbers (when both ran)."""
    out = []
    for title, x, y, fields, names in COMPARISONS:
        a, b = runs.get(x), runs.get(y)
        if not (a and b):
            continue
        if names is not None:
            verdict = _better(a, b, *names)
        else:
            ignored = (b.get("conditional_accuracy") or 1) <= 0.2
            verdict = LABEL_LESSON + (" and it ignores it (near chance)" if ignored else "")
        out.append(f"**{title}** (`{x}` vs `{y}`): {_versus(a, b, *fields)}: {verdict}.")
    return out


def _versus(a: Mapping, b: Mapping, *fields: tuple[str, str, int]) -> str:
    """``label x vs y`` for each (label, metrics key, decimals); integers print as they are."""
    return ", ".join(f"{label} {_fmt(a.get(k), d)} vs {_fmt(b.get(k), d)}" for label, k, d in fields)


def _better(a: Mapping, b: Mapping, name_a: str, name_b: str) -> str:
    fa, fb = a.get("fid"), b.get("fid")
    if not isinstance(fa, float) or not isinstance(fb, float):
        return "not comparable"
    best, other = (name_a, name_b) if fa < fb else (name_b, name_a)
    return f"by FID {best} gives the closer samples ({min(fa, fb) / max(fa, fb):.2f}x the FID of {other})"


def _its(m: Mapping) -> str:
    return ", ".join(str(i) for i in m.get("checkpoints") or [m.get("iterations")])


def _yes(flag: object) -> str:
    return "yes" if flag else "no"


def _fmt(value: object, digits: int = 3) -> str:
    if isinstance(value, bool) or value is None:
        return "n/a"
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}f}" if isinstance(value, float) else "n/a"
