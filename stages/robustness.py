"""robustness@<run>: accuracy under Gaussian noise and blur; the most confident mistakes.

Inputs:  data/models/<backbone> (--model), data/prepared/<dataset> (--data; both from explain.runs.<run>)
Outputs: --metrics JSON (clean accuracy, accuracy per noise sigma and blur radius, the
         confident mistakes), --plot-noise / --plot-blur JSON rows (DVC plots),
         --figure PNG (both curves), --gallery PNG (most confidently wrong test images)
Params:  base, explain.robustness with explain.runs.<--run>'s overrides (the method's params for that run)
"""

from __future__ import annotations

from transferlab.explain.common import load_inputs, method_params
from transferlab.explain.figures import curve_figure
from transferlab.explain.params import RobustnessParams
from transferlab.explain.robustness import run
from transferlab.figures import image_grid, save_figure
from transferlab.io import write_json
from transferlab.stage import DATA, EXPLAIN_RUN, METRICS, MODEL, Job, Stage, path

STAGE = Stage(
    __doc__, MODEL, DATA, EXPLAIN_RUN, METRICS,
    path("--plot-noise", "noise curve JSON (DVC plot)"),
    path("--plot-blur", "blur curve JSON (DVC plot)"),
    path("--figure", "curves PNG to write"),
    path("--gallery", "confident-mistakes PNG to write"),
    section=(RobustnessParams, "explain.robustness"),
)  # fmt: skip


@STAGE.main
def main(job: Job[RobustnessParams]) -> None:
    args = job.args
    inputs = load_inputs(args.model, args.data, job.device)
    result = run(inputs, method_params(job.file, job.args.run, "robustness"), job.seed)
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
    job.write_metrics(args.metrics, result.metrics)
    m = result.metrics
    print(
        f"robustness {m['backbone']}: clean {m['clean_accuracy']:.3f}, mean noise "
        f"{m['mean_noise_accuracy']:.3f}, mean blur {m['mean_blur_accuracy']:.3f}, {m['seconds']:.1f}s"
    )


if __name__ == "__main__":
    main()
