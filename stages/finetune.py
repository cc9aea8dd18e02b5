"""finetune@<dataset>-<backbone>-<mode>: replace the backbone's last layer and train the head or everything.

Inputs:  data/prepared/<dataset>, data/models/<backbone>
Outputs: metrics/finetune/<dataset>-<backbone>-<mode>.json (best/final test accuracy, wall seconds),
         plots/finetune/<dataset>-<backbone>-<mode>.json (per-epoch train/test loss and accuracy),
         reports/figures/finetune/<dataset>-<backbone>-<mode>.png (the same curves)
Params:  base (seed, device), finetune (optimiser, epochs, augmentation; `modes` only shapes the matrix)
         resume (read, not DVC-tracked: checkpoint to data/checkpoints/<stage>/<item>, continue on request)
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import torch

from transferlab.checkpoint import stage_checkpoint
from transferlab.config import BaseParams, load_section
from transferlab.data.prepared import load_prepared
from transferlab.device import resolve_device
from transferlab.errors import UserError, exit_on_user_error
from transferlab.figures import save_figure
from transferlab.finetune import MODES, FinetuneParams, curves_figure, run
from transferlab.io import write_json
from transferlab.metrics import write_metrics
from transferlab.seeding import seed_everything


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, required=True, help="prepared dataset directory")
    parser.add_argument("--backbone", type=Path, required=True, help="backbone directory (data/models/<name>)")
    parser.add_argument("--mode", required=True, help="head | full")
    parser.add_argument("--metrics", type=Path, required=True)
    parser.add_argument("--plots", type=Path, required=True, help="per-epoch curve JSON to write")
    parser.add_argument("--figure", type=Path, required=True, help="curves PNG to write")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    return parser


@exit_on_user_error
def main(argv: Sequence[str] | None = None) -> None:
    args = get_args_parser().parse_args(argv)
    base = load_section(BaseParams, "base", args.params)
    params = load_section(FinetuneParams, "finetune", args.params)
    if args.mode not in MODES:
        raise UserError(f"unknown fine-tuning mode {args.mode!r}; valid modes: {', '.join(MODES)}")
    seed_everything(base.seed)
    device = resolve_device(base.device)
    if params.threads is not None:
        torch.set_num_threads(params.threads)
    ds = load_prepared(args.dataset)
    checkpoint = stage_checkpoint(
        "finetune", args.metrics.stem, base, params, args.mode, args.dataset, args.backbone, params_path=args.params
    )
    result = run(ds, args.backbone, args.mode, params, base.seed, device, checkpoint=checkpoint)
    m = result.metrics
    title = f"fine-tune {m['backbone']} on {m['dataset']} ({args.mode}): final test acc {m['final_test_acc']:.3f}"
    save_figure(curves_figure(result.curve, title), args.figure)
    write_json(args.plots, result.curve)
    write_metrics(args.metrics, m, seed=base.seed, device=device)
    checkpoint.discard()
    print(
        f"finetune {m['backbone']} {args.mode} on {m['dataset']}: best test acc {m['best_test_acc']:.4f} "
        f"(epoch {m['best_epoch']}), final {m['final_test_acc']:.4f}, {m['seconds']:.1f}s"
    )


if __name__ == "__main__":
    main()
