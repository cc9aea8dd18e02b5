"""The package's layout: one wing per part of the study over a small shared core, and no import cycle.

The import graph is read from the source with ``ast`` (every ``import`` / ``from ... import``,
including those inside functions), so a cycle hidden behind a function-level import fails too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "transferlab"

# the shared core that may sit at the top level of transferlab/ (everything else lives in a wing)
CORE = {
    "__init__.py", "cli.py", "config.py", "device.py", "errors.py", "figures.py", "gpu_slots.py",
    "io.py", "metrics.py", "params_check.py", "provenance.py", "seeding.py", "stage.py",
}  # fmt: skip
WINGS = {"data", "explain", "gan", "inside", "models", "report", "scratch", "training", "transfer"}


def module_files(package: Path = PACKAGE) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package (a package is its ``__init__``)."""
    out = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _owner(name: str, modules: dict[str, Path]) -> str | None:
    """The module of the package that ``name`` (a module, or a name inside one) resolves to."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package modules ``module`` imports anywhere in its file."""
    is_package = path.name == "__init__.py"
    found: set[str | None] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(_owner(alias.name, modules) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the module's package, up level - 1
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            for alias in node.names:  # `from pkg import mod` imports the module pkg.mod
                full = f"{source}.{alias.name}"
                found.add(full if full in modules else _owner(source, modules))
    found.discard(None)
    found.discard(module)
    return {name for name in found if name is not None}


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    modules = module_files(package)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as ``[a, b, ..., a]``, or None (depth-first search, white/grey/black)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_package_has_no_import_cycle():
    graph = import_graph()
    assert len(graph) > 50 and graph["transferlab.stage"] >= {"transferlab.config", "transferlab.params_check"}
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_config_imports_nothing_of_the_study():
    assert import_graph()["transferlab.config"] == {"transferlab.errors"}


def test_the_cycle_finder_sees_a_cycle_through_a_function_level_import(tmp_path):
    pkg = tmp_path / "transferlab"
    (pkg / "wing").mkdir(parents=True)
    (pkg / "__init__.py").write_text('"""pkg"""\n')
    (pkg / "wing" / "__init__.py").write_text('"""wing"""\n')
    (pkg / "config.py").write_text("def f():\n    from transferlab.wing import params\n")
    (pkg / "wing" / "params.py").write_text("from .helpers import x\n")
    (pkg / "wing" / "helpers.py").write_text("from transferlab.config import f\nx = 1\n")
    graph = import_graph(pkg)
    assert graph["transferlab.config"] == {"transferlab.wing.params"}
    assert graph["transferlab.wing.params"] == {"transferlab.wing.helpers"}
    assert find_cycle(graph) == [
        "transferlab.config", "transferlab.wing.params", "transferlab.wing.helpers", "transferlab.config"
    ]
    (pkg / "config.py").write_text("def f():\n    pass\n")  # the function-level import removed
    assert find_cycle(import_graph(pkg)) is None


def test_the_top_level_holds_only_the_shared_core_and_the_wings():
    files = {p.name for p in PACKAGE.glob("*.py")}
    assert files == CORE, f"move into a wing: {sorted(files - CORE)}; missing from the core: {sorted(CORE - files)}"
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert folders == WINGS


@pytest.mark.parametrize("wing", sorted(WINGS))
def test_each_wing_says_what_it_is_and_which_stages_use_it(wing):
    init = PACKAGE / wing / "__init__.py"
    body = ast.parse(init.read_text()).body
    assert len(body) == 1, f"{init}: a docstring only (a package marker that is not a DVC dep)"
    doc = ast.get_docstring(ast.parse(init.read_text())) or ""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    named = [name for name in stages if f"``{name}" in doc]
    assert named, f"{init}: name the dvc.yaml stages that use the wing (as ``<stage>...``)"
