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

import csv
from pathlib import Path

from transferlab.data.prepared import load_prepared
from transferlab.figures import image_grid, save_figure
from transferlab.io import atomic_file
from transferlab.scratch.params import ScratchParams
from transferlab.scratch.run import run
from transferlab.stage import DATA, METRICS, Job, Stage, name, path
from transferlab.training.checkpoint import stage_checkpoint

CURVE_COLUMNS = ("iteration", "train_loss", "train_acc", "test_acc")

STAGE = Stage(
    __doc__, name("--model", "an entry of scratch.models_config"), DATA, METRICS,
    path("--plot", "per-iteration curve CSV to write"), path("--figure", "hard-examples PNG to write"),
    section=(ScratchParams, "scratch"),
    headline={"test_acc": "test_acc"},
)  # fmt: skip


def write_curve(path: Path, rows: list[dict[str, float]]) -> None:
    """The logged curve as CSV (DVC plots read it with x: iteration)."""
    with atomic_file(path) as fh:
        writer = csv.DictWriter(fh, fieldnames=CURVE_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row[k] for k in CURVE_COLUMNS})


@STAGE.main
def main(job: Job[ScratchParams]) -> None:
    args, params = job.args, job.params
    params.spec(args.model)  # unknown model: one-line error before loading anything
    device = job.device
    ds = load_prepared(args.data)
    checkpoint = stage_checkpoint(
        "scratch", args.metrics.stem, job.base, params.spec(args.model), params.log_every, params.eval_size,
        args.data, params_path=args.params,
    )
    result = run(ds, args.model, params, job.seed, device, checkpoint=checkpoint)
    fig = image_grid(
        result.test_images[result.hard_indices],
        result.hard_titles,
        ncols=8,
        title=f"{args.model} on {ds.name}: most confident mistakes",
    )
    save_figure(fig, args.figure)
    write_curve(args.plot, result.curve)
    job.write_metrics(args.metrics, result.metrics)
    checkpoint.discard()
    m = result.metrics
    print(
        f"scratch {args.model} on {ds.name}: test_acc={m['test_acc']:.4f} "
        f"params={m['params']} seconds={m['seconds']:.1f}"
    )


if __name__ == "__main__":
    main()
