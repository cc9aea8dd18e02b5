"""fgsm@<backbone>: accuracy under untargeted FGSM over an epsilon grid in [0, 1] pixel space.

Inputs:  data/models/<backbone> (--model), data/prepared/<explain.dataset> (--data)
Outputs: --metrics JSON (clean accuracy, accuracy per epsilon), --plot JSON rows
         {epsilon, epsilon_255, accuracy} (a DVC plot), --figure PNG of the same curve
Params:  base, explain.fgsm
"""

from __future__ import annotations

import argparse
from pathlib import Path

from transferlab.config import BaseParams, load_section
from transferlab.device import resolve_device
from transferlab.errors import exit_on_user_error
from transferlab.explain.adversarial import FGSMParams, run_fgsm
from transferlab.explain.common import load_inputs
from transferlab.explain.figures import curve_figure
from transferlab.figures import save_figure
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
    parser.add_argument("--plot", type=Path, required=True, help="curve JSON (DVC plot) to write")
    parser.add_argument("--figure", type=Path, required=True, help="PNG to write")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    return parser


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    args = get_args_parser().parse_args(argv)
    base = load_section(BaseParams, "base", args.params)
    seed_everything(base.seed)
    params = load_section(FGSMParams, "explain.fgsm", args.params)
    inputs = load_inputs(args.model, args.data, resolve_device(base.device))
    result = run_fgsm(inputs, params, base.seed)
    xs = [r["epsilon_255"] for r in result.curve]
    fig = curve_figure([("FGSM epsilon (x 1/255)", xs, [r["accuracy"] for r in result.curve])])
    save_figure(fig, args.figure)
    write_json(args.plot, result.curve)
    write_metrics(args.metrics, result.metrics, seed=base.seed, device=resolve_device(base.device))
    acc = ", ".join(f"{r['epsilon_255']:g}/255: {r['accuracy']:.3f}" for r in result.curve)
    print(f"fgsm {result.metrics['backbone']}: {acc} ({result.metrics['seconds']:.1f}s)")


if __name__ == "__main__":
    main()
