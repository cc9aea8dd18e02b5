"""extract@<dataset>-<backbone>: features for every cut layer of a backbone, in one forward pass.

Inputs:  data/prepared/<dataset>, data/models/<backbone>
Outputs: data/features/<dataset>-<backbone>/ (one float16 array per layer, labels, split),
         metrics/extract/<dataset>-<backbone>.json (dims per layer, images/s)
Params:  base, backbones.<backbone> (its `layers`), extract
"""

from __future__ import annotations

import argparse
from pathlib import Path

from transferlab.config import BaseParams, load_entry, load_section
from transferlab.device import resolve_device
from transferlab.errors import exit_on_user_error
from transferlab.extraction import ExtractParams, extract_dataset
from transferlab.io import atomic_dir
from transferlab.metrics import write_metrics
from transferlab.pretrain_params import BackboneEntry
from transferlab.seeding import seed_everything


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, required=True, help="prepared dataset directory")
    parser.add_argument("--backbone", required=True, help="name of a backbones: entry in params.yaml")
    parser.add_argument("--models-root", type=Path, default=Path("data/models"))
    parser.add_argument("--out", type=Path, required=True, help="feature directory to write")
    parser.add_argument("--metrics", type=Path, required=True)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    return parser


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    args = get_args_parser().parse_args(argv)
    base = load_section(BaseParams, "base", args.params)
    entry = load_entry(BackboneEntry, "backbones", args.backbone, "backbone", args.params)
    cfg = load_section(ExtractParams, "extract", args.params)
    seed_everything(base.seed)
    with atomic_dir(args.out) as tmp:
        metrics = extract_dataset(
            args.dataset, args.models_root / args.backbone, entry.layers, cfg, tmp, device_name=base.device
        )
    write_metrics(args.metrics, metrics, seed=base.seed, device=resolve_device(base.device))


if __name__ == "__main__":
    main()
