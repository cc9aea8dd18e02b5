"""adversarial@<run>: targeted iterative adversarial examples ("fooling images").

Inputs:  data/models/<backbone> (--model), data/prepared/<dataset> (--data; both from explain.runs.<run>)
Outputs: --metrics JSON (success rate, mean iterations, mean L-inf / L2 of the perturbation,
         target confidence; the same per image), --figure PNG (original / perturbation
         magnified / adversarial, one column per image)
Params:  base, explain.adversarial with explain.runs.<--run>'s overrides (the method's params for that run)
"""

from __future__ import annotations

from transferlab.explain.adversarial import run_targeted
from transferlab.explain.common import load_inputs, method_params
from transferlab.explain.figures import views_figure
from transferlab.explain.params import AdversarialParams
from transferlab.figures import save_figure
from transferlab.stage import DATA, EXPLAIN_RUN, FIGURE, METRICS, MODEL, Job, Stage

STAGE = Stage(
    __doc__, MODEL, DATA, EXPLAIN_RUN, METRICS, FIGURE, section=(AdversarialParams, "explain.adversarial"),
    headline={"attack_success": "success_rate"},
)  # fmt: skip


@STAGE.main
def main(job: Job[AdversarialParams]) -> None:
    args = job.args
    params = method_params(job.file, args.run, "adversarial")
    inputs = load_inputs(args.model, args.data, job.device)
    inputs.class_index(params.target_class)  # unknown target: one line, before any work
    result = run_targeted(inputs, params, job.seed)
    fig = views_figure(
        [
            ("original", result.original, None),
            (f"perturbation x{result.magnification:.2g}", result.perturbation, None),
            ("adversarial", result.adversarial, None),
        ],
        result.titles,
    )
    save_figure(fig, args.figure)
    job.write_metrics(args.metrics, result.metrics)
    m = result.metrics
    print(
        f"adversarial {m['backbone']} -> {m['target_name']}: success {m['success_rate']:.2f}, "
        f"mean iterations {m['mean_iterations']}, mean L-inf {m['mean_linf']}, {m['seconds']:.1f}s"
    )


if __name__ == "__main__":
    main()
