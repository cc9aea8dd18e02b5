"""report: the one generated report, built only from metrics JSON and the figures stages wrote.

Inputs:  metrics/ (the JSON of the stages dvc.yaml declares with today's params: a target
         dropped from the study is not shown, its old files are), reports/figures/
Outputs: reports/report.md, reports/report.html (self-contained: figures embedded)
Params:  the matrix lists (which stages exist), read through dvc.yaml; no other (so
         `dvc exp run -S ...` followed by report always reflects the metrics)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from transferlab.errors import exit_on_user_error
from transferlab.report.build import write_report
from transferlab.report.study import study_outputs
from transferlab.stage import Stage, path

STAGE = Stage(__doc__, path("--metrics", default="metrics"), path("--reports", default="reports"), params_file=False)


@exit_on_user_error
def main(argv: Sequence[str] | None = None) -> None:
    args = STAGE.parse(argv)
    md, html = write_report(args.metrics, args.reports, study_outputs(Path.cwd()))
    print(f"wrote {md} and {html}")


if __name__ == "__main__":
    main()
