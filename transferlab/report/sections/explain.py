"""Report section: explaining and attacking (saliency, adversarial, FGSM, class
visualisation, corruption robustness), from the five explain stages' metrics."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from transferlab.report.model import Figure, Section, Table, Text, backbone_order, read_metrics_dir

STAGES = ("saliency", "adversarial", "fgsm", "classvis", "robustness")


def _grid_table(runs: dict[str, dict], key: str, prefix: str, label: str) -> pd.DataFrame:
    """One row per item, one column per grid point of ``runs[item][key]`` (``prefix_<value>``)."""
    rows = []
    for item in sorted(runs, key=lambda i: (backbone_order(str(runs[i].get("backbone", i))), i)):
        m = runs[item]
        row = {"item": item, "clean acc": m.get("clean_accuracy")}
        grid = sorted(m.get(key, {}).items(), key=lambda kv: float(kv[0][len(prefix) + 1 :]))
        for name, acc in grid:
            row[f"{label}={name[len(prefix) + 1 :]}"] = acc
        rows.append(row)
    return pd.DataFrame(rows)


def _items(all_runs: dict[str, dict[str, dict]]) -> list[str]:
    """Every ``<dataset>-<backbone>`` item, the ImageNet net's first (``backbone_order``)."""
    backbone = {item: m.get("backbone", item) for runs in all_runs.values() for item, m in runs.items()}
    return sorted(backbone, key=lambda item: (backbone_order(str(backbone[item])), item))


LABELS = {"label": "dataset labels", "clean_prediction": "clean top-1"}


def _summary(all_runs: dict[str, dict[str, dict]]) -> pd.DataFrame:
    items = _items(all_runs)
    rows = []
    for item in items:
        sal = all_runs["saliency"].get(item, {})
        adv = all_runs["adversarial"].get(item, {})
        cv = all_runs["classvis"].get(item, {})
        rob = all_runs["robustness"].get(item, {})
        fg = all_runs["fgsm"].get(item, {})
        fg_grid = fg.get("accuracy", {})
        rows.append(
            {
                "item": item,
                "scored against": LABELS.get(rob.get("labels", fg.get("labels"))),
                "saliency vs random weights (Spearman)": sal.get("random_weights_spearman"),
                "saliency mass on object": sal.get("mean_mass_in_object"),
                "object area": sal.get("mean_object_area"),
                "fooling success": adv.get("success_rate"),
                "fooling iterations": adv.get("mean_iterations"),
                "fooling L-inf": adv.get("mean_linf"),
                "fooling L2": adv.get("mean_l2"),
                "FGSM acc (largest eps)": fg_grid[max(fg_grid, key=lambda k: float(k[4:]))]
                if fg_grid
                else None,
                "classvis p start": cv.get("mean_prob_start"),
                "classvis p end": cv.get("mean_prob_end"),
                "clean acc": rob.get("clean_accuracy", fg.get("clean_accuracy")),
                "mean noise acc": rob.get("mean_noise_accuracy"),
                "mean blur acc": rob.get("mean_blur_accuracy"),
            }
        )
    return pd.DataFrame(rows).dropna(axis=1, how="all")


def _figures(reports_dir: Path, all_runs: dict[str, dict[str, dict]]) -> list[Figure]:
    captions = {
        (
            "saliency",
            "",
        ): "Saliency maps: each image (top), |d class score / d pixel| max over channels (middle), and the same "
        "for a copy with re-initialised weights (bottom: Adebayo et al.'s sanity check; a map that survives "
        "randomisation shows the input's edges, not what the network learned).",
        (
            "adversarial",
            "",
        ): "Targeted fooling images: original, perturbation (scaled to show), adversarial image.",
        ("fgsm", ""): "Accuracy under untargeted FGSM vs epsilon (in 1/255 of the pixel range).",
        (
            "classvis",
            "",
        ): "Class-model visualisations from noise, with the target probability reached.",
        ("robustness", ""): "Accuracy under Gaussian noise and Gaussian blur.",
        (
            "robustness",
            "_mistakes",
        ): "Test images the model gets wrong with the highest confidence (true / predicted (confidence)).",
    }
    out = []
    for (stage, suffix), caption in captions.items():
        for item in _items({stage: all_runs[stage]}):
            rel = f"figures/{stage}/{item}{suffix}.png"
            if (Path(reports_dir) / rel).is_file():
                out.append(Figure(rel, f"`{item}`: {caption}"))
    return out


def build(metrics_dir: Path, reports_dir: Path) -> Section | None:
    all_runs = {stage: read_metrics_dir(metrics_dir, stage) for stage in STAGES}
    if not any(all_runs.values()):
        return None
    blocks: list = [
        Text(
            "All gradients and perturbations are taken in the model's input pixel space [0, 1] "
            "(its normalisation sits inside the differentiated module), so an epsilon of 8/255 "
            "means eight grey levels. Items are `<dataset>-<backbone>`, the ImageNet net first: on "
            "scikit-image's photos and crops of them, which are not labelled with ImageNet classes, every "
            "score is against the model's own top-1 on the clean image ('scored against: clean top-1'), so "
            "FGSM 'accuracy' is the rate at which that top-1 survives and robustness the top-1 agreement "
            "under corruption. 'Saliency vs random weights' is the mean Spearman rank correlation between "
            "each map and the map of a re-initialised copy (Adebayo et al. 2018): near 0, the map depends on "
            "the learned weights. 'Saliency mass on object' is the share of the saliency map on object pixels "
            "(brighter than a threshold: meaningful on Fashion-MNIST's black background, not on photos); "
            "compare it with the object's share of the image ('object area'). Fooling iterations and norms "
            "are means over successful images."
        ),
        Table(_summary(all_runs), "Explaining and attacking: one row per dataset-backbone."),
    ]
    if all_runs["fgsm"]:
        blocks.append(
            Table(
                _grid_table(all_runs["fgsm"], "accuracy", "eps", "eps"),
                "Accuracy under FGSM per epsilon ([0, 1] pixels).",
            )
        )
    if all_runs["robustness"]:
        rob = all_runs["robustness"]
        blocks.append(
            Table(
                _grid_table(rob, "noise_accuracy", "sigma", "sigma"),
                "Accuracy under Gaussian noise per sigma ([0, 1] pixels).",
            )
        )
        blocks.append(
            Table(
                _grid_table(rob, "blur_accuracy", "radius", "radius"),
                "Accuracy under Gaussian blur per radius (pixels).",
            )
        )
    if all_runs["classvis"]:
        rows = [
            {"item": item, "class": name, "p start": v["prob_start"], "p end": v["prob_end"]}
            for item in _items({"classvis": all_runs["classvis"]})
            for m in (all_runs["classvis"][item],)
            for name, v in sorted(
                m.get("per_class", {}).items(), key=lambda kv: kv[1]["class_index"]
            )
        ]
        if rows:
            blocks.append(
                Table(
                    pd.DataFrame(rows),
                    "Class visualisation: target-class probability before and after gradient ascent.",
                )
            )
    blocks += _figures(reports_dir, all_runs)
    return Section("Explaining and attacking", blocks)
