"""Bad params (issue 9.2): generated invalid params files fail before any work, in one line.

Every case is a mutation of the real params.yaml (wrong types for every key, out-of-range
numbers, unknown keys in every mapping and misspelt sections, unknown names, empty lists,
null where a value is required). The whole-file check must reject each with one line that
names the full dotted key and says the fix; every stage must stop on any of them before
doing anything (a mutation of a section the stage does not read, to show it is the whole
file that is checked), with exit 2, one ``error:`` line and its old outputs untouched.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import importlib
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.study_repo import TINY_PARAMS, deep_merge
from transferlab import cli
from transferlab.config import from_mapping, read_params, require
from transferlab.errors import UserError
from transferlab.params_check import SECTIONS, TOP_LEVEL, params_errors, validate_params
from transferlab.stage import read_checked_params

ROOT = Path(__file__).resolve().parents[1]
REAL = yaml.safe_load((ROOT / "params.yaml").read_text())
TINY = deep_merge(REAL, yaml.safe_load(TINY_PARAMS.read_text()))
Path_ = tuple[str | int, ...]


@dataclasses.dataclass(frozen=True)
class Case:
    """One invalid params file: what was done, the key the error must name, the params."""

    kind: str
    key: str
    params: dict = dataclasses.field(repr=False, compare=False)
    fix: str = ""  # a regex the message must also match (the fix it offers)

    @property
    def id(self) -> str:
        return f"{self.kind}:{self.key}"


def dotted(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def parse(key: str) -> Path_:
    """``a.b[1]`` -> ("a", "b", 1)."""
    path: list[str | int] = []
    for name, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", key):
        path.append(int(index) if index else name)
    return tuple(path)


def mutate(params: dict, path: Path_, value: Any) -> dict:
    out = copy.deepcopy(params)
    node = out
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return out


def leaves(node: Any, path: Path_ = ()) -> Iterator[tuple[Path_, Any]]:
    """Every non-mapping value (lists included) with its path."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from leaves(value, (*path, key))
    else:
        yield path, node


def mappings(node: Any, path: Path_ = ()) -> Iterator[Path_]:
    if isinstance(node, dict):
        yield path
        for key, value in node.items():
            yield from mappings(value, (*path, key))


# mappings whose keys are names the user chooses (registries, model and GAN configs)
ENTRY_MAPS = {("datasets",), ("backbones",), ("scratch", "models_config"), ("gan", "configs"), ("explain", "runs")}


def wrong_type_cases() -> list[Case]:
    """Every key of the real file given a value of the wrong type, and every list's first item too."""
    cases = []
    for path, value in leaves(REAL):
        if isinstance(value, bool):
            bad: Any = "maybe"
        elif isinstance(value, int | float | list):
            bad = "many"
        else:  # a string or null
            bad = [1]
        cases.append(Case("type", dotted(path), mutate(REAL, path, bad), "expected"))
        if isinstance(value, list) and value:
            cases.append(Case("type", dotted((*path, 0)), mutate(REAL, (*path, 0), {"x": 1}), "expected"))
    return cases


RANGE = {  # key -> out-of-range value (a list item is given by its index in the key)
    "base.num_workers": -1,
    "classify.C[1]": -1,
    "classify.cv_folds": 1,
    "classify.n_components[1]": 1.5,
    "finetune.lr": 0,
    "finetune.momentum": 1.5,
    "finetune.epochs": 0,
    "finetune.crop_pad": -1,
    "pretrain.batch_size": 0,
    "pretrain.weight_decay": -0.1,
    "extract.batch_size": 0,
    "extract.pool_size": 0,
    "tsne.max_iter": 100,
    "tsne.perplexity": 0,
    "tsne.max_points": 5,
    "gan.iterations": 0,
    "gan.batch_size": 1,
    "gan.betas[1]": 1.5,
    "gan.checkpoints[1]": 5000,
    "gan.n_fid": 5,
    "gan.configs.dcgan.nz": 0,
    "gan.configs.cgan.width": 2,
    "scratch.thresholds[1]": 1.5,
    "scratch.log_every": 0,
    "scratch.models_config.cnn.hidden": 0,
    "scratch.models_config.cnn.optim.lr": -0.1,
    "predict.n_wrong": 100,
    "predict.top_k": 0,
    "predict.image_size": 4,
    "featuremaps.n_filters": 0,
    "featuremaps.images[1]": -1,
    "fcn.grid": 1,
    "fcn.shown": 99,
    "explain.saliency.object_threshold": 1.5,
    "explain.fgsm.epsilons[1]": 2.0,
    "explain.robustness.noise_sigmas[1]": -0.2,
    "explain.classvis.iterations": 0,
    "explain.adversarial.step_size": 0,
    "datasets.digits.test_fraction": 1.5,
    "datasets.fashion-mnist.max_train": 0,
    "datasets.cifar10-small.channels": 2,
    "datasets.hymenoptera.sha256": "abc",
    "inspect.input_size": 0,
}
# where one bad item makes the whole list wrong, the message names the list
RANGE_KEY = {"gan.betas[1]": "gan.betas", "featuremaps.images[1]": "featuremaps.images"}
BOUND = r"(>=|>|<|in [\[(]|one of|exactly|null or|two numbers|must be \d)"


def range_cases() -> list[Case]:
    return [Case("range", RANGE_KEY.get(k, k), mutate(REAL, parse(k), v), BOUND) for k, v in RANGE.items()]


def unknown_key_cases() -> list[Case]:
    """A bogus key in every mapping that has fixed keys; every top-level section misspelt."""
    cases = []
    for path in mappings(REAL):
        if path in ENTRY_MAPS:
            continue
        key = (*path, "bogus_key")
        fix = "valid sections" if not path else "valid keys"
        cases.append(Case("unknown-key", dotted(key), mutate(REAL, key, 1), fix))
    for section in REAL:
        typo = section[:-1] if len(section) > 4 else section + "s"
        params = {typo if k == section else k: v for k, v in REAL.items()}
        cases.append(Case("unknown-key", typo, params, f"did you mean '{section}'"))
    return cases


NAMES = [  # keys holding a name of something (dataset, backbone, arch, cut point, kernel, ...)
    "study.datasets[1]", "study.backbones[0]", "study.targets[0]", "backbones.vgg_mini.arch",
    "backbones.vgg_mini.layers[2]", "datasets.digits.source", "inspect.archs[1]", "classify.kernels[1]",
    "finetune.modes[0]", "scratch.models[1]", "scratch.datasets[0]", "gan.variants[1]", "gan.classifier",
    "gan.fid_layer", "gan.dataset", "featuremaps.deep_layer", "featuremaps.backbone", "featuremaps.dataset",
    "predict.backbone", "fcn.backbone", "fcn.dataset", "explain.runs.vgg_mini.backbone",
    "explain.runs.efficientnet_lite0.dataset", "pretrain.dataset", "scratch.models_config.cnn.arch", "gan.configs.dcgan.arch",
    "extract.pool", "classify.linear_impl", "explain.saliency.target", "datasets.cifar10-small.on_bad_file",
    "predict.on_bad_file", "scratch.models_config.cnn.augment", "pretrain.optimizer", "finetune.lr_schedule",
]  # fmt: skip


def unknown_name_cases() -> list[Case]:
    """An unknown name where a name is expected; the message must offer the name the file had."""
    cases = []
    for key in NAMES:
        path = parse(key)
        original = REAL
        for part in path:
            original = original[part]
        cases.append(Case("unknown-name", key, mutate(REAL, path, "nope_name"), re.escape(str(original))))
    return cases


EMPTY_INVALID = [  # lists that may not be empty
    "study.datasets", "study.backbones", "study.targets", "scratch.datasets", "scratch.models",
    "gan.variants", "inspect.archs", "finetune.modes", "classify.kernels",
    "classify.C", "classify.n_components", "explain.fgsm.epsilons", "explain.robustness.noise_sigmas",
    "explain.robustness.blur_radii", "backbones.vgg_mini.layers", "featuremaps.images",
]  # fmt: skip


def empty_cases() -> list[Case]:
    return [
        Case("empty", key, mutate(REAL, parse(key), []), r"empty|at least one|exactly|give")
        for key in EMPTY_INVALID
    ]


REQUIRED = [  # keys (and whole sections / entries) that may not be null
    "base.seed", "classify.cv_folds", "classify.C", "classify.scale", "finetune.lr", "pretrain.epochs",
    "gan.iterations", "study.datasets", "predict.backbone", "explain.runs.vgg_mini.dataset",
    "backbones.vgg_mini.arch", "datasets.digits.source", "datasets.digits.test_fraction", "classify",
    "explain.saliency", "scratch.models_config.cnn.optim", "gan.configs.dcgan", "backbones.vgg_mini",
    "extract.pool",
]  # fmt: skip


def null_cases() -> list[Case]:
    return [Case("null", key, mutate(REAL, parse(key), None), "expected") for key in REQUIRED]


CASES = (
    wrong_type_cases() + range_cases() + unknown_key_cases() + unknown_name_cases()
    + empty_cases() + null_cases()
)  # fmt: skip


def names_key(message: str, key: str) -> bool:
    """Whether ``message`` is about exactly ``key`` (not a longer key that starts with it)."""
    return re.search(rf"params\.yaml: {re.escape(key)}(?=[:\s])", message) is not None


def test_the_generated_set_is_large_and_covers_every_kind():
    kinds = {c.kind for c in CASES}
    assert kinds == {"type", "range", "unknown-key", "unknown-name", "empty", "null"}
    assert len(CASES) >= 300  # every key of params.yaml gets at least a wrong type
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_every_invalid_file_is_one_line_naming_the_key_and_the_fix(case):
    with pytest.raises(UserError) as err:
        validate_params(case.params)
    message = str(err.value)
    assert "\n" not in message
    assert names_key(message, case.key), message
    assert re.search(case.fix, message), f"no fix ({case.fix!r}) in: {message}"


@pytest.mark.parametrize("params", [REAL, TINY], ids=["params.yaml", "tiny_params.yaml merged"])
def test_the_project_params_are_valid_and_complete(params):
    assert params_errors(params, complete=True) == []
    assert set(params) == set(TOP_LEVEL)  # every section the file has is checked


def test_every_section_of_the_project_file_has_a_dataclass():
    assert set(REAL) - {"datasets", "backbones"} == set(SECTIONS)


def test_the_stage_entry_reads_the_params_file_checking_all_of_it(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(mutate(REAL, ("classify", "C", 1), -1)))
    with pytest.raises(UserError, match=r"params\.yaml: classify\.C\[1\]: every value must be > 0"):
        read_checked_params(path)
    assert read_params(path)["classify"]["C"][1] == -1  # config only reads: it knows no section
    path.write_text(yaml.safe_dump(REAL))  # fixed: checked again, since the content changed
    assert read_checked_params(path)["classify"]["C"] == REAL["classify"]["C"]


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("base:\n  seed: 0\n  device: [cpu\nstudy: {}\n", r"params\.yaml:4:6: invalid YAML: .*; fix the syntax there"),
        ("base:\n  seed: 0\n  seed: 1\n", r"params\.yaml:3:3: invalid YAML: duplicate key 'seed'"),
        ("base:\n\tseed: 0\n", r"params\.yaml:2:1: invalid YAML: "),
        ("- base\n- study\n", r"params\.yaml: expected a mapping of sections at top level, got list"),
    ],
    ids=["unclosed-list", "duplicate-key", "tab", "top-level-list"],
)
def test_yaml_errors_are_one_line_with_line_and_column(tmp_path, text, pattern):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(UserError, match=pattern) as err:
        read_params(path)
    assert "\n" not in str(err.value)


def test_an_unanticipated_error_in_a_section_check_is_one_line_naming_the_key():
    @dataclasses.dataclass(frozen=True)
    class Section:
        classes: tuple[int | str, ...] = ()
        name: str = "a"

        def __post_init__(self) -> None:
            require(self.name != "b", "name must not be 'b'")
            for c in self.classes:
                _ = c >= 0  # a TypeError for a class name, which this check did not anticipate

    message = r"^params\.yaml: s\.classes\[1\]: invalid value \('>=' not supported .*\); check the types"
    with pytest.raises(UserError, match=message) as err:
        from_mapping(Section, {"classes": [1, "cat", 2], "name": "a"}, "s")
    assert "\n" not in str(err.value)
    with pytest.raises(UserError, match=r"^params\.yaml: s\.name must not be 'b'$"):
        from_mapping(Section, {"name": "b"}, "s")


def test_check_params_command_lists_every_problem(tmp_path, capsys):
    assert cli.main(["check-params", str(ROOT / "params.yaml")]) == 0
    out = capsys.readouterr().out
    assert f"{len(REAL)} sections valid" in out and "4 backbones" in out
    bad = mutate(mutate(REAL, ("classify", "C", 1), -1), ("study", "targets"), ["nope_name"])
    del bad["fcn"]
    bad["clasify"] = {}
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(bad))
    with pytest.raises(SystemExit) as exc:
        cli.main(["check-params", str(tmp_path / "bad.yaml")])
    assert exc.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert all(line.startswith("error: params.yaml: ") for line in lines), lines
    named = ["clasify", "fcn", "classify.C[1]", "study.targets[0]"]
    assert len(lines) == len(named) and all(any(names_key(line, k) for line in lines) for k in named), lines


@pytest.mark.parametrize("device", ["gpu", "cuda:x", "CPU", ""])
def test_check_params_rejects_a_device_name_the_stages_reject(device, tmp_path, capsys):
    from transferlab.device import resolve_device

    with pytest.raises(UserError) as stage_err:
        resolve_device(device)  # what pretrain/extract/... do with base.device
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(mutate(REAL, ("base", "device"), device)))
    with pytest.raises(SystemExit) as exc:
        cli.main(["check-params", str(tmp_path / "bad.yaml")])
    assert exc.value.code == 2
    assert capsys.readouterr().err == f"error: params.yaml: base.device: {stage_err.value}\n"


def test_check_params_rejects_a_device_this_machine_lacks(tmp_path, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for device, code in (("cuda", 2), ("cuda:1", 2), ("cpu", 0), ("auto", 0)):
        (tmp_path / "p.yaml").write_text(yaml.safe_dump(mutate(REAL, ("base", "device"), device)))
        with pytest.raises(SystemExit) if code else contextlib.nullcontext() as exc:
            cli.main(["check-params", str(tmp_path / "p.yaml")])
        err = capsys.readouterr().err
        if code:
            assert exc.value.code == code
            assert err == f"error: params.yaml: base.device: device {device!r} requested but no CUDA GPU is visible; set base.device: auto\n"
        else:
            assert err == ""


# ------------------------------------------------------------------ stages stop before any work

NAME_ARGS = {"dataset": "digits", "backbone": "vgg_mini", "arch": "vgg_mini", "mode": "head",
             "variant": "dcgan", "model": "cnn", "run": "vgg_mini"}  # fmt: skip
FILE_ARGS = ("metrics", "plot", "figure", "table", "rows", "lists")  # the others are directories
STAGE_CASES = {  # stage -> a mutation of a section it does not read (key, value)
    "prepare": ("classify.C[1]", -1),
    "pretrain": ("clasify", {}),
    "extract": ("study.targets[0]", "nope_name"),
    "classify": ("gan.fid_layer", "nope_name"),
    "finetune": ("explain.fgsm.epsilons", []),
    "tsne": ("datasets.digits.test_fraction", 1.5),
    "scratch": ("backbones.vgg_mini.layers[1]", "pool9"),
    "gan": ("tsne.max_iter", "many"),
    "inspect": ("study.datasets", []),
    "predict": ("base.seed", None),
    "featuremaps": ("scratch.models_config.cnn.bogus_key", 1),
    "fcn": ("finetune.modes[1]", "partial"),
    "saliency": ("predict.backbone", "nope_name"),
    "adversarial": ("extract.pool", "mean"),
    "fgsm": ("inspect.archs[1]", "vgg99"),
    "classvis": ("pretrain.dataset", "nope_name"),
    "robustness": ("gan.configs.dcgan.nz", 0),
}


def stage_argv(stage: str, root: Path) -> tuple[list[str], list[Path]]:
    """Every required argument of the stage's parser (names for names, paths under ``root``), and the paths."""
    parser: argparse.ArgumentParser = importlib.import_module(f"stages.{stage}").STAGE.parser()
    argv, paths = [], []
    for action in parser._actions:
        if action.required:
            if action.type is None:
                value = NAME_ARGS[action.dest]
            else:
                paths.append(root / "out" / action.dest)
                value = str(paths[-1])
            argv += [action.option_strings[-1], value]
    return argv, paths


def old_outputs(paths: list[Path]) -> None:
    """Old outputs at every path argument: a file for metrics/plots/figures, else a folder with one."""
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.name.startswith(FILE_ARGS) and path.name != "figures":
            path.write_bytes(f"old {path.name}\n".encode())
        else:
            path.mkdir()
            (path / "old.bin").write_bytes(b"\x00old " + path.name.encode())


def snapshot(root: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


@pytest.mark.parametrize("stage", sorted(STAGE_CASES))
def test_stage_stops_before_any_work_on_a_bad_file(stage, tmp_path, capsys, monkeypatch):
    key, value = STAGE_CASES[stage]
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(mutate(REAL, parse(key), value), sort_keys=False))
    argv, paths = stage_argv(stage, tmp_path)
    old_outputs(paths)
    monkeypatch.chdir(tmp_path)  # anything written to a default path would show up in the snapshot
    before = snapshot(tmp_path)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        importlib.import_module(f"stages.{stage}").main([*argv, "--params", str(params)])
    assert exc.value.code == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: params.yaml: "), captured.err
    assert names_key(lines[0], key), lines[0]
    assert snapshot(tmp_path) == before  # old outputs byte-identical, nothing new written
    assert captured.out == ""  # no progress output: no work started


@pytest.mark.parametrize(
    ("command", "text", "expected"),
    [
        (["-m", "stages.prepare", "--dataset", "digits", "--out", "out/p", "--metrics", "out/m.json"],
         yaml.safe_dump({**REAL, "clasify": {}}), r"^error: params\.yaml: clasify: unknown top-level section"),
        (["-m", "stages.extract", "--dataset", "out/d", "--backbone", "vgg_mini", "--out", "out/f",
          "--metrics", "out/m.json"],
         (ROOT / "params.yaml").read_text().replace("  seed: 0", "  seed: [0", 1),
         r"^error: .*params\.yaml:\d+:\d+: invalid YAML: "),
        (["-m", "transferlab.cli", "check-params"],
         yaml.safe_dump(mutate(REAL, ("backbones", "vgg_mini", "layers", 1), "pool9")),
         r"^error: params\.yaml: backbones\.vgg_mini\.layers\[1\]: unknown cut point 'pool9'"),
    ],
    ids=["prepare-unknown-section", "extract-yaml-syntax", "check-params-command"],
)
def test_no_traceback_reaches_the_user(tmp_path, command, text, expected):
    (tmp_path / "params.yaml").write_text(text)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "m.json").write_text("{}\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, *command], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and re.search(expected, lines[0]), proc.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["m.json"]
    assert (tmp_path / "out" / "m.json").read_text() == "{}\n"


def test_tsne_layer_null_is_per_backbone_and_a_named_one_must_be_extracted_by_each():
    """tsne.layer: null lets vgg_mini and efficientnet_lite0 share a study; a name must be in every backbone's layers."""
    assert REAL["tsne"]["layer"] is None and {"vgg_mini", "efficientnet_lite0"} <= set(REAL["study"]["backbones"])
    assert not params_errors(REAL)
    problems = [str(e) for e in params_errors(mutate(REAL, ("tsne", "layer"), "fc7"))]
    assert len(problems) == 2  # efficientnet_lite0 and its untrained copy extract no fc7
    assert all("tsne.layer" in p and "efficientnet_lite0" in p and "null" in p for p in problems)


def test_no_explain_run_is_one_line():
    """explain.runs is a mapping the explain stages fan out over: empty drops them, so it is refused."""
    errors = params_errors(mutate(REAL, parse("explain.runs"), {}))
    assert [str(e) for e in errors] == [
        "params.yaml: explain.runs: empty; give at least one run (dvc.yaml runs the explain stages per run)"
    ]
