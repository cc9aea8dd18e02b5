"""The GPU check (issue 22): the default study's stages on one device, then the extraction benchmark.

``scripts/gpu-check.sh`` calls this on a machine with a CUDA GPU (or, slowly, on the CPU). DVC
need not be installed there: the stages come from ``dvc repro --dry --force`` output, saved on a
machine that has DVC (``scripts/gpu-check.sh prepare``) or made here when ``dvc`` is on PATH.
Each command runs in its own fresh working directory, a copy of the project's stages, package,
dvc.yaml and params.yaml with ``base.device`` set to the device under test, so nothing in the
checkout is overwritten. It prints one table (each stage's wall time and exit code, the whole
study's wall time), then ``python -m benchmarks --only extraction`` on the same device, and writes
both to ``<out>/gpu-check.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
COPIED = ("stages", "transferlab", "dvc.yaml", ".dvcignore")
STAGE_LINE = re.compile(r"^Running stage '([^']+)':$")


@dataclasses.dataclass(frozen=True)
class StageCommand:
    """One stage of the study as `dvc repro` would run it: its name and shell command lines."""

    name: str
    commands: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class StageResult:
    """How one stage went: wall seconds and exit code (the first non-zero one of its commands)."""

    name: str
    seconds: float
    returncode: int
    tail: str  # the end of its output when it failed, else ""


def parse_dry_run(text: str) -> list[StageCommand]:
    """The stages of a ``dvc repro --dry --force`` output, in the order DVC would run them."""
    stages: list[StageCommand] = []
    name: str | None = None
    lines: list[str] = []
    for line in text.splitlines() + [""]:
        match = STAGE_LINE.match(line.strip())
        if match or (name and not line.strip()):
            if name:
                stages.append(StageCommand(name, tuple(lines)))
            name, lines = (match.group(1), []) if match else (None, [])
        elif name and line.startswith("> "):
            lines.append(line[2:])
    empty = [s.name for s in stages if not s.commands]
    if empty:
        raise ValueError(f"no command after stage(s) {', '.join(empty)}: not `dvc repro --dry --force` output")
    return stages


def dry_run(root: Path) -> str:
    """``dvc repro --dry --force`` in ``root`` (needs DVC on PATH)."""
    dvc = shutil.which("dvc") or str(Path(sys.executable).with_name("dvc"))
    proc = subprocess.run([dvc, "repro", "--dry", "--force"], cwd=root, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"error: `dvc repro --dry --force` failed in {root}:\n{proc.stderr[-2000:]}")
    return proc.stdout


def make_workdir(root: Path, workdir: Path, device: str) -> Path:
    """A fresh copy of ``root``'s stages, package and dvc.yaml, its params with ``base.device``."""
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    for name in COPIED:
        src = root / name
        if src.is_dir():
            shutil.copytree(src, workdir / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            shutil.copy(src, workdir / name)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params.setdefault("base", {})["device"] = device
    (workdir / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return workdir


def run_stage(stage: StageCommand, workdir: Path, env: dict[str, str]) -> StageResult:
    """Run one stage's commands in ``workdir`` with this Python first on PATH; stop at a failure."""
    start = time.perf_counter()
    for command in stage.commands:
        proc = subprocess.run(command, shell=True, cwd=workdir, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = (proc.stdout + proc.stderr)[-1500:]
            return StageResult(stage.name, time.perf_counter() - start, proc.returncode, tail)
    return StageResult(stage.name, time.perf_counter() - start, 0, "")


def stage_env() -> dict[str, str]:
    """The environment for the stages: ``python`` is this interpreter, the project importable."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.setdefault("PYTHONHASHSEED", "0")
    return env


def run_study(stages: Sequence[StageCommand], workdir: Path) -> list[StageResult]:
    """Every stage in order, printing each as it ends; a failed stage does not stop the rest."""
    env = stage_env()
    results = []
    for stage in stages:
        result = run_stage(stage, workdir, env)
        print(f"  {result.name}: rc {result.returncode}, {result.seconds:.1f} s", flush=True)
        if result.returncode:
            print("    " + result.tail.strip().replace("\n", "\n    "), flush=True)
        results.append(result)
    return results


def run_benchmark(device: str, bench_args: Sequence[str], out: Path) -> tuple[int, list[dict]]:
    """``python -m benchmarks --only extraction`` on ``device``; its exit code and figures."""
    figures_json = out / "extraction.json"
    cmd = [sys.executable, "-m", "benchmarks", "--only", "extraction", "--extract-device", device,
           "--json", str(figures_json), *bench_args]  # fmt: skip
    print(f"$ {' '.join(cmd)}", flush=True)
    proc = subprocess.run(cmd, cwd=ROOT, env=stage_env())
    figures = json.loads(figures_json.read_text())["figures"] if figures_json.is_file() else []
    return proc.returncode, figures


def table(results: Sequence[StageResult]) -> list[str]:
    """The stages' table: name, exit code, wall seconds, and the total."""
    width = max([len("stage"), *(len(r.name) for r in results)])
    lines = [f"{'stage':<{width}}  rc  seconds", f"{'-' * width}  --  -------"]
    lines += [f"{r.name:<{width}}  {r.returncode:>2}  {r.seconds:7.1f}" for r in results]
    total = sum(r.seconds for r in results)
    failed = sum(1 for r in results if r.returncode)
    lines.append(f"{'whole study':<{width}}  {failed:>2}  {total:7.1f}   ({failed} of {len(results)} stages failed)")
    return lines


def describe_machine() -> str:
    """GPU name, torch and Python versions, CPU count."""
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA GPU"
    return f"{gpu}; torch {torch.__version__}; Python {platform.python_version()}; {os.cpu_count()} CPUs"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu_check", description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="the project whose stages and params run")
    parser.add_argument("--commands", type=Path, help="saved `dvc repro --dry --force` output (else run dvc)")
    parser.add_argument("--device", default="cuda", help="base.device for every stage, and the benchmark's")
    parser.add_argument("--only", default="", help="regex: run only the stages whose names match")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/transferlab-gpu-check"))
    parser.add_argument("--out", type=Path, default=Path("gpu-check-out"), help="where gpu-check.json goes")
    parser.add_argument("--no-benchmark", action="store_true")
    parser.add_argument("bench_args", nargs=argparse.REMAINDER, help="after --: options for python -m benchmarks")
    args = parser.parse_args(argv)
    bench_args = args.bench_args[1:] if args.bench_args[:1] == ["--"] else args.bench_args

    text = args.commands.read_text() if args.commands else dry_run(args.root)
    stages = [s for s in parse_dry_run(text) if re.search(args.only, s.name)]
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"machine: {describe_machine()}", flush=True)
    print(f"== {len(stages)} stages on {args.device} in {args.workdir}", flush=True)
    results = run_study(stages, make_workdir(args.root, args.workdir, args.device))
    bench_rc, figures = (0, []) if args.no_benchmark else run_benchmark(args.device, bench_args, args.out)

    print(f"\n== GPU check on {describe_machine()}")
    print("\n".join(table(results)))
    if not args.no_benchmark:
        print(f"extraction benchmark: rc {bench_rc}")
        for fig in figures:
            print(f"  {fig['name']}: {fig['value']:.3g} {fig['unit']} (target {fig['target']}: {fig['verdict']})")
    summary = {
        "machine": describe_machine(),
        "device": args.device,
        "stages": [dataclasses.asdict(r) for r in results],
        "study_seconds": sum(r.seconds for r in results),
        "benchmark_returncode": bench_rc,
        "benchmark": figures,
    }
    (args.out / "gpu-check.json").write_text(json.dumps(summary, indent=1) + "\n")
    return int(any(r.returncode for r in results) or bench_rc != 0)


if __name__ == "__main__":
    sys.exit(main())
