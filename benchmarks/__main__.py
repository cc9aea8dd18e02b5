"""``python -m benchmarks``: run every benchmark group and print each figure with its target.

Groups (``--only`` picks some): each is a module in this package exposing
``add_arguments(parser)`` (optional) and ``run(args) -> list[Figure]``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from benchmarks.figures import machine, print_table, to_json

GROUPS = ("extraction", "classifiers", "memory", "sweep")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=GROUPS, default=list(GROUPS))
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    modules = {name: importlib.import_module(f"benchmarks.{name}") for name in GROUPS}
    for module in modules.values():
        if hasattr(module, "add_arguments"):
            module.add_arguments(parser)
    args = parser.parse_args(argv)
    print(f"machine: {machine()}", flush=True)
    figures = []
    for name in args.only:
        print(f"== {name}", flush=True)
        group = modules[name].run(args)
        print_table(group)
        figures.extend(group)
    print("== all figures")
    print_table(figures)
    if args.json:
        args.json.write_text(to_json(figures) + "\n")
    sys.exit(0)


if __name__ == "__main__":
    main()
