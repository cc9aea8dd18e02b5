"""extract@<dataset>-<backbone>: features for every cut layer of a backbone, in one forward pass.

Inputs:  data/prepared/<dataset>, data/models/<backbone>
Outputs: data/features/<dataset>-<backbone>/ (one float16 array per layer, labels, split),
         metrics/extract/<dataset>-<backbone>.json (dims per layer, images/s)
Params:  base, backbones.<backbone> (its `layers`, `extract_size`, `pool`, `pool_size`), extract
"""

from __future__ import annotations

from transferlab.io import atomic_dir
from transferlab.models.params import BackboneEntry
from transferlab.stage import BACKBONE, METRICS, MODELS_ROOT, Job, Stage, path
from transferlab.transfer.extraction import extract_dataset, for_backbone
from transferlab.transfer.params import ExtractParams

STAGE = Stage(
    __doc__, path("--dataset", "prepared dataset directory"), BACKBONE, MODELS_ROOT,
    path("--out", "feature directory to write"), METRICS,
    section=(ExtractParams, "extract"),
)  # fmt: skip


@STAGE.main
def main(job: Job[ExtractParams]) -> None:
    args = job.args
    entry = job.entry(BackboneEntry, "backbones", args.backbone, "backbone")
    cfg = for_backbone(job.params, entry)
    with atomic_dir(args.out) as tmp:
        metrics = extract_dataset(
            args.dataset, args.models_root / args.backbone, entry.layers, cfg, tmp,
            device_name=job.base.device, input_size=entry.extract_size,
        )  # fmt: skip
    job.write_metrics(args.metrics, metrics)


if __name__ == "__main__":
    main()
