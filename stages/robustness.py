"""robustness@<backbone>: accuracy under Gaussian noise and blur; the most confident mistakes.

Inputs:  data/models/<backbone> (--model), data/prepared/<explain.dataset> (--data)
Outputs: --metrics JSON (clean accuracy, accuracy per noise sigma and blur radius, the
         confident mistakes), --plot-noise / --plot-blur JSON rows (DVC plots),
         --figure PNG (both curves), --gallery PNG (most confidently wrong test images)
Params:  base, explain.robustness
"""

from __future__ import annotations

import argparse
from pathlib import Path

from transferlab.config import BaseParams, load_section
from transferlab.device import resolve_device
from transferlab.errors import exit_on_user_error
from transferlab.explain.common import load_inputs
from transferlab.explain.figures import curve_figure
from transferlab.explain.robustness import RobustnessParams, run
from transferlab.figures import image_grid, save_figure
from transferlab.io import write_json
from transferlab.metrics import write_metrics
from transferlab.seeding import seed_everything


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", type=Path, required=True, help="backbone directory (data/models/<name>)"
    )
    parser.add_argument("--data", type=Path, required=True, help="prepared dataset directory")
    parser.add_argument("--metrics", type=Path, required=True, help="metrics JSON to write")
    parser.add_argument(
        "--plot-noise", type=Path, required=True, help="noise curve JSON (DVC plot)"
    )
    parser.add_argument("--plot-blur", type=Path, required=True, help="blur curve JSON (DVC plot)")
    parser.add_argument("--figure", type=Path, required=True, help="curves PNG to write")
    parser.add_argument(
        "--gallery", type=Path, required=True, help="confident-mistakes PNG to write"
    )
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    return parser


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    args = get_args_parser().parse_args(argv)
    base = load_section(BaseParams, "base", args.params)
    seed_everything(base.seed)
    params = load_section(RobustnessParams, "explain.robustness", args.params)
    inputs = load_inputs(args.model, args.data, resolve_device(base.device))
    result = run(inputs, params, base.seed)
    fig = curve_figure(
        [
            (
                "Gaussian noise sigma ([0, 1] pixels)",
                [r["sigma"] for r in result.noise_curve],
                [r["accuracy"] for r in result.noise_curve],
            ),
            (
                "Gaussian blur radius (pixels)",
                [r["radius"] for r in result.blur_curve],
                [r["accuracy"] for r in result.blur_curve],
            ),
        ]
    )
    save_figure(fig, args.figure)
    # titles: true / predicted (confidence); the report's caption says so
    save_figure(image_grid(result.gallery, result.gallery_titles, ncols=8), args.gallery)
    write_json(args.plot_noise, result.noise_curve)
    write_json(args.plot_blur, result.blur_curve)
    write_metrics(args.metrics, result.metrics, seed=base.seed, device=resolve_device(base.device))
    m = result.metrics
    print(
        f"robustness {m['backbone']}: clean {m['clean_accuracy']:.3f}, mean noise "
        f"{m['mean_noise_accuracy']:.3f}, mean blur {m['mean_blur_accuracy']:.3f}, {m['seconds']:.1f}s"
    )


if __name__ == "__main__":
    main()
