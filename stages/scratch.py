"""Stage ``scratch@<dataset>-<model>``: train a small network from scratch and measure it.

Inputs:   a prepared dataset directory (``--data``, written by ``prepare@<dataset>``).
Outputs:  ``--metrics`` JSON (test accuracy, final train loss, parameter count,
          iterations to reach each training-accuracy threshold, wall seconds);
          ``--plot`` CSV, one row per ``log_every`` iterations (iteration, train_loss,
          train_acc, test_acc), declared as DVC plots;
          ``--figure`` PNG gallery of the test images the model gets wrong with the
          highest confidence (true / predicted / confidence).
Params:   ``base`` (seed, device), ``scratch`` (model configs, thresholds, log_every,
          eval_size, hard_examples).
          ``resume`` (read, not DVC-tracked: checkpoints under data/checkpoints, continue on request).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from transferlab.checkpoint import stage_checkpoint
from transferlab.config import BaseParams, load_section
from transferlab.data.prepared import load_prepared
from transferlab.device import resolve_device
from transferlab.errors import exit_on_user_error
from transferlab.figures import image_grid, save_figure
from transferlab.io import atomic_file
from transferlab.metrics import write_metrics
from transferlab.scratch import ScratchParams, run
from transferlab.seeding import seed_everything

CURVE_COLUMNS = ("iteration", "train_loss", "train_acc", "test_acc")


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="an entry of scratch.models_config")
    parser.add_argument("--data", required=True, type=Path, help="prepared dataset directory")
    parser.add_argument("--metrics", required=True, type=Path, help="metrics JSON to write")
    parser.add_argument("--plot", required=True, type=Path, help="per-iteration curve CSV to write")
    parser.add_argument("--figure", required=True, type=Path, help="hard-examples PNG to write")
    parser.add_argument("--params", default=Path("params.yaml"), type=Path, help="params file")
    return parser


def write_curve(path: Path, rows: list[dict[str, float]]) -> None:
    """The logged curve as CSV (DVC plots read it with x: iteration)."""
    with atomic_file(path) as fh:
        writer = csv.DictWriter(fh, fieldnames=CURVE_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row[k] for k in CURVE_COLUMNS})


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    args = get_args_parser().parse_args(argv)
    base = load_section(BaseParams, "base", args.params)
    seed_everything(base.seed)
    params = load_section(ScratchParams, "scratch", args.params)
    params.spec(args.model)  # unknown model: one-line error before loading anything
    device = resolve_device(base.device)
    ds = load_prepared(args.data)
    checkpoint = stage_checkpoint(
        "scratch", args.metrics.stem, base, params.spec(args.model), params.log_every, params.eval_size,
        args.data, params_path=args.params,
    )
    result = run(ds, args.model, params, base.seed, device, checkpoint=checkpoint)
    fig = image_grid(
        result.test_images[result.hard_indices],
        result.hard_titles,
        ncols=8,
        title=f"{args.model} on {ds.name}: most confident mistakes",
    )
    save_figure(fig, args.figure)
    write_curve(args.plot, result.curve)
    write_metrics(args.metrics, result.metrics, seed=base.seed, device=device)
    checkpoint.discard()
    m = result.metrics
    print(
        f"scratch {args.model} on {ds.name}: test_acc={m['test_acc']:.4f} "
        f"params={m['params']} seconds={m['seconds']:.1f}"
    )


if __name__ == "__main__":
    main()
