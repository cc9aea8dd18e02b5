"""fcn: the classifier's FC layers as convolutions, run on canvases larger than the training size.

Inputs:  data/models/<fcn.backbone>, data/prepared/<fcn.dataset>
Outputs: metrics/fcn.json (equivalence on standard inputs, score-map size, tile-region accuracy),
         reports/figures/fcn/ (canvas_<i>.png: canvas and argmax score map)
Params:  base, fcn
"""

from __future__ import annotations

from transferlab.inside.common import figures_stage
from transferlab.inside.fcn import run_fcn
from transferlab.inside.params import FcnParams
from transferlab.stage import FIGURES, METRICS, MODELS_ROOT, PREPARED_ROOT, Job, Stage

STAGE = Stage(__doc__, MODELS_ROOT, PREPARED_ROOT, METRICS, FIGURES, section=(FcnParams, "fcn"))


@STAGE.main
def main(job: Job[FcnParams]) -> None:
    figures_stage(job, lambda backbone, ds, folder: run_fcn(backbone, ds, job.params, job.seed, folder))


if __name__ == "__main__":
    main()
