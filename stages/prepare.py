"""prepare@<dataset>: turn one dataset-registry entry into the prepared format.

Inputs:  whatever the entry's source reads (installed files, a folder, a download cached
         in --cache-dir, default data/downloads: git-ignored, not a DVC output)
Outputs: data/prepared/<dataset>/ (images.npy, labels.npy, is_test.npy, meta.json),
         metrics/prepare/<dataset>.json (train/test counts, classes, image shape,
         skipped files by reason, seconds)
Params:  base.seed, datasets.<dataset>
"""

from __future__ import annotations

import sys
import time

from transferlab.data.prepared import save_prepared
from transferlab.data.registry import (
    DEFAULT_CACHE_DIR,
    dataset_entry,
    parse_entry,
    prepare_dataset,
    prepare_metrics,
    skipped_warning,
)
from transferlab.io import atomic_dir
from transferlab.stage import METRICS, Job, Stage, name, path

STAGE = Stage(
    __doc__, name("--dataset", "name of a datasets: entry in params.yaml"),
    path("--out", "prepared dataset directory to write"), METRICS,
    path("--cache-dir", "where downloads land", default=DEFAULT_CACHE_DIR),
)  # fmt: skip


@STAGE.main
def main(job: Job[None]) -> None:
    args = job.args
    entry = dataset_entry(job.file, args.dataset)
    parse_entry(args.dataset, entry)  # validate before any work
    start = time.perf_counter()
    ds = prepare_dataset(args.dataset, entry, seed=job.seed, cache_dir=args.cache_dir)
    with atomic_dir(args.out) as tmp:
        save_prepared(ds, tmp)
        job.write_metrics(args.metrics, prepare_metrics(ds, time.perf_counter() - start), device="cpu")
    warning = skipped_warning(ds, args.out / "meta.json")
    if warning:
        print(warning, file=sys.stderr)
    counts = ds.counts()
    print(
        f"prepared {args.dataset}: {counts['train']} train / {counts['test']} test, "
        f"{len(ds.classes)} classes, images {tuple(ds.images.shape[1:])} -> {args.out}"
    )


if __name__ == "__main__":
    main()
