"""saliency@<backbone>: saliency maps (gradient of the class score w.r.t. the pixels).

Inputs:  data/models/<backbone> (--model), data/prepared/<explain.dataset> (--data)
Outputs: --metrics JSON (saliency mass on the object vs background, per image and mean),
         --figure PNG (image over its saliency map, one column per image)
Params:  base, explain.saliency
"""

from __future__ import annotations

from transferlab.explain.common import load_inputs
from transferlab.explain.figures import views_figure
from transferlab.explain.params import SaliencyParams
from transferlab.explain.saliency import run
from transferlab.figures import save_figure
from transferlab.stage import DATA, FIGURE, METRICS, MODEL, Job, Stage

STAGE = Stage(__doc__, MODEL, DATA, METRICS, FIGURE, section=(SaliencyParams, "explain.saliency"))


@STAGE.main
def main(job: Job[SaliencyParams]) -> None:
    args = job.args
    inputs = load_inputs(args.model, args.data, job.device)
    result = run(inputs, job.params, job.seed)
    fig = views_figure(
        [("image", result.images, None), ("saliency", result.maps, "hot")], result.titles
    )
    save_figure(fig, args.figure)
    job.write_metrics(args.metrics, result.metrics)
    m = result.metrics
    print(
        f"saliency {m['backbone']} on {m['dataset']}: mass in object {m['mean_mass_in_object']:.3f} "
        f"(object area {m['mean_object_area']:.3f}), {m['seconds']:.1f}s"
    )


if __name__ == "__main__":
    main()
