"""featuremaps: first-convolution maps (without / with ReLU) and deeper maps on two images.

Inputs:  data/models/<featuremaps.backbone>, data/prepared/<featuremaps.dataset>
Outputs: metrics/featuremaps.json (layers, shapes, share of values ReLU zeroes),
         reports/figures/featuremaps/ (first_conv.png, deep.png)
Params:  base, featuremaps
"""

from __future__ import annotations

from transferlab.inside.common import figures_stage
from transferlab.inside.featuremaps import run_featuremaps
from transferlab.inside.params import FeaturemapsParams
from transferlab.stage import FIGURES, METRICS, MODELS_ROOT, PREPARED_ROOT, Job, Stage

STAGE = Stage(__doc__, MODELS_ROOT, PREPARED_ROOT, METRICS, FIGURES, section=(FeaturemapsParams, "featuremaps"))


@STAGE.main
def main(job: Job[FeaturemapsParams]) -> None:
    figures_stage(job, lambda backbone, ds, folder: run_featuremaps(backbone, ds, job.params, folder))


if __name__ == "__main__":
    main()
