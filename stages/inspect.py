"""inspect@<arch>: per-layer table of an architecture (shapes, parameters, receptive field, MACs).

Inputs:  none (the architecture is built from the registry; weights do not matter for counting)
Outputs: metrics/inspect/<arch>.json (totals, torchvision's published figures beside them),
         reports/tables/inspect/<arch>.csv (one row per leaf-module call)
Params:  base.seed, inspect.input_size
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

from transferlab.config import BaseParams, load_section
from transferlab.errors import exit_on_user_error
from transferlab.inspect import inspect_arch
from transferlab.inspect_params import InspectParams
from transferlab.io import atomic_file
from transferlab.metrics import write_metrics
from transferlab.models.registry import get_arch
from transferlab.seeding import seed_everything


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", required=True, help="architecture name from the backbone registry")
    parser.add_argument("--metrics", type=Path, required=True, help="totals JSON to write")
    parser.add_argument("--table", type=Path, required=True, help="per-layer CSV to write")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    return parser


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    args = get_args_parser().parse_args(argv)
    base = load_section(BaseParams, "base", args.params)
    cfg = load_section(InspectParams, "inspect", args.params)
    get_arch(args.arch)  # unknown name -> one line listing the valid ones, before any work
    seed_everything(base.seed)
    start = time.perf_counter()
    metrics, table = inspect_arch(args.arch, cfg.input_size)
    metrics["seconds"] = round(time.perf_counter() - start, 3)
    with atomic_file(args.table) as fh:
        writer = csv.DictWriter(fh, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(table)
    write_metrics(args.metrics, metrics, seed=base.seed, device="cpu")


if __name__ == "__main__":
    main()
