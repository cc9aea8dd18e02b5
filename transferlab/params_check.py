"""Whole-file params check: every section, registry entry and cross-reference of params.yaml.

Each stage loads only its own sections, so without this a typo in a section another stage
reads (or an unknown top-level key, or an unknown name in a ``study:`` list) would pass
unnoticed until, or unless, that other stage ran. :func:`validate_params` checks the whole
file against the same frozen dataclasses the stages use (``SECTIONS``), the dataset registry
(:func:`transferlab.data.registry.parse_entry`, so new source options validate automatically)
and the backbone registry (``BackboneEntry``), then the names one section uses from another:
``study`` lists vs the registries, a backbone's ``layers`` vs its architecture's cut points,
``tsne.layer`` vs the layers extracted, ``gan.fid_layer`` / ``featuremaps.deep_layer`` vs their
backbone's cut points, the datasets and backbones the stage sections name. No network is
built and torch is not imported: cut points come from :mod:`transferlab.models.archs`.

The stage entry path (:func:`transferlab.stage.read_checked_params`) calls it, so every stage
fails on a bad file before any work; ``transferlab check-params`` runs it on its own.
Every problem is a one-line :class:`~transferlab.errors.UserError` naming the dotted key.
A new top-level section must be added to ``SECTIONS``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from transferlab.config import BaseParams, from_mapping, to_dict
from transferlab.data.registry import SOURCES, parse_entry
from transferlab.errors import UserError, did_you_mean
from transferlab.explain.params import (
    METHOD_PARAMS,
    AdversarialParams,
    ClassVisParams,
    ExplainRun,
    FGSMParams,
    RobustnessParams,
    SaliencyParams,
    run_params,
)
from transferlab.gan.params import GanParams
from transferlab.inside.params import FcnParams, FeaturemapsParams, InspectParams, PredictParams
from transferlab.models.archs import CUT_POINTS
from transferlab.models.params import BackboneEntry, PretrainParams
from transferlab.scratch.params import ScratchParams
from transferlab.training.params import ResumeParams
from transferlab.transfer.params import ClassifyParams, ExtractParams, FinetuneParams, TsneParams


@dataclasses.dataclass(frozen=True)
class StudyParams:
    """The ``study`` section: the lists dvc.yaml's matrices fan out over."""

    datasets: tuple[str, ...]  # prepare@<dataset>
    backbones: tuple[str, ...]  # pretrain@<backbone>, and extract/classify/... per target
    targets: tuple[str, ...]  # transfer targets


@dataclasses.dataclass(frozen=True)
class ExplainParams:
    """The ``explain`` section: the runs (backbone + dataset each), then one sub-section per stage."""

    runs: dict[str, ExplainRun]
    saliency: SaliencyParams = dataclasses.field(default_factory=SaliencyParams)
    adversarial: AdversarialParams = dataclasses.field(default_factory=AdversarialParams)
    fgsm: FGSMParams = dataclasses.field(default_factory=FGSMParams)
    classvis: ClassVisParams = dataclasses.field(default_factory=ClassVisParams)
    robustness: RobustnessParams = dataclasses.field(default_factory=RobustnessParams)


# top-level key -> the dataclass its section must build (the registries are checked per entry)
SECTIONS: dict[str, type] = {
    "base": BaseParams,
    "study": StudyParams,
    "pretrain": PretrainParams,
    "extract": ExtractParams,
    "scratch": ScratchParams,
    "gan": GanParams,
    "inspect": InspectParams,
    "predict": PredictParams,
    "featuremaps": FeaturemapsParams,
    "fcn": FcnParams,
    "classify": ClassifyParams,
    "finetune": FinetuneParams,
    "tsne": TsneParams,
    "explain": ExplainParams,
    "resume": ResumeParams,
}
REGISTRIES = ("datasets", "backbones")
TOP_LEVEL = (*SECTIONS, *REGISTRIES)

# lists dvc.yaml fans stages out over: an empty one silently drops its stages, a repeated
# name makes two stages with one name
MATRIX_LISTS = (
    ("study", "datasets"),
    ("study", "backbones"),
    ("study", "targets"),
    ("scratch", "datasets"),
    ("scratch", "models"),
    ("gan", "variants"),
    ("inspect", "archs"),
    ("finetune", "modes"),
)


def validate_params(params: Mapping[str, Any]) -> None:
    """Raise the first problem of the params file as a one-line :class:`UserError`."""
    errors = params_errors(params)
    if errors:
        raise errors[0]


def params_errors(params: Mapping[str, Any], *, complete: bool = False) -> list[UserError]:
    """Every problem found, one :class:`UserError` each (sections that fail are not cross-checked).

    ``complete`` also requires every section (what dvc.yaml needs); stages check only the
    sections present, since each reads just its own.
    """
    errors: list[UserError] = []
    parsed: dict[str, Any] = {}

    def attempt(check: Callable[[], Any], where: str) -> Any:
        try:
            return check()
        except UserError as err:
            errors.append(err)
        except Exception as err:  # a param no check anticipated: still one line
            errors.append(UserError(f"params.yaml: {where}: invalid ({type(err).__name__}: {err})"))
        return None

    for key in params:
        if key not in TOP_LEVEL:
            errors.append(
                UserError(
                    f"params.yaml: {key}: unknown top-level section; valid sections: "
                    f"{', '.join(TOP_LEVEL)}{did_you_mean(key, TOP_LEVEL)}"
                )
            )
    if complete:
        errors += [
            UserError(f"params.yaml: {key}: missing section; add it (the project's params.yaml has every one)")
            for key in TOP_LEVEL
            if key not in params
        ]
    for key, cls in SECTIONS.items():
        if key in params:
            parsed[key] = attempt(lambda key=key, cls=cls: from_mapping(cls, params[key], key), key)
    registries = {name: attempt(lambda name=name: _registry(params, name), name) for name in REGISTRIES}
    for section, key in MATRIX_LISTS:
        if parsed.get(section) is not None:
            attempt(lambda s=section, k=key: _matrix_list(getattr(parsed[s], k), f"{s}.{k}"), section)
    return errors + _check_references(parsed, registries["datasets"], registries["backbones"])


def _registry(params: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    """Entries of registry ``name`` (datasets: source options, backbones: BackboneEntry); None if absent."""
    if name not in params:
        return None
    entries = params[name]
    if not isinstance(entries, Mapping) or not entries:
        raise UserError(f"params.yaml: {name}: expected a mapping of name -> entry, got {entries!r}")
    if name == "datasets":
        for key, entry in entries.items():
            _dataset_source(key, entry)
        return {key: parse_entry(str(key), entry)[1] for key, entry in entries.items()}
    return {key: from_mapping(BackboneEntry, entry, f"backbones.{key}") for key, entry in entries.items()}


def _dataset_source(key: str, entry: Any) -> None:
    """An entry is a mapping whose ``source`` names a known source (checked before its options)."""
    if not isinstance(entry, Mapping):
        raise UserError(f"params.yaml: datasets.{key}: expected a mapping (source + its options), got {entry!r}")
    source = entry.get("source")
    if not isinstance(source, str) or source not in SOURCES:
        problem = (
            "missing required key" if "source" not in entry
            else f"unknown source {source!r}" if isinstance(source, str)
            else f"expected a source name, got {source!r}"
        )  # fmt: skip
        raise UserError(
            f"params.yaml: datasets.{key}.source: {problem}; valid sources: {', '.join(sorted(SOURCES))}"
            + did_you_mean(source, SOURCES)
        )


def _matrix_list(values: tuple[str, ...], where: str) -> None:
    if not values:
        raise UserError(f"params.yaml: {where}: empty list; give at least one name (dvc.yaml runs a stage per name)")
    for i, value in enumerate(values):
        if value in values[:i]:
            raise UserError(f"params.yaml: {where}[{i}]: {value!r} is listed twice; remove one")


def _check_references(parsed: Mapping[str, Any], datasets: Mapping | None, backbones: Mapping | None) -> list[UserError]:
    """Names one section takes from another (datasets, backbones, cut layers): every problem."""
    errors: list[UserError] = []

    def check(fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except UserError as err:
            errors.append(err)

    def dataset(value: str | None, where: str) -> None:
        check(_known, value, datasets, where, "dataset", "datasets")

    def backbone(value: str, where: str) -> None:
        check(_known, value, backbones, where, "backbone", "backbones")

    study, gan, fm, tsne = (parsed.get(k) for k in ("study", "gan", "featuremaps", "tsne"))  # None: absent or invalid
    if study:
        for key, named in (("datasets", dataset), ("backbones", backbone), ("targets", dataset)):
            for i, name in enumerate(getattr(study, key)):
                named(name, f"study.{key}[{i}]")
    for section, key in (("pretrain", "dataset"), ("gan", "dataset"), ("predict", "dataset"),
                         ("featuremaps", "dataset"), ("fcn", "dataset")):
        if parsed.get(section):
            dataset(getattr(parsed[section], key), f"{section}.{key}")
    for section, key in (("gan", "classifier"), ("predict", "backbone"), ("featuremaps", "backbone"), ("fcn", "backbone")):
        if parsed.get(section):
            backbone(getattr(parsed[section], key), f"{section}.{key}")
    if parsed.get("scratch"):
        for i, name in enumerate(parsed["scratch"].datasets):
            dataset(name, f"scratch.datasets[{i}]")
    if parsed.get("explain"):
        explain = parsed["explain"]
        if not explain.runs:
            errors.append(UserError("params.yaml: explain.runs: empty; give at least one run (dvc.yaml runs the explain stages per run)"))
        for name, run in explain.runs.items():
            backbone(run.backbone, f"explain.runs.{name}.backbone")
            dataset(run.dataset, f"explain.runs.{name}.dataset")
            for method in METHOD_PARAMS:
                check(run_params, method, to_dict(getattr(explain, method)), run, name)
    if backbones is None:
        return errors
    for name, entry in backbones.items():
        for i, layer in enumerate(entry.layers):
            check(_cut_point, layer, entry, f"backbones.{name}.layers[{i}]", f"arch {entry.arch!r}")
    if gan and gan.classifier in backbones:
        check(_cut_point, gan.fid_layer, backbones[gan.classifier], "gan.fid_layer", f"gan.classifier {gan.classifier!r}")
    if fm and fm.backbone in backbones:
        check(_cut_point, fm.deep_layer, backbones[fm.backbone], "featuremaps.deep_layer", f"featuremaps.backbone {fm.backbone!r}")
    if study and study.targets:
        for name in study.backbones:
            if name in backbones:
                check(_extracted_layers, backbones[name], name, tsne)
    return errors


def _known(value: str | None, registry: Mapping | None, where: str, kind: str, section: str) -> None:
    if value is None or registry is None or value in registry:
        return
    raise UserError(
        f"params.yaml: {where}: unknown {kind} {value!r}; valid {kind}s (keys of `{section}:`): "
        f"{', '.join(registry)}{did_you_mean(value, registry)}"
    )


def _cut_point(layer: str, entry: BackboneEntry, where: str, of: str) -> None:
    valid = CUT_POINTS[entry.arch]
    if layer not in valid:
        raise UserError(
            f"params.yaml: {where}: unknown cut point {layer!r} for {of}; valid: {', '.join(valid)}"
            f"{did_you_mean(layer, valid)} (`transferlab layers {entry.arch}` lists them)"
        )


def _extracted_layers(entry: BackboneEntry, name: str, tsne: TsneParams | None) -> None:
    """A backbone the transfer stages run on needs layers, and tsne.layer among them."""
    if not entry.layers:
        raise UserError(
            f"params.yaml: backbones.{name}.layers: empty, but extract@<target>-{name} needs at least one "
            f"cut point; pick from: {', '.join(CUT_POINTS[entry.arch])}"
        )
    if tsne is not None and tsne.layer is not None and tsne.layer not in entry.layers:
        raise UserError(
            f"params.yaml: tsne.layer: {tsne.layer!r} is not extracted for backbone {name!r} "
            f"(backbones.{name}.layers: {', '.join(entry.layers)}); pick one of those, add it there, or set "
            "tsne.layer: null (each backbone's deepest extracted layer)"
        )


def summary(params: Mapping[str, Any]) -> str:
    """One line describing a valid params file (what ``transferlab check-params`` prints)."""
    study = params.get("study") or {}
    sizes = ", ".join(f"{len(study.get(k) or ())} {k}" for k in ("datasets", "backbones", "targets"))
    return (
        f"{len(params)} sections valid; registries: {len(params.get('datasets') or {})} datasets "
        f"({len(SOURCES)} sources known), {len(params.get('backbones') or {})} backbones; study: {sizes}"
    )

