"""prepare@<dataset>: turn one dataset-registry entry into the prepared format.

Inputs:  whatever the entry's source reads (installed files, a folder, a download cached
         in --cache-dir, default data/downloads: git-ignored, not a DVC output)
Outputs: data/prepared/<dataset>/ (images.npy, labels.npy, is_test.npy, meta.json),
         metrics/prepare/<dataset>.json (train/test counts, classes, image shape,
         skipped files by reason, seconds)
Params:  base.seed, datasets.<dataset>
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from transferlab.config import BaseParams, load_section, read_params
from transferlab.data.prepared import save_prepared
from transferlab.data.registry import (
    DEFAULT_CACHE_DIR,
    dataset_entry,
    parse_entry,
    prepare_dataset,
    prepare_metrics,
    skipped_warning,
)
from transferlab.errors import exit_on_user_error
from transferlab.io import atomic_dir
from transferlab.metrics import write_metrics
from transferlab.seeding import seed_everything


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True, help="name of a datasets: entry in params.yaml")
    parser.add_argument(
        "--out", type=Path, required=True, help="prepared dataset directory to write"
    )
    parser.add_argument("--metrics", type=Path, required=True, help="metrics JSON to write")
    parser.add_argument(
        "--cache-dir", type=Path, default=DEFAULT_CACHE_DIR, help="where downloads land"
    )
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    return parser


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    args = get_args_parser().parse_args(argv)
    base = load_section(BaseParams, "base", args.params)
    entry = dataset_entry(read_params(args.params), args.dataset)
    parse_entry(args.dataset, entry)  # validate before any work
    seed_everything(base.seed)
    start = time.perf_counter()
    ds = prepare_dataset(args.dataset, entry, seed=base.seed, cache_dir=args.cache_dir)
    with atomic_dir(args.out) as tmp:
        save_prepared(ds, tmp)
        write_metrics(args.metrics, prepare_metrics(ds, time.perf_counter() - start), seed=base.seed, device="cpu")
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
