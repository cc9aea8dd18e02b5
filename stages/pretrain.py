"""pretrain@<backbone>: materialise one backbone-registry entry into data/models/<backbone>.

Inputs:  data/prepared/<pretrain.dataset> (used when the entry's weights are `pretrain`)
Outputs: data/models/<backbone>/ (weights.pt and/or card.json),
         metrics/pretrain/<backbone>.json, plots/pretrain/<backbone>.json (per-epoch curve)
Params:  base, backbones.<backbone>, pretrain
         resume (read, not DVC-tracked: checkpoint to data/checkpoints/<stage>/<item>, continue on request)
"""

from __future__ import annotations

from transferlab.data.prepared import load_prepared
from transferlab.io import atomic_dir, write_json
from transferlab.models.params import BackboneEntry, PretrainParams
from transferlab.models.pretrain import materialise_backbone
from transferlab.stage import BACKBONE, METRICS, PREPARED_ROOT, Job, Stage, path
from transferlab.training.checkpoint import stage_checkpoint

STAGE = Stage(
    __doc__, BACKBONE, PREPARED_ROOT, path("--out", "model directory to write"), METRICS,
    path("--plots", "per-epoch curve JSON to write"),
    section=(PretrainParams, "pretrain"),
    headline={"test_acc": "test_acc"},  # pretrained on pretrain.dataset (none for a backbone not pretrained here)
)  # fmt: skip


@STAGE.main
def main(job: Job[PretrainParams]) -> None:
    args, base, cfg = job.args, job.base, job.params
    entry = job.entry(BackboneEntry, "backbones", args.backbone, "backbone")
    source = load_prepared(args.prepared_root / cfg.dataset) if entry.weights == "pretrain" else None
    checkpoint = stage_checkpoint("pretrain", args.backbone, base, entry, cfg, params_path=args.params)
    with atomic_dir(args.out) as tmp:
        metrics = materialise_backbone(
            args.backbone, entry, cfg, source, tmp, seed=base.seed, device_name=base.device,
            checkpoint=checkpoint,
        )
    write_json(args.plots, metrics.pop("curve", []))
    job.write_metrics(args.metrics, metrics)
    checkpoint.discard()


if __name__ == "__main__":
    main()
