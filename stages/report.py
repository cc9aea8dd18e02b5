"""report: the one generated report, built only from metrics JSON and the figures stages wrote.

Inputs:  metrics/ (every stage's JSON), reports/figures/
Outputs: reports/report.md, reports/report.html (self-contained: figures embedded)
Params:  none (so `dvc exp run -S ...` followed by report always reflects the metrics)
"""

from __future__ import annotations

from collections.abc import Sequence

from transferlab.errors import exit_on_user_error
from transferlab.report.build import write_report
from transferlab.stage import Stage, path

STAGE = Stage(__doc__, path("--metrics", default="metrics"), path("--reports", default="reports"), params_file=False)


@exit_on_user_error
def main(argv: Sequence[str] | None = None) -> None:
    args = STAGE.parse(argv)
    md, html = write_report(args.metrics, args.reports)
    print(f"wrote {md} and {html}")


if __name__ == "__main__":
    main()
