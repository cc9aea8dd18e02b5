"""finetune@<dataset>-<backbone>-<mode>: replace the backbone's last layer and train the head or everything.

Inputs:  data/prepared/<dataset>, data/models/<backbone>
Outputs: metrics/finetune/<dataset>-<backbone>-<mode>.json (best/final test accuracy, wall seconds),
         plots/finetune/<dataset>-<backbone>-<mode>.json (per-epoch train/test loss and accuracy),
         reports/figures/finetune/<dataset>-<backbone>-<mode>.png (the same curves)
Params:  base (seed, device), backbones.<backbone> (extract_size: the input side, as extract;
         finetune_modes: a mode not listed writes a `skipped` record instead of training), finetune (optimiser, epochs, augmentation; `modes` only shapes the matrix)
         resume (read, not DVC-tracked: checkpoint to data/checkpoints/<stage>/<item>, continue on request)
"""

from __future__ import annotations

import torch

from transferlab.data.prepared import load_prepared
from transferlab.errors import UserError
from transferlab.figures import save_figure
from transferlab.io import write_json
from transferlab.models.params import BackboneEntry
from transferlab.stage import METRICS, Job, Stage, name, path
from transferlab.training.checkpoint import stage_checkpoint
from transferlab.transfer.finetune import curves_figure, run, skipped_figure
from transferlab.transfer.params import MODES, FinetuneParams

STAGE = Stage(
    __doc__, path("--dataset", "prepared dataset directory"), path("--backbone", "backbone directory (data/models/<name>)"),
    name("--mode", "head | full"), METRICS, path("--plots", "per-epoch curve JSON to write"),
    path("--figure", "curves PNG to write"),
    section=(FinetuneParams, "finetune"),
    headline={"test_acc": "final_test_acc"},  # a skipped mode has none
)  # fmt: skip


@STAGE.main
def main(job: Job[FinetuneParams]) -> None:
    args, params = job.args, job.params
    if args.mode not in MODES:
        raise UserError(f"unknown fine-tuning mode {args.mode!r}; valid modes: {', '.join(MODES)}")
    device = job.device
    if params.threads is not None:
        torch.set_num_threads(params.threads)
    ds = load_prepared(args.dataset)
    entry = job.entry(BackboneEntry, "backbones", args.backbone.name, "backbone")
    if entry.finetune_modes is not None and args.mode not in entry.finetune_modes:
        reason = (
            f"skipped: backbones.{args.backbone.name}.finetune_modes is [{', '.join(entry.finetune_modes)}] "
            "(see its comment in params.yaml for why)"
        )
        write_json(args.plots, [])
        save_figure(skipped_figure(f"fine-tune {args.backbone.name} on {ds.name} ({args.mode}): {reason}"), args.figure)
        job.write_metrics(args.metrics, {"dataset": ds.name, "backbone": args.backbone.name, "mode": args.mode, "skipped": reason})
        print(f"finetune {args.backbone.name} {args.mode} on {ds.name}: {reason}")
        return
    checkpoint = stage_checkpoint(
        "finetune", args.metrics.stem, job.base, params, args.mode, args.dataset, args.backbone, params_path=args.params
    )
    result = run(
        ds, args.backbone, args.mode, params, job.seed, device, checkpoint=checkpoint, input_size=entry.extract_size
    )
    m = result.metrics
    title = f"fine-tune {m['backbone']} on {m['dataset']} ({args.mode}): final test acc {m['final_test_acc']:.3f}"
    save_figure(curves_figure(result.curve, title), args.figure)
    write_json(args.plots, result.curve)
    job.write_metrics(args.metrics, m)
    checkpoint.discard()
    print(
        f"finetune {m['backbone']} {args.mode} on {m['dataset']}: best test acc {m['best_test_acc']:.4f} "
        f"(epoch {m['best_epoch']}), final {m['final_test_acc']:.4f}, {m['seconds']:.1f}s"
    )


if __name__ == "__main__":
    main()
