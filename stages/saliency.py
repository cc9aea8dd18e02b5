"""saliency@<run>: saliency maps (gradient of the class score w.r.t. the pixels).

Inputs:  data/models/<backbone> (--model), data/prepared/<dataset> (--data; both from explain.runs.<run>)
Outputs: --metrics JSON (saliency mass on the object vs background, per image and mean; rank
         correlation with the maps of a randomised-weights copy, Adebayo et al. 2018),
         --figure PNG (image, its saliency map, the random-weights map; one column per image)
Params:  base, explain.saliency with explain.runs.<--run>'s overrides (the method's params for that run)
"""

from __future__ import annotations

from transferlab.explain.common import load_inputs, method_params
from transferlab.explain.figures import views_figure
from transferlab.explain.params import SaliencyParams
from transferlab.explain.saliency import run
from transferlab.figures import save_figure
from transferlab.stage import DATA, EXPLAIN_RUN, FIGURE, METRICS, MODEL, Job, Stage

STAGE = Stage(__doc__, MODEL, DATA, EXPLAIN_RUN, METRICS, FIGURE, section=(SaliencyParams, "explain.saliency"))


@STAGE.main
def main(job: Job[SaliencyParams]) -> None:
    args = job.args
    inputs = load_inputs(args.model, args.data, job.device)
    result = run(inputs, method_params(job.file, job.args.run, "saliency"), job.seed)
    fig = views_figure(
        [("image", result.images, None), ("saliency", result.maps, "hot"),
         ("random weights", result.random_maps, "hot")], result.titles
    )
    save_figure(fig, args.figure)
    job.write_metrics(args.metrics, result.metrics)
    m = result.metrics
    print(
        f"saliency {m['backbone']} on {m['dataset']}: mass in object {m['mean_mass_in_object']:.3f} "
        f"(object area {m['mean_object_area']:.3f}), rank correlation with random weights' maps "
        f"{m['random_weights_spearman']:.3f}, {m['seconds']:.1f}s"
    )


if __name__ == "__main__":
    main()
