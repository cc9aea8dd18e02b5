"""One measured figure with its target and verdict, and the table that prints them.

Every benchmark module returns a list of :class:`Figure`; ``python -m benchmarks``
prints them all in one table so a run on any machine shows what was measured there,
what the target is, and whether it is met.
"""

from __future__ import annotations

import dataclasses
import json
import platform
from collections.abc import Callable, Sequence

import torch


@dataclasses.dataclass(frozen=True)
class Figure:
    """A measured value, how it compares with its target, and the numbers behind it."""

    name: str  # what was measured, e.g. "one pass vs per layer, vgg_mini"
    value: float
    unit: str  # e.g. "x", "%", "s", "MiB"
    target: str  # human-readable target, e.g. ">= 0.8 x ideal (3.10x)"
    met: bool | None  # None: informational, no target
    detail: str = ""  # the raw measurements the value was computed from

    @property
    def verdict(self) -> str:
        return {True: "MET", False: "NOT MET", None: "-"}[self.met]


def at_least(name: str, value: float, bound: float, unit: str, detail: str = "") -> Figure:
    """A figure whose target is ``value >= bound``."""
    return Figure(name, value, unit, f">= {bound:g}{unit}", value >= bound, detail)


def at_most(name: str, value: float, bound: float, unit: str, detail: str = "") -> Figure:
    """A figure whose target is ``value <= bound``."""
    return Figure(name, value, unit, f"<= {bound:g}{unit}", value <= bound, detail)


def machine() -> str:
    """One line describing where the figures were measured."""
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (
        f"{platform.machine()} {platform.processor() or ''} {torch.get_num_threads()} torch threads, "
        f"{gpu}; torch {torch.__version__}, Python {platform.python_version()}"
    ).replace("  ", " ")


def print_table(figures: Sequence[Figure], emit: Callable[[str], None] = print) -> None:
    """Print the figures as an aligned table, then their details."""
    rows = [(f.name, f"{f.value:.3g} {f.unit}".strip(), f.target, f.verdict) for f in figures]
    header = ("figure", "measured", "target", "verdict")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        emit("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    for f in figures:
        if f.detail:
            emit(f"  {f.name}: {f.detail}")


def to_json(figures: Sequence[Figure]) -> str:
    """The figures as JSON (for `--json`), with the machine line."""
    return json.dumps(
        {"machine": machine(), "figures": [dataclasses.asdict(f) | {"verdict": f.verdict} for f in figures]},
        indent=2,
    )
