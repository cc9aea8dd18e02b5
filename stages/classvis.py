"""classvis@<backbone>: class-model visualisation by regularised gradient ascent from noise.

Inputs:  data/models/<backbone> (--model), data/prepared/<explain.dataset> (--data: its
         channels and class names)
Outputs: --metrics JSON (target probability at start and end, per class and mean),
         --figure PNG (one image per class)
Params:  base, explain.classvis
"""

from __future__ import annotations

import argparse
from pathlib import Path

from transferlab.config import BaseParams, load_section
from transferlab.device import resolve_device
from transferlab.errors import exit_on_user_error
from transferlab.explain.classvis import ClassVisParams, run
from transferlab.explain.common import load_inputs
from transferlab.figures import image_grid, save_figure
from transferlab.metrics import write_metrics
from transferlab.seeding import seed_everything


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", type=Path, required=True, help="backbone directory (data/models/<name>)"
    )
    parser.add_argument("--data", type=Path, required=True, help="prepared dataset directory")
    parser.add_argument("--metrics", type=Path, required=True, help="metrics JSON to write")
    parser.add_argument("--figure", type=Path, required=True, help="PNG to write")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    return parser


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    args = get_args_parser().parse_args(argv)
    base = load_section(BaseParams, "base", args.params)
    seed_everything(base.seed)
    params = load_section(ClassVisParams, "explain.classvis", args.params)
    inputs = load_inputs(args.model, args.data, resolve_device(base.device))
    for c in params.classes:  # unknown class: one line, before any work
        inputs.class_index(c)
    result = run(inputs, params, base.seed)
    save_figure(image_grid(result.images, result.titles, ncols=5), args.figure)
    write_metrics(args.metrics, result.metrics, seed=base.seed, device=resolve_device(base.device))
    m = result.metrics
    print(
        f"classvis {m['backbone']}: target probability {m['mean_prob_start']:.3f} -> "
        f"{m['mean_prob_end']:.3f} over {m['num_classes']} classes, {m['seconds']:.1f}s"
    )


if __name__ == "__main__":
    main()
