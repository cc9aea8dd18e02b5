"""fgsm@<run>: accuracy under untargeted FGSM over an epsilon grid in [0, 1] pixel space.

Inputs:  data/models/<backbone> (--model), data/prepared/<dataset> (--data; both from explain.runs.<run>)
Outputs: --metrics JSON (clean accuracy, accuracy per epsilon), --plot JSON rows
         {epsilon, epsilon_255, accuracy} (a DVC plot), --figure PNG of the same curve
Params:  base, explain.fgsm with explain.runs.<--run>'s overrides (the method's params for that run)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from transferlab.explain.adversarial import run_fgsm
from transferlab.explain.common import load_inputs, method_params
from transferlab.explain.figures import curve_figure
from transferlab.explain.params import FGSMParams
from transferlab.figures import save_figure
from transferlab.io import write_json
from transferlab.stage import DATA, EXPLAIN_RUN, FIGURE, METRICS, MODEL, Job, Stage, path

PLOT = path("--plot", "curve JSON (DVC plot) to write")
def accuracy_at_8_255(metrics: Mapping[str, Any]) -> float | None:
    """FGSM accuracy at epsilon 8/255, the course's budget (an epsilon within 0.01 grey level of it:
    params give 0.03137); None when explain.fgsm.epsilons lacks it."""
    for key, acc in metrics["accuracy"].items():
        if abs(float(key.removeprefix("eps_")) * 255 - 8) < 0.01:
            return acc
    return None


STAGE = Stage(
    __doc__, MODEL, DATA, EXPLAIN_RUN, METRICS, PLOT, FIGURE, section=(FGSMParams, "explain.fgsm"),
    headline={"acc_at_8/255": accuracy_at_8_255},
)  # fmt: skip


@STAGE.main
def main(job: Job[FGSMParams]) -> None:
    args = job.args
    inputs = load_inputs(args.model, args.data, job.device)
    result = run_fgsm(inputs, method_params(job.file, job.args.run, "fgsm"), job.seed)
    xs = [r["epsilon_255"] for r in result.curve]
    fig = curve_figure([("FGSM epsilon (x 1/255)", xs, [r["accuracy"] for r in result.curve])])
    save_figure(fig, args.figure)
    write_json(args.plot, result.curve)
    job.write_metrics(args.metrics, result.metrics)
    acc = ", ".join(f"{r['epsilon_255']:g}/255: {r['accuracy']:.3f}" for r in result.curve)
    print(f"fgsm {result.metrics['backbone']}: {acc} ({result.metrics['seconds']:.1f}s)")


if __name__ == "__main__":
    main()
