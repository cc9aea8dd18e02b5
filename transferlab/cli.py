"""The ``transferlab`` command: small helpers around the pipeline.

``transferlab layers <arch|backbone-name>`` lists the valid cut points (what
``backbones.<name>.layers`` accepts), one per line: name, FX graph node, and the
per-image output shape at the architecture's input size. A backbone name is looked
up in ``params.yaml``'s ``backbones`` registry (read without the whole-file check, so it
helps fix a bad ``layers`` entry).

``transferlab check-params [params.yaml]`` checks a whole params file (every section,
registry entry and cross-reference, that no section is missing, and that this machine has
the ``base.device`` asked for) before ``dvc repro``:
one ``error:`` line per problem and exit 2, or a one-line summary and exit 0.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from transferlab.config import read_params
from transferlab.errors import UserError, exit_on_user_error, unknown_name
from transferlab.models.registry import ARCHS, describe_cut_points


def _arch_of(target: str, params_path: Path) -> str:
    """``target`` itself if it is an architecture, else the arch of that params.yaml backbone."""
    if target in ARCHS:
        return target
    backbones: Mapping = {}
    if params_path.is_file():
        backbones = read_params(params_path).get("backbones") or {}
    entry = backbones.get(target)
    if isinstance(entry, Mapping) and "arch" in entry:
        arch = str(entry["arch"])
        if arch not in ARCHS:
            raise unknown_name(f"backbone architecture (backbones.{target}.arch)", arch, ARCHS)
        return arch
    raise unknown_name("backbone", target, dict.fromkeys([*ARCHS, *backbones]))


def cmd_layers(args: argparse.Namespace) -> int:
    arch = _arch_of(args.target, Path(args.params))
    rows = describe_cut_points(arch)
    width = max(len(name) for name, _, _ in rows)
    node_width = max(len(node) for _, node, _ in rows)
    for name, node, shape in rows:
        print(f"{name:<{width}}  {node:<{node_width}}  {'x'.join(str(s) for s in shape)}")
    return 0


def cmd_check_params(args: argparse.Namespace) -> int:
    from transferlab.params_check import params_errors, summary  # imports every section's dataclass

    params = read_params(args.params)
    errors = params_errors(params, complete=True) or _device_errors(params)
    for err in errors:
        print(f"error: {err}", file=sys.stderr)
    if errors:
        raise SystemExit(2)
    print(f"{args.params}: {summary(params)}")
    return 0


def _device_errors(params: Mapping) -> list[UserError]:
    """``base.device`` (a valid name by now) that this machine cannot run, as a stage would refuse it."""
    from transferlab.device import device_unavailable  # imports torch

    base = params.get("base") or {}
    problem = device_unavailable(str(base.get("device", "auto")))
    return [UserError(f"params.yaml: base.device: {problem}")] if problem else []


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="transferlab", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    layers = sub.add_parser("layers", help="list an architecture's cut points (name, FX node, output shape)")
    layers.add_argument("target", help=f"architecture ({', '.join(ARCHS)}) or a backbone name in params.yaml")
    layers.add_argument("--params", default="params.yaml", help="params file to look backbone names up in")
    layers.set_defaults(func=cmd_layers)
    check = sub.add_parser("check-params", help="check a whole params file before dvc repro (one error line per problem)")
    check.add_argument("params", nargs="?", default="params.yaml", help="params file (default: params.yaml)")
    check.set_defaults(func=cmd_check_params)
    return parser


@exit_on_user_error
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
