"""pretrain@<backbone>: materialise one backbone-registry entry into data/models/<backbone>.

Inputs:  data/prepared/<pretrain.dataset> (used when the entry's weights are `pretrain`)
Outputs: data/models/<backbone>/ (weights.pt and/or card.json),
         metrics/pretrain/<backbone>.json, plots/pretrain/<backbone>.json (per-epoch curve)
Params:  base, backbones.<backbone>, pretrain
         resume (read, not DVC-tracked: checkpoint to data/checkpoints/<stage>/<item>, continue on request)
"""

from __future__ import annotations

import argparse
from pathlib import Path

from transferlab.checkpoint import stage_checkpoint
from transferlab.config import BaseParams, load_entry, load_section
from transferlab.data.prepared import load_prepared
from transferlab.device import resolve_device
from transferlab.errors import exit_on_user_error
from transferlab.io import atomic_dir, write_json
from transferlab.metrics import write_metrics
from transferlab.pretrain import BackboneEntry, PretrainParams, materialise_backbone
from transferlab.seeding import seed_everything


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", required=True, help="name of a backbones: entry in params.yaml")
    parser.add_argument("--prepared-root", type=Path, default=Path("data/prepared"))
    parser.add_argument("--out", type=Path, required=True, help="model directory to write")
    parser.add_argument("--metrics", type=Path, required=True)
    parser.add_argument("--plots", type=Path, required=True)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    return parser


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    args = get_args_parser().parse_args(argv)
    base = load_section(BaseParams, "base", args.params)
    entry = load_entry(BackboneEntry, "backbones", args.backbone, "backbone", args.params)
    cfg = load_section(PretrainParams, "pretrain", args.params)
    seed_everything(base.seed)
    source = load_prepared(args.prepared_root / cfg.dataset) if entry.weights == "pretrain" else None
    checkpoint = stage_checkpoint("pretrain", args.backbone, base, entry, cfg, params_path=args.params)
    with atomic_dir(args.out) as tmp:
        metrics = materialise_backbone(
            args.backbone, entry, cfg, source, tmp, seed=base.seed, device_name=base.device,
            checkpoint=checkpoint,
        )
    write_json(args.plots, metrics.pop("curve", []))
    write_metrics(args.metrics, metrics, seed=base.seed, device=resolve_device(base.device))
    checkpoint.discard()


if __name__ == "__main__":
    main()
