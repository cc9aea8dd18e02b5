"""Report section: inside the network (inspect, predict, featuremaps, fcn).

Reads metrics/inspect/*.json, metrics/{predict,featuremaps,fcn}.json, and the tables and
figures those stages write under reports/ (tables/inspect/<arch>.csv,
tables/predict/topk.json, figures/{predict,featuremaps,fcn}/).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from transferlab.io import read_json
from transferlab.report.model import (
    Block,
    Figure,
    Section,
    Table,
    Text,
    read_metrics_dir,
    read_metrics_file,
)

DETAILED = ("vgg16", "vgg_mini")  # per-layer tables shown in full (conv / pool / fc rows)
LAYER_TYPES = ("Conv2d", "MaxPool2d", "AvgPool2d", "Linear")


def _inspect_blocks(metrics_dir: Path, reports_dir: Path) -> list[Block]:
    runs = read_metrics_dir(metrics_dir, "inspect")
    if not runs:
        return []
    rows = [
        {
            "arch": arch,
            "input px": m.get("input_size"),
            "parameters": m.get("params"),
            "published": m.get("published_params"),
            "in FC layers": m.get("params_fc"),
            "GMACs": m.get("gmacs"),
            "published GMACs": m.get("published_gmacs"),
            "receptive field": m.get("receptive_field"),
            "layer calls": m.get("layers"),
        }
        for arch, m in runs.items()
    ]
    for row in rows:  # whole numbers print as such (no 1.38e+08 from a column with blanks)
        for key in ("published", "receptive field"):
            if isinstance(row[key], float) and row[key].is_integer():
                row[key] = int(row[key])
    blocks: list[Block] = [
        Text(
            "**Architectures.** Counted by one forward pass with hooks on every layer. MACs are the "
            "multiply-accumulates of convolutions and fully-connected layers for one image (what "
            "torchvision's published `_ops` counts); `published` columns are torchvision's figures. "
            "Convolution arithmetic: output side ⌊(n + 2p − k)/s⌋ + 1, weights k·k·D·C + C; "
            "`FC-equivalent weights` is what a fully-connected layer mapping the same input to the "
            "same output would need, (D·n·n)·(C·m·m) + C·m·m."
        ),
        Table(pd.DataFrame(rows, dtype=object), "Totals per architecture (weights do not change the counts)."),
    ]
    for arch in DETAILED:
        path = reports_dir / "tables" / "inspect" / f"{arch}.csv"
        if arch not in runs or not path.is_file():
            continue
        frame = pd.read_csv(path)
        frame = frame[frame["type"].isin(LAYER_TYPES)].fillna("")
        frame = frame.rename(columns={"fc_equivalent_params": "FC-equivalent weights", "output_shape": "output"})
        for col in ("params", "macs"):
            frame[col] = frame[col].astype(int)
        for col in ("rf", "jump", "FC-equivalent weights"):
            frame[col] = [int(v) if v != "" else "" for v in frame[col]]
        blocks.append(
            Table(
                frame.drop(columns=["type"]).reset_index(drop=True),
                f"{arch} per layer (convolution, pooling, fully-connected; rf = receptive field in pixels, "
                f"jump = product of strides). Full table: reports/tables/inspect/{arch}.csv.",
            )
        )
    return blocks


def _predict_blocks(metrics_dir: Path, reports_dir: Path) -> list[Block]:
    m = read_metrics_file(metrics_dir / "predict.json")
    if m is None:
        return []
    blocks: list[Block] = [Text("**Top-k predictions** with softmax probabilities.")]
    if "heldout_acc" in m:
        blocks.append(
            Text(
                f"`{m['backbone']}` on {m['heldout_images']} held-out test images: accuracy "
                f"{m['heldout_acc']:.4f}; the {m['shown']} shown include {m['shown_wrong']} it gets wrong "
                f"(mean top-1 probability {m['shown_mean_top1_prob']:.3f})."
            )
        )
        if (reports_dir / "figures" / "predict" / "heldout.png").is_file():
            blocks.append(Figure("figures/predict/heldout.png", "Held-out images: top-1 class and probability (✗ = wrong)."))
    if "photos" in m:
        domain = (
            "ImageNet classes"
            if m.get("photos_in_domain")
            else "**out of domain**: the backbone only knows its own classes, and still answers"
        )
        blocks.append(
            Text(
                f"Photos: {m['photos']} read, {m['photos_skipped']} files skipped (not images or unreadable); "
                f"{domain} (mean top-1 probability {m['photos_mean_top1_prob']:.3f})."
            )
        )
        lists_path = reports_dir / "tables" / "predict" / "topk.json"
        if lists_path.is_file():
            rows = [
                {"photo": r["file"], **{f"top {i + 1}": f"{t['class']} ({t['prob']:.3f})" for i, t in enumerate(r["top"])}}
                for r in read_json(lists_path).get("photos", [])
            ]
            if rows:
                blocks.append(Table(pd.DataFrame(rows), "Top-k classes per photo."))
        if (reports_dir / "figures" / "predict" / "photos.png").is_file():
            blocks.append(Figure("figures/predict/photos.png", "Photos with the top-1 class and probability."))
    return blocks


def _featuremap_blocks(metrics_dir: Path) -> list[Block]:
    m = read_metrics_file(metrics_dir / "featuremaps.json")
    if m is None:
        return []
    return [
        Text(
            f"**Feature maps** of `{m['backbone']}`: first convolution `{m['first_conv']}` "
            f"({'x'.join(map(str, m['first_conv_shape']))}); ReLU (`{m['first_relu']}`) zeroes "
            f"{m['relu_zero_fraction']:.1%} of its maps on these images ({m['conv_negative_fraction']:.1%} "
            f"of the raw convolution outputs are negative); `{m['deep_layer']}` "
            f"({'x'.join(map(str, m['deep_shape']))}) is {m['deep_zero_fraction']:.1%} zeros."
        ),
        Figure("figures/featuremaps/first_conv.png", "First convolution without and with ReLU, two images side by side."),
        Figure("figures/featuremaps/deep.png", f"{m['deep_layer']}: the most active channels."),
    ]


def _fcn_blocks(metrics_dir: Path, reports_dir: Path) -> list[Block]:
    m = read_metrics_file(metrics_dir / "fcn.json")
    if m is None:
        return []
    blocks: list[Block] = [
        Text(
            f"**Fully-connected layers as convolutions** (`{m['backbone']}`): on standard "
            f"{m['tile_size']} px inputs the converted net matches the original (max |difference| "
            f"{m['max_abs_diff_standard']:.2g}); on {m['canvas_size']} px canvases of "
            f"{m['tile_size']} px tiles it returns a {m['map_size'][0]}x{m['map_size'][1]} score map "
            f"(one position per {m['map_jump']:g} px, each seeing {m['map_receptive_field']:g} px). "
            f"Over {m['tiles']} tiles, the summed scores of the positions centred in a tile's central half "
            f"pick its true class in {m['tile_region_acc']:.1%} of tiles; single positions (straddling ones "
            f"included) agree with the tile under their centre {m['position_acc']:.1%} of the time."
        )
    ]
    figures = sorted((reports_dir / "figures" / "fcn").glob("canvas_*.png"))
    blocks += [Figure(f"figures/fcn/{p.name}", "Canvas and the argmax of the score map.") for p in figures]
    return blocks


def build(metrics_dir: Path, reports_dir: Path) -> Section | None:
    metrics_dir, reports_dir = Path(metrics_dir), Path(reports_dir)
    blocks = (
        _inspect_blocks(metrics_dir, reports_dir)
        + _predict_blocks(metrics_dir, reports_dir)
        + _featuremap_blocks(metrics_dir)
        + _fcn_blocks(metrics_dir, reports_dir)
    )
    return Section("Inside the network", blocks) if blocks else None
