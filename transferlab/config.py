"""Params loading: one section of params.yaml into a frozen, validated dataclass.

Each stage declares its section as a frozen dataclass. :func:`from_mapping` builds it,
rejecting unknown keys (a typo never silently falls back to a default), checking
types, and letting ``__post_init__`` check ranges. Every failure is a one-line
:class:`~transferlab.errors.UserError` naming the key, e.g.
``params.yaml: classify.C: expected a number > 0, got -1``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

from transferlab.errors import UserError

T = TypeVar("T")
PARAMS_FILE = Path("params.yaml")


def read_params(path: str | Path = PARAMS_FILE) -> dict[str, Any]:
    """Read params.yaml (or another YAML file) into a dict."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"params file {str(path)!r} not found; run from the project root")
    with path.open() as fh:
        data = yaml.safe_load(fh) or {}
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping at top level")
    return data


def get_path(params: Mapping[str, Any], dotted: str) -> Any:
    """Look up ``a.b.c`` in nested params, with a clear error when a key is missing."""
    node: Any = params
    for i, key in enumerate(dotted.split(".")):
        if not isinstance(node, Mapping) or key not in node:
            where = ".".join(dotted.split(".")[:i]) or "top level"
            raise UserError(f"params.yaml: missing key {dotted!r} (no {key!r} under {where})")
        node = node[key]
    return node


def load_section(cls: type[T], dotted: str, path: str | Path = PARAMS_FILE) -> T:
    """Load section ``dotted`` of the params file into dataclass ``cls``."""
    return from_mapping(cls, get_path(read_params(path), dotted), where=dotted)


def from_mapping(cls: type[T], data: Any, where: str) -> T:
    """Build frozen dataclass ``cls`` from ``data``; unknown or missing keys are errors."""
    if not isinstance(data, Mapping):
        raise UserError(f"params.yaml: {where}: expected a mapping, got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise UserError(
            f"params.yaml: {where}: unknown key(s) {', '.join(unknown)}; "
            f"valid keys: {', '.join(fields)}"
        )
    hints = get_type_hints(cls)
    kwargs = {}
    for name, field in fields.items():
        if name in data:
            kwargs[name] = _convert(data[name], hints[name], f"{where}.{name}")
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise UserError(f"params.yaml: {where}: missing required key {name!r}")
    try:
        return cls(**kwargs)
    except ValueError as err:  # range checks in __post_init__
        raise UserError(f"params.yaml: {where}: {err}") from None


def _convert(value: Any, hint: Any, where: str) -> Any:
    """Check ``value`` against type ``hint`` (recursively), converting lists to tuples."""
    origin = get_origin(hint)
    args = get_args(hint)
    if hint is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, where)
            except UserError as err:
                errors.append(str(err))
        raise UserError(errors[-1] if errors else f"params.yaml: {where}: bad value {value!r}")
    if origin is Literal:
        if value not in args:
            choices = ", ".join(repr(a) for a in args)
            raise UserError(f"params.yaml: {where}: got {value!r}; expected one of {choices}")
        return value
    if origin in (tuple, list, typing.Sequence) or hint in (tuple, list):
        if not isinstance(value, list | tuple):
            raise UserError(f"params.yaml: {where}: expected a list, got {value!r}")
        item = args[0] if args else Any
        return tuple(_convert(v, item, f"{where}[{i}]") for i, v in enumerate(value))
    if origin in (dict, typing.Mapping) or hint is dict:
        if not isinstance(value, Mapping):
            raise UserError(f"params.yaml: {where}: expected a mapping, got {value!r}")
        vt = args[1] if len(args) == 2 else Any
        return types.MappingProxyType(
            {str(k): _convert(v, vt, f"{where}.{k}") for k, v in value.items()}
        )
    if dataclasses.is_dataclass(hint):
        return from_mapping(hint, value, where)
    if hint is bool:
        if not isinstance(value, bool):
            raise UserError(f"params.yaml: {where}: expected true/false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise UserError(f"params.yaml: {where}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise UserError(f"params.yaml: {where}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise UserError(f"params.yaml: {where}: expected a string, got {value!r}")
        return value
    return value


def require(cond: bool, message: str) -> None:
    """Range check for ``__post_init__``: raise ValueError (reported with the key path)."""
    if not cond:
        raise ValueError(message)


def to_dict(obj: Any) -> Any:
    """Dataclass (possibly nested, with mapping proxies) to plain JSON-able data."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {k: to_dict(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_dict(v) for v in obj]
    return obj


@dataclasses.dataclass(frozen=True)
class BaseParams:
    """The shared ``base`` section every stage reads."""

    seed: int = 0
    device: str = "auto"
    num_workers: int = 0

    def __post_init__(self) -> None:
        require(self.num_workers >= 0, f"num_workers must be >= 0, got {self.num_workers}")


def load_entry(cls: type[T], registry: str, name: str, kind: str, path: str | Path = PARAMS_FILE) -> T:
    """Load entry ``name`` of registry section ``registry`` (e.g. ``backbones``).

    An unknown name fails with one line listing the entries that exist.
    """
    from transferlab.errors import unknown_name

    entries = get_path(read_params(path), registry)
    if not isinstance(entries, Mapping) or name not in entries:
        raise unknown_name(kind, name, entries if isinstance(entries, Mapping) else ())
    return from_mapping(cls, entries[name], where=f"{registry}.{name}")
