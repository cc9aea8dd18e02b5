"""tsne@<dataset>-<backbone>: 2-D t-SNE of one cut layer's cached features, coloured by class.

Inputs:  data/features/<dataset>-<backbone> (the feature cache; the network never runs here)
Outputs: metrics/tsne/<dataset>-<backbone>.json (points, layer, KL divergence, 2-D kNN test accuracy),
         reports/figures/tsne/<dataset>-<backbone>.png
Params:  base (seed), tsne (layer null = the backbone's deepest extracted layer)
"""

from __future__ import annotations

import dataclasses

from threadpoolctl import threadpool_limits

from transferlab.errors import UserError
from transferlab.figures import save_figure
from transferlab.stage import FEATURES, FIGURE, METRICS, Job, Stage
from transferlab.transfer.feature_cache import load_features
from transferlab.transfer.params import TsneParams
from transferlab.transfer.tsne import run, tsne_figure

STAGE = Stage(__doc__, FEATURES, METRICS, FIGURE, section=(TsneParams, "tsne"))


@STAGE.main
def main(job: Job[TsneParams]) -> None:
    args, params = job.args, job.params
    cache = load_features(args.features, mmap=True)
    have = list(cache.meta.get("layers", {}))  # network order
    if params.layer is None and have:  # null: this backbone's deepest extracted layer
        params = dataclasses.replace(params, layer=have[-1])
    if params.layer not in have:
        raise UserError(
            f"tsne.layer {params.layer!r} was not extracted into {args.features} (it has {', '.join(have)}); "
            "pick one of those or add it to the backbone's layers"
        )
    with threadpool_limits(limits=1):  # exact, seeded, and no BLAS oversubscription on a shared CPU
        result = run(cache.feats[params.layer], cache.labels, cache.is_test, params, job.seed)
    meta = cache.meta
    classes = list(meta.get("classes") or sorted({str(c) for c in result.labels}))
    m = {"dataset": meta.get("dataset", ""), "backbone": meta.get("backbone", ""), **result.metrics}
    knn = "" if m["knn_test_acc"] is None else f", {m['knn_k']}-NN test acc in 2-D {m['knn_test_acc']:.3f}"
    title = f"t-SNE of {m['backbone']} {params.layer} features on {m['dataset']} ({m['points']} points{knn})"
    save_figure(tsne_figure(result, classes, title), args.figure)
    job.write_metrics(args.metrics, m, device="cpu")
    print(f"tsne {m['backbone']} {params.layer} on {m['dataset']}: {m['points']} points, KL {m['kl_divergence']:.3f}{knn}")


if __name__ == "__main__":
    main()
