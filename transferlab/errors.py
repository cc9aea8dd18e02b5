"""The one exception type a user can cause, and how a stage reports it.

Every error a user can trigger (unknown name, bad value, missing or corrupt file,
no network) is raised as :class:`UserError` with a one-line message naming the
problem and the fix. Stage entry points wrap ``main`` with :func:`exit_on_user_error`
so the user sees exactly that line and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import difflib
import functools
import sys
from collections.abc import Callable, Iterable
from typing import TypeVar

T = TypeVar("T")


class UserError(Exception):
    """A problem the user can fix; ``str(err)`` is the single line shown to them."""


def did_you_mean(name: object, valid: Iterable[object]) -> str:
    """`` (did you mean 'x'?)`` for a close match among ``valid`` (a typo), else ``''``."""
    close = difflib.get_close_matches(str(name), [str(v) for v in valid], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def unknown_name(kind: str, name: str, valid: Iterable[str]) -> UserError:
    """Build the standard 'unknown X' error listing the valid names (and the likely typo fix)."""
    valid = sorted(valid)
    return UserError(f"unknown {kind} {name!r}; valid {kind}s: {', '.join(valid)}{did_you_mean(name, valid)}")


def exit_on_user_error(main: Callable[..., T]) -> Callable[..., T]:
    """Decorate a stage ``main`` so a :class:`UserError` prints one line and exits 2."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except UserError as err:
            print(f"error: {err}", file=sys.stderr)
            raise SystemExit(2) from None

    return wrapper
