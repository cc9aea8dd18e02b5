"""The entry path every stage module shares: its command line, the whole-file params check, its sections.

A stage module declares its command line once, at module level, as a :class:`Stage`: its path
and name options (the shared ones are constants here), the params section it reads, and
whether it seeds torch. ``--params`` is added, and the parser's description is the first line
of the module's docstring. Its ``main(argv=None)`` is the stage's body decorated with
``@STAGE.main``, which first starts the job (:meth:`Stage.start`):

1. parses ``argv`` (a bad command line is argparse's usage message and exit 2);
2. reads the params file and checks ALL of it (:func:`read_checked_params`), so a bad key in
   any section stops every stage, in one line, before it does any work;
3. loads ``base`` and the stage's own section into their frozen dataclasses;
4. seeds every RNG (:func:`transferlab.seeding.seed_everything`).

The body gets the :class:`Job`: all of that, the resolved device, and a metrics writer stamped
with the seed; it calls a pure ``run(...)`` of the package and writes the outputs. A stage
that declares ``headline=`` (:data:`transferlab.metrics.Headline`) gets, beside its metrics
file, the few numbers ``dvc exp show`` compares: one mechanism, every stage the same way.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from transferlab.config import PARAMS_FILE, BaseParams, load_entry, load_section, read_params
from transferlab.errors import exit_on_user_error
from transferlab.metrics import Headline, write_metrics
from transferlab.seeding import seed_everything

if TYPE_CHECKING:
    import torch

T = TypeVar("T")
E = TypeVar("E")


@dataclasses.dataclass(frozen=True)
class Arg:
    """One command-line option: a path (parsed to a ``Path``) or a name (kept a string).

    Paths live in dvc.yaml, so an option is required unless it has a default (a root folder)
    or is ``optional`` (absent: ``None``).
    """

    flag: str
    help: str = ""
    is_path: bool = True
    default: Path | None = None
    optional: bool = False

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            self.flag,
            type=Path if self.is_path else None,
            required=self.default is None and not self.optional,
            default=self.default,
            help=self.help or None,
        )


def path(flag: str, help: str = "", default: str | Path | None = None, *, optional: bool = False) -> Arg:
    """A path option (``--metrics metrics/x.json``)."""
    return Arg(flag, help, is_path=True, default=None if default is None else Path(default), optional=optional)


def name(flag: str, help: str = "") -> Arg:
    """A required name option (``--backbone vgg_mini``): an entry of a params registry or section."""
    return Arg(flag, help, is_path=False)


# options several stages share
METRICS = path("--metrics", "metrics JSON to write")
FIGURE = path("--figure", "PNG to write")
FIGURES = path("--figures", "figure directory to write")
MODEL = path("--model", "backbone directory (data/models/<name>)")
DATA = path("--data", "prepared dataset directory")
EXPLAIN_RUN = name("--run", "explain.runs entry (its backbone, dataset and overrides of the explain.<method> section)")
FEATURES = path("--features", "feature cache directory")
MODELS_ROOT = path("--models-root", "folder of the backbones (<root>/<name>)", default="data/models")
PREPARED_ROOT = path("--prepared-root", "folder of the prepared datasets (<root>/<name>)", default="data/prepared")
BACKBONE = name("--backbone", "name of a backbones: entry in params.yaml")


def read_checked_params(params_file: str | Path = PARAMS_FILE) -> dict[str, Any]:
    """Read the params file and check all of it: every section, registry entry and cross-reference.

    The first problem is one :class:`~transferlab.errors.UserError` naming its dotted key.
    """
    # imported here, not at module level: the check imports the dataset registry and every
    # wing's params, which a stage runs to validate, not to compute (tests/test_dvc_deps.py
    # counts a stage's module-level imports as code whose edits must re-run it)
    from transferlab.params_check import validate_params

    params = read_params(params_file)
    validate_params(params)
    return params


@dataclasses.dataclass(frozen=True)
class Job(Generic[T]):
    """A started stage: its parsed arguments, ``base``, its own section and the whole checked params file."""

    args: argparse.Namespace
    base: BaseParams
    params: T
    file: Mapping[str, Any]
    generator: torch.Generator | None  # seeded, for DataLoaders; None when the stage seeds without torch
    headline_spec: Headline | None = None  # the stage's declared headline (Stage(..., headline=...))

    @property
    def seed(self) -> int:
        return self.base.seed

    @functools.cached_property
    def device(self) -> torch.device:
        """``base.device`` resolved (with several GPUs visible, this process's own one)."""
        # imported here: transferlab.device imports torch, which the torch-free stages never load
        from transferlab.device import resolve_device

        return resolve_device(self.base.device)

    def entry(self, cls: type[E], registry: str, key: str, kind: str) -> E:
        """Entry ``key`` of registry ``registry`` (``backbones``); an unknown key lists the valid ones."""
        return load_entry(cls, registry, key, kind, self.file)

    def write_metrics(
        self, path: Path, metrics: dict[str, Any], *, device: Any = None, records_stage: bool = True,
        headline: bool = True,
    ) -> None:
        """:func:`transferlab.metrics.write_metrics` stamped with the seed and (unless given) the resolved device.

        With ``headline`` (the default) and a declared headline, its headline file is written too;
        a stage writing a second, detail-only metrics file passes ``headline=False`` for it.
        """
        write_metrics(
            path, metrics, seed=self.seed, device=self.device if device is None else device, records_stage=records_stage,
            headline_spec=self.headline_spec if headline else None,
        )


class Stage(Generic[T]):
    """One stage's command line and params section, declared once at the top of ``stages/<name>.py``.

    ``section`` is ``(dataclass, "dotted.key")`` of the stage's own section (``None``: ``base``
    only); ``seed_torch=False`` for a stage that never runs torch (seeding then does not import it);
    ``params_file=False`` for the one stage that reads no params (``report``); ``headline``: the
    numbers of its metrics that ``dvc exp show`` compares (:data:`transferlab.metrics.Headline`).
    """

    def __init__(
        self,
        doc: str | None,
        *args: Arg,
        section: tuple[type[T], str] | None = None,
        seed_torch: bool = True,
        params_file: bool = True,
        headline: Headline | None = None,
    ) -> None:
        self.description = doc.splitlines()[0] if doc else ""
        self.args = args
        self.section = section
        self.seed_torch = seed_torch
        self.params_file = params_file
        self.headline = headline

    def parser(self) -> argparse.ArgumentParser:
        """The stage's argparse parser: the declared options, then ``--params``."""
        parser = argparse.ArgumentParser(description=self.description)
        for arg in self.args:
            arg.add_to(parser)
        if self.params_file:
            parser.add_argument("--params", type=Path, default=PARAMS_FILE, help="params file")
        return parser

    def parse(self, argv: Sequence[str] | None = None) -> argparse.Namespace:
        return self.parser().parse_args(argv)

    def main(self, body: Callable[[Job[T]], None]) -> Callable[[Sequence[str] | None], None]:
        """Decorate the stage's body into its ``main(argv=None)``.

        ``main`` starts the job (:meth:`start`) and runs ``body`` with it; a
        :class:`~transferlab.errors.UserError` anywhere is one ``error:`` line and exit 2. As with
        click's ``@command``, the options come from the declaration, not from ``body``'s signature.
        """

        def main(argv: Sequence[str] | None = None) -> None:
            body(self.start(argv))

        main.__module__, main.__name__, main.__qualname__ = body.__module__, body.__name__, body.__qualname__
        main.__doc__ = body.__doc__
        return exit_on_user_error(main)

    def start(self, argv: Sequence[str] | None = None) -> Job[T]:
        """Parse, check the whole params file, load ``base`` and the section, seed: see the module docstring."""
        args = self.parse(argv)
        file = read_checked_params(args.params)
        base = load_section(BaseParams, "base", file)
        params = None if self.section is None else load_section(self.section[0], self.section[1], file)
        generator = seed_everything(base.seed, with_torch=self.seed_torch)
        return Job(args, base, params, file, generator, self.headline)
