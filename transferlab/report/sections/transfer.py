"""Report section: the transfer-learning table per dataset x backbone (SVM grid, heads, fine-tuning, baselines).

Built only from metrics JSON (classify, classify-rows, finetune, tsne) and the figures
those stages wrote, so after `dvc exp run -S classify...` + `report` it shows that run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from transferlab.report.model import Figure, Section, Table, Text, backbone_order, read_metrics_dir

COLUMNS = [
    "method", "layer", "dim", "PCA", "PCA comps", "PCA var", "kernel", "C",
    "CV picked", "cv acc", "test acc", "fit s", "predict s",
]


def _svm_row(r: dict[str, Any], method: str) -> dict[str, Any]:
    return {
        "method": method,
        "layer": r["layer"],
        "dim": r["dim"],
        "PCA": r["pca"].removeprefix("pca="),
        "PCA comps": r["pca_components"],
        "PCA var": r["pca_variance"],
        "kernel": r["kernel"],
        "C": r["C"],
        "CV picked": "yes" if r["cv_picked"] else "",
        "cv acc": r["cv_acc"],
        "test acc": r["test_acc"],
        "fit s": r["fit_seconds"],
        "predict s": r["predict_seconds"],
    }


def _best_by_cv(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return rows[max(range(len(rows)), key=lambda i: (rows[i]["cv_acc"], -i))]  # ties: first in grid order


def _frame(rows: list[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
    """Object-dtype frame (ints stay ints), missing cells empty."""
    return pd.DataFrame([[r.get(c) for c in columns] for r in rows], columns=columns, dtype=object)


def _figure(reports_dir: Path, rel: str, caption: str) -> list[Figure]:
    return [Figure(rel, caption)] if (Path(reports_dir) / rel).is_file() else []


def _table(
    item: str, details: dict[str, Any], runs: dict[str, dict[str, Any]], finetunes: list[dict[str, Any]]
) -> Table:
    """One course-style table: SVM grid by layer, softmax head, fine-tuning, baselines; best by CV in bold."""
    rows = details["rows"]
    feature_rows = [r for r in rows if r["source"] == "features"]
    layer_order = list(dict.fromkeys(r["layer"] for r in feature_rows))
    kernel_order = list(details["params"]["kernels"])
    best = rows[details["best_index"]]
    ordered = sorted(
        feature_rows,
        key=lambda r: (layer_order.index(r["layer"]), kernel_order.index(r["kernel"]), r["C"], r["pca"] != "pca=none", r["pca"]),
    )
    out = [_svm_row(r, "SVM") for r in ordered]
    highlight = [i for i, r in enumerate(ordered) if r is best]
    for h in details.get("softmax_head", []):
        out.append({"method": "softmax head", "layer": h["layer"], "dim": h["dim"], "C": h["C"],
                    "test acc": h["test_acc"], "fit s": h["fit_seconds"], "predict s": h["predict_seconds"]})
    for f in finetunes:
        if "skipped" in f:
            out.append({"method": f"fine-tune {f['mode']}", "kernel": f["skipped"]})
            continue
        out.append({"method": f"fine-tune {f['mode']}", "layer": "all" if f["mode"] == "full" else "head only",
                    "test acc": f["final_test_acc"], "cv acc": None, "fit s": f["seconds"],
                    "kernel": f"{f['optimizer']} lr={f['lr']:g}, {f['epochs']} ep"})
    pixel_rows = [r for r in rows if r["source"] == "pixels" and r["cv_picked"]]
    out += [_svm_row(r, "baseline: raw pixels") for r in pixel_rows]
    for other, od in runs.items():
        if other == item or od["dataset"] != details["dataset"]:
            continue
        orows = [r for r in od["rows"] if r["source"] == "features"]
        for layer in dict.fromkeys(r["layer"] for r in orows):
            out.append(_svm_row(_best_by_cv([r for r in orows if r["layer"] == layer]), f"baseline: {od['backbone']}"))
    frame = _frame(out, COLUMNS)
    caption = (
        f"{details['dataset']} on {details['backbone']} features: every cut layer x kernel x C x PCA; "
        f"bold = best by cross-validation on the train split ({best['layer']} {best['kernel']} C={best['C']:g} "
        f"{best['pca']}; chosen by CV accuracy, not test accuracy). Softmax head = multinomial logistic "
        "regression on the same features; fine-tune rows train the network itself (test acc after the last "
        "epoch); baselines: raw-pixel SVM (CV-picked C per kernel/PCA) and the other backbones' best row per "
        "layer. fit s = kernel matrix + SVM fit on the train split."
    )
    return Table(frame, caption, tuple(highlight))


def side_by_side(summaries: dict[str, dict[str, Any]]) -> Table | None:
    """Best-by-CV test accuracy per target (rows) and backbone (columns), raw pixels last."""
    by_target: dict[str, dict[str, Any]] = {}
    for m in summaries.values():
        if "dataset" not in m or "backbone" not in m:
            continue
        row = by_target.setdefault(m["dataset"], {"target": m["dataset"]})
        row[m["backbone"]] = m.get("best", {}).get("test_acc")
        row.setdefault("raw pixels", m.get("pixels_best", {}).get("test_acc"))
    if not by_target:
        return None
    backbones = sorted({k for r in by_target.values() for k in r} - {"target", "raw pixels"}, key=backbone_order)
    columns = ["target", *backbones, "raw pixels"]
    caption = (
        "Transfer side by side: test accuracy of the SVM row picked by cross-validation, per target and "
        "backbone. Each pretrained backbone sits next to its untrained copy (same architecture, seeded random "
        "weights), so the gap is what pretraining buys. vgg_mini is pretrained here on Fashion-MNIST's train "
        "split, so on the Fashion-MNIST target it is in domain, not transferred; efficientnet_lite0 learned "
        "on ImageNet photos."
    )
    return Table(_frame([by_target[t] for t in sorted(by_target)], columns), caption)


def build(metrics_dir: Path, reports_dir: Path) -> Section | None:
    summaries = read_metrics_dir(metrics_dir, "classify")
    runs = read_metrics_dir(metrics_dir, "classify-rows")
    finetune = read_metrics_dir(metrics_dir, "finetune")
    tsne = read_metrics_dir(metrics_dir, "tsne")
    if not runs and not finetune and not tsne:
        return None
    blocks: list[Any] = [
        Text(
            "Transfer by feature extraction and by fine-tuning. For each cut layer, a scikit-learn pipeline "
            "(StandardScaler, optional PCA keeping a variance fraction, SVM) is fitted on cached features; "
            "C is picked per layer/kernel/PCA by stratified k-fold cross-validation on the train split only, "
            "and every grid point is also scored on the test split so the whole table is visible."
        )
    ]
    summary = []
    items = sorted(set(runs) | {f"{m['dataset']}-{m['backbone']}" for m in finetune.values()} | set(tsne))
    for item in items:
        s, d = summaries.get(item, {}), runs.get(item)
        fts = {m["mode"]: m for m in finetune.values() if f"{m['dataset']}-{m['backbone']}" == item}
        best = s.get("best", {})
        heads = s.get("softmax_head", {})
        summary.append({
            "dataset-backbone": item,
            "best by CV": f"{best['layer']} {best['kernel']} C={best['C']:g} {best['pca']}" if best else None,
            "its cv acc": best.get("cv_acc"),
            "its test acc": best.get("test_acc"),
            "best softmax head": max((h["test_acc"] for h in heads.values()), default=None),
            "fine-tune head": fts.get("head", {}).get("final_test_acc"),
            "fine-tune full": fts.get("full", {}).get("final_test_acc"),
            "raw pixels (best by CV)": s.get("pixels_best", {}).get("test_acc"),
            "t-SNE kNN acc": tsne.get(item, {}).get("knn_test_acc"),
        })
    side = side_by_side(summaries)
    if side is not None:
        blocks.append(side)
    blocks.append(Table(_frame(summary, list(summary[0])),
                        "Summary: test accuracy of each approach (SVM row chosen by cross-validation)."))
    for item in items:
        d = runs.get(item)
        fts = sorted((m for m in finetune.values() if f"{m['dataset']}-{m['backbone']}" == item), key=lambda m: m["mode"])
        if d is not None:
            blocks.append(Text(f"**{item}**"))
            blocks.append(_table(item, d, runs, fts))
            blocks += _figure(reports_dir, f"figures/classify/{item}_confusion.png",
                              f"{item}: confusion matrix of the best row by CV on the test split")
            report = d.get("classification_report", {})
            per_class = [{"class": k, **{m: v for m, v in rec.items()}}
                         for k, rec in report.items() if isinstance(rec, dict)]
            if per_class:
                blocks.append(Table(pd.DataFrame(per_class), f"{item}: classification report of the best row by CV (test split)."))
        for f in (f for f in fts if "skipped" not in f):
            name = f"{item}-{f['mode']}"
            blocks += _figure(reports_dir, f"figures/finetune/{name}.png", f"{name}: fine-tuning curves per epoch")
        if item in tsne:
            t = tsne[item]
            blocks += _figure(reports_dir, f"figures/tsne/{item}.png",
                              f"{item}: t-SNE of {t['layer']} ({t['points']} points, KL {t['kl_divergence']:.3f})")
    return Section("Transfer learning: SVMs on deep features, heads and fine-tuning", blocks)
