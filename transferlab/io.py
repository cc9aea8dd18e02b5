"""Atomic writes: a failed run leaves no partial output and keeps what was there.

Outputs are written into a temporary sibling and renamed into place only when the
whole stage has succeeded. What a killed run leaves behind (stale temporary siblings, a
parked previous directory) is cleaned up or restored by the next writer of that output.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psutil

# A writer of ``path`` works in ``.<name>.tmp-<pid>-<random>`` beside it; while swapping a
# directory into place the previous output is parked as ``.<name>.tmp-old``. Both match the
# ``.*.tmp-*`` pattern in .dvcignore, so DVC never hashes them inside a tracked directory.
TEMP_MARK = ".tmp-"


def current_umask() -> int:
    """The process's file-mode creation mask, read without changing it where Linux allows."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)  # elsewhere: the only portable read is a set-and-restore
    os.umask(mask)
    return mask


def ordinary_mode(directory: bool = False) -> int:
    """The mode ``open()`` / ``mkdir()`` would give under the umask (0644 / 0755 under 022)."""
    return (0o777 if directory else 0o666) & ~current_umask()


def temp_file(prefix: str, dir: Path, suffix: str = "") -> tuple[int, Path]:
    """``tempfile.mkstemp`` with the ordinary mode instead of its private 0600.

    Outputs are written through temporary files and renamed into place, so the mode of the
    temporary is the output's: a private one would hide metrics and reports from the group of
    a shared lab server (``cache.shared group``).
    """
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=dir)
    os.fchmod(fd, ordinary_mode())
    return fd, Path(name)


def temp_dir(prefix: str, dir: Path) -> Path:
    """``tempfile.mkdtemp`` with the ordinary mode instead of its private 0700."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=dir))
    path.chmod(ordinary_mode(directory=True))
    return path


def _temp_prefix(path: Path) -> str:
    return f".{path.name}{TEMP_MARK}{os.getpid()}-"


def _parked(path: Path) -> Path:
    return path.with_name(f".{path.name}{TEMP_MARK}old")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (a killed, unreaped zombie does not)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def recover(path: str | Path) -> list[Path]:
    """Undo what a killed writer of ``path`` left behind; return the paths removed.

    A previous output parked by a swap that was killed between its two renames is
    renamed back (or dropped, if the new output had already landed); temporary siblings
    of ``path`` whose writing process is gone are deleted. Nothing else is touched:
    only names of the atomic pattern for this very ``path``, never a live writer's.
    """
    path = Path(path)
    removed: list[Path] = []
    parked = _parked(path)
    if parked.exists() or parked.is_symlink():
        if path.exists() or path.is_symlink():
            _remove(parked)
            removed.append(parked)
        else:
            parked.rename(path)
    if not path.parent.is_dir():
        return removed
    stale = re.compile(rf"^\.{re.escape(path.name)}{re.escape(TEMP_MARK)}(\d+)-[a-z0-9_]+$")
    for sibling in path.parent.iterdir():
        match = stale.match(sibling.name)
        if match and not _alive(int(match.group(1))):
            _remove(sibling)
            removed.append(sibling)
    return removed


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary directory that replaces ``path`` only if the block succeeds.

    A kill at any point leaves either the previous ``path`` (possibly parked, restored by
    the next writer's :func:`recover`) or the complete new one, never a partial one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    recover(path)
    tmp = temp_dir(_temp_prefix(path), path.parent)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if path.exists() or path.is_symlink():
        parked = _parked(path)
        path.rename(parked)
        tmp.rename(path)
        _remove(parked)
    else:
        tmp.rename(path)


@contextlib.contextmanager
def atomic_file(path: str | Path, mode: str = "w") -> Iterator[Any]:
    """Open a temporary file that replaces ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    recover(path)
    fd, tmp = temp_file(_temp_prefix(path), path.parent)
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as pretty, key-sorted JSON atomically (stable diffs for DVC metrics)."""
    with atomic_file(path) as fh:
        json.dump(obj, fh, indent=2, sort_keys=True, default=_jsonable)
        fh.write("\n")


def read_json(path: str | Path) -> Any:
    """Read a JSON file."""
    with Path(path).open() as fh:
        return json.load(fh)
