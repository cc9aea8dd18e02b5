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

import argparse
import dataclasses
from pathlib import Path

import pandas as pd
import torch

from transferlab.checkpoint import stage_checkpoint
from transferlab.config import BaseParams, load_section
from transferlab.data.prepared import load_prepared
from transferlab.device import resolve_device
from transferlab.errors import exit_on_user_error
from transferlab.gan.params import GanParams
from transferlab.gan.run import check_inputs, run_variant
from transferlab.io import atomic_dir, atomic_file, read_json
from transferlab.metrics import write_metrics
from transferlab.models.registry import CARD_FILE, load_backbone
from transferlab.seeding import seed_everything


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--variant", required=True, help="name of a gan.configs entry in params.yaml"
    )
    parser.add_argument("--data", type=Path, required=True, help="prepared dataset directory")
    parser.add_argument(
        "--classifier", type=Path, required=True, help="model directory of the domain classifier"
    )
    parser.add_argument(
        "--model-out", type=Path, required=True, help="directory for generator weights"
    )
    parser.add_argument("--figures", type=Path, required=True, help="directory for sample sheets")
    parser.add_argument("--metrics", type=Path, required=True)
    parser.add_argument("--plots", type=Path, required=True)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    return parser


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    args = get_args_parser().parse_args(argv)
    base = load_section(BaseParams, "base", args.params)
    params = load_section(GanParams, "gan", args.params)
    params.config(args.variant)  # unknown variant: one line, before any loading
    gen = seed_everything(base.seed)
    if params.num_threads:
        torch.set_num_threads(params.num_threads)
    device = resolve_device(base.device)
    data = load_prepared(args.data)
    classifier = load_backbone(args.classifier)
    check_inputs(params, args.variant, data, read_json(args.classifier / CARD_FILE))
    shared = dataclasses.replace(params, variants=(), configs={})  # other variants don't matter
    checkpoint = stage_checkpoint(
        "gan", args.variant, base, shared, params.config(args.variant), args.data, params_path=args.params
    )
    with atomic_dir(args.model_out) as model_tmp, atomic_dir(args.figures) as fig_tmp:
        metrics, rows = run_variant(
            params,
            args.variant,
            data,
            classifier,
            gen=gen,
            device=device,
            model_dir=model_tmp,
            figures_dir=fig_tmp,
            checkpoint=checkpoint,
        )
        with atomic_file(args.plots) as fh:
            pd.DataFrame(rows).to_csv(fh, index=False, float_format="%.6g")
        write_metrics(args.metrics, metrics, seed=base.seed, device=device)
    checkpoint.discard()


if __name__ == "__main__":
    main()
