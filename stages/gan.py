"""gan@<variant>: train one GAN variant and score it with the pipeline's domain classifier.

Inputs:  data/prepared/<gan.dataset>, data/models/<gan.classifier> (a backbone pretrained
         on the same dataset: FID on its features, conditional accuracy with its predictions)
Outputs: data/models/gan/<variant>/ (generator.pt, generator_it<N>.pt per checkpoint),
         reports/figures/gan/<variant>/it<N>.png (sample sheets from one fixed latent grid),
         metrics/gan/<variant>.json, plots/gan/<variant>.csv (loss_D, loss_G, D_x, D_G_z)
Params:  base, gan (shared knobs + gan.configs.<variant>)
         resume (read, not DVC-tracked: checkpoint to data/checkpoints/<stage>/<item>, continue on request)
"""

from __future__ import annotations

import dataclasses

import pandas as pd
import torch

from transferlab.data.prepared import load_prepared
from transferlab.gan.params import GanParams
from transferlab.gan.run import check_inputs, run_variant
from transferlab.io import atomic_dir, atomic_file, read_json
from transferlab.models.registry import CARD_FILE, load_backbone
from transferlab.stage import DATA, METRICS, Job, Stage, name, path
from transferlab.training.checkpoint import stage_checkpoint

STAGE = Stage(
    __doc__, name("--variant", "name of a gan.configs entry in params.yaml"), DATA,
    path("--classifier", "model directory of the domain classifier"),
    path("--model-out", "directory for generator weights"), path("--figures", "directory for sample sheets"),
    METRICS, path("--plots", "loss curves CSV to write"),
    section=(GanParams, "gan"),
    headline={"fid": "fid", "cond_acc": "conditional_accuracy"},  # cond_acc: conditional variants only
)  # fmt: skip


@STAGE.main
def main(job: Job[GanParams]) -> None:
    args, params = job.args, job.params
    params.config(args.variant)  # unknown variant: one line, before any loading
    if params.num_threads:
        torch.set_num_threads(params.num_threads)
    device = job.device
    data = load_prepared(args.data)
    classifier = load_backbone(args.classifier)
    check_inputs(params, args.variant, data, read_json(args.classifier / CARD_FILE))
    shared = dataclasses.replace(params, variants=(), configs={})  # other variants don't matter
    checkpoint = stage_checkpoint(
        "gan", args.variant, job.base, shared, params.config(args.variant), args.data, params_path=args.params
    )
    with atomic_dir(args.model_out) as model_tmp, atomic_dir(args.figures) as fig_tmp:
        metrics, rows = run_variant(
            params,
            args.variant,
            data,
            classifier,
            gen=job.generator,
            device=device,
            model_dir=model_tmp,
            figures_dir=fig_tmp,
            checkpoint=checkpoint,
        )
        with atomic_file(args.plots) as fh:
            pd.DataFrame(rows).to_csv(fh, index=False, float_format="%.6g")
        job.write_metrics(args.metrics, metrics)
    checkpoint.discard()


if __name__ == "__main__":
    main()
