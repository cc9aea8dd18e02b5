"""predict: top-k classes with softmax probabilities for held-out test images and for photos.

Inputs:  data/models/<predict.backbone>, data/prepared/<predict.dataset> (unless null),
         the photos folder (predict.photos; default scikit-image's bundled photos)
Outputs: metrics/predict.json (held-out accuracy, shown/wrong counts, photos read/skipped),
         reports/tables/predict/topk.json (the top-k lists per image),
         reports/figures/predict/ (heldout.png, photos.png)
Params:  base, predict
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from transferlab.config import BaseParams, load_section
from transferlab.data.prepared import load_prepared
from transferlab.device import resolve_device
from transferlab.errors import exit_on_user_error
from transferlab.io import atomic_dir, write_json
from transferlab.metrics import write_metrics
from transferlab.models.registry import load_backbone
from transferlab.predict import PredictParams, run_predict
from transferlab.seeding import seed_everything


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-root", type=Path, default=Path("data/models"))
    parser.add_argument("--prepared-root", type=Path, default=Path("data/prepared"))
    parser.add_argument("--metrics", type=Path, required=True)
    parser.add_argument("--lists", type=Path, required=True, help="JSON file for the top-k lists")
    parser.add_argument("--figures", type=Path, required=True, help="figure directory to write")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    return parser


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    args = get_args_parser().parse_args(argv)
    base = load_section(BaseParams, "base", args.params)
    cfg = load_section(PredictParams, "predict", args.params)
    seed_everything(base.seed)
    device = resolve_device(base.device)
    backbone = load_backbone(args.models_root / cfg.backbone, cfg.backbone)
    ds = load_prepared(args.prepared_root / cfg.dataset) if cfg.dataset is not None else None
    start = time.perf_counter()
    with atomic_dir(args.figures) as tmp:
        metrics, lists = run_predict(backbone, ds, cfg, base.seed, device, tmp)
    metrics["seconds"] = round(time.perf_counter() - start, 3)
    write_json(args.lists, lists)
    write_metrics(args.metrics, metrics, seed=base.seed, device=device)


if __name__ == "__main__":
    main()
