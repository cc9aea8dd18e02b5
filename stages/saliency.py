"""saliency@<backbone>: saliency maps (gradient of the class score w.r.t. the pixels).

Inputs:  data/models/<backbone> (--model), data/prepared/<explain.dataset> (--data)
Outputs: --metrics JSON (saliency mass on the object vs background, per image and mean),
         --figure PNG (image over its saliency map, one column per image)
Params:  base, explain.saliency
"""

from __future__ import annotations

import argparse
from pathlib import Path

from transferlab.config import BaseParams, load_section
from transferlab.device import resolve_device
from transferlab.errors import exit_on_user_error
from transferlab.explain.common import load_inputs
from transferlab.explain.figures import views_figure
from transferlab.explain.saliency import SaliencyParams, run
from transferlab.figures import save_figure
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
    params = load_section(SaliencyParams, "explain.saliency", args.params)
    inputs = load_inputs(args.model, args.data, resolve_device(base.device))
    result = run(inputs, params, base.seed)
    fig = views_figure(
        [("image", result.images, None), ("saliency", result.maps, "hot")], result.titles
    )
    save_figure(fig, args.figure)
    write_metrics(args.metrics, result.metrics, seed=base.seed, device=resolve_device(base.device))
    m = result.metrics
    print(
        f"saliency {m['backbone']} on {m['dataset']}: mass in object {m['mean_mass_in_object']:.3f} "
        f"(object area {m['mean_object_area']:.3f}), {m['seconds']:.1f}s"
    )


if __name__ == "__main__":
    main()
