"""fcn: the classifier's FC layers as convolutions, run on canvases larger than the training size.

Inputs:  data/models/<fcn.backbone>, data/prepared/<fcn.dataset>
Outputs: metrics/fcn.json (equivalence on standard inputs, score-map size, tile-region accuracy),
         reports/figures/fcn/ (canvas_<i>.png: canvas and argmax score map)
Params:  base, fcn
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from transferlab.config import BaseParams, load_section
from transferlab.data.prepared import load_prepared
from transferlab.errors import exit_on_user_error
from transferlab.fcn import FcnParams, run_fcn
from transferlab.io import atomic_dir
from transferlab.metrics import write_metrics
from transferlab.models.registry import load_backbone
from transferlab.seeding import seed_everything


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-root", type=Path, default=Path("data/models"))
    parser.add_argument("--prepared-root", type=Path, default=Path("data/prepared"))
    parser.add_argument("--metrics", type=Path, required=True)
    parser.add_argument("--figures", type=Path, required=True, help="figure directory to write")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    return parser


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    args = get_args_parser().parse_args(argv)
    base = load_section(BaseParams, "base", args.params)
    cfg = load_section(FcnParams, "fcn", args.params)
    seed_everything(base.seed)
    backbone = load_backbone(args.models_root / cfg.backbone, cfg.backbone)
    ds = load_prepared(args.prepared_root / cfg.dataset, mmap=True)
    start = time.perf_counter()
    with atomic_dir(args.figures) as tmp:
        metrics = run_fcn(backbone, ds, cfg, base.seed, tmp)
    metrics["seconds"] = round(time.perf_counter() - start, 3)
    write_metrics(args.metrics, metrics, seed=base.seed, device="cpu")


if __name__ == "__main__":
    main()
