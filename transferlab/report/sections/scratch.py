"""Report section: training from scratch (linear vs CNN, ReLU vs sigmoid, hard examples)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from transferlab.report.model import Figure, Section, Table, Text, read_metrics_dir

THRESHOLD_PREFIX = "iters_to_train_acc_"


def _threshold_label(key: str) -> str:
    return key[len(THRESHOLD_PREFIX) :].replace("_", ".") + "%"


def _iters(value: int | None, total: int) -> int | str:
    """Iterations to a threshold, or 'not reached (> total)'."""
    return value if value is not None else f"not reached (> {total:,})"


def _activation_sentences(runs: dict[str, dict], keys: list[str]) -> list[str]:
    """One sentence per (dataset, arch) trained with both ReLU and sigmoid."""
    by_pair: dict[tuple[str, str], dict[str, dict]] = {}
    for m in runs.values():
        by_pair.setdefault((m["dataset"], m["arch"]), {})[m.get("activation", "")] = m
    lines = []
    for (dataset, arch), acts in sorted(by_pair.items()):
        if "relu" not in acts or "sigmoid" not in acts:
            continue
        relu, sig = acts["relu"], acts["sigmoid"]
        parts = []
        for key in keys:
            r = _iters(relu.get(key), relu["iterations"])
            s = _iters(sig.get(key), sig["iterations"])
            parts.append(f"{_threshold_label(key)}: ReLU {r}, sigmoid {s}")
        lines.append(
            f"- `{arch}` on `{dataset}` — iterations to reach training accuracy "
            + "; ".join(parts)
            + f" (test accuracy ReLU {relu['test_acc']:.4f}, sigmoid {sig['test_acc']:.4f})."
        )
    return lines


def build(metrics_dir: Path, reports_dir: Path) -> Section | None:
    runs = read_metrics_dir(metrics_dir, "scratch")
    if not runs:
        return None
    keys = sorted(
        {k for m in runs.values() for k in m if k.startswith(THRESHOLD_PREFIX)},
        key=lambda k: float(k[len(THRESHOLD_PREFIX) :].replace("_", ".")),
    )
    rows = []
    for m in runs.values():
        row = {
            "dataset": m["dataset"],
            "model": m["model"],
            "arch": m["arch"],
            "activation": m.get("activation", ""),
            "params": m["params"],
            "train images": m["train_images"],
            "iterations": m["iterations"],
            "test acc": m["test_acc"],
        }
        for key in keys:
            row[f"iters to {_threshold_label(key)} train acc"] = _iters(m.get(key), m["iterations"])
        row["seconds"] = round(float(m["seconds"]), 1)
        rows.append(row)
    frame = pd.DataFrame(rows).sort_values(["dataset", "test acc"], ascending=[True, False])
    frame = frame.reset_index(drop=True)
    best = tuple(int(i) for i in frame.groupby("dataset")["test acc"].idxmax())
    blocks: list = [
        Text(
            "Small networks trained from scratch with the shared training loop. Test accuracy "
            "is on the whole test split; 'iters to X% train acc' is the first logged iteration "
            "whose running training accuracy (over the last `log_every` iterations) reaches X%, "
            "read off the per-iteration curves (DVC plots `plots/scratch/*.csv`)."
        ),
        Table(
            frame,
            "Training from scratch: size, accuracy and convergence (best per dataset in bold).",
            best,
        ),
    ]
    sentences = _activation_sentences(runs, keys)
    if sentences:
        blocks.append(Text("ReLU vs sigmoid:\n\n" + "\n".join(sentences)))
    for item, m in runs.items():
        rel = f"figures/scratch/{item}_hard.png"
        if (Path(reports_dir) / rel).is_file():
            blocks.append(
                Figure(
                    rel,
                    f"`{m['model']}` on `{m['dataset']}`: the test images it gets wrong with the "
                    "highest confidence (true / predicted (confidence)).",
                )
            )
    return Section("Training from scratch", blocks)
