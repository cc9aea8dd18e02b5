"""tsne@<dataset>-<backbone>: 2-D t-SNE of one cut layer's cached features, coloured by class.

Inputs:  data/features/<dataset>-<backbone> (the feature cache; the network never runs here)
Outputs: metrics/tsne/<dataset>-<backbone>.json (points, layer, KL divergence, 2-D kNN test accuracy),
         reports/figures/tsne/<dataset>-<backbone>.png
Params:  base (seed), tsne
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from threadpoolctl import threadpool_limits

from transferlab.config import BaseParams, load_section
from transferlab.errors import UserError, exit_on_user_error
from transferlab.feature_cache import load_features
from transferlab.figures import save_figure
from transferlab.metrics import write_metrics
from transferlab.seeding import seed_everything
from transferlab.tsne import TsneParams, run, tsne_figure


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=Path, required=True, help="feature cache directory")
    parser.add_argument("--metrics", type=Path, required=True)
    parser.add_argument("--figure", type=Path, required=True, help="t-SNE PNG to write")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    return parser


@exit_on_user_error
def main(argv: Sequence[str] | None = None) -> None:
    args = get_args_parser().parse_args(argv)
    base = load_section(BaseParams, "base", args.params)
    params = load_section(TsneParams, "tsne", args.params)
    seed_everything(base.seed)
    cache = load_features(args.features, mmap=True)
    have = list(cache.meta.get("layers", {}))
    if params.layer not in have:
        raise UserError(
            f"tsne.layer {params.layer!r} was not extracted into {args.features} (it has {', '.join(have)}); "
            "pick one of those or add it to the backbone's layers"
        )
    with threadpool_limits(limits=1):  # exact, seeded, and no BLAS oversubscription on a shared CPU
        result = run(cache.feats[params.layer], cache.labels, cache.is_test, params, base.seed)
    meta = cache.meta
    classes = list(meta.get("classes") or sorted({str(c) for c in result.labels}))
    m = {"dataset": meta.get("dataset", ""), "backbone": meta.get("backbone", ""), **result.metrics}
    knn = "" if m["knn_test_acc"] is None else f", {m['knn_k']}-NN test acc in 2-D {m['knn_test_acc']:.3f}"
    title = f"t-SNE of {m['backbone']} {params.layer} features on {m['dataset']} ({m['points']} points{knn})"
    save_figure(tsne_figure(result, classes, title), args.figure)
    write_metrics(args.metrics, m, seed=base.seed, device="cpu")
    print(f"tsne {m['backbone']} {params.layer} on {m['dataset']}: {m['points']} points, KL {m['kl_divergence']:.3f}{knn}")


if __name__ == "__main__":
    main()
