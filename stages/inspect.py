"""inspect@<arch>: per-layer table of an architecture (shapes, parameters, receptive field, MACs).

Inputs:  none (the architecture is built from the registry; weights do not matter for counting)
Outputs: metrics/inspect/<arch>.json (totals, torchvision's published figures beside them),
         reports/tables/inspect/<arch>.csv (one row per leaf-module call)
Params:  base.seed, inspect.input_size
"""

from __future__ import annotations

import csv
import time

from transferlab.inside.inspect import inspect_arch
from transferlab.inside.params import InspectParams
from transferlab.io import atomic_file
from transferlab.models.registry import get_arch
from transferlab.stage import Job, Stage, name, path

STAGE = Stage(
    __doc__,
    name("--arch", "architecture name from the backbone registry"),
    path("--metrics", "totals JSON to write"),
    path("--table", "per-layer CSV to write"),
    section=(InspectParams, "inspect"),
)


@STAGE.main
def main(job: Job[InspectParams]) -> None:
    args = job.args
    get_arch(args.arch)  # unknown name -> one line listing the valid ones, before any work
    start = time.perf_counter()
    metrics, table = inspect_arch(args.arch, job.params.input_size)
    metrics["seconds"] = round(time.perf_counter() - start, 3)
    with atomic_file(args.table) as fh:
        writer = csv.DictWriter(fh, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(table)
    job.write_metrics(args.metrics, metrics, device="cpu")


if __name__ == "__main__":
    main()
