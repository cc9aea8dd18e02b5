"""predict: top-k classes with softmax probabilities for held-out test images and for photos.

Inputs:  data/models/<predict.backbone>, data/prepared/<predict.dataset> (unless null),
         the photos folder (predict.photos; default scikit-image's bundled photos)
Outputs: metrics/predict.json (held-out accuracy, shown/wrong counts, photos read/skipped),
         reports/tables/predict/topk.json (the top-k lists per image),
         reports/figures/predict/ (heldout.png, photos.png)
Params:  base, predict
"""

from __future__ import annotations

import time

from transferlab.inside.common import section_inputs
from transferlab.inside.params import PredictParams
from transferlab.inside.predict import run_predict
from transferlab.io import atomic_dir, write_json
from transferlab.stage import FIGURES, METRICS, MODELS_ROOT, PREPARED_ROOT, Job, Stage, path

LISTS = path("--lists", "JSON file for the top-k lists")
STAGE = Stage(__doc__, MODELS_ROOT, PREPARED_ROOT, METRICS, LISTS, FIGURES, section=(PredictParams, "predict"))


@STAGE.main
def main(job: Job[PredictParams]) -> None:
    args, cfg = job.args, job.params
    device = job.device
    backbone, ds = section_inputs(job, mmap=False)
    start = time.perf_counter()
    with atomic_dir(args.figures) as tmp:
        metrics, lists = run_predict(backbone, ds, cfg, job.seed, device, tmp)
    metrics["seconds"] = round(time.perf_counter() - start, 3)
    write_json(args.lists, lists)
    job.write_metrics(args.metrics, metrics)


if __name__ == "__main__":
    main()
