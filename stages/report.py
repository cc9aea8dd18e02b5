"""report: the one generated report, built only from metrics JSON and the figures stages wrote.

Inputs:  metrics/ (every stage's JSON), reports/figures/
Outputs: reports/report.md, reports/report.html (self-contained: figures embedded)
Params:  none (so `dvc exp run -S ...` followed by report always reflects the metrics)
"""

from __future__ import annotations

import argparse
from pathlib import Path

from transferlab.errors import exit_on_user_error
from transferlab.report.build import write_report


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metrics", type=Path, default=Path("metrics"))
    parser.add_argument("--reports", type=Path, default=Path("reports"))
    return parser


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    args = get_args_parser().parse_args(argv)
    md, html = write_report(args.metrics, args.reports)
    print(f"wrote {md} and {html}")


if __name__ == "__main__":
    main()
