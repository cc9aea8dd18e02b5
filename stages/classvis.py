"""classvis@<run>: class-model visualisation by regularised gradient ascent from noise.

Inputs:  data/models/<backbone> (--model), data/prepared/<dataset> (--data; both from explain.runs.<run>: its
         channels and class names)
Outputs: --metrics JSON (target probability at start and end, per class and mean),
         --figure PNG (one image per class)
Params:  base, explain.classvis with explain.runs.<--run>'s overrides (the method's params for that run)
"""

from __future__ import annotations

from transferlab.explain.classvis import run
from transferlab.explain.common import load_inputs, method_params
from transferlab.explain.params import ClassVisParams
from transferlab.figures import image_grid, save_figure
from transferlab.stage import DATA, EXPLAIN_RUN, FIGURE, METRICS, MODEL, Job, Stage

STAGE = Stage(__doc__, MODEL, DATA, EXPLAIN_RUN, METRICS, FIGURE, section=(ClassVisParams, "explain.classvis"))


@STAGE.main
def main(job: Job[ClassVisParams]) -> None:
    args = job.args
    params = method_params(job.file, args.run, "classvis")
    inputs = load_inputs(args.model, args.data, job.device)
    for c in params.classes:  # unknown class: one line, before any work
        inputs.class_index(c)
    result = run(inputs, params, job.seed)
    save_figure(image_grid(result.images, result.titles, ncols=5), args.figure)
    job.write_metrics(args.metrics, result.metrics)
    m = result.metrics
    print(
        f"classvis {m['backbone']}: target probability {m['mean_prob_start']:.3f} -> "
        f"{m['mean_prob_end']:.3f} over {m['num_classes']} classes, {m['seconds']:.1f}s"
    )


if __name__ == "__main__":
    main()
