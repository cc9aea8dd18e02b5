"""adversarial@<backbone>: targeted iterative adversarial examples ("fooling images").

Inputs:  data/models/<backbone> (--model), data/prepared/<explain.dataset> (--data)
Outputs: --metrics JSON (success rate, mean iterations, mean L-inf / L2 of the perturbation,
         target confidence; the same per image), --figure PNG (original / perturbation
         magnified / adversarial, one column per image)
Params:  base, explain.adversarial
"""

from __future__ import annotations

import argparse
from pathlib import Path

from transferlab.config import BaseParams, load_section
from transferlab.device import resolve_device
from transferlab.errors import exit_on_user_error
from transferlab.explain.adversarial import AdversarialParams, run_targeted
from transferlab.explain.common import load_inputs
from transferlab.explain.figures import views_figure
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
    params = load_section(AdversarialParams, "explain.adversarial", args.params)
    inputs = load_inputs(args.model, args.data, resolve_device(base.device))
    inputs.class_index(params.target_class)  # unknown target: one line, before any work
    result = run_targeted(inputs, params, base.seed)
    fig = views_figure(
        [
            ("original", result.original, None),
            (f"perturbation x{result.magnification:.2g}", result.perturbation, None),
            ("adversarial", result.adversarial, None),
        ],
        result.titles,
    )
    save_figure(fig, args.figure)
    write_metrics(args.metrics, result.metrics, seed=base.seed, device=resolve_device(base.device))
    m = result.metrics
    print(
        f"adversarial {m['backbone']} -> {m['target_name']}: success {m['success_rate']:.2f}, "
        f"mean iterations {m['mean_iterations']}, mean L-inf {m['mean_linf']}, {m['seconds']:.1f}s"
    )


if __name__ == "__main__":
    main()
