"""Params loading: one section of params.yaml into a frozen, validated dataclass.

Each stage declares its section as a frozen dataclass. :func:`from_mapping` builds it,
rejecting unknown keys (a typo never silently falls back to a default), checking
types, and letting ``__post_init__`` check ranges with :func:`require`. Every failure is a
one-line :class:`~transferlab.errors.UserError` naming the full dotted key and the fix, e.g.
``params.yaml: classify.C[1]: every value must be > 0, got -1``.

This module knows no section of the study: it reads and converts. The whole-file check
(:mod:`transferlab.params_check`, every section against its dataclass) runs on the stage
entry path, :mod:`transferlab.stage`, so a bad key anywhere fails every stage before any work.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

from transferlab.errors import UserError, did_you_mean, unknown_name

T = TypeVar("T")
PARAMS_FILE = Path("params.yaml")


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects a key given twice in one mapping (PyYAML keeps the last; DVC refuses)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.MarkedYAMLError(
                    problem=f"duplicate key {key!r}; keep one of them", problem_mark=key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def parse_params(text: str, path: str | Path = PARAMS_FILE) -> dict[str, Any]:
    """Parse params YAML; a syntax error is one line ``file:line:column: problem``."""
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = err.problem or err.context or "invalid YAML"
        raise UserError(f"{where}: invalid YAML: {problem}; fix the syntax there") from None
    except yaml.YAMLError as err:
        raise UserError(f"{path}: invalid YAML: {' '.join(str(err).split())}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping of sections at top level, got {type(data).__name__}")
    return data


def read_params(path: str | Path = PARAMS_FILE) -> dict[str, Any]:
    """Read params.yaml (or another params file) into a dict; only its YAML is checked here."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"params file {str(path)!r} not found; run from the project root or pass --params")
    return parse_params(path.read_text(), path)


def get_path(params: Mapping[str, Any], dotted: str) -> Any:
    """Look up ``a.b.c`` in nested params, with a clear error when a key is missing."""
    node: Any = params
    for i, key in enumerate(dotted.split(".")):
        if not isinstance(node, Mapping) or key not in node:
            where = ".".join(dotted.split(".")[:i]) or "top level"
            raise UserError(f"params.yaml: missing key {dotted!r} (no {key!r} under {where})")
        node = node[key]
    return node


ParamsSource = str | Path | Mapping[str, Any]  # a params file, or one already read


def _params(source: ParamsSource) -> Mapping[str, Any]:
    return source if isinstance(source, Mapping) else read_params(source)


def load_section(cls: type[T], dotted: str, path: ParamsSource = PARAMS_FILE) -> T:
    """Load section ``dotted`` of the params file (or of the params already read) into dataclass ``cls``."""
    return from_mapping(cls, get_path(_params(path), dotted), where=dotted)


def from_mapping(cls: type[T], data: Any, where: str) -> T:
    """Build frozen dataclass ``cls`` from ``data``; unknown or missing keys are errors."""
    if not isinstance(data, Mapping):
        raise UserError(f"params.yaml: {where}: expected a mapping of keys, got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted((str(k) for k in data if k not in fields), key=str)
    if unknown:
        more = f" (and {', '.join(unknown[1:])})" if len(unknown) > 1 else ""
        raise UserError(
            f"params.yaml: {where}.{unknown[0]}: unknown key{more}; valid keys: {', '.join(fields)}"
            + did_you_mean(unknown[0], fields)
        )
    hints = get_type_hints(cls)
    kwargs = {}
    for name, field in fields.items():
        if name in data:
            kwargs[name] = _convert(data[name], hints[name], f"{where}.{name}")
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise UserError(f"params.yaml: {where}.{name}: missing required key; add it ({_describe(hints[name])})")
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as err:  # range checks in __post_init__ (or a type it did not expect)
        raise UserError(_post_init_message(cls, kwargs, where, err)) from None


class ParamError(ValueError):
    """A failed :func:`require`; ``key`` (optional) is the field it is about, e.g. ``"C[1]"``."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


def _post_init_message(cls: type, kwargs: dict[str, Any], where: str, err: Exception) -> str:
    """``params.yaml: <where>.<field>[i] ...`` for an error raised while building ``cls``.

    The field is the error's ``key`` if :func:`require` was given one, else the field named
    first in the message, else the one given field without which ``cls`` builds; for a list
    field, the element at fault when only some of the elements fail on their own.
    """
    message = str(err)
    if not isinstance(err, ParamError):  # a TypeError/ValueError the checks did not anticipate
        message = f"invalid value ({message}); check the types and values of its keys"
    field = _blamed_field(cls, err) or _culprit(cls, kwargs)
    if field is None:
        return f"params.yaml: {where}: {message}"
    key = field
    value = kwargs.get(field)
    if "[" not in field and isinstance(value, tuple) and len(value) > 1:
        bad = [i for i, item in enumerate(value) if _fails_alone(cls, kwargs, field, item)]
        if 0 < len(bad) < len(value):
            key = f"{field}[{bad[0]}]"
    for sep in (": ", " "):
        if message.startswith(field + sep):
            return f"params.yaml: {where}.{key}{sep}{message[len(field) + len(sep):]}"
    return f"params.yaml: {where}.{key}: {message}"


def _blamed_field(cls: type, err: Exception) -> str | None:
    """The error's explicit ``key``, else the field whose name occurs first (as a word) in its message."""
    if getattr(err, "key", None):
        return err.key
    hits = []
    for f in dataclasses.fields(cls):
        match = re.search(rf"(?<![\w.]){re.escape(f.name)}(?!\w)", str(err))
        if match:
            hits.append((match.start(), f.name))
    return min(hits)[1] if hits else None


def _culprit(cls: type, kwargs: dict[str, Any]) -> str | None:
    """The one given field without which ``cls`` builds (its default instead), if there is one."""
    found = []
    for name in kwargs:
        try:
            cls(**{k: v for k, v in kwargs.items() if k != name})
        except (ValueError, TypeError):
            continue
        found.append(name)
    return found[0] if len(found) == 1 else None


def _fails_alone(cls: type, kwargs: dict[str, Any], field: str, item: Any) -> bool:
    """Whether ``cls`` still fails, on ``field`` or unattributed, when ``field`` holds only ``item``."""
    try:
        cls(**{**kwargs, field: (item,)})
    except (ValueError, TypeError) as err:
        return _blamed_field(cls, err) in (field, None)
    return False


def _describe(hint: Any) -> str:
    """What a value of type ``hint`` looks like, for messages (``an integer``, ``one of 'a', 'b'``)."""
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):
        return " or ".join("null" if a is type(None) else _describe(a) for a in args)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (tuple, list, typing.Sequence) or hint in (tuple, list):
        return f"a list, each item {_describe(args[0])}" if args and args[0] is not Any else "a list"
    if origin in (dict, typing.Mapping) or hint is dict or dataclasses.is_dataclass(hint):
        return "a mapping"
    names = {bool: "true/false", int: "an integer", float: "a number", str: "a string"}
    return names.get(hint, "a value")


def _convert(value: Any, hint: Any, where: str) -> Any:
    """Check ``value`` against type ``hint`` (recursively), converting lists to tuples."""
    origin = get_origin(hint)
    args = get_args(hint)
    if hint is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        deeper = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, where)
            except UserError as err:
                if not str(err).startswith(f"params.yaml: {where}: "):
                    deeper.append(str(err))  # the right kind of value, wrong inside (e.g. a list item)
        if deeper:
            raise UserError(deeper[0])
        raise UserError(f"params.yaml: {where}: expected {_describe(hint)}, got {value!r}")
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


def require(cond: bool, message: str, key: str | None = None) -> None:
    """Range check for ``__post_init__``: raise :class:`ParamError` (reported with the dotted key).

    ``key`` names the field (``"C"``, ``"C[1]"``) when the message does not start with it.
    """
    if not cond:
        raise ParamError(message, key)


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
        problem = device_name_problem(self.device)
        require(problem is None, str(problem), "device")


# what ``base.device`` accepts, besides ``cuda:<index>`` (transferlab.device resolves it)
DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def device_name_problem(name: str) -> str | None:
    """Why ``name`` is not a device name (``None`` if it is): the torch-free half of ``resolve_device``.

    Shared by the params check and :func:`transferlab.device.resolve_device`, so
    ``check-params`` rejects exactly the names a stage would.
    """
    index = name.removeprefix("cuda:")
    if name in DEVICE_CHOICES or (name.startswith("cuda:") and index.isdigit()):
        return None
    return f"unknown device {name!r}; use one of {', '.join(DEVICE_CHOICES)}, cuda:<index>"


def load_entry(cls: type[T], registry: str, name: str, kind: str, path: ParamsSource = PARAMS_FILE) -> T:
    """Load entry ``name`` of registry section ``registry`` (e.g. ``backbones``) of a params file or mapping.

    An unknown name fails with one line listing the entries that exist.
    """
    entries = get_path(_params(path), registry)
    if not isinstance(entries, Mapping) or name not in entries:
        raise unknown_name(kind, name, entries if isinstance(entries, Mapping) else ())
    return from_mapping(cls, entries[name], where=f"{registry}.{name}")
